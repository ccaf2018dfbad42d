//! The load generator against the real server, at a small scale: its own
//! accounting must add up (every message counted once, a dropped member's
//! missing lines counted as lost), and each scenario must run end to end.
//!
//! No timing assertions: these runs share the machine with everything else
//! `cargo test` runs, so only counts are checked.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use chat::Config;
use loadgen::fanout::{Ack, Shape, Transport};
use loadgen::{CapacityConfig, EngineOptions, FanoutConfig, FanoutReport, LoginsConfig, Target};

/// A target for `server`, trusting the test CA.
fn target(server: &support::TestServer) -> Target {
    Target::new(server.addr, &support::pki().ca, "localhost").expect("target")
}

/// Runs `cfg`'s fanout against a fresh server whose message rate limit is
/// `rate` a second with bursts of `burst`, and `adjust` applied after that.
fn fanout(
    rate: u32,
    burst: u32,
    adjust: impl FnOnce(&mut Config),
    cfg: &FanoutConfig,
) -> FanoutReport {
    let server = support::TestServer::start_with(|c| {
        c.msg_rate = rate;
        c.msg_burst = burst;
        // Every line costs a token of the line bucket too: never the
        // tighter of the two here.
        c.line_rate = c.line_rate.max(rate);
        c.line_burst = c.line_burst.max(burst);
        adjust(c);
    });
    loadgen::fanout::run(&target(&server), cfg).expect("fanout runs")
}

/// A small fanout: 2 rooms × 3 members, one sender each, a fixed number of
/// messages. Every member gets every message: nothing lost, nothing twice.
#[test]
fn fanout_delivers_every_message_to_every_member() {
    let cfg = FanoutConfig {
        rooms: 2,
        members: 3,
        senders: 1,
        window: 8,
        messages: Some(200),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        drain: Duration::from_secs(10),
        ..FanoutConfig::default()
    };
    let report = fanout(100_000, 100_000, |_| {}, &cfg);
    assert_eq!(report.ready, 6, "{report}");
    assert_eq!(report.sent, 2 * 200, "{report}");
    assert_eq!(report.rejected, 0, "{report}");
    // senders × members × messages
    assert_eq!(report.expected, 2 * 3 * 200, "{report}");
    assert_eq!(report.received, report.expected, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!((report.duplicates, report.out_of_order), (0, 0), "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    assert!(report.drain_complete, "{report}");
    assert!(report.members_with_loss.is_empty(), "{report}");
    assert_eq!(report.errors, 0, "{report}");
}

/// The server's rate limit left at its default: the refused SAYs are
/// counted as refused, not as lost, and the accounting still adds up.
#[test]
fn fanout_counts_refused_messages_apart_from_losses() {
    let cfg = FanoutConfig {
        rooms: 1,
        members: 2,
        senders: 1,
        window: 4,
        messages: Some(20),
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        ..FanoutConfig::default()
    };
    let report = fanout(1, 5, |_| {}, &cfg);
    assert_eq!(report.sent, 20, "{report}");
    assert!(report.rejected > 0, "{report}");
    assert_eq!(report.expected, (20 - report.rejected) * 2, "{report}");
    assert_eq!(report.lost, 0, "{report}");
}

/// A member that stops reading, on a server with a small outbox: the
/// server drops it, and everything it did not get is reported lost, to it.
#[test]
fn a_member_that_stops_reading_is_reported_dropped_and_its_lines_lost() {
    let cfg = FanoutConfig {
        rooms: 1,
        members: 3,
        senders: 1,
        stalled: 1,
        // A steady rate the members that do read easily keep up with (a
        // flat-out sender can outrun any reader's outbox, which is not
        // what this test is about).
        rate: 2000.0,
        // Big messages, many of them: 12 MB, far more than the stalled
        // member's socket buffers (~4 MB) and its 512-line outbox hold.
        size: 3000,
        messages: Some(4000),
        warmup: Duration::from_millis(100),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(10),
        ..FanoutConfig::default()
    };
    // 512 lines (1.5 MB) give the members that do read a quarter of a
    // second of slack on a loaded machine, and still overflow long before
    // the stalled member has been sent everything.
    let small_outbox = |c: &mut Config| {
        c.queue_lines = 512;
        c.history = 0;
    };
    let report = fanout(100_000, 100_000, small_outbox, &cfg);
    // How many of the 4,000 the sender gets out in its window depends on
    // how busy the machine is; every one it sent was taken whole.
    assert!(report.sent > 0 && report.sent <= 4000, "{report}");
    assert_eq!(report.rejected, 0, "{report}");
    assert_eq!(report.dropped, 1, "{report}");
    assert!(report.lost > 0, "{report}");
    assert_eq!(report.lost, report.lost_to_dropped, "{report}");
    // Only the stalled member lost anything, and its loss adds up.
    assert_eq!(report.members_with_loss.len(), 1, "{report}");
    let member = &report.members_with_loss[0];
    assert!(member.dropped.is_some(), "{report}");
    assert_eq!(member.expected - member.received, member.lost, "{report}");
    assert!(!member.gaps.is_empty(), "{report}");
}

/// Asserts that every accepted message reached every member, once and in
/// order, and that the run ended cleanly.
fn assert_all_delivered(report: &FanoutReport) {
    assert_eq!(report.rejected, 0, "{report}");
    assert_eq!(
        report.expected,
        report.sent * report.members as u64,
        "{report}"
    );
    assert_eq!(report.received, report.expected, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!((report.duplicates, report.out_of_order), (0, 0), "{report}");
    assert_eq!((report.dropped, report.errors), (0, 0), "{report}");
    assert!(report.drain_complete, "{report}");
}

/// The default shape: each line its own record and its own write, and a
/// sender's window freed by the next member's receipt. Two worker threads,
/// so that each sender's next member lives on the other one: its window is
/// freed across threads, and still never holds more than the window.
#[test]
fn per_line_writes_and_next_member_acks_hold_their_shape() {
    let cfg = FanoutConfig {
        rooms: 2,
        members: 4,
        senders: 2,
        window: 4,
        messages: Some(300),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        engine: EngineOptions {
            threads: 2,
            ..EngineOptions::default()
        },
        ..FanoutConfig::default()
    };
    assert_eq!((cfg.shape, cfg.ack), (Shape::PerLine, Ack::Next));
    let report = fanout(100_000, 100_000, |_| {}, &cfg);
    assert_eq!(report.sent, 2 * 2 * 300, "{report}");
    assert_all_delivered(&report);
    // One write per line: a small window never fills a loopback socket.
    assert_eq!(report.sender_writes, report.sent, "{report}");
    // Every message freed its sender's window once, by its next member.
    assert_eq!(report.acks, report.sent, "{report}");
    assert!(
        (1..=4).contains(&report.max_in_flight),
        "in flight beyond the window: {report}"
    );
}

/// The old shape, by option: lines coalesced into fewer writes, the window
/// freed by the sender's own echo.
#[test]
fn coalesced_lines_and_own_echo_acks_hold_their_shape() {
    let cfg = FanoutConfig {
        rooms: 1,
        members: 3,
        senders: 2,
        window: 16,
        messages: Some(300),
        shape: Shape::Coalesce,
        ack: Ack::Own,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        ..FanoutConfig::default()
    };
    let report = fanout(100_000, 100_000, |_| {}, &cfg);
    assert_eq!(report.sent, 2 * 300, "{report}");
    assert_all_delivered(&report);
    // The first event alone sends a whole window in one write.
    assert!(report.sender_writes < report.sent, "{report}");
    assert!(report.sender_writes > 0, "{report}");
    assert_eq!(report.acks, report.sent, "{report}");
    assert!((1..=16).contains(&report.max_in_flight), "{report}");
}

/// A rate-limited run with the server's pid: the CPU figures are there,
/// and cover the measure window the deliveries were counted in.
#[test]
fn a_rate_limited_run_states_cpu_per_delivery() {
    let cfg = FanoutConfig {
        rooms: 2,
        members: 5,
        senders: 5,
        rate: 50.0,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        engine: EngineOptions {
            // The test server runs inside this process.
            server_pids: vec![std::process::id()],
            ..EngineOptions::default()
        },
        ..FanoutConfig::default()
    };
    let report = fanout(100_000, 100_000, |_| {}, &cfg);
    assert_all_delivered(&report);
    let server = report.server.expect("the server's CPU was read");
    assert!(server.cpu_s >= 0.0, "{report}");
    assert!(server.cpu_us_per_delivery.is_finite(), "{report}");
    // The samples were taken at the window's ends, not seconds off.
    assert!(server.sample_skew_ms < 500.0, "{report}");
    // 10 senders at 50 msg/s to rooms of 5 over 1 s: about 2,500.
    assert!(report.deliveries_per_s > 500.0, "{report}");
}

/// `sweep-rate` through the binary: a point per rate, in order, nothing
/// lost, its JSON and its chart written.
#[test]
fn the_rate_sweep_writes_its_points_and_chart() {
    let server = support::TestServer::start_with(|c| {
        c.msg_rate = 100_000;
        c.msg_burst = 100_000;
        c.line_rate = c.line_rate.max(100_000);
        c.line_burst = c.line_burst.max(100_000);
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let (svg, json) = (dir.path().join("rate.svg"), dir.path().join("rate.json"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--addr")
        .arg(server.addr.to_string())
        .arg("--ca")
        .arg(&support::pki().ca)
        .args(["-q", "sweep-rate", "--rates", "20,40", "--rooms", "2"])
        .args(["--members", "3", "--senders", "3"])
        .args(["--duration", "0.5", "--warmup", "0.1", "--svg"])
        .arg(&svg)
        .arg("--out")
        .arg(&json)
        .output()
        .expect("run the load generator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON")).expect("JSON");
    let points = report["points"].as_array().expect("points");
    let rates: Vec<f64> = points.iter().map(|p| p["rate"].as_f64().unwrap()).collect();
    assert_eq!(rates, [20.0, 40.0]);
    for p in points {
        assert_eq!(p["lost"], 0, "{p}");
        assert!(p["deliveries_per_s"].as_f64().unwrap() > 0.0, "{p}");
    }
    let chart = std::fs::read_to_string(&svg).expect("the chart");
    assert!(chart.starts_with("<svg"), "{chart:.80}");
}

/// `--coalesce` and `--ack own` reach the run (and show in its JSON); a bad
/// `--ack` is refused before anything connects.
#[test]
fn the_shape_options_reach_the_run() {
    let server = support::TestServer::start_with(|c| {
        c.msg_rate = 100_000;
        c.msg_burst = 100_000;
        c.line_rate = c.line_rate.max(100_000);
        c.line_burst = c.line_burst.max(100_000);
    });
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .arg("--addr")
            .arg(server.addr.to_string())
            .arg("--ca")
            .arg(&support::pki().ca)
            .args(["-q", "--json", "fanout", "--members", "2", "--senders", "1"])
            .args(["--messages", "50", "--duration", "0.3", "--warmup", "0.1"])
            .args(extra)
            .output()
            .expect("run the load generator")
    };
    let out = run(&["--coalesce", "--ack", "own"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["shape"], "coalesce");
    assert_eq!(report["ack"], "own");
    assert_eq!(report["lost"], 0);
    let out = run(&[]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["shape"], "per-line");
    assert_eq!(report["ack"], "next");
    assert_eq!(report["sender_writes"], report["sent"]);
    let out = run(&["--ack", "sideways"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sideways"));
}

/// `--transport ws`: the same fanout over WebSocket (ALPN `http/1.1`,
/// `GET /ws`, one text frame per line), every message to every member,
/// one write per line. The framing itself is unit-tested in `ws.rs`.
#[test]
fn fanout_over_websocket_delivers_every_message() {
    let cfg = FanoutConfig {
        rooms: 2,
        members: 4,
        senders: 2,
        window: 8,
        messages: Some(200),
        transport: Transport::Ws,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        ..FanoutConfig::default()
    };
    let report = fanout(100_000, 100_000, |_| {}, &cfg);
    assert_eq!(report.transport, Transport::Ws, "{report}");
    assert_eq!(report.ready, 8, "{report}");
    assert_eq!(report.sent, 2 * 2 * 200, "{report}");
    assert_all_delivered(&report);
    assert_eq!(report.sender_writes, report.sent, "{report}");
    assert_eq!(report.acks, report.sent, "{report}");
}

/// A server whose message rate limits are out of the way.
fn fast_server() -> support::TestServer {
    support::TestServer::start_with(|c| {
        c.msg_rate = 100_000;
        c.msg_burst = 100_000;
        c.line_rate = c.line_rate.max(100_000);
        c.line_burst = c.line_burst.max(100_000);
    })
}

/// Several addresses: the members are spread over the servers by their
/// index (member `i` to address `i % n`), through the library and through
/// the binary's `--addr A,B`, and the report names the addresses. These two
/// servers share nothing (no bus), so every room has one member, on one
/// server: rooms 0 and 2 on the first, room 1 on the second. Each server
/// then holds exactly the accounts of its own members.
#[test]
fn fanout_spreads_its_members_over_several_servers() {
    let (first, second) = (fast_server(), fast_server());
    let target = Target::spread(
        vec![first.addr, second.addr],
        &support::pki().ca,
        "localhost",
    )
    .expect("target");
    let cfg = FanoutConfig {
        rooms: 3,
        members: 1,
        senders: 1,
        window: 4,
        messages: Some(50),
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        engine: EngineOptions {
            prefix: Some("spread".into()),
            ..EngineOptions::default()
        },
        ..FanoutConfig::default()
    };
    let report = loadgen::fanout::run(&target, &cfg).expect("fanout runs");
    assert_eq!(report.addrs, [first.addr, second.addr], "{report}");
    assert_eq!(report.ready, 3, "{report}");
    assert_eq!(report.sent, 3 * 50, "{report}");
    assert_all_delivered(&report);
    for (g, home, other) in [
        (0, &first, &second),
        (1, &second, &first),
        (2, &first, &second),
    ] {
        let name = format!("spread_{g}");
        let mut c = home.connect();
        c.send(&format!("REGISTER {name} pw"));
        c.expect_prefix("ERR ");
        let mut c = other.connect();
        c.send(&format!("REGISTER {name} pw"));
        c.expect(&format!("OK REGISTER {name}"));
    }

    let both = format!("{},{}", first.addr, second.addr);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &both])
        .arg("--ca")
        .arg(&support::pki().ca)
        .args(["-q", "--json", "fanout", "--rooms", "2", "--members", "1"])
        .args(["--senders", "1", "--messages", "20"])
        .args(["--duration", "0.3", "--warmup", "0.1"])
        .output()
        .expect("run the load generator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let addrs = [first.addr.to_string(), second.addr.to_string()];
    assert_eq!(report["addrs"], serde_json::json!(addrs), "{report}");
    assert_eq!(report["ready"], 2, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
}

/// 50 idle clients held for a second are all still there.
#[test]
fn capacity_holds_every_connection() {
    let server = support::TestServer::start();
    let cfg = CapacityConfig {
        connections: 50,
        rooms: 5,
        hold: Duration::from_secs(1),
        ..CapacityConfig::default()
    };
    let report = loadgen::capacity::run(&target(&server), &cfg).expect("capacity runs");
    assert_eq!(report.ready, 50, "{report}");
    assert_eq!(report.alive, 50, "{report}");
    assert_eq!((report.dropped, report.errors), (0, 0), "{report}");
}

/// The login loop completes cycles without errors.
#[test]
fn logins_complete_without_errors() {
    // Each cycle registers a new account: far more than the server-wide
    // registration limit allows by default.
    let server = support::TestServer::start_with(|c| {
        c.register_burst = 1_000_000;
        c.register_rate = 1_000_000;
    });
    let cfg = LoginsConfig {
        connectors: 8,
        duration: Duration::from_secs(1),
        ..LoginsConfig::default()
    };
    let report = loadgen::logins::run(&target(&server), &cfg).expect("logins run");
    assert!(report.completed > 0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(
        report.latency.count,
        report.completed.max(report.latency.count)
    );
}

/// The binary, with nobody reading its output (piped into `head`, say):
/// the run finishes with status 0, without a panic.
#[test]
fn the_binary_does_not_mind_a_closed_stdout() {
    let server = support::TestServer::start();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--addr")
        .arg(server.addr.to_string())
        .arg("--ca")
        .arg(&support::pki().ca)
        .args([
            "-q",
            "capacity",
            "--connections",
            "2",
            "--rooms",
            "1",
            "--hold",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the load generator");
    // Close the reading end of its stdout before it prints anything.
    drop(child.stdout.take());
    let out = support::wait_for_exit(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `loadgen --help` opens with what it is, not with the package's
/// description.
#[test]
fn help_opens_with_its_own_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        help.lines().next(),
        Some("Load generator for the chat server (protocol v1 over TLS)")
    );
}

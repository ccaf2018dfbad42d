//! The load generator's `register-flood` scenario against the real server,
//! at a small scale. Its own test binary, so that nothing else runs in the
//! process whose memory it reads (the server runs in this process). Linux only: it reads `/proc`.

#![cfg(target_os = "linux")]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use loadgen::{EngineOptions, RegisterFloodConfig, Target};
use support::TestServer;

/// The measuring tool itself (`loadgen register-flood`), at a small
/// scale: every legitimate login is timed, the attackers' registrations
/// are counted, nothing fails, and the server's memory is read (here the
/// server is this process).
#[test]
fn the_register_flood_scenario_runs_end_to_end() {
    let server = TestServer::start_with(|c| {
        c.register_burst = u32::MAX;
        c.register_rate = u32::MAX;
        c.line_burst = u32::MAX;
        c.line_rate = u32::MAX;
    });
    let target = Target::new(server.addr, &support::pki().ca, "localhost").expect("target");
    let cfg = RegisterFloodConfig {
        attackers: 8,
        logins: 3,
        warmup: Duration::from_millis(200),
        gap: Duration::ZERO,
        settle: Duration::ZERO,
        engine: EngineOptions {
            server_pids: vec![std::process::id()],
            ..EngineOptions::default()
        },
    };
    let report = loadgen::flood::run(&target, &cfg).expect("register-flood runs");
    assert_eq!(report.login.count, 3, "{report}");
    assert!(report.login.p50_ms > 0.0, "{report}");
    assert!(report.login.p50_ms <= report.login.max_ms, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.registered > 0, "{report}");
    assert!(report.server_before.is_some(), "{report}");
    let after = report.server_after.expect("the server's memory after");
    assert!(
        after.peak_rss_kib.is_some_and(|peak| peak >= after.rss_kib),
        "{report}"
    );
}

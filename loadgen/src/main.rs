//! `loadgen`: load the chat server over TLS and report what it delivered.
//!
//! ```text
//! loadgen fanout   --rooms 1 --members 100 --senders 10 --duration 10
//! loadgen capacity --connections 10000 --hold 10 --server-pid $(pidof server)
//! loadgen logins   --connectors 256 --duration 10
//! loadgen sweep    --sizes 10,50,100,250,500,1000 --svg docs/img/sweep.svg
//! loadgen sweep-rate --rates 1,2,5,10,50 --svg docs/img/rate-sweep.svg --server-pid $(pidof server)
//! loadgen register-flood --attackers 200 --logins 30 --server-pid $(pidof server)
//! loadgen --addr 127.0.0.1:12345,127.0.0.1:12346 --server-pid 4242,4243 fanout --rooms 10
//! ```
//!
//! `--addr` may name several servers (nodes sharing their rooms, see
//! `docs/SCALING.md`), comma-separated or repeated: client `i` of a run
//! connects to address `i % n`, and the report lists them (`addrs`). Then
//! `--server-pid` takes one pid per node, and the server's CPU, RSS and
//! threads are their sums.
//!
//! The server's per-connection message rate limit must be raised for
//! anything flat out (`server --msg-rate 1000000 --msg-burst 1000000`):
//! see `docs/BENCHMARKS.md`. Everything else is in this package's library
//! (`loadgen`); this file parses options and prints the report.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use chat::{Error, Result};
use loadgen::fanout::{Ack, Shape, Transport};
use loadgen::{
    CapacityConfig, EngineOptions, FanoutConfig, LoginsConfig, RegisterFloodConfig, SetupOptions,
    Target,
};

/// Load generator for the chat server (protocol v1 over TLS).
//
// No `about` in `#[command]`: that would print the package's description
// at the top of `--help`; without it clap uses this item's doc comment.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Options {
    /// Options every scenario takes.
    #[command(flatten)]
    common: Common,
    /// The scenario.
    #[command(subcommand)]
    scenario: Scenario,
}

/// Where the server is and how the run reports.
#[derive(Debug, Args)]
struct Common {
    /// Server host name or address.
    #[arg(long, global = true, default_value = "localhost")]
    host: String,
    /// Server port.
    #[arg(long, global = true, default_value_t = 12345)]
    port: u16,
    /// Server address as HOST:PORT (overrides --host and --port). Several
    /// (comma-separated or repeated) spread the clients round robin: client
    /// i connects to address i mod n.
    #[arg(long, global = true, value_delimiter = ',', value_name = "HOST:PORT")]
    addr: Vec<String>,
    /// The CA (or self-signed certificate) to trust, PEM.
    #[arg(long, global = true, default_value = "cert.pem")]
    ca: PathBuf,
    /// The name the server's certificate must carry.
    #[arg(long, global = true, default_value = "localhost")]
    server_name: String,
    /// Worker threads (each an event loop over many connections).
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    /// The server's process id: report its RSS, threads and CPU from /proc.
    /// Several (comma-separated or repeated, one per node) are added up.
    #[arg(long, global = true, value_delimiter = ',', value_name = "PID")]
    server_pid: Vec<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long, global = true)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
}

impl Common {
    /// The library's engine options: threads, progress, server pids.
    fn engine(&self) -> EngineOptions {
        EngineOptions {
            threads: self.threads,
            progress: !self.quiet,
            server_pids: self.server_pid.clone(),
            ..EngineOptions::default()
        }
    }
}

/// Setup options of the scenarios that connect a batch at a time.
#[derive(Debug, Args)]
struct SetupArgs {
    /// Connections per thread set up at once.
    #[arg(long, default_value_t = 64)]
    connect_batch: usize,
}

impl SetupArgs {
    /// `defaults` (the scenario's) with these options applied.
    fn apply(&self, defaults: SetupOptions) -> SetupOptions {
        SetupOptions {
            connect_batch: self.connect_batch,
            ..defaults
        }
    }
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// Rooms of members, some sending; deliveries/s, losses, latency.
    Fanout(FanoutArgs),
    /// Thousands of idle logged-in clients; alive count, server RSS per connection.
    Capacity(CapacityArgs),
    /// connect + TLS + REGISTER + LOGIN + QUIT in a loop; cycles/s.
    Logins(LoginsArgs),
    /// Fanout in one room of each size; JSON and an SVG chart.
    Sweep(SweepArgs),
    /// Fanout in the same rooms at each send rate; server CPU per delivery
    /// and p99 latency, JSON and an SVG chart.
    SweepRate(SweepRateArgs),
    /// Connections flooding REGISTER while one client logs in again and
    /// again; that LOGIN's latency, the server's RSS.
    RegisterFlood(RegisterFloodArgs),
    /// Redraw a sweep's (or with --rate a rate sweep's) SVG chart from the
    /// JSON it saved with --out.
    Chart(ChartArgs),
}

/// Options of `chart`.
#[derive(Debug, Args)]
struct ChartArgs {
    /// The sweep's JSON (written by `sweep --out` or `sweep-rate --out`).
    #[arg(long)]
    from: PathBuf,
    /// The JSON is a rate sweep's (`sweep-rate --out`).
    #[arg(long)]
    rate: bool,
    /// The chart to write (SVG).
    #[arg(long)]
    svg: PathBuf,
    /// The chart's title (a default for each kind of sweep).
    #[arg(long)]
    title: Option<String>,
}

/// Options of `fanout` (and `sweep`).
#[derive(Debug, Args)]
struct FanoutArgs {
    /// Rooms [default: 1; sweep-rate: 10].
    #[arg(long)]
    rooms: Option<usize>,
    /// Members per room, senders included [default: 100; sweep-rate: 20].
    #[arg(long)]
    members: Option<usize>,
    /// Senders per room [default: 10; sweep-rate: 20].
    #[arg(long)]
    senders: Option<usize>,
    /// Messages per second per sender; 0 = flat out (window-limited).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Messages in flight per sender at most.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of sending before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Longest wait, in seconds, for messages in flight at the end.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Stop each sender after this many messages.
    #[arg(long)]
    messages: Option<u64>,
    /// Members per room that stop reading after joining (slow consumers).
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Write each sender's lines together, several TLS records per write,
    /// instead of one record and one write per line.
    #[arg(long)]
    coalesce: bool,
    /// What frees a place in a sender's window: the next member's receipt
    /// of the message, or the sender's own echo.
    #[arg(long, value_enum, default_value_t = AckArg::Next)]
    ack: AckArg,
    /// Protocol v1 as lines over TLS, or over WebSocket (ALPN http/1.1,
    /// GET /ws, one text frame per line), as a browser speaks it.
    #[arg(long, value_enum, default_value_t = TransportArg::Line)]
    transport: TransportArg,
    /// Connection batches.
    #[command(flatten)]
    setup: SetupArgs,
}

/// `--ack`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AckArg {
    /// Member (k + 1) % members receiving sender k's message.
    Next,
    /// The sender's own echo.
    Own,
}

/// The room shape `fanout` and `sweep` run when not told: one room of 100,
/// ten of them sending.
const FANOUT_ROOMS: (usize, usize, usize) = (1, 100, 10);

/// The room shape `sweep-rate` runs when not told: a class, ten rooms of
/// 20 members, every member sending.
const RATE_ROOMS: (usize, usize, usize) = (10, 20, 20);

/// `--transport`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    /// Lines over TLS, as the terminal client.
    Line,
    /// WebSocket over TLS, as the web client.
    Ws,
}

impl FanoutArgs {
    /// The library's config; `rooms` gives the rooms, members and senders
    /// not set by an option.
    fn config(&self, common: &Common, rooms: (usize, usize, usize)) -> FanoutConfig {
        FanoutConfig {
            rooms: self.rooms.unwrap_or(rooms.0),
            members: self.members.unwrap_or(rooms.1),
            senders: self.senders.unwrap_or(rooms.2),
            rate: self.rate,
            window: self.window,
            duration: Duration::from_secs_f64(self.duration),
            warmup: Duration::from_secs_f64(self.warmup),
            drain: Duration::from_secs_f64(self.drain),
            size: self.size,
            messages: self.messages,
            stalled: self.stalled,
            shape: if self.coalesce {
                Shape::Coalesce
            } else {
                Shape::PerLine
            },
            ack: match self.ack {
                AckArg::Next => Ack::Next,
                AckArg::Own => Ack::Own,
            },
            transport: match self.transport {
                TransportArg::Line => Transport::Line,
                TransportArg::Ws => Transport::Ws,
            },
            engine: common.engine(),
            setup: self.setup.apply(FanoutConfig::default().setup),
        }
    }
}

/// Options of `capacity`.
#[derive(Debug, Args)]
struct CapacityArgs {
    /// Clients to connect, log in and hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Rooms to spread them over.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Seconds to hold them idle.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    /// Connection batches.
    #[command(flatten)]
    setup: SetupArgs,
}

impl CapacityArgs {
    /// The library's config.
    fn config(&self, common: &Common) -> CapacityConfig {
        let defaults = CapacityConfig::default();
        CapacityConfig {
            connections: self.connections,
            rooms: self.rooms,
            hold: Duration::from_secs_f64(self.hold),
            engine: common.engine(),
            setup: self.setup.apply(defaults.setup.clone()),
            ..defaults
        }
    }
}

/// Options of `logins`.
#[derive(Debug, Args)]
struct LoginsArgs {
    /// Clients cycling at once.
    #[arg(long, default_value_t = 256)]
    connectors: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

impl LoginsArgs {
    /// The library's config.
    fn config(&self, common: &Common) -> LoginsConfig {
        LoginsConfig {
            connectors: self.connectors,
            duration: Duration::from_secs_f64(self.duration),
            engine: common.engine(),
        }
    }
}

/// Options of `register-flood`.
#[derive(Debug, Args)]
struct RegisterFloodArgs {
    /// Connections each sending REGISTER of a fresh name, back to back.
    #[arg(long, default_value_t = 200)]
    attackers: usize,
    /// Legitimate logins to time, one after the other.
    #[arg(long, default_value_t = 30)]
    logins: usize,
    /// Seconds of flooding before the first login.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds between two legitimate logins.
    #[arg(long, default_value_t = 0.2)]
    gap: f64,
    /// Seconds after the flood before the last look at the server's RSS.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
}

impl RegisterFloodArgs {
    /// The library's config.
    fn config(&self, common: &Common) -> RegisterFloodConfig {
        RegisterFloodConfig {
            attackers: self.attackers,
            logins: self.logins,
            warmup: Duration::from_secs_f64(self.warmup),
            gap: Duration::from_secs_f64(self.gap),
            settle: Duration::from_secs_f64(self.settle),
            engine: common.engine(),
        }
    }
}

/// Options of `sweep-rate`.
#[derive(Debug, Args)]
struct SweepRateArgs {
    /// Messages per second per sender to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5,10,50")]
    rates: Vec<f64>,
    /// Write the chart here (SVG).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write the sweep's JSON here (besides stdout with --json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The fanout options of each run (--rate is replaced by each rate).
    #[command(flatten)]
    fanout: FanoutArgs,
}

/// The default title of a rate sweep's chart.
fn rate_title(rooms: usize, members: usize, senders: usize, size: usize) -> String {
    format!("{rooms} rooms x {members} members, {senders} sending in each, {size} B messages")
}

/// Writes `report` as pretty JSON to `path`.
fn write_json<R: Serialize>(report: &R, path: &std::path::Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Config(format!("cannot write JSON: {e}")))?;
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Options of `sweep`.
#[derive(Debug, Args)]
struct SweepArgs {
    /// Room sizes to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,250,500,1000")]
    sizes: Vec<usize>,
    /// Write the chart here (SVG).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write the sweep's JSON here (besides stdout with --json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The fanout options of each run (--members is replaced by each size).
    #[command(flatten)]
    fanout: FanoutArgs,
}

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a report as a table or as JSON. A reader that went away (a
/// pipe into `head`, a closed terminal) is not an error: the run is done,
/// and there is nobody left to tell (`println!` would panic instead).
fn print<R: Serialize + std::fmt::Display>(report: &R, json: bool) -> Result<()> {
    use std::io::{ErrorKind, Write};
    let text = if json {
        let mut text = serde_json::to_string_pretty(report)
            .map_err(|e| Error::Config(format!("cannot write JSON: {e}")))?;
        text.push('\n');
        text
    } else {
        report.to_string()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Error::io("print the report", e)),
        _ => Ok(()),
    }
}

/// Resolves the target, runs the scenario, prints the report.
fn run(options: &Options) -> Result<()> {
    let common = &options.common;
    // 10,000 sockets need a higher open-file limit than the usual 1,024.
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // Every scenario but `chart` needs the server's address and CA.
    let target = || Target::spread(resolve(common)?, &common.ca, &common.server_name);
    match &options.scenario {
        Scenario::Chart(args) => {
            let json = std::fs::read_to_string(&args.from)
                .map_err(|e| Error::io(format!("read {}", args.from.display()), e))?;
            if args.rate {
                let points = loadgen::rate_sweep::points_from_json(&json)?;
                let title = args
                    .title
                    .clone()
                    .unwrap_or_else(|| "CPU per delivery against the send rate".to_owned());
                loadgen::rate_sweep::write_svg(&points, &args.svg, &title)
            } else {
                let points = loadgen::sweep::points_from_json(&json)?;
                let title = args.title.clone().unwrap_or_else(|| {
                    "One room, 10 senders flat out (window 32), 64 B messages".to_owned()
                });
                loadgen::sweep::write_svg(&points, &args.svg, &title)
            }
        }
        Scenario::Fanout(args) => {
            let report = loadgen::fanout::run(&target()?, &args.config(common, FANOUT_ROOMS))?;
            print(&report, common.json)
        }
        Scenario::Capacity(args) => {
            let report = loadgen::capacity::run(&target()?, &args.config(common))?;
            print(&report, common.json)
        }
        Scenario::Logins(args) => {
            let report = loadgen::logins::run(&target()?, &args.config(common))?;
            print(&report, common.json)
        }
        Scenario::RegisterFlood(args) => {
            let report = loadgen::flood::run(&target()?, &args.config(common))?;
            print(&report, common.json)
        }
        Scenario::Sweep(args) => {
            let base = args.fanout.config(common, FANOUT_ROOMS);
            let report = loadgen::sweep::run(&target()?, &base, &args.sizes)?;
            if let Some(path) = &args.out {
                write_json(&report, path)?;
            }
            if let Some(path) = &args.svg {
                let title = format!(
                    "One room, {} senders flat out (window {}), {} B messages",
                    base.senders, base.window, base.size
                );
                loadgen::sweep::write_svg(&report.points, path, &title)?;
            }
            print(&report, common.json)
        }
        Scenario::SweepRate(args) => {
            let base = args.fanout.config(common, RATE_ROOMS);
            let report = loadgen::rate_sweep::run(&target()?, &base, &args.rates)?;
            if let Some(path) = &args.out {
                write_json(&report, path)?;
            }
            if let Some(path) = &args.svg {
                let title = rate_title(base.rooms, base.members, base.senders, base.size);
                loadgen::rate_sweep::write_svg(&report.points, path, &title)?;
            }
            print(&report, common.json)
        }
    }
}

/// The servers' addresses from --addr (each in the order given), or the
/// one of --host and --port.
fn resolve(common: &Common) -> Result<Vec<SocketAddr>> {
    let specs = if common.addr.is_empty() {
        vec![format!("{}:{}", common.host, common.port)]
    } else {
        common.addr.clone()
    };
    specs.iter().map(|spec| resolve_one(spec)).collect()
}

/// The first address `spec` (`HOST:PORT`) resolves to.
fn resolve_one(spec: &str) -> Result<SocketAddr> {
    spec.to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve {spec}"), e))?
        .next()
        .ok_or_else(|| Error::Config(format!("{spec} resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address from its text.
    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    /// The options as the command line gives them.
    fn parse(args: &[&str]) -> Options {
        let mut argv = vec!["loadgen"];
        argv.extend_from_slice(args);
        Options::try_parse_from(argv).expect("valid options")
    }

    /// One --addr is one server, as before; a list, or the option
    /// repeated, is several in the order given; without it, --host and
    /// --port.
    #[test]
    fn addr_takes_a_list() {
        let one = parse(&["--addr", "127.0.0.1:7000", "capacity"]);
        assert_eq!(resolve(&one.common).unwrap(), [addr("127.0.0.1:7000")]);
        let expected: Vec<SocketAddr> = ["127.0.0.1:7001", "127.0.0.1:7002", "[::1]:7003"]
            .into_iter()
            .map(addr)
            .collect();
        let listed = parse(&[
            "--addr",
            "127.0.0.1:7001,127.0.0.1:7002,[::1]:7003",
            "fanout",
        ]);
        assert_eq!(resolve(&listed.common).unwrap(), expected);
        let repeated = parse(&[
            "fanout",
            "--addr",
            "127.0.0.1:7001",
            "--addr",
            "127.0.0.1:7002,[::1]:7003",
        ]);
        assert_eq!(resolve(&repeated.common).unwrap(), expected);
        let default = parse(&["--host", "127.0.0.1", "--port", "7004", "logins"]);
        assert_eq!(resolve(&default.common).unwrap(), [addr("127.0.0.1:7004")]);
        let bad = parse(&["--addr", "127.0.0.1:7001,nowhere", "fanout"]);
        assert!(resolve(&bad.common).is_err());
    }

    /// --server-pid takes one pid or several, all of which the engine
    /// samples; none means no sampling.
    #[test]
    fn server_pid_takes_a_list() {
        let none = parse(&["capacity"]);
        assert!(none.common.engine().server_pids.is_empty());
        let one = parse(&["--server-pid", "42", "capacity"]);
        assert_eq!(one.common.engine().server_pids, [42]);
        let three = parse(&["--server-pid", "42,43", "--server-pid", "44", "fanout"]);
        assert_eq!(three.common.engine().server_pids, [42, 43, 44]);
        // A global option given after the scenario replaces what came
        // before it (clap's rule for every global option), never mixes.
        let after = parse(&["--server-pid", "42,43", "fanout", "--server-pid", "44"]);
        assert_eq!(after.common.engine().server_pids, [44]);
        assert!(Options::try_parse_from(["loadgen", "--server-pid", "42,x", "fanout"]).is_err());
    }
}

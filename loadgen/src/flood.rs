//! The `register-flood` scenario: what a legitimate `LOGIN` costs while
//! many connections keep the server's password hashing busy.
//!
//! `attackers` connections each send `REGISTER` of a fresh name, and the
//! next one as soon as it is answered, for the whole run (a connection the
//! server closes is opened again). Each keeps one request waiting for the
//! server's hashing pool, which is the most one connection can have there.
//! Meanwhile one legitimate client, registered before the flood, logs in
//! `logins` times in a row, each on a new connection (connect, TLS,
//! `HELLO`, then `LOGIN` timed to its `OK LOGIN`, then `QUIT`). The report
//! has that login's latency (p50, p95, max), the registrations answered,
//! and with `--server-pid` the server's RSS before, during, at its peak
//! (`VmHWM`) and a few seconds after the flood.
//!
//! The server's registration limit (`--register-burst`, `--register-rate`)
//! would refuse most of the flood without hashing it: to measure the
//! hashing pool itself, run the server with that limit raised. Refusals
//! are counted apart from registrations.
//!
//! With several servers (`--addr A,B`), the attackers are spread over them
//! by their index and the legitimate client logs in through the first.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use serde::Serialize;

use super::accounting::Latency;
use super::conn::{Conn, Target};
use super::engine::{Closed, Session, Worker};
use super::options::EngineOptions;
use super::proc::ProcSample;
use super::progress::Progress;
use super::report::ErrorLog;
use super::script::PASSWORD;
use chat::error::{Error, Result};
use chat::protocol::ServerLine;

/// What to run.
#[derive(Debug, Clone)]
pub struct RegisterFloodConfig {
    /// Connections flooding `REGISTER`.
    pub attackers: usize,
    /// Legitimate logins to time, one after the other.
    pub logins: usize,
    /// Flooding before the first login, so that the server's queue is full.
    pub warmup: Duration,
    /// Pause between two legitimate logins.
    pub gap: Duration,
    /// Wait after the flood before the last look at the server's memory.
    pub settle: Duration,
    /// Threads (for the attackers), progress, the server's pid, the prefix
    /// of user names.
    pub engine: EngineOptions,
}

impl Default for RegisterFloodConfig {
    fn default() -> Self {
        RegisterFloodConfig {
            attackers: 200,
            logins: 30,
            warmup: Duration::from_secs(3),
            gap: Duration::from_millis(200),
            settle: Duration::from_secs(3),
            engine: EngineOptions::default(),
        }
    }
}

/// Longest wait for one reply of the legitimate client.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Flooding.
const RUN: u8 = 0;
/// Send nothing more; close each connection at its next reply.
const STOP: u8 = 1;
/// Close everything.
const DONE: u8 = 2;

/// What the attackers' threads publish.
#[derive(Debug, Default)]
struct Shared {
    /// [`RUN`], [`STOP`] or [`DONE`].
    phase: AtomicU8,
    /// `OK REGISTER` received.
    registered: AtomicU64,
    /// Other answers to `REGISTER` (`RATE_LIMITED`, …).
    refused: AtomicU64,
}

/// One attacking connection.
struct Attacker {
    /// Its slot (global index), part of every name it registers.
    g: usize,
    /// Names registered or tried so far.
    n: u64,
    /// True once this connection's `HELLO` arrived.
    greeted: bool,
}

/// Per-thread totals of the attackers.
struct Ctx {
    /// The phase, read at every reply.
    shared: Arc<Shared>,
    /// The name prefix.
    prefix: String,
    /// `OK REGISTER` received.
    registered: u64,
    /// Other final answers.
    refused: u64,
    /// What was published so far: (registered, refused).
    published: (u64, u64),
    /// Connections that failed, with the first few reasons.
    errors: ErrorLog,
}

impl Attacker {
    /// Sends the next `REGISTER`, or closes if the flood is over.
    fn next(&mut self, conn: &mut Conn, ctx: &Ctx) {
        if ctx.shared.phase.load(Ordering::Acquire) != RUN {
            conn.close();
            return;
        }
        self.n += 1;
        conn.send(&format!(
            "REGISTER {}_f{}_{} {PASSWORD}",
            ctx.prefix, self.g, self.n
        ));
    }
}

impl Session for Attacker {
    type Ctx = Ctx;

    fn on_line(&mut self, line: &str, conn: &mut Conn, ctx: &mut Ctx, _now_ns: u64) {
        let Some(parsed) = ServerLine::parse(line) else {
            ctx.errors.note(format!("not a protocol line: {line}"));
            conn.close();
            return;
        };
        if !self.greeted {
            self.greeted = matches!(parsed, ServerLine::Hello { .. });
            if self.greeted {
                self.next(conn, ctx);
            } else {
                ctx.errors.note(format!("instead of HELLO: {line}"));
                conn.close();
            }
            return;
        }
        match parsed {
            ServerLine::Ok { command, .. } if command == "REGISTER" => ctx.registered += 1,
            ServerLine::Bye { .. } => return, // the server closes; we reconnect
            other if other.is_final() => ctx.refused += 1,
            _ => return, // not an answer
        }
        self.next(conn, ctx);
    }

    fn client(&self) -> usize {
        self.g
    }

    fn on_closed(&mut self, why: Closed, ctx: &mut Ctx) {
        self.greeted = false;
        if let Closed::Error(e) = why {
            ctx.errors.note(e);
        }
    }
}

/// Latency of the legitimate logins, ms.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LoginLatency {
    /// Logins timed.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Everything a register-flood run found.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterFloodReport {
    /// Always `"register-flood"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Connections flooding `REGISTER`.
    pub attackers: usize,
    /// Seconds from the start of the flood to its end.
    pub duration_s: f64,
    /// `OK REGISTER` answers the attackers received.
    pub registered: u64,
    /// `registered / duration_s`.
    pub registered_per_s: f64,
    /// Other answers to their `REGISTER`s (e.g. `RATE_LIMITED`).
    pub refused: u64,
    /// The legitimate client's `LOGIN`, sent to answered.
    pub login: LoginLatency,
    /// Legitimate logins that failed, and attackers' connection errors.
    pub errors: u64,
    /// The first few failures.
    pub error_samples: Vec<String>,
    /// The server before the flood (with `--server-pid`).
    pub server_before: Option<ProcSample>,
    /// The server at the end of the flood.
    pub server_during: Option<ProcSample>,
    /// The server `settle` seconds after the flood ended.
    pub server_after: Option<ProcSample>,
}

/// Runs the register-flood scenario against `target`.
///
/// # Errors
///
/// [`Error::Config`] for an impossible configuration; [`Error::Io`],
/// [`Error::Tls`] or [`Error::Spawn`] when the load generator itself
/// cannot run, or the legitimate account cannot be registered.
pub fn run(target: &Target, cfg: &RegisterFloodConfig) -> Result<RegisterFloodReport> {
    if cfg.engine.threads == 0 || cfg.logins == 0 {
        return Err(Error::Config(
            "threads and logins must be at least 1".into(),
        ));
    }
    let prefix = cfg.engine.name_prefix();
    let user = format!("{prefix}_legit");
    // Before the flood: the account must exist, and its REGISTER must not
    // wait behind the attackers'.
    {
        let mut c = Legit::connect(target)?;
        c.command(&format!("REGISTER {user} {PASSWORD}"), "REGISTER")?;
        c.quit();
    }

    let server_before = cfg.engine.sample_server();
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..cfg.engine.threads {
        let (cfg, shared, target, prefix) =
            (cfg.clone(), shared.clone(), target.clone(), prefix.clone());
        handles.push(
            thread::Builder::new()
                .name(format!("loadgen-{w}"))
                .spawn(move || attackers(w, target, cfg, prefix, shared))
                .map_err(Error::Spawn)?,
        );
    }
    let mut progress = Progress::new("register-flood", cfg.engine.progress);
    let show = |progress: &mut Progress, what: &str| {
        progress.show(format_args!(
            "{what}: registered {}  refused {}",
            shared.registered.load(Ordering::Relaxed),
            shared.refused.load(Ordering::Relaxed)
        ));
    };
    while started.elapsed() < cfg.warmup {
        show(&mut progress, "warming up");
        thread::sleep(Duration::from_millis(50));
    }

    let mut latency = Latency::new();
    let mut errors = ErrorLog::default();
    for i in 0..cfg.logins {
        show(&mut progress, &format!("login {}/{}", i + 1, cfg.logins));
        match Legit::timed_login(target, &user) {
            Ok(ns) => latency.record(ns),
            Err(e) => errors.note(format!("legitimate login: {e}")),
        }
        thread::sleep(cfg.gap);
    }

    let server_during = cfg.engine.sample_server();
    let duration_s = started.elapsed().as_secs_f64();
    let registered = shared.registered.load(Ordering::Relaxed);
    shared.phase.store(STOP, Ordering::Release);
    // Each attacker closes at its next reply (at most one hash away).
    thread::sleep(Duration::from_millis(500));
    shared.phase.store(DONE, Ordering::Release);
    progress.finish();
    for handle in handles {
        let ctx = handle
            .join()
            .map_err(|_| Error::Config("a load-generator thread panicked".into()))??;
        errors.absorb(ctx.errors);
    }
    thread::sleep(cfg.settle);
    let server_after = cfg.engine.sample_server();

    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(RegisterFloodReport {
        scenario: "register-flood",
        addrs: target.addrs().to_vec(),
        attackers: cfg.attackers,
        duration_s,
        registered,
        registered_per_s: registered as f64 / duration_s,
        refused: shared.refused.load(Ordering::Relaxed),
        login: LoginLatency {
            count: latency.count(),
            p50_ms: ms(latency.percentile_ns(50.0)),
            p95_ms: ms(latency.percentile_ns(95.0)),
            max_ms: ms(latency.percentile_ns(100.0)),
        },
        errors: errors.count,
        error_samples: errors.samples,
        server_before,
        server_during,
        server_after,
    })
}

/// One attackers' thread: every `threads`-th attacker, reconnected
/// whenever its connection ends, until the flood is over.
fn attackers(
    w: usize,
    target: Target,
    cfg: RegisterFloodConfig,
    prefix: String,
    shared: Arc<Shared>,
) -> Result<Ctx> {
    let sessions: Vec<Attacker> = (w..cfg.attackers)
        .step_by(cfg.engine.threads)
        .map(|g| Attacker {
            g,
            n: 0,
            greeted: false,
        })
        .collect();
    let mut idle: Vec<usize> = (0..sessions.len()).collect();
    let ctx = Ctx {
        shared: shared.clone(),
        prefix,
        registered: 0,
        refused: 0,
        published: (0, 0),
        errors: ErrorLog::default(),
    };
    let mut worker = Worker::new(target, sessions, ctx)?;
    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase == DONE {
            break;
        }
        if phase == RUN {
            for i in idle.drain(..) {
                worker.open(i, None);
            }
        }
        worker.poll(Duration::from_millis(5))?;
        idle.extend(worker.take_closed());
        let (r, f) = (worker.ctx.registered, worker.ctx.refused);
        let (pr, pf) = worker.ctx.published;
        shared.registered.fetch_add(r - pr, Ordering::Relaxed);
        shared.refused.fetch_add(f - pf, Ordering::Relaxed);
        worker.ctx.published = (r, f);
    }
    let (_, ctx) = worker.finish_all();
    Ok(ctx)
}

/// The legitimate client: one blocking TLS connection, one command at a
/// time, as the terminal client does.
struct Legit {
    /// The TLS stream, behind a line reader.
    stream: BufReader<StreamOwned<ClientConnection, std::net::TcpStream>>,
}

impl Legit {
    /// Connects, completes the handshake and reads `HELLO`.
    fn connect(target: &Target) -> Result<Legit> {
        // Through the first server, with several.
        let socket = std::net::TcpStream::connect(target.addr(0))
            .map_err(|e| Error::io("connect to the server", e))?;
        socket
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| Error::io("set a read timeout", e))?;
        let _ = socket.set_nodelay(true);
        let tls = ClientConnection::new(target.tls.clone(), target.server_name.clone())
            .map_err(|e| Error::Tls(e.to_string()))?;
        let mut legit = Legit {
            stream: BufReader::new(StreamOwned::new(tls, socket)),
        };
        match legit.final_reply()? {
            ServerLine::Hello { .. } => Ok(legit),
            other => Err(Error::Config(format!("instead of HELLO: {other}"))),
        }
    }

    /// Sends `line` and waits for its final reply, which must be
    /// `OK <command>`.
    fn command(&mut self, line: &str, command: &str) -> Result<()> {
        self.send(line)?;
        match self.final_reply()? {
            ServerLine::Ok { command: c, .. } if c == command => Ok(()),
            other => Err(Error::Config(format!("{command} answered {other}"))),
        }
    }

    /// Sends one line.
    fn send(&mut self, line: &str) -> Result<()> {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| Error::io("send to the server", e))
    }

    /// The next final reply (`HELLO` counts), skipping events.
    fn final_reply(&mut self) -> Result<ServerLine> {
        loop {
            let mut line = String::new();
            let n = self
                .stream
                .read_line(&mut line)
                .map_err(|e| Error::io("read from the server", e))?;
            if n == 0 {
                return Err(Error::Config("the server closed the connection".into()));
            }
            let line = line.trim_end_matches('\n');
            let parsed = ServerLine::parse(line)
                .ok_or_else(|| Error::Config(format!("not a protocol line: {line}")))?;
            if parsed.is_final() || matches!(parsed, ServerLine::Hello { .. }) {
                return Ok(parsed);
            }
        }
    }

    /// `QUIT`, best effort: the measurement is over.
    fn quit(mut self) {
        let _ = self.send("QUIT");
        let _ = self.final_reply();
    }

    /// One legitimate login on a new connection: the time from sending
    /// `LOGIN` to reading `OK LOGIN`, in ns.
    fn timed_login(target: &Target, user: &str) -> Result<u64> {
        let mut c = Legit::connect(target)?;
        let sent = Instant::now();
        c.command(&format!("LOGIN {user} {PASSWORD}"), "LOGIN")?;
        let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
        c.quit();
        Ok(ns)
    }
}

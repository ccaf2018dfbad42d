//! The `logins` scenario: `connectors` clients, each in a loop of connect,
//! TLS handshake, `REGISTER` (a new name every time), `LOGIN`, `QUIT`,
//! waiting for each reply before the next command, as a person would.
//!
//! One cycle is timed from the TCP connect to the `BYE QUIT`; the report
//! has completed cycles per second and their latency. Every handshake is a
//! full one (session resumption is off in [`Target::new`]): each cycle is a
//! new client as far as the server can tell.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::accounting::{Latency, Percentiles};
use super::clock;
use super::conn::{Conn, Target};
use super::engine::{Closed, Session, Worker};
use super::options::EngineOptions;
use super::proc::ProcSample;
use super::progress::Progress;
use super::report::ErrorLog;
use super::script::{self, Script, Step};
use chat::error::{Error, Result};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoginsConfig {
    /// Clients cycling at once.
    pub connectors: usize,
    /// How long to run.
    pub duration: Duration,
    /// Threads, progress, the server's pid (its CPU time is reported), the
    /// prefix of user names (no rooms here).
    pub engine: EngineOptions,
}

impl Default for LoginsConfig {
    fn default() -> Self {
        LoginsConfig {
            connectors: 256,
            duration: Duration::from_secs(10),
            engine: EngineOptions::default(),
        }
    }
}

/// Cycling.
const RUN: u8 = 0;
/// Finish the cycles under way, start no new ones.
const STOP: u8 = 1;
/// Close everything.
const DONE: u8 = 2;

/// What the workers publish.
#[derive(Debug, Default)]
struct Shared {
    /// [`RUN`], [`STOP`] or [`DONE`].
    phase: AtomicU8,
    /// Cycles completed.
    completed: AtomicU64,
    /// Cycles that failed.
    errors: AtomicU64,
}

/// One connector.
struct Connector {
    /// Its slot (global index), part of every name it registers.
    g: usize,
    /// Cycles started.
    cycle: u64,
    /// The current cycle's script.
    script: Script,
    /// When the current cycle started, clock ns.
    started_ns: u64,
    /// True once the current cycle got its `BYE QUIT`.
    done: bool,
}

/// Per-worker totals.
struct Ctx {
    /// Cycle latency.
    latency: Latency,
    /// Cycles completed.
    completed: u64,
    /// Failed cycles, with the first few texts.
    errors: ErrorLog,
    /// What was published.
    published: (u64, u64),
    /// The name prefix.
    prefix: String,
}

impl Ctx {}

impl Connector {
    /// Starts a new cycle's script (the connection is opened by the worker).
    fn next_cycle(&mut self, prefix: &str) {
        self.cycle += 1;
        let user = format!("{prefix}_{}_{}", self.g, self.cycle);
        let steps = [Step::Register, Step::Login, Step::Quit];
        self.script = Script::new(&steps, user, String::new(), false);
        self.started_ns = clock::now_ns();
        self.done = false;
    }
}

impl Session for Connector {
    type Ctx = Ctx;

    fn on_line(&mut self, line: &str, conn: &mut Conn, ctx: &mut Ctx, now_ns: u64) {
        if self.done {
            return;
        }
        match self.script.on_line(line, conn) {
            script::Progress::Running => {}
            script::Progress::Done => {
                self.done = true;
                ctx.completed += 1;
                ctx.latency.record(now_ns.saturating_sub(self.started_ns));
                conn.close();
            }
            script::Progress::Failed(why) => {
                ctx.errors.note(format!("{}: {why}", self.script.user()));
                self.done = true;
                conn.close();
            }
        }
    }

    fn client(&self) -> usize {
        self.g
    }

    fn on_closed(&mut self, why: Closed, ctx: &mut Ctx) {
        if !self.done && why != Closed::ByUs {
            ctx.errors.note(format!("{}: {why:?}", self.script.user()));
            self.done = true;
        }
    }
}

/// Everything a logins run found.
#[derive(Debug, Clone, Serialize)]
pub struct LoginsReport {
    /// Always `"logins"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Clients cycling at once.
    pub connectors: usize,
    /// Load-generator threads.
    pub threads: usize,
    /// Seconds of cycling.
    pub duration_s: f64,
    /// Cycles completed (connect + TLS + REGISTER + LOGIN + QUIT).
    pub completed: u64,
    /// `completed / duration_s`.
    pub per_s: f64,
    /// Cycles that failed.
    pub errors: u64,
    /// The first few failures.
    pub error_samples: Vec<String>,
    /// Cycle latency.
    pub latency: Percentiles,
    /// The server before and after (with `--server-pid`).
    pub server: Option<(ProcSample, ProcSample)>,
    /// Server CPU milliseconds per completed cycle.
    pub server_cpu_ms_per_cycle: Option<f64>,
}

/// Runs the logins scenario against `target`.
///
/// # Errors
///
/// [`Error::Config`] for an impossible configuration; [`Error::Io`] or
/// [`Error::Spawn`] when the load generator itself cannot run.
pub fn run(target: &Target, cfg: &LoginsConfig) -> Result<LoginsReport> {
    if cfg.connectors == 0 || cfg.engine.threads == 0 {
        return Err(Error::Config(
            "connectors and threads must be at least 1".into(),
        ));
    }
    let prefix = cfg.engine.name_prefix();
    let shared = Arc::new(Shared::default());
    let before = cfg.engine.sample_server();
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..cfg.engine.threads {
        let (cfg, shared, target, prefix) =
            (cfg.clone(), shared.clone(), target.clone(), prefix.clone());
        handles.push(
            thread::Builder::new()
                .name(format!("loadgen-{w}"))
                .spawn(move || worker(w, target, cfg, prefix, shared))
                .map_err(Error::Spawn)?,
        );
    }
    let mut progress = Progress::new("logins", cfg.engine.progress);
    while started.elapsed() < cfg.duration {
        let done = shared.completed.load(Ordering::Relaxed);
        progress.show(format_args!(
            "completed {done} ({:.0}/s)  errors {}",
            done as f64 / started.elapsed().as_secs_f64(),
            shared.errors.load(Ordering::Relaxed)
        ));
        thread::sleep(Duration::from_millis(20));
    }
    // Only the cycles completed inside the duration count.
    let completed = shared.completed.load(Ordering::Relaxed);
    let duration_s = started.elapsed().as_secs_f64();
    let after = cfg.engine.sample_server();
    shared.phase.store(STOP, Ordering::Release);
    // Let the cycles under way end cleanly (not counted), so the server
    // does not log a storm of truncated connections.
    thread::sleep(Duration::from_millis(500));
    shared.phase.store(DONE, Ordering::Release);
    progress.finish();

    let mut latency = Latency::new();
    let mut errors = ErrorLog::default();
    for handle in handles {
        let ctx = handle
            .join()
            .map_err(|_| Error::Config("a load-generator thread panicked".into()))??;
        latency.merge(&ctx.latency);
        errors.absorb(ctx.errors);
    }
    let server = before.zip(after);
    Ok(LoginsReport {
        scenario: "logins",
        addrs: target.addrs().to_vec(),
        connectors: cfg.connectors,
        threads: cfg.engine.threads,
        duration_s,
        completed,
        per_s: completed as f64 / duration_s,
        errors: errors.count,
        error_samples: errors.samples,
        latency: latency.percentiles(),
        server,
        server_cpu_ms_per_cycle: server
            .map(|(b, a)| (a.cpu_s - b.cpu_s) * 1e3 / completed.max(1) as f64),
    })
}

/// One worker thread: every `threads`-th connector.
fn worker(
    w: usize,
    target: Target,
    cfg: LoginsConfig,
    prefix: String,
    shared: Arc<Shared>,
) -> Result<Ctx> {
    let sessions: Vec<Connector> = (w..cfg.connectors)
        .step_by(cfg.engine.threads)
        .map(|g| Connector {
            g,
            cycle: 0,
            script: Script::new(&[], String::new(), String::new(), false),
            started_ns: 0,
            done: true,
        })
        .collect();
    let n = sessions.len();
    let ctx = Ctx {
        latency: Latency::new(),
        completed: 0,
        errors: ErrorLog::default(),
        published: (0, 0),
        prefix,
    };
    let mut worker = Worker::new(target, sessions, ctx)?;
    let mut idle: Vec<usize> = (0..n).collect();
    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase == DONE {
            break;
        }
        if phase == RUN {
            // Every connector whose last cycle ended starts the next one.
            for i in idle.drain(..) {
                let prefix = worker.ctx.prefix.clone();
                worker.slots[i].session.next_cycle(&prefix);
                worker.open(i, None);
            }
        }
        worker.poll(Duration::from_millis(5))?;
        idle.extend(worker.take_closed());
        let (c, e) = (worker.ctx.completed, worker.ctx.errors.count);
        let (pc, pe) = worker.ctx.published;
        shared.completed.fetch_add(c - pc, Ordering::Relaxed);
        shared.errors.fetch_add(e - pe, Ordering::Relaxed);
        worker.ctx.published = (c, e);
    }
    let (_, ctx) = worker.finish_all();
    Ok(ctx)
}

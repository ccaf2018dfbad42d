//! The `capacity` scenario: many logged-in clients that just sit there.
//!
//! `connections` clients register, log in and join one of `rooms` rooms,
//! a batch at a time. Then they stay idle for `hold`; at the end each sends
//! `PING` and the ones that get their `PONG` are alive. With the server's
//! pid, the report has its RSS and thread count before the first connect
//! and with everyone connected, and the memory each connection costs:
//!
//! ```text
//! RSS per connection = (RSS after the hold − RSS before) / connections ready
//! ```
//!
//! Two worker threads hold 10,000 connections easily: an idle connection
//! costs the load generator a socket, a rustls state and a few buffers, and
//! no thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::conn::{Conn, Target};
use super::engine::{Closed, Session, Worker};
use super::options::{EngineOptions, SetupOptions};
use super::proc::ProcSample;
use super::progress::Progress;
use super::report::ErrorLog;
use super::script::{self, Script, Step};
use chat::error::{Error, Result};
use chat::protocol::ServerLine;

/// What to run.
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    /// Clients to connect.
    pub connections: usize,
    /// Rooms to spread them over.
    pub rooms: usize,
    /// How long they stay idle.
    pub hold: Duration,
    /// Longest wait for the `PONG`s at the end.
    pub check_timeout: Duration,
    /// Threads, progress, the server's pid (its RSS and threads are
    /// reported), the name prefix.
    pub engine: EngineOptions,
    /// Connection batches and the setup time limit.
    pub setup: SetupOptions,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            connections: 10_000,
            rooms: 100,
            hold: Duration::from_secs(10),
            check_timeout: Duration::from_secs(30),
            engine: EngineOptions::default(),
            // 10,000 clients take longer to set up than a fanout's rooms.
            setup: SetupOptions {
                setup_timeout: Duration::from_secs(300),
                ..SetupOptions::default()
            },
        }
    }
}

/// Setup, then hold, then check (the `PING`s), then done.
const SETUP: u8 = 0;
/// Idle.
const HOLD: u8 = 1;
/// Each client sends `PING` and waits for `PONG`.
const CHECK: u8 = 2;
/// Close everything.
const DONE: u8 = 3;

/// Counters the workers publish.
#[derive(Debug, Default)]
struct Shared {
    /// The phase: [`SETUP`], [`HOLD`], [`CHECK`] or [`DONE`].
    phase: AtomicU8,
    /// Clients in their room.
    ready: AtomicUsize,
    /// Clients whose setup failed.
    failed: AtomicUsize,
    /// Clients dropped after setup.
    dropped: AtomicUsize,
    /// `PONG`s received in the check.
    alive: AtomicUsize,
}

/// Where a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running its setup script.
    Setup,
    /// Idle in its room.
    Ready,
    /// Answered the final `PING`.
    Alive,
    /// Setup failed.
    Failed,
    /// Dropped after setup.
    Dropped,
}

/// One idle client.
struct Client {
    /// Its global index, part of its name.
    g: usize,
    /// Setup steps.
    script: Script,
    /// Where it is.
    state: State,
}

/// Per-worker counts (published as deltas) and error samples.
#[derive(Default)]
struct Ctx {
    /// Ready, failed, dropped, alive: this worker's totals.
    counts: [usize; 4],
    /// What was published already.
    published: [usize; 4],
    /// Errors, with the first few texts.
    errors: ErrorLog,
    /// `JOIN`s repeated after a `NO_SUCH_ROOM` (see `script`).
    join_retries: u64,
}

impl Ctx {
    /// Adds what changed to the shared counters.
    fn publish(&mut self, shared: &Shared) {
        let targets = [
            &shared.ready,
            &shared.failed,
            &shared.dropped,
            &shared.alive,
        ];
        for (i, t) in targets.iter().enumerate() {
            t.fetch_add(self.counts[i] - self.published[i], Ordering::Relaxed);
        }
        self.published = self.counts;
    }
}

/// Indexes into [`Ctx::counts`].
const READY: usize = 0;
/// See [`READY`].
const FAILED: usize = 1;
/// See [`READY`].
const DROPPED: usize = 2;
/// See [`READY`].
const ALIVE: usize = 3;

impl Session for Client {
    type Ctx = Ctx;

    fn on_line(&mut self, line: &str, conn: &mut Conn, ctx: &mut Ctx, _now: u64) {
        match self.state {
            State::Setup => match self.script.on_line(line, conn) {
                script::Progress::Running => {}
                script::Progress::Done => {
                    self.state = State::Ready;
                    ctx.counts[READY] += 1;
                    ctx.join_retries += u64::from(self.script.join_retries);
                }
                script::Progress::Failed(why) => {
                    ctx.errors
                        .note(format!("{}: setup: {why}", self.script.user()));
                    self.state = State::Failed;
                    ctx.counts[FAILED] += 1;
                    conn.close();
                }
            },
            State::Ready | State::Alive => match ServerLine::parse(line) {
                Some(ServerLine::Pong { .. }) if self.state == State::Ready => {
                    self.state = State::Alive;
                    ctx.counts[ALIVE] += 1;
                }
                Some(ServerLine::Bye { .. }) => {
                    ctx.errors.note(format!("{}: {line}", self.script.user()));
                    self.drop_it(ctx);
                }
                // Others joining (JOINED) and the like: an idle client
                // just reads them.
                _ => {}
            },
            State::Failed | State::Dropped => {}
        }
    }

    fn client(&self) -> usize {
        self.g
    }

    fn on_closed(&mut self, why: Closed, ctx: &mut Ctx) {
        if why == Closed::ByUs {
            return;
        }
        match self.state {
            State::Setup => {
                ctx.errors
                    .note(format!("{}: setup: {why:?}", self.script.user()));
                self.state = State::Failed;
                ctx.counts[FAILED] += 1;
            }
            State::Ready | State::Alive => {
                ctx.errors.note(format!("{}: {why:?}", self.script.user()));
                self.drop_it(ctx);
            }
            State::Failed | State::Dropped => {}
        }
    }
}

impl Client {
    /// The server ended a client that was set up. (One that already
    /// answered the final `PING` stays counted as alive: it was.)
    fn drop_it(&mut self, ctx: &mut Ctx) {
        self.state = State::Dropped;
        ctx.counts[DROPPED] += 1;
    }
}

/// Everything a capacity run found.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// Always `"capacity"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Clients asked for.
    pub connections: usize,
    /// Rooms.
    pub rooms: usize,
    /// Load-generator threads.
    pub threads: usize,
    /// Clients that logged in and joined.
    pub ready: usize,
    /// Clients whose setup failed.
    pub setup_failed: usize,
    /// Seconds to set everyone up.
    pub setup_s: f64,
    /// `JOIN`s repeated after a `NO_SUCH_ROOM` (see `script`).
    pub join_retries: u64,
    /// Seconds held idle.
    pub hold_s: f64,
    /// Clients dropped after setup.
    pub dropped: usize,
    /// Clients that answered `PING` at the end.
    pub alive: usize,
    /// Errors seen.
    pub errors: u64,
    /// The first few of them.
    pub error_samples: Vec<String>,
    /// The server before the first connect (with `--server-pid`).
    pub server_before: Option<ProcSample>,
    /// The server at the end of the hold.
    pub server_held: Option<ProcSample>,
    /// `(RSS held − RSS before) / ready`, KiB.
    pub rss_per_connection_kib: Option<f64>,
    /// `(threads held − threads before) / ready`.
    pub threads_per_connection: Option<f64>,
    /// The part of `rss_per_connection_kib` that is thread stacks: `(stack
    /// RSS held − stack RSS before) / ready`, KiB. Needs the right to read
    /// the server's threads' stack pointers (e.g. root).
    pub stacks_per_connection_kib: Option<f64>,
}

/// Runs the capacity scenario against `target`.
///
/// # Errors
///
/// [`Error::Config`] for an impossible configuration; [`Error::Io`] or
/// [`Error::Spawn`] when the load generator itself cannot run.
pub fn run(target: &Target, cfg: &CapacityConfig) -> Result<CapacityReport> {
    if cfg.connections == 0 || cfg.rooms == 0 || cfg.engine.threads == 0 {
        return Err(Error::Config(
            "connections, rooms and threads must be at least 1".into(),
        ));
    }
    let prefix = cfg.engine.name_prefix();
    let shared = Arc::new(Shared::default());
    shared.phase.store(SETUP, Ordering::Release);
    let server_before = cfg.engine.sample_server();
    let stacks_before = cfg.engine.server_stacks_kib();
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

    let n = cfg.connections;
    let mut progress = Progress::new("capacity", cfg.engine.progress);
    let show = |progress: &mut Progress, phase: &str| {
        progress.show(format_args!(
            "{phase:<5} ready {}/{n}  failed {}  dropped {}  alive {}",
            shared.ready.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
            shared.alive.load(Ordering::Relaxed),
        ));
    };
    let settled = || shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
    while settled() < n && started.elapsed() < cfg.setup.setup_timeout {
        show(&mut progress, "setup");
        thread::sleep(Duration::from_millis(20));
    }
    let setup_s = started.elapsed().as_secs_f64();

    shared.phase.store(HOLD, Ordering::Release);
    let hold_started = Instant::now();
    while hold_started.elapsed() < cfg.hold {
        show(&mut progress, "hold");
        thread::sleep(Duration::from_millis(20));
    }
    let hold_s = hold_started.elapsed().as_secs_f64();
    let server_held = cfg.engine.sample_server();
    let stacks_held = cfg.engine.server_stacks_kib();

    shared.phase.store(CHECK, Ordering::Release);
    let check_started = Instant::now();
    let ready = || shared.ready.load(Ordering::Relaxed);
    let answered = || shared.alive.load(Ordering::Relaxed) + shared.dropped.load(Ordering::Relaxed);
    while answered() < ready() && check_started.elapsed() < cfg.check_timeout {
        show(&mut progress, "check");
        thread::sleep(Duration::from_millis(10));
    }
    shared.phase.store(DONE, Ordering::Release);
    progress.finish();

    let mut errors = ErrorLog::default();
    let mut join_retries = 0;
    for handle in handles {
        let ctx = handle
            .join()
            .map_err(|_| Error::Config("a load-generator thread panicked".into()))??;
        join_retries += ctx.join_retries;
        errors.absorb(ctx.errors);
    }
    let ready = shared.ready.load(Ordering::Relaxed);
    let per = |f: fn(&ProcSample) -> f64| match (server_before, server_held) {
        (Some(b), Some(h)) if ready > 0 => Some((f(&h) - f(&b)) / ready as f64),
        _ => None,
    };
    Ok(CapacityReport {
        scenario: "capacity",
        addrs: target.addrs().to_vec(),
        connections: n,
        rooms: cfg.rooms,
        threads: cfg.engine.threads,
        ready,
        setup_failed: shared.failed.load(Ordering::Relaxed),
        setup_s,
        join_retries,
        hold_s,
        dropped: shared.dropped.load(Ordering::Relaxed),
        alive: shared.alive.load(Ordering::Relaxed),
        errors: errors.count,
        error_samples: errors.samples,
        server_before,
        server_held,
        rss_per_connection_kib: per(|s| s.rss_kib as f64),
        threads_per_connection: per(|s| s.threads as f64),
        stacks_per_connection_kib: match (stacks_before, stacks_held) {
            (Some(b), Some(h)) if ready > 0 => Some((h as f64 - b as f64) / ready as f64),
            _ => None,
        },
    })
}

/// One worker thread: every `threads`-th client.
fn worker(
    w: usize,
    target: Target,
    cfg: CapacityConfig,
    prefix: String,
    shared: Arc<Shared>,
) -> Result<Ctx> {
    let steps = [Step::Register, Step::Login, Step::Create, Step::Join];
    let sessions: Vec<Client> = (w..cfg.connections)
        .step_by(cfg.engine.threads)
        .map(|g| Client {
            g,
            script: Script::new(
                &steps,
                format!("{prefix}_{g}"),
                format!("{prefix}_r{}", g % cfg.rooms),
                true,
            ),
            state: State::Setup,
        })
        .collect();
    let n = sessions.len();
    let mut worker = Worker::new(target, sessions, Ctx::default())?;
    let mut opened = 0;
    let mut pinged = false;
    loop {
        let phase = shared.phase.load(Ordering::Acquire);
        if phase == DONE {
            break;
        }
        let settled = worker.ctx.counts[READY] + worker.ctx.counts[FAILED];
        while opened < n && opened - settled.min(opened) < cfg.setup.connect_batch {
            worker.open(opened, None);
            opened += 1;
        }
        if phase == CHECK && !pinged {
            for i in 0..n {
                if worker.slots[i].session.state == State::Ready {
                    worker.with(i, |_, conn, _| conn.send("PING"));
                }
            }
            pinged = true;
        }
        // Idle connections make no events; the timeout only bounds how
        // late a phase change is noticed.
        worker.poll(Duration::from_millis(10))?;
        worker.take_closed();
        worker.ctx.publish(&shared);
    }
    let (_, mut ctx) = worker.finish_all();
    ctx.publish(&shared);
    Ok(ctx)
}

//! The `fanout` scenario: rooms full of members, some of them sending, and
//! every delivery checked.
//!
//! `rooms × members` connections register, log in and join their room. When
//! every one of them is in (a barrier on an atomic counter), the senders
//! start: each at `rate` messages a second, or flat out with at most
//! `window` messages in flight.
//!
//! # The shape of the load
//!
//! Two choices decide what the server sees from a sender, and both default
//! to what a room of real clients produces:
//!
//! - [`Shape`]: with [`Shape::PerLine`] every line leaves as its own TLS
//!   record in its own `write` (one TCP segment with `TCP_NODELAY`), and a
//!   sender whose socket is full holds its next line until the socket has
//!   room, as a blocking client would. [`Shape::Coalesce`] queues every line
//!   a sender may send in one event and writes them together, many records
//!   per `write`: fewer system calls on both sides, a kinder load.
//! - [`Ack`]: what frees a place in a flat-out sender's window. With
//!   [`Ack::Next`] it is member `(k + 1) % members` of the room receiving
//!   sender `k`'s message: the sender waits for the server to deliver to
//!   somebody else, not for its own echo, which the server may well write
//!   before the other members' copies. With [`Ack::Own`] it is the sender's
//!   own echo.
//!
//! The next member usually lives on another worker thread. Each sender has
//! an [`AckCell`] in [`Shared`]: the next member adds to its count, and a
//! sender that found its window full parks by setting the cell's flag; the
//! member that frees it clears the flag and wakes the sender's worker with
//! its `mio::Waker`. Setting the flag and then reading the count again on
//! one side, adding to the count and then clearing the flag on the other
//! (all sequentially consistent), means that a wake-up cannot be lost: at
//! least one of the two sees the other's write.
//!
//! Latency is measured at every member's receipt whatever the choices.
//!
//! Timeline, driven by the main thread through an atomic phase:
//!
//! ```text
//!  Setup ──all joined──▶ Warmup ──▶ Measure (duration) ──▶ Drain ──▶ Done
//!                        └─ senders send ──────────────┘    wait for in-flight
//! ```
//!
//! Deliveries per second count the `MSG` lines *received* inside the measure
//! window; latency percentiles use the messages *sent* inside it. The window
//! is fixed before it starts (its start and end are published while the
//! senders warm up), so each worker classifies every receipt by its own
//! time stamp, and the server's CPU time is read at those same two
//! instants: CPU per delivery divides the CPU of exactly that window by
//! the deliveries received in it. (The kernel reports CPU time in ticks of
//! 10 ms: a run should use some seconds of server CPU, e.g. 10 s at 2 msg/s
//! per member in rooms of 20.) Losses
//! are counted over the whole run after the drain: for every (sender,
//! member) pair, what the server accepted from the sender minus what the
//! member received ([`SeqTracker`]).
//!
//! A "stalled" member (`stalled > 0`, for tests and for the curious) joins
//! and then stops reading until the drain, with a small socket buffer: the
//! server's outbox for it fills and the server drops it with
//! `BYE SLOW_CONSUMER`. The report shows it as dropped, and what it missed
//! as lost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use mio::Waker;
use serde::Serialize;

use super::accounting::{Latency, MsgLine, Percentiles, Seen, SeqTracker, Stamp};
use super::clock;
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
pub struct FanoutConfig {
    /// Number of rooms.
    pub rooms: usize,
    /// Members per room (senders included).
    pub members: usize,
    /// Senders per room (the first members of each room).
    pub senders: usize,
    /// Messages per second per sender; 0 means flat out (window-limited).
    pub rate: f64,
    /// Most messages a sender has in flight: sent, and not yet freed as
    /// [`FanoutConfig::ack`] says (nor refused).
    pub window: usize,
    /// Length of the measure window.
    pub duration: Duration,
    /// Sending before the measure window starts (not measured).
    pub warmup: Duration,
    /// Longest wait after sending stops for messages still in flight.
    pub drain: Duration,
    /// Bytes of message text (sequence number, time stamp and padding).
    pub size: usize,
    /// Stop each sender after this many messages (for tests).
    pub messages: Option<u64>,
    /// Members per room that stop reading after joining, until the drain.
    pub stalled: usize,
    /// How a sender's lines leave: one `write` each, or coalesced.
    pub shape: Shape,
    /// What frees a place in a sender's window.
    pub ack: Ack,
    /// Plain lines over TLS, or WebSocket text frames over TLS.
    pub transport: Transport,
    /// Threads, progress, the server's pid (its RSS, threads and CPU are
    /// reported), the name prefix.
    pub engine: EngineOptions,
    /// Connection batches and the longest wait for every member to join.
    pub setup: SetupOptions,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            rooms: 1,
            members: 100,
            senders: 10,
            rate: 0.0,
            window: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            drain: Duration::from_secs(10),
            size: 64,
            messages: None,
            stalled: 0,
            shape: Shape::PerLine,
            ack: Ack::Next,
            transport: Transport::Line,
            engine: EngineOptions::default(),
            setup: SetupOptions::default(),
        }
    }
}

/// How a sender's lines leave its socket (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// One TLS record and one `write` per line; the next line waits while
    /// the socket is full.
    PerLine,
    /// Every line a sender may send in one event, written together.
    Coalesce,
}

/// What frees a place in a sender's window (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ack {
    /// The next member of the room (`(k + 1) % members`, skipping stalled
    /// members) receiving the message. If the server drops that member,
    /// its sender's window never frees again and the sender stops (the
    /// report shows the drop): runs meant to drop members that are not
    /// the stalled ones are clearer with [`Ack::Own`].
    Next,
    /// The sender's own echo.
    Own,
}

/// How the members reach the server (see [`Target::websocket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Protocol v1 lines over TLS, as the terminal client speaks it.
    Line,
    /// Protocol v1 over WebSocket over TLS, as the web client speaks it:
    /// one text frame per line.
    Ws,
}

/// One sender's receipts by its next member, shared between the worker
/// that receives them and the worker that sends. Alone on its cache line:
/// two senders' counters must not make their workers fight over one line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct AckCell {
    /// Messages of this sender its next member received.
    received: AtomicU64,
    /// Set by the sender when its window is full; whoever clears it wakes
    /// the sender's worker.
    parked: AtomicBool,
}

/// The phases, as stored in [`Shared::phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Phase {
    /// Connecting, logging in, joining.
    Setup = 0,
    /// Sending, not measured.
    Warmup = 1,
    /// Sending, measured.
    Measure = 2,
    /// Not sending; waiting for what is in flight.
    Drain = 3,
    /// Close everything and report.
    Done = 4,
}

impl Phase {
    /// The phase stored as `v`.
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Setup,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            3 => Phase::Drain,
            _ => Phase::Done,
        }
    }
}

/// What the main thread and the workers share: the phase and counters. The
/// workers add to the counters once per loop turn, not per message, so the
/// cache line they live on is not fought over millions of times a second.
#[derive(Debug, Default)]
struct Shared {
    /// The current [`Phase`].
    phase: AtomicU8,
    /// Start of the measure window, clock ns.
    measure_start: AtomicU64,
    /// End of the measure window, clock ns (`u64::MAX` until known).
    measure_end: AtomicU64,
    /// Members whose setup finished.
    ready: AtomicUsize,
    /// Members whose setup failed.
    failed: AtomicUsize,
    /// `SAY`s sent.
    sent: AtomicU64,
    /// `SAY`s refused by the server (`ERR`, e.g. `RATE_LIMITED`).
    rejected: AtomicU64,
    /// Distinct messages received, all members.
    received: AtomicU64,
    /// Messages received inside the measure window.
    in_window: AtomicU64,
    /// Members dropped by the server after joining.
    dropped: AtomicUsize,
    /// Workers that have seen the Drain phase and published their last
    /// sends: only then are the `sent` totals final.
    drained: AtomicUsize,
    /// One per sender (room `r`, sender `k` at `r * senders + k`), for
    /// [`Ack::Next`].
    acks: Vec<AckCell>,
    /// One per worker, set by the worker before it opens any connection.
    wakers: Vec<OnceLock<Waker>>,
}

/// Fixed facts every worker needs.
#[derive(Debug)]
struct Plan {
    /// The run's configuration.
    cfg: FanoutConfig,
    /// Prefix of names: users are `<prefix>_<g>`, rooms `<prefix>_r<r>`.
    prefix: String,
}

impl Plan {
    /// The index in [`Shared::acks`] of the sender with global index `g`.
    fn ack_slot(&self, g: usize) -> usize {
        let cfg = &self.cfg;
        g / cfg.members * cfg.senders + g % cfg.members
    }

    /// The position in its room of the member whose receipts free the
    /// window of the sender at position `k`: the next one that reads (the
    /// stalled members are the last ones), or the sender itself in a room
    /// of one.
    fn acker_of(&self, k: usize) -> usize {
        let readers = self.cfg.members - self.cfg.stalled;
        if k + 1 < readers {
            k + 1
        } else {
            0
        }
    }

    /// The global index of a user name of this run, if it is one.
    fn index_of(&self, user: &str) -> Option<usize> {
        user.strip_prefix(self.prefix.as_str())?
            .strip_prefix('_')?
            .parse()
            .ok()
    }
}

/// Where a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Connecting or running its setup script.
    Setup,
    /// In its room.
    Ready,
    /// Setup failed: the line or error.
    Failed(String),
    /// Dropped after joining: the `BYE` line, or how the connection ended.
    Dropped(String),
}

/// A sender's own counts.
#[derive(Debug, Clone, Default)]
struct Sender {
    /// `SAY`s sent (the last sequence number used).
    sent: u64,
    /// Own messages echoed back.
    echoed: u64,
    /// `SAY`s refused with an `ERR`.
    rejected: u64,
    /// When message 1 was due (rate mode).
    start_ns: Option<u64>,
    /// The most messages it ever had in flight, counted as its window is.
    max_in_flight: u64,
    /// The connection's write count when it first sent.
    writes_base: Option<u64>,
    /// Socket `write`s since it first sent, as of its last send.
    writes: u64,
}

/// One member's session.
#[derive(Debug)]
struct Member {
    /// Global index: room `g / members`, position `g % members`.
    g: usize,
    /// Setup steps.
    script: Script,
    /// Where it is.
    state: State,
    /// One tracker per sender of the room.
    trackers: Vec<SeqTracker>,
    /// Present if this member sends.
    sender: Option<Sender>,
    /// True while it must not read (a stalled member before the drain).
    stalled: bool,
}

/// Per-worker state.
struct Ctx {
    /// The run's facts.
    plan: Arc<Plan>,
    /// The counters, the senders' ack cells and the workers' wakers.
    shared: Arc<Shared>,
    /// The phase, read once per loop turn.
    phase: Phase,
    /// The measure window, read once per loop turn.
    window: (u64, u64),
    /// Latency of messages sent in the window.
    latency: Latency,
    /// Totals of this worker, published to [`Shared`] as deltas.
    counts: Counts,
    /// What was published already.
    published: Counts,
    /// Unexpected lines or errors, with the first few texts.
    errors: ErrorLog,
    /// Scratch for building a `SAY` line.
    text: String,
}

/// Counters a worker keeps and publishes.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Members ready.
    ready: usize,
    /// Members failed.
    failed: usize,
    /// Members dropped.
    dropped: usize,
    /// `SAY`s sent.
    sent: u64,
    /// `SAY`s refused.
    rejected: u64,
    /// Distinct messages received.
    received: u64,
    /// Received in the window.
    in_window: u64,
}

impl Ctx {
    /// Adds what changed since the last call to the shared counters.
    fn publish(&mut self, shared: &Shared) {
        let (c, p) = (self.counts, self.published);
        shared.ready.fetch_add(c.ready - p.ready, Ordering::Relaxed);
        shared
            .failed
            .fetch_add(c.failed - p.failed, Ordering::Relaxed);
        shared
            .dropped
            .fetch_add(c.dropped - p.dropped, Ordering::Relaxed);
        shared.sent.fetch_add(c.sent - p.sent, Ordering::Relaxed);
        shared
            .rejected
            .fetch_add(c.rejected - p.rejected, Ordering::Relaxed);
        shared
            .received
            .fetch_add(c.received - p.received, Ordering::Relaxed);
        shared
            .in_window
            .fetch_add(c.in_window - p.in_window, Ordering::Relaxed);
        self.published = c;
    }
}

impl Member {
    /// Sends what the rate or the window allows now.
    fn pump(&mut self, conn: &mut Conn, ctx: &mut Ctx) {
        if !matches!(ctx.phase, Phase::Warmup | Phase::Measure) || self.state != State::Ready {
            return;
        }
        let Some(s) = self.sender.as_mut() else {
            return;
        };
        let plan = &ctx.plan;
        let cfg = &plan.cfg;
        let limit = cfg.messages.unwrap_or(u64::MAX);
        let window = cfg.window as u64;
        let cell = &ctx.shared.acks[plan.ack_slot(self.g)];
        let acked = |s: &Sender| match cfg.ack {
            Ack::Own => s.echoed,
            Ack::Next => cell.received.load(Ordering::SeqCst),
        };
        loop {
            if s.sent >= limit {
                return;
            }
            if s.sent - acked(s) - s.rejected >= window {
                if cfg.ack == Ack::Own {
                    // Its own echo will come as an event on this socket.
                    return;
                }
                // Park, then look again: a receipt that came in between
                // either is seen now or finds the flag and wakes us.
                cell.parked.store(true, Ordering::SeqCst);
                if s.sent - acked(s) - s.rejected >= window {
                    return;
                }
                cell.parked.store(false, Ordering::SeqCst);
            }
            if cfg.shape == Shape::PerLine && conn.has_unsent() {
                // The socket is full: the next line waits for the flush
                // on its writable event, as a blocking write would.
                return;
            }
            let now = clock::now_ns();
            if cfg.rate > 0.0 {
                let interval = 1e9 / cfg.rate;
                // Spread the senders' first messages over one interval, so
                // that they do not all fire in the same millisecond.
                let offset = (self.g as f64 * 0.618_034).fract() * interval;
                let start = *s.start_ns.get_or_insert(now + offset as u64);
                let due = start + (s.sent as f64 * interval) as u64;
                if due > now {
                    return;
                }
            }
            s.sent += 1;
            ctx.counts.sent += 1;
            ctx.text.clear();
            ctx.text.push_str("SAY ");
            Stamp {
                seq: s.sent,
                sent_ns: now,
            }
            .write_text(cfg.size, &mut ctx.text);
            let base = *s.writes_base.get_or_insert(conn.writes());
            match cfg.shape {
                Shape::PerLine => conn.send_now(&ctx.text),
                Shape::Coalesce => conn.send(&ctx.text),
            }
            s.max_in_flight = s.max_in_flight.max(s.sent - acked(s) - s.rejected);
            // Coalesced lines are written by the worker after this event:
            // they are counted at the next send.
            s.writes = conn.writes() - base;
        }
    }

    /// A `MSG` line: account for it; returns true if it was our own echo.
    fn on_msg(&mut self, msg: MsgLine<'_>, ctx: &mut Ctx, now: u64) -> bool {
        let plan = &ctx.plan;
        let members = plan.cfg.members;
        let (Some(stamp), Some(g)) = (Stamp::parse(msg.text), plan.index_of(msg.user)) else {
            ctx.errors
                .note(format!("foreign message from {}", msg.user));
            return false;
        };
        let k = g % members;
        if g / members != self.g / members || k >= self.trackers.len() {
            ctx.errors.note(format!(
                "message from {} who is not a sender here",
                msg.user
            ));
            return false;
        }
        let seen = self.trackers[k].record(stamp.seq);
        if matches!(seen, Seen::Duplicate) {
            return false;
        }
        if plan.cfg.ack == Ack::Next && self.g % members == plan.acker_of(k) {
            let cell = &ctx.shared.acks[plan.ack_slot(g)];
            cell.received.fetch_add(1, Ordering::SeqCst);
            // The load first keeps the swap (a write) off the common path.
            if cell.parked.load(Ordering::SeqCst) && cell.parked.swap(false, Ordering::SeqCst) {
                if let Some(waker) = ctx.shared.wakers[g % plan.cfg.engine.threads].get() {
                    // A failed wake costs at most one loop turn's timeout.
                    let _ = waker.wake();
                }
            }
        }
        ctx.counts.received += 1;
        let (start, end) = ctx.window;
        if (start..end).contains(&now) {
            ctx.counts.in_window += 1;
        }
        if (start..end).contains(&stamp.sent_ns) {
            ctx.latency.record(now.saturating_sub(stamp.sent_ns));
        }
        g == self.g
    }
}

impl Session for Member {
    type Ctx = Ctx;

    fn on_line(&mut self, line: &str, conn: &mut Conn, ctx: &mut Ctx, now_ns: u64) {
        // The hot path first: a MSG, parsed without allocating.
        if let Some(msg) = MsgLine::parse(line) {
            if self.on_msg(msg, ctx, now_ns) {
                if let Some(s) = self.sender.as_mut() {
                    s.echoed += 1;
                }
                self.pump(conn, ctx);
            }
            return;
        }
        match self.state {
            State::Setup => match self.script.on_line(line, conn) {
                script::Progress::Running => {}
                script::Progress::Done => {
                    self.state = State::Ready;
                    ctx.counts.ready += 1;
                }
                script::Progress::Failed(why) => {
                    ctx.errors
                        .note(format!("{}: setup: {why}", self.script.user()));
                    self.state = State::Failed(why);
                    ctx.counts.failed += 1;
                    conn.close();
                }
            },
            State::Ready => match ServerLine::parse(line) {
                // JOINED and LEFT of the others: nothing to account.
                Some(ServerLine::Joined { .. } | ServerLine::Left { .. }) => {}
                Some(ServerLine::Err { .. }) if self.sender.is_some() => {
                    // During the run a sender only sends SAY, so an ERR is a
                    // refused SAY (RATE_LIMITED unless the server's limits
                    // were raised). Its number will never arrive anywhere.
                    if let Some(s) = self.sender.as_mut() {
                        s.rejected += 1;
                    }
                    ctx.counts.rejected += 1;
                    ctx.errors.note(format!("{}: {line}", self.script.user()));
                    self.pump(conn, ctx);
                }
                Some(ServerLine::Bye { .. }) => {
                    self.state = State::Dropped(line.to_owned());
                    ctx.counts.dropped += 1;
                }
                _ => ctx
                    .errors
                    .note(format!("{}: unexpected: {line}", self.script.user())),
            },
            State::Failed(_) | State::Dropped(_) => {}
        }
    }

    fn client(&self) -> usize {
        self.g
    }

    fn on_closed(&mut self, why: Closed, ctx: &mut Ctx) {
        let how = match why {
            Closed::ByUs => return,
            Closed::ByPeer => "closed by the server".to_owned(),
            Closed::Error(e) => e,
        };
        match self.state {
            State::Setup => {
                ctx.errors
                    .note(format!("{}: setup: {how}", self.script.user()));
                self.state = State::Failed(how);
                ctx.counts.failed += 1;
            }
            State::Ready => {
                self.state = State::Dropped(how);
                ctx.counts.dropped += 1;
            }
            State::Failed(_) | State::Dropped(_) => {}
        }
    }

    fn paused(&self) -> bool {
        self.stalled && self.state == State::Ready
    }
}

/// A member that lost messages, was dropped or saw anything odd.
#[derive(Debug, Clone, Serialize)]
pub struct MemberLoss {
    /// The member's user name.
    pub member: String,
    /// Messages it should have received.
    pub expected: u64,
    /// Distinct messages it received.
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
    /// Messages received twice.
    pub duplicates: u64,
    /// Messages that came after a later one.
    pub out_of_order: u64,
    /// How it ended, if the server dropped it (or its setup failed).
    pub dropped: Option<String>,
    /// Missing sequence numbers per sender: `(sender, [(first, last)])`,
    /// at most 5 ranges per sender.
    pub gaps: Vec<(String, Vec<(u64, u64)>)>,
}

/// The server's resources, if `--server-pid` was given.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerUsage {
    /// At the start of the measure window.
    pub before: ProcSample,
    /// At the end of the measure window.
    pub after: ProcSample,
    /// Server CPU seconds during the measure window.
    pub cpu_s: f64,
    /// Server CPU microseconds per delivery in the window.
    pub cpu_us_per_delivery: f64,
    /// Server CPU as a share of one core over the window, in percent.
    pub cpu_percent: f64,
    /// How late the two samples were taken after the window's planned
    /// start and end, at most, in milliseconds (the main thread's sleep
    /// overshoot): the CPU and the deliveries cover the same window to
    /// this precision.
    pub sample_skew_ms: f64,
}

/// Everything a fanout run found.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// Always `"fanout"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Senders per room.
    pub senders: usize,
    /// Messages per second per sender; `None` for flat out.
    pub rate: Option<f64>,
    /// In-flight window per sender.
    pub window: usize,
    /// How the senders' lines left their sockets.
    pub shape: Shape,
    /// What freed a place in a sender's window.
    pub ack: Ack,
    /// Lines or WebSocket frames.
    pub transport: Transport,
    /// Message text size, bytes.
    pub size: usize,
    /// Load-generator threads.
    pub threads: usize,
    /// Members that joined.
    pub ready: usize,
    /// Members whose setup failed.
    pub setup_failed: usize,
    /// Seconds from the first connect to the last join.
    pub setup_s: f64,
    /// `JOIN`s repeated after a `NO_SUCH_ROOM` (see `script`).
    pub join_retries: u64,
    /// Seconds of the measure window.
    pub measure_s: f64,
    /// Seconds the drain took.
    pub drain_s: f64,
    /// True if every accepted message reached every member still there
    /// before the drain timed out.
    pub drain_complete: bool,
    /// `SAY`s sent.
    pub sent: u64,
    /// `SAY`s refused by the server.
    pub rejected: u64,
    /// Receipts that freed a place in a window: the next members' receipts
    /// of the senders' messages ([`Ack::Next`]) or the senders' own echoes
    /// ([`Ack::Own`]). Each accepted message frees one.
    pub acks: u64,
    /// The most messages any sender had in flight (never above `window`).
    pub max_in_flight: u64,
    /// Socket `write`s by the senders while sending (one per `SAY` with
    /// [`Shape::PerLine`] unless a socket was full; fewer when coalesced).
    pub sender_writes: u64,
    /// Deliveries expected: accepted messages × members of their room.
    pub expected: u64,
    /// Distinct deliveries received.
    pub received: u64,
    /// `expected - received`, over all members.
    pub lost: u64,
    /// The part of `lost` that belongs to dropped members.
    pub lost_to_dropped: u64,
    /// Duplicate deliveries.
    pub duplicates: u64,
    /// Out-of-order deliveries.
    pub out_of_order: u64,
    /// Members dropped by the server after joining.
    pub dropped: usize,
    /// Deliveries per second in the measure window.
    pub deliveries_per_s: f64,
    /// `SAY`s per second, whole sending time.
    pub sends_per_s: f64,
    /// Latency of messages sent in the measure window.
    pub latency: Percentiles,
    /// Unexpected lines and errors.
    pub errors: u64,
    /// The first few of them.
    pub error_samples: Vec<String>,
    /// Members with anything wrong (at most 100).
    pub members_with_loss: Vec<MemberLoss>,
    /// The server's resources, with `--server-pid`.
    pub server: Option<ServerUsage>,
}

/// Runs the fanout scenario against `target`.
///
/// # Errors
///
/// [`Error::Config`] for an impossible configuration; [`Error::Io`] or
/// [`Error::Spawn`] when the load generator itself cannot run. Failures of
/// the server (refused connections, drops, losses) are in the report.
pub fn run(target: &Target, cfg: &FanoutConfig) -> Result<FanoutReport> {
    if cfg.rooms == 0 || cfg.members == 0 || cfg.engine.threads == 0 || cfg.window == 0 {
        return Err(Error::Config(
            "rooms, members, threads and window must be at least 1".into(),
        ));
    }
    if cfg.senders > cfg.members || cfg.senders + cfg.stalled > cfg.members {
        return Err(Error::Config(format!(
            "{} senders and {} stalled members do not fit in rooms of {}",
            cfg.senders, cfg.stalled, cfg.members
        )));
    }
    let prefix = cfg.engine.name_prefix();
    let plan = Arc::new(Plan {
        cfg: cfg.clone(),
        prefix,
    });
    let shared = Arc::new(Shared {
        measure_start: AtomicU64::new(u64::MAX),
        measure_end: AtomicU64::new(u64::MAX),
        acks: (0..cfg.rooms * cfg.senders)
            .map(|_| AckCell::default())
            .collect(),
        wakers: (0..cfg.engine.threads).map(|_| OnceLock::new()).collect(),
        ..Shared::default()
    });
    let total = cfg.rooms * cfg.members;
    let target = match cfg.transport {
        Transport::Line => target.clone(),
        Transport::Ws => target.websocket(),
    };
    let started = Instant::now();

    // Each worker gets every `threads`-th member, so rooms are spread over
    // all workers and one room's fan-out is read by all threads.
    let mut handles = Vec::new();
    for w in 0..cfg.engine.threads {
        let (plan, shared, target) = (plan.clone(), shared.clone(), target.clone());
        let handle = thread::Builder::new()
            .name(format!("loadgen-{w}"))
            .spawn(move || worker(w, target, plan, shared))
            .map_err(Error::Spawn)?;
        handles.push(handle);
    }

    // --- The main thread: phases, progress, and nothing else. ---
    let mut progress = Progress::new("fanout", cfg.engine.progress);
    let set = |p: Phase| shared.phase.store(p as u8, Ordering::Release);
    let settled = || shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
    let show = |progress: &mut Progress, phase: &str| {
        progress.show(format_args!(
            "{phase:<7} joined {}/{total}  failed {}  sent {}  received {}  dropped {}",
            shared.ready.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
            shared.sent.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
        ));
    };
    while settled() < total && started.elapsed() < cfg.setup.setup_timeout {
        show(&mut progress, "setup");
        thread::sleep(Duration::from_millis(20));
    }
    let setup_s = started.elapsed().as_secs_f64();

    // The measure window is planned before the warmup starts, so that every
    // worker knows it ahead and counts each receipt by its own time stamp;
    // the server's CPU time is read at its two ends.
    let send_start = clock::now_ns();
    let measure_start = send_start + cfg.warmup.as_nanos() as u64;
    let measure_end = measure_start + cfg.duration.as_nanos() as u64;
    shared.measure_start.store(measure_start, Ordering::Release);
    shared.measure_end.store(measure_end, Ordering::Release);
    set(Phase::Warmup);
    sleep_until_showing(measure_start, &mut || show(&mut progress, "warmup"));
    let before = cfg.engine.sample_server();
    let start_skew = clock::now_ns().saturating_sub(measure_start);
    set(Phase::Measure);
    sleep_until_showing(measure_end, &mut || show(&mut progress, "measure"));
    let after = cfg.engine.sample_server();
    let end_skew = clock::now_ns().saturating_sub(measure_end);
    set(Phase::Drain);

    // Drain: stop when everything accepted has been received (by members
    // still there), when nothing has moved for a second, or at the limit.
    let drain_started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    let members = cfg.members as u64;
    let drain_complete = loop {
        let received = shared.received.load(Ordering::Relaxed);
        let accepted =
            shared.sent.load(Ordering::Relaxed) - shared.rejected.load(Ordering::Relaxed);
        // Every room has `members` members, so every accepted message owes
        // `members` deliveries. Members that failed or were dropped never
        // get theirs: the quiet-second rule ends the wait for them.
        let final_counts = shared.drained.load(Ordering::Acquire) == cfg.engine.threads;
        if final_counts && received >= accepted * members {
            break true;
        }
        if received != last.0 {
            last = (received, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(1) {
            break false;
        }
        if drain_started.elapsed() > cfg.drain {
            break false;
        }
        show(&mut progress, "drain");
        thread::sleep(Duration::from_millis(10));
    };
    let drain_s = drain_started.elapsed().as_secs_f64();
    let send_end = measure_end;
    set(Phase::Done);
    progress.finish();

    let mut members_out: Vec<Member> = Vec::with_capacity(total);
    let mut latency = Latency::new();
    let mut errors = ErrorLog::default();
    for handle in handles {
        let (sessions, ctx) = handle
            .join()
            .map_err(|_| Error::Config("a load-generator thread panicked".into()))??;
        members_out.extend(sessions);
        latency.merge(&ctx.latency);
        errors.absorb(ctx.errors);
    }
    members_out.sort_by_key(|m| m.g);

    let window_s = (measure_end - measure_start) as f64 / 1e9;
    let in_window = shared.in_window.load(Ordering::Relaxed);
    let mut report = account(&plan, &members_out);
    report.addrs = target.addrs().to_vec();
    report.threads = cfg.engine.threads;
    report.setup_s = setup_s;
    report.measure_s = window_s;
    report.drain_s = drain_s;
    report.drain_complete = drain_complete;
    report.deliveries_per_s = in_window as f64 / window_s;
    report.sends_per_s = report.sent as f64 / ((send_end - send_start) as f64 / 1e9);
    report.latency = latency.percentiles();
    report.errors = errors.count;
    report.error_samples = errors.samples;
    report.acks = match cfg.ack {
        Ack::Next => shared
            .acks
            .iter()
            .map(|c| c.received.load(Ordering::Relaxed))
            .sum(),
        Ack::Own => members_out
            .iter()
            .filter_map(|m| m.sender.as_ref())
            .map(|s| s.echoed)
            .sum(),
    };
    report.server = match (before, after) {
        (Some(before), Some(after)) => {
            let cpu_s = after.cpu_s - before.cpu_s;
            Some(ServerUsage {
                before,
                after,
                cpu_s,
                cpu_us_per_delivery: cpu_s * 1e6 / in_window.max(1) as f64,
                cpu_percent: cpu_s * 100.0 / window_s,
                sample_skew_ms: start_skew.max(end_skew) as f64 / 1e6,
            })
        }
        _ => None,
    };
    Ok(report)
}

/// Sleeps until the [`clock`] reads `end_ns`, calling `tick` every 20 ms
/// (the progress line).
fn sleep_until_showing(end_ns: u64, tick: &mut dyn FnMut()) {
    loop {
        let left = end_ns.saturating_sub(clock::now_ns());
        if left == 0 {
            return;
        }
        tick();
        thread::sleep(Duration::from_nanos(left).min(Duration::from_millis(20)));
    }
}

/// The loss accounting of a finished run: every (sender, member) pair of
/// every room, from the members' trackers and the senders' counts.
fn account(plan: &Plan, members: &[Member]) -> FanoutReport {
    let cfg = &plan.cfg;
    let name = |g: usize| format!("{}_{g}", plan.prefix);
    // The highest number of each sender that anyone in its room received.
    let mut highest = vec![0u64; members.len()];
    for m in members {
        let room_base = m.g / cfg.members * cfg.members;
        for (k, t) in m.trackers.iter().enumerate() {
            highest[room_base + k] = highest[room_base + k].max(t.last());
        }
    }
    // What the server accepted from each sender: sent minus refused. But a
    // sender the server dropped may have had SAYs on the wire that the
    // server never read: for it, the room's total order tells what was
    // accepted (if anyone got number n, the server took 1 to n).
    let accepted = |g: usize| {
        let m = &members[g];
        m.sender.as_ref().map_or(0, |s| match m.state {
            State::Ready => s.sent - s.rejected,
            _ => (s.sent - s.rejected).min(highest[g]),
        })
    };
    let mut report = FanoutReport {
        scenario: "fanout",
        addrs: Vec::new(),
        rooms: cfg.rooms,
        members: cfg.members,
        senders: cfg.senders,
        rate: (cfg.rate > 0.0).then_some(cfg.rate),
        window: cfg.window,
        shape: cfg.shape,
        ack: cfg.ack,
        transport: cfg.transport,
        size: cfg.size,
        threads: cfg.engine.threads,
        ready: 0,
        setup_failed: 0,
        setup_s: 0.0,
        join_retries: 0,
        measure_s: 0.0,
        drain_s: 0.0,
        drain_complete: false,
        sent: 0,
        rejected: 0,
        acks: 0,
        max_in_flight: 0,
        sender_writes: 0,
        expected: 0,
        received: 0,
        lost: 0,
        lost_to_dropped: 0,
        duplicates: 0,
        out_of_order: 0,
        dropped: 0,
        deliveries_per_s: 0.0,
        sends_per_s: 0.0,
        latency: Percentiles::default(),
        errors: 0,
        error_samples: Vec::new(),
        members_with_loss: Vec::new(),
        server: None,
    };
    for m in members {
        report.join_retries += u64::from(m.script.join_retries);
        if let Some(s) = &m.sender {
            report.sent += s.sent;
            report.rejected += s.rejected;
            report.max_in_flight = report.max_in_flight.max(s.max_in_flight);
            report.sender_writes += s.writes;
        }
        let gone = match &m.state {
            State::Ready => None,
            State::Setup => Some("setup never finished".to_owned()),
            State::Failed(why) => Some(format!("setup failed: {why}")),
            State::Dropped(why) => Some(why.clone()),
        };
        match m.state {
            State::Ready => report.ready += 1,
            State::Dropped(_) => {
                report.ready += 1;
                report.dropped += 1;
            }
            State::Setup | State::Failed(_) => report.setup_failed += 1,
        }
        let room_base = m.g / cfg.members * cfg.members;
        let mut loss = MemberLoss {
            member: name(m.g),
            expected: 0,
            received: 0,
            lost: 0,
            duplicates: 0,
            out_of_order: 0,
            dropped: gone.clone(),
            gaps: Vec::new(),
        };
        for (k, t) in m.trackers.iter().enumerate() {
            let acc = accepted(room_base + k);
            loss.expected += acc;
            loss.received += t.received.min(acc);
            loss.lost += t.lost(acc);
            loss.duplicates += t.duplicates;
            loss.out_of_order += t.out_of_order;
            let ranges = t.missing_ranges(acc);
            if !ranges.is_empty() {
                loss.gaps
                    .push((name(room_base + k), ranges.into_iter().take(5).collect()));
            }
        }
        report.expected += loss.expected;
        report.received += loss.received;
        report.lost += loss.lost;
        report.duplicates += loss.duplicates;
        report.out_of_order += loss.out_of_order;
        if gone.is_some() {
            report.lost_to_dropped += loss.lost;
        }
        let odd = loss.lost + loss.duplicates + loss.out_of_order > 0 || gone.is_some();
        if odd && report.members_with_loss.len() < 100 {
            report.members_with_loss.push(loss);
        }
    }
    report
}

/// One worker thread: its members' connections, until the phase is Done.
fn worker(
    w: usize,
    target: Target,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
) -> Result<(Vec<Member>, Ctx)> {
    let cfg = plan.cfg.clone();
    let total = cfg.rooms * cfg.members;
    let steps = [Step::Register, Step::Login, Step::Create, Step::Join];
    let sessions: Vec<Member> = (w..total)
        .step_by(cfg.engine.threads)
        .map(|g| {
            let (room, k) = (g / cfg.members, g % cfg.members);
            let user = format!("{}_{g}", plan.prefix);
            let room_name = format!("{}_r{room}", plan.prefix);
            Member {
                g,
                script: Script::new(&steps, user, room_name, true),
                state: State::Setup,
                trackers: vec![SeqTracker::new(); cfg.senders],
                sender: (k < cfg.senders).then(Sender::default),
                stalled: k >= cfg.members - cfg.stalled,
            }
        })
        .collect();
    let senders: Vec<usize> = (0..sessions.len())
        .filter(|&i| sessions[i].sender.is_some())
        .collect();
    let stalled: Vec<usize> = (0..sessions.len())
        .filter(|&i| sessions[i].stalled)
        .collect();
    let ctx = Ctx {
        plan: plan.clone(),
        shared: shared.clone(),
        phase: Phase::Setup,
        window: (u64::MAX, u64::MAX),
        latency: Latency::new(),
        counts: Counts::default(),
        published: Counts::default(),
        errors: ErrorLog::default(),
        text: String::with_capacity(cfg.size + 32),
    };
    let n = sessions.len();
    let mut worker = Worker::new(target, sessions, ctx)?;
    // Before any connection opens, so before any sender can send: a
    // receipt on another worker may then always wake this one.
    let _ = shared.wakers[w].set(worker.waker()?);
    let mut opened = 0;
    let mut resumed = false;
    let mut drained = false;
    // With a rate, senders wake on a timer; flat out, they are driven by
    // the receipts that free their windows (an event on their own socket,
    // or the waker when the receipt was another worker's), and the timeout
    // only bounds how late a phase change is noticed.
    let tick = if cfg.rate > 0.0 {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(5)
    };
    loop {
        let phase = Phase::from_u8(shared.phase.load(Ordering::Acquire));
        worker.ctx.phase = phase;
        worker.ctx.window = (
            shared.measure_start.load(Ordering::Acquire),
            shared.measure_end.load(Ordering::Acquire),
        );
        if phase == Phase::Done {
            break;
        }
        // Open connections a batch at a time: thousands of simultaneous
        // handshakes would only overflow the server's accept backlog.
        let settled = worker.ctx.counts.ready + worker.ctx.counts.failed;
        while opened < n && opened - settled.min(opened) < cfg.setup.connect_batch {
            let small = worker.slots[opened].session.stalled.then_some(16 * 1024);
            worker.open(opened, small);
            opened += 1;
        }
        worker.poll(tick)?;
        if matches!(phase, Phase::Warmup | Phase::Measure) {
            for &i in &senders {
                worker.with(i, |m, conn, ctx| m.pump(conn, ctx));
            }
        }
        if phase == Phase::Drain && !resumed {
            // The stalled members read again, to see what they were sent
            // and how the server ended them.
            for &i in &stalled {
                worker.slots[i].session.stalled = false;
                worker.kick(i);
            }
            resumed = true;
        }
        worker.take_closed();
        worker.ctx.publish(&shared);
        if phase == Phase::Drain && !drained {
            // Nothing more will be sent by this worker: say so, after the
            // publish above (Release pairs with the main thread's Acquire).
            shared.drained.fetch_add(1, Ordering::Release);
            drained = true;
        }
    }
    let (sessions, mut ctx) = worker.finish_all();
    ctx.publish(&shared);
    Ok((sessions, ctx))
}

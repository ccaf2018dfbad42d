//! The event loop every load-generator thread runs: one `mio::Poll` over
//! many connections, and a scenario-specific [`Session`] per connection.
//!
//! The server spends one OS thread per client on purpose (it is a teaching
//! server). Its load generator cannot do the same: 10,000 clients would be
//! 10,000 more threads competing with the server's 20,000 on the same two
//! cores, and we would measure the scheduler. So each worker thread owns a
//! slice of the connections and reacts to readiness:
//!
//! ```text
//!  worker-0: Poll ──events──▶ Conn 0, 2, 4, …  ──lines──▶ Session::on_line
//!  worker-1: Poll ──events──▶ Conn 1, 3, 5, …  ──lines──▶ Session::on_line
//!  main:     phases (atomics), progress line, the report at the end
//! ```
//!
//! Nothing is shared between workers except a few atomic counters that the
//! scenario publishes once per loop turn: a connection, its TLS state and its
//! session live and die on one thread, so no lock is ever taken on the hot
//! path.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use super::clock;
use super::conn::{for_each_line, Conn, ReadEnd, Target};
use chat::error::{Error, Result};

/// The poller token of a worker's [`Waker`]: no slot has it.
const WAKE: Token = Token(usize::MAX);

/// Ciphertext read from one connection per event before the worker moves
/// on to the next one (fairness between connections of one worker).
const READ_BUDGET: usize = 256 * 1024;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The session asked for it ([`Conn::close`]) or the run ended.
    ByUs,
    /// The server closed the connection.
    ByPeer,
    /// A socket or TLS error.
    Error(String),
}

/// What a scenario does with one connection.
pub trait Session {
    /// Per-worker state every session of the worker may update: counters,
    /// histograms, the current phase. One per thread, so no locking.
    type Ctx;

    /// One line from the server (without its LF). `now_ns` is the
    /// [`clock`] time at which the bytes were read.
    fn on_line(&mut self, line: &str, conn: &mut Conn, ctx: &mut Self::Ctx, now_ns: u64);

    /// The connection is gone; [`Worker::open`] may start a new one.
    fn on_closed(&mut self, why: Closed, ctx: &mut Self::Ctx);

    /// This client's index among all of the run's clients, whichever
    /// worker drives it: its connections go to [`Target::addr`] of it, so
    /// that clients are spread over several servers by their index.
    fn client(&self) -> usize;

    /// While true, the worker does not read this connection (a member that
    /// "stops reading", to make the server's outbox fill up).
    fn paused(&self) -> bool {
        false
    }
}

/// A connection slot: the session always, the connection while open.
pub struct Slot<S> {
    /// The live connection, if any.
    pub conn: Option<Conn>,
    /// The scenario's state for this slot; outlives its connections.
    pub session: S,
}

/// One event loop and the connections it drives.
pub struct Worker<S: Session> {
    /// The poller (epoll on Linux).
    poll: Poll,
    /// Reused event buffer.
    events: Events,
    /// Where to connect (each session to its own address of it).
    target: Target,
    /// The connections; a slot's index is its poller token.
    pub slots: Vec<Slot<S>>,
    /// The worker's shared-by-all-sessions state.
    pub ctx: S::Ctx,
    /// Slots with bytes left to read after their read budget ran out, or
    /// that were un-paused: they are served again without waiting for an
    /// event, because edge-triggered readiness will not repeat itself.
    again: Vec<usize>,
    /// Slots closed since the last [`Worker::take_closed`].
    closed: Vec<usize>,
}

impl<S: Session> Worker<S> {
    /// A worker for `sessions`, none connected yet.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the poller cannot be created.
    pub fn new(target: Target, sessions: Vec<S>, ctx: S::Ctx) -> Result<Self> {
        Ok(Worker {
            poll: Poll::new().map_err(|e| Error::io("create a poller", e))?,
            events: Events::with_capacity(1024),
            target,
            slots: sessions
                .into_iter()
                .map(|session| Slot {
                    conn: None,
                    session,
                })
                .collect(),
            ctx,
            again: Vec::new(),
            closed: Vec::new(),
        })
    }

    /// A handle another thread may use to end this worker's current (or
    /// next) wait in [`Worker::poll`] early: one `eventfd` write. For work
    /// that no socket event announces, such as a sender whose window was
    /// freed by a receipt on another worker.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the poller refuses it (one waker per worker).
    pub fn waker(&self) -> Result<Waker> {
        Waker::new(self.poll.registry(), WAKE).map_err(|e| Error::io("create a waker", e))
    }

    /// Starts connecting slot `i`, to the address of its session's
    /// [`Session::client`] index. A failure is reported to the session as
    /// [`Closed::Error`], like any other failed connection.
    /// `recv_buffer` fixes the socket's receive buffer (see [`Conn::connect`]).
    pub fn open(&mut self, i: usize, recv_buffer: Option<usize>) {
        let client = self.slots[i].session.client();
        match Conn::connect(
            &self.target,
            client,
            self.poll.registry(),
            Token(i),
            recv_buffer,
        ) {
            Ok(conn) => self.slots[i].conn = Some(conn),
            Err(e) => {
                self.slots[i]
                    .session
                    .on_closed(Closed::Error(e.to_string()), &mut self.ctx);
                self.closed.push(i);
            }
        }
    }

    /// True while slot `i` has an open connection.
    pub fn is_open(&self, i: usize) -> bool {
        self.slots[i].conn.is_some()
    }

    /// Waits up to `timeout` for events and handles them all: reads, hands
    /// lines to sessions, flushes what they wrote, closes what ended.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the poller itself fails.
    pub fn poll(&mut self, timeout: Duration) -> Result<()> {
        let timeout = if self.again.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("poll", e)),
        }
        // Collect the tokens first: handling an event needs `&mut self`.
        // The waker's event only ends the wait: the caller does the work.
        let mut ready: Vec<usize> = std::mem::take(&mut self.again);
        ready.extend(
            self.events
                .iter()
                .map(|e| e.token())
                .filter(|&t| t != WAKE)
                .map(|t| t.0),
        );
        for i in ready {
            self.handle(i);
        }
        Ok(())
    }

    /// Reads, dispatches and flushes slot `i`.
    fn handle(&mut self, i: usize) {
        let Slot { conn, session } = &mut self.slots[i];
        let Some(c) = conn.as_mut() else { return };
        let mut end = ReadEnd::Open;
        if !session.paused() {
            match c.read(READ_BUDGET) {
                Ok((e, more)) => {
                    end = e;
                    if more {
                        self.again.push(i);
                    }
                }
                Err(e) => {
                    let why = c
                        .take_error()
                        .map_or_else(|| e.to_string(), |se| se.to_string());
                    self.close(i, Closed::Error(why));
                    return;
                }
            }
            // Hand every complete line to the session. The inbox is moved
            // out while the session may write to the connection.
            let now = clock::now_ns();
            let inbox = c.take_inbox();
            let used = for_each_line(&inbox, |line| session.on_line(line, c, &mut self.ctx, now));
            c.put_inbox(inbox, used);
        }
        self.finish(i, end);
    }

    /// Runs `f` on slot `i`'s session and open connection (e.g. to send on
    /// a timer), then flushes. Does nothing if the slot is not connected.
    pub fn with(&mut self, i: usize, f: impl FnOnce(&mut S, &mut Conn, &mut S::Ctx)) {
        let Slot { conn, session } = &mut self.slots[i];
        let Some(c) = conn.as_mut() else { return };
        f(session, c, &mut self.ctx);
        self.finish(i, ReadEnd::Open);
    }

    /// Serves slot `i` again at the next [`Worker::poll`] without waiting
    /// for an event (after un-pausing it).
    pub fn kick(&mut self, i: usize) {
        self.again.push(i);
    }

    /// Flushes slot `i`, and closes it if the peer closed, a write failed
    /// or the session asked to.
    fn finish(&mut self, i: usize, end: ReadEnd) {
        let Some(c) = self.slots[i].conn.as_mut() else {
            return;
        };
        if let Err(e) = c.flush(self.poll.registry()) {
            self.close(i, Closed::Error(e.to_string()));
            return;
        }
        if end == ReadEnd::Closed {
            self.close(i, Closed::ByPeer);
        } else if c.is_closing() {
            self.close(i, Closed::ByUs);
        }
    }

    /// Closes slot `i` (close_notify, best effort) and tells its session.
    pub fn close(&mut self, i: usize, why: Closed) {
        if let Some(conn) = self.slots[i].conn.take() {
            conn.shutdown(self.poll.registry());
            self.slots[i].session.on_closed(why, &mut self.ctx);
            self.closed.push(i);
        }
    }

    /// Slots closed since the last call.
    pub fn take_closed(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.closed)
    }

    /// Closes every connection (the run is over) and returns the sessions
    /// and the worker's context for the report.
    pub fn finish_all(mut self) -> (Vec<S>, S::Ctx) {
        for i in 0..self.slots.len() {
            self.close(i, Closed::ByUs);
        }
        let sessions = self.slots.into_iter().map(|s| s.session).collect();
        (sessions, self.ctx)
    }
}

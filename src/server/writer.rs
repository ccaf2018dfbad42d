//! Writing to one client: its writer thread, and the "pen" that thread
//! shares with whoever finds it asleep.
//!
//! # Sharing one TLS session with the reader
//!
//! A rustls connection is one state machine for both directions; it is not
//! full-duplex. The reader and the writing side therefore share it behind a
//! `Mutex`, with one rule: **the lock guards only in-memory steps.** Here
//! that is "put plaintext into rustls and take the encrypted bytes out into
//! a `Vec`". The `write` to the socket happens *after* the lock is
//! released. The reader does the same on its side: it blocks in `read` with
//! no lock, then locks only to feed rustls the bytes it got. Neither thread
//! can hold the lock while waiting for the network, so neither can stall the
//! other: a writer blocked on a peer that does not read never keeps the
//! reader from decrypting what that peer sends.
//!
//! # The pen: one writer at a time, and it need not be the writer thread
//!
//! At classroom rates nearly every line finds its writer thread asleep,
//! and waking a thread costs two context switches, more than sealing the
//! line and writing it. So a broadcast that finds a member's writer asleep
//! (it holds the duty to wake it, see `doorbell.rs`) first tries to do the
//! writer's work itself, once it has released the room's lock
//! ([`Pen::try_write`]): take what is queued, seal it, and hand it to the
//! kernel with a **non-blocking** `send`. If all of it went, the writer
//! sleeps on, never having been woken; if anything is left (the socket's
//! buffer was full, or someone else holds the pen), the broadcaster wakes
//! the writer thread after all, and it finishes the job with its blocking
//! write and its deadline. Either way a broadcast never waits for a client.
//!
//! A broadcaster also tries the pen for a writer that is awake but
//! *behind*, whose outbox is more than half full (see "A writer that is
//! behind" in `outbox.rs`): that writer thread may be waiting for a
//! processor, and the client must not be dropped for it. If the pen is
//! free it writes what the socket takes at once; if the pen is taken, its
//! holder has the lines; if the socket took only part, it tells the
//! writer thread to finish, as above.
//!
//! What they share is the [`Desk`]: the lines taken and not yet sealed, the
//! bytes sealed and not yet written, and what must happen once they are
//! (markers, DMs, stored-DM claims). Whoever holds its lock is the only one
//! writing to this socket, so TLS records leave in the order rustls sealed
//! them, which TLS requires. A broadcaster only ever *tries* the lock and
//! holds it for memory steps and one non-blocking `send`; the writer thread
//! holds it across its blocking write, and a broadcaster that finds it
//! taken simply leaves the line to the thread that holds it.
//!
//! # Coalescing
//!
//! Whoever holds the pen takes everything already queued (up to
//! [`MAX_BATCH`] bytes) and seals it as one piece: a busy room costs one
//! `write` per batch, not per line.
//!
//! # Framing: lines or WebSocket frames
//!
//! A WebSocket client (`GET /ws`, see `web::ws`) is served by this same
//! code; only how a line is put into the batch differs ([`Framing`]): a
//! terminal client gets the line and its LF, a WebSocket client one text
//! frame holding the line without its LF. Everything else (the outbox,
//! coalescing, sealing, the deadline, the `BYE`) is the same code.
//!
//! # A deadline per batch
//!
//! A batch must be in the kernel's hands within `--write-timeout` of the
//! writer thread's first `write`, or the client is closed. A timeout on
//! each `write` call would not do: a peer that reads a trickle lets every
//! call make a little progress, and held the writer (and the memory of its
//! queue) for minutes.
//!
//! # Nothing acknowledged is lost
//!
//! A `DM` line ([`Outgoing::Dm`]) was acknowledged to its sender as
//! delivered. The desk keeps the DMs of what it has taken until they are
//! written; when the writer thread stops, it returns those that were not (a
//! failed write, a slow consumer's discarded queue, whatever is still in
//! the outbox), and the session stores them for the recipient's next login.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::protocol::{ByeReason, ServerLine};

use super::client::{Client, Closing, Outgoing};
use super::outbox::OutboxReceiver;
use crate::oneshot;

/// How many plaintext bytes one batch may gather before it is sealed and
/// written: large enough to fill TLS records, small enough that a batch is
/// never a memory problem.
pub const MAX_BATCH: usize = 64 * 1024;

/// What each of the desk's two buffers (plaintext and sealed) may keep
/// once the client has been quiet for [`IDLE_AFTER`]. A batch can need up
/// to [`MAX_BATCH`] (a `JOIN`'s history replay, a busy room), but keeping
/// that much for every idle client after one burst would cost 10,000
/// clients more than a gigabyte.
const KEEP_WHILE_IDLE: usize = 4 * 1024;

/// How long the writer waits with large buffers before giving them back.
/// Not at once: a busy writer often finds its outbox empty for an instant,
/// and shrinking then, to grow again for the next batch, cost a quarter of
/// the flat-out throughput (see docs/BENCHMARKS.md).
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How this client's lines go on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Framing {
    /// Protocol v1 as it is: each line with its LF.
    #[default]
    Lines,
    /// Protocol v1 over WebSocket: each line (without its LF) in one text
    /// frame; the `BYE` is followed by a close frame carrying its reason.
    WebSocket,
}

impl Framing {
    /// Appends one line (given with its LF) to `out`.
    fn append(self, out: &mut Vec<u8>, line: &[u8]) {
        match self {
            Framing::Lines => out.extend_from_slice(line),
            Framing::WebSocket => crate::web::ws::append_text(out, line),
        }
    }

    /// Appends what ends the connection after its `BYE` line: nothing for
    /// the line protocol, a close frame for WebSocket.
    fn append_close(self, out: &mut Vec<u8>, reason: ByeReason) {
        if self == Framing::WebSocket {
            crate::web::ws::append_close(out, reason);
        }
    }
}

/// What must happen once some bytes are written: markers to signal, DMs
/// that then count as delivered, stored DMs to delete.
#[derive(Default)]
struct Pending {
    /// Markers, signalled once the bytes queued before them are written
    /// to the socket (see [`Outgoing::Mark`]).
    marks: Vec<oneshot::Sender<()>>,
    /// The `DM` lines, handed back if they are not written.
    dms: Vec<String>,
    /// Stored DMs, deleted once written (see [`Outgoing::Claim`]).
    claims: Vec<crate::db::ClaimedDms>,
}

impl Pending {
    /// Moves everything of `other` after what is here.
    fn append(&mut self, other: &mut Pending) {
        self.marks.append(&mut other.marks);
        self.dms.append(&mut other.dms);
        self.claims.append(&mut other.claims);
    }

    /// The bytes these stood for are in the kernel's hands. Returns the
    /// claimed stored DMs, to be deleted once the desk's lock is released:
    /// asking the DB thread may wait for room in its queue, and nobody
    /// waits while holding the desk for anything but the socket.
    #[must_use = "the claimed DMs must be deleted (`delete_later`)"]
    fn written(&mut self) -> Vec<crate::db::ClaimedDms> {
        for written in self.marks.drain(..) {
            let _ = written.send(());
        }
        self.dms.clear();
        std::mem::take(&mut self.claims)
    }

    /// The bytes these stood for will never be written: the markers'
    /// waiters hear that the writer is gone, not that it wrote; the claimed
    /// DMs stay stored. The DMs are returned, to be stored.
    fn abandoned(&mut self) -> Vec<String> {
        self.marks.clear();
        self.claims.clear();
        std::mem::take(&mut self.dms)
    }
}

/// Lines taken from the outbox and not yet sealed.
#[derive(Default)]
struct Batch {
    /// How lines are appended to `plain`.
    framing: Framing,
    /// Their plaintext.
    plain: Vec<u8>,
    /// What happens once they are written.
    pending: Pending,
}

impl Batch {
    /// Appends one outbox item.
    fn push(&mut self, item: Outgoing) {
        match item {
            Outgoing::Shared(line) => self.framing.append(&mut self.plain, line.as_bytes()),
            Outgoing::Owned(line) => self.framing.append(&mut self.plain, line.as_bytes()),
            Outgoing::Dm(line) => {
                self.framing.append(&mut self.plain, line.as_bytes());
                self.pending.dms.push(line);
            }
            Outgoing::Wake => {}
            Outgoing::Mark(written) => self.pending.marks.push(written),
            Outgoing::Claim(claim) => self.pending.claims.push(claim),
        }
    }
}

/// What the holder of the pen works on (see the module's doc).
struct Desk {
    /// The outbox's receiving end; `None` once the writer thread has
    /// stopped, which disconnects the outbox: from then on nothing more
    /// can be queued for this client, and a marker says at once that it
    /// will never be written.
    outbox: Option<OutboxReceiver>,
    /// Taken from the outbox, not sealed yet.
    batch: Batch,
    /// Sealed into TLS records, not yet (all) written: the front of the
    /// stream, to be written before anything sealed later.
    wire: Vec<u8>,
    /// What happens once `wire` is written.
    sealed: Pending,
}

impl Desk {
    /// Takes what is queued, up to [`MAX_BATCH`] bytes; returns how many
    /// items it took.
    fn fill(&mut self) -> usize {
        self.take(usize::MAX, MAX_BATCH)
    }

    /// Takes at most `items` items of what is queued, and stops once the
    /// batch holds `bytes`; returns how many it took.
    fn take(&mut self, items: usize, bytes: usize) -> usize {
        let Some(outbox) = &self.outbox else {
            return 0;
        };
        let mut taken = 0;
        while taken < items && self.batch.plain.len() < bytes {
            match outbox.try_recv() {
                Ok(item) => {
                    self.batch.push(item);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        taken
    }

    /// Seals the batch into `wire` (and a `close_notify` after it if
    /// asked), under the TLS lock: memory only, no I/O.
    fn seal(&mut self, tls: &Mutex<ServerConnection>, close_notify: bool) -> io::Result<()> {
        let mut conn = tls
            .lock()
            .expect("tls lock poisoned: the reader panicked mid-record");
        if !self.batch.plain.is_empty() {
            // The buffer limit was lifted after the handshake, so this
            // takes all of `plain`; a batch is at most MAX_BATCH plus a line.
            conn.writer().write_all(&self.batch.plain)?;
        }
        if close_notify {
            conn.send_close_notify();
        }
        while conn.wants_write() {
            conn.write_tls(&mut self.wire)?;
        }
        drop(conn);
        self.batch.plain.clear();
        self.sealed.append(&mut self.batch.pending);
        Ok(())
    }

    /// `wire` is in the kernel's hands; returns the claimed stored DMs to
    /// delete once the desk is released (see [`Pending::written`]).
    #[must_use = "the claimed DMs must be deleted (`delete_later`)"]
    fn written(&mut self) -> Vec<crate::db::ClaimedDms> {
        self.wire.clear();
        self.sealed.written()
    }

    /// True if either buffer holds more than [`KEEP_WHILE_IDLE`].
    fn is_big(&self) -> bool {
        self.batch.plain.capacity().max(self.wire.capacity()) > KEEP_WHILE_IDLE
    }

    /// Gives a burst's memory back.
    fn shrink(&mut self) {
        self.batch.plain.shrink_to(KEEP_WHILE_IDLE);
        self.wire.shrink_to(KEEP_WHILE_IDLE);
    }
}

/// The writing side of one connection, held by its [`Client`]: the TLS
/// session (shared with the reader), the socket, and the desk with the
/// outbox's receiving end.
pub struct Pen {
    /// The TLS session; its lock guards memory-only steps.
    tls: Arc<Mutex<ServerConnection>>,
    /// The connection's socket.
    socket: Arc<TcpStream>,
    /// The right to write, and what the writer works on.
    desk: Mutex<Desk>,
    /// Whether the socket refused bytes the last time it was given some
    /// (a send that took only part, a blocking write in progress), until
    /// a later write leaves nothing waiting. Read without the desk's lock
    /// by a broadcast that finds the outbox full: only then is the client
    /// a slow consumer (see [`Pen::is_refusing`]).
    refusing: AtomicBool,
}

impl std::fmt::Debug for Pen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pen").finish_non_exhaustive()
    }
}

impl Pen {
    /// The pen of a connection whose lines go on the wire as `framing`
    /// says.
    pub fn new(
        tls: Arc<Mutex<ServerConnection>>,
        socket: Arc<TcpStream>,
        outbox: OutboxReceiver,
        framing: Framing,
    ) -> Self {
        Pen {
            tls,
            socket,
            desk: Mutex::new(Desk {
                outbox: Some(outbox),
                batch: Batch {
                    framing,
                    ..Batch::default()
                },
                wire: Vec::new(),
                sealed: Pending::default(),
            }),
            refusing: AtomicBool::new(false),
        }
    }

    /// Takes everything queued and drops it unwritten: for the benchmark of
    /// the broadcast path, which measures the queueing without the
    /// writers' share of the work.
    pub fn discard(&self) {
        let desk = self.desk.lock().expect("desk lock poisoned");
        if let Some(outbox) = &desk.outbox {
            while outbox.try_recv().is_ok() {}
        }
    }

    /// Whether the client's socket is refusing bytes: the last attempt to
    /// hand it what was sealed could not hand it all, and that has not
    /// been made good since. While it is not, the client has taken
    /// everything it was given, whoever holds the pen and however long
    /// they take. Never takes a lock, so it may be asked under a room's.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Holds the pen until the guard is dropped, as a thread preempted
    /// while writing would: for tests.
    #[cfg(test)]
    pub fn hold(&self) -> impl Sized + '_ {
        self.desk.lock().expect("desk lock poisoned")
    }

    /// Does the writer thread's work now, from another thread, if that
    /// needs no waiting: takes the pen (if free), takes what is queued,
    /// seals it and sends it without blocking. Says whether everything
    /// taken went to the kernel, whether nothing could be done, or whether
    /// bytes were left on the desk for the writer thread to finish.
    pub fn try_write(&self) -> Tried {
        let mut desk = match self.desk.try_lock() {
            Ok(desk) => desk,
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Tried::Busy,
        };
        if !desk.wire.is_empty() {
            // A late batch: the writer thread's, with its deadline.
            return Tried::Busy;
        }
        if desk.fill() == 0 {
            return Tried::Wrote;
        }
        if desk.seal(&self.tls, false).is_err() {
            return Tried::Left;
        }
        match self.offer(&desk.wire) {
            Ok(n) if n == desk.wire.len() => {
                let claims = desk.written();
                // The writer thread does not see this batch: a burst's
                // memory is given back here rather than after a quiet
                // second.
                if desk.is_big() {
                    desk.shrink();
                }
                drop(desk);
                delete_later(claims);
                Tried::Wrote
            }
            Ok(n) => {
                desk.wire.drain(..n);
                Tried::Left
            }
            Err(_) => Tried::Left,
        }
    }

    /// Hands the socket what it takes of `wire` at once, without blocking,
    /// and notes whether it refused the rest ([`Pen::is_refusing`]).
    /// Returns how many bytes it took.
    fn offer(&self, wire: &[u8]) -> io::Result<usize> {
        let taken = send_now(&self.socket, wire)?;
        self.refusing.store(taken < wire.len(), Ordering::Relaxed);
        Ok(taken)
    }

    /// The writer thread's write: all of `wire` by `timeout` from now.
    /// First what the socket takes at once ([`Pen::offer`]); only if it
    /// refuses some does the thread block, and the pen says so meanwhile.
    fn write_out(&self, wire: &[u8], timeout: Duration) -> io::Result<()> {
        let taken = self.offer(wire)?;
        if taken < wire.len() {
            let deadline = Instant::now() + timeout;
            write_by(&self.socket, &wire[taken..], deadline, timeout)?;
            self.refusing.store(false, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// What [`Pen::try_write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// Everything queued went to the kernel (or nothing was queued).
    Wrote,
    /// Nothing: the pen was taken, or a batch already waits for the
    /// writer thread.
    Busy,
    /// Some bytes are left on the desk (the socket's buffer was full, or
    /// sealing or sending failed): the writer thread must finish, or fail.
    Left,
}

/// Asks the DB thread to delete stored DMs that were written, with no
/// lock held.
fn delete_later(claims: Vec<crate::db::ClaimedDms>) {
    for claim in claims {
        claim.delete_later();
    }
}

/// Sends what the socket's buffer takes of `data` now, without waiting;
/// returns how much it took (0 when it is full).
#[cfg(unix)]
fn send_now(socket: &TcpStream, data: &[u8]) -> io::Result<usize> {
    use nix::sys::socket::{send, MsgFlags};
    // MSG_DONTWAIT makes this one call non-blocking without touching the
    // socket's mode, which the reader and the writer thread rely on.
    match send(
        std::os::fd::AsRawFd::as_raw_fd(socket),
        data,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    ) {
        Ok(n) => Ok(n),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere the writer thread does all the writing.
#[cfg(not(unix))]
fn send_now(_socket: &TcpStream, _data: &[u8]) -> io::Result<usize> {
    Ok(0)
}

/// Runs the writer thread until the connection closes, and returns the
/// `DM` lines that were taken but not written (see the module's doc).
pub fn run(client: Arc<Client>, write_timeout: Duration, queue_lines: usize) -> Vec<String> {
    let pen = client.pen();
    let socket = &*pen.socket;
    let Some(outbox) = pen
        .desk
        .lock()
        .expect("desk lock poisoned")
        .outbox
        .as_ref()
        .map(OutboxReceiver::waiter)
    else {
        return Vec::new();
    };
    // What a single `write` call may block; `write_by` shortens it for the
    // rest of a batch that is late.
    if let Err(e) = socket.set_write_timeout(Some(write_timeout)) {
        log::warn!("conn {}: cannot set a write timeout: {e}", client.id);
    }
    // DMs taken but not written, returned when the writer stops.
    let mut unsent: Vec<String> = Vec::new();
    // Whether the last batch took more than one item, and whether the
    // desk's buffers are worth giving back after a quiet second.
    let (mut busy, mut big) = (false, false);
    loop {
        // 1. Wait until something is queued, unless we already know we are
        //    closing. (A broadcaster may write it before we get the pen:
        //    then there is nothing to do, and we wait again.)
        if client.closing().is_none() {
            // A writer whose last batch had several lines is in a busy
            // room: before it sleeps, it gives the threads that feed it one
            // turn on the processor (one `sched_yield`, never a loop), so
            // that it wakes to a batch rather than to every single line.
            // At classroom rates a batch is one line and this never runs.
            if busy && outbox.is_empty() {
                std::thread::yield_now();
            }
            let deadline = big.then(|| Instant::now() + IDLE_AFTER);
            if !outbox.wait(deadline, || client.closing().is_some()) {
                // Quiet for a while: give the burst's memory back.
                let mut desk = pen.desk.lock().expect("desk lock poisoned");
                desk.shrink();
                big = false;
                continue;
            }
        }
        let mut desk = pen.desk.lock().expect("desk lock poisoned");
        if client.closing().is_none() {
            busy = desk.fill() > 1;
        }

        // 2. Closing? A slow consumer's queue is thrown away (it is the
        //    problem; its DMs are handed back); otherwise what is queued
        //    still goes out, then the BYE.
        let closing = client.closing();
        match closing {
            Some(Closing::Bye(ByeReason::SlowConsumer)) => {
                // Logged here rather than where it was decided: that was
                // under a room's lock, and this thread holds none.
                log::warn!(
                    "conn {} ({}): its outbox was full (--queue-lines or --queue-bytes); dropping the slow consumer",
                    client.id,
                    client.display_name()
                );
                desk.batch.plain.clear();
                unsent.append(&mut desk.batch.pending.abandoned());
            }
            Some(_) => {
                desk.take(queue_lines, usize::MAX);
            }
            None => {}
        }
        if let Some(bye @ ServerLine::Bye { reason, .. }) = closing.and_then(Closing::bye) {
            let framing = desk.batch.framing;
            framing.append(&mut desk.batch.plain, format!("{bye}\n").as_bytes());
            framing.append_close(&mut desk.batch.plain, reason);
        }

        // 3. Seal under the TLS lock: memory only, no I/O.
        if let Err(e) = desk.seal(&pen.tls, closing.is_some()) {
            log::debug!("conn {}: rustls refused plaintext: {e}", client.id);
            break;
        }

        // 4. Write by the batch's deadline, holding the pen (broadcasters
        //    leave this client's lines to us meanwhile) but not the TLS
        //    lock: the reader keeps reading.
        if !desk.wire.is_empty() {
            if let Err(e) = pen.write_out(&desk.wire, write_timeout) {
                if e.kind() == ErrorKind::TimedOut {
                    log::info!(
                        "conn {} ({}): a batch was not written within {write_timeout:?}; closing",
                        client.id,
                        client.display_name()
                    );
                } else {
                    log::debug!("conn {}: write failed: {e}", client.id);
                }
                break;
            }
        }
        // Everything sealed so far is in the kernel's hands.
        let claims = desk.written();
        big = desk.is_big();
        drop(desk);
        delete_later(claims);
        if closing.is_some() {
            break;
        }
    }
    // Closing both directions also wakes the reader if it is still blocked
    // in `read` (for example after a failed write).
    let _ = socket.shutdown(Shutdown::Both);
    // Once `closing` is set no DM can be queued any more (`Client::send_dm`),
    // so what is on the desk and in the outbox now is all there will ever be.
    client.close(Closing::Silent);
    let mut desk = pen.desk.lock().expect("desk lock poisoned");
    unsent.append(&mut desk.sealed.abandoned());
    unsent.append(&mut desk.batch.pending.abandoned());
    if let Some(queued) = desk.outbox.take() {
        while let Ok(item) = queued.try_recv() {
            if let Outgoing::Dm(line) = item {
                unsent.push(line);
            }
        }
    }
    // `queued` and `outbox` (the waiting handle) are dropped: the outbox is
    // disconnected, and whatever is queued from now on is refused.
    unsent
}

/// Writes all of `data` to `socket` by `deadline`, or fails with
/// `TimedOut`. The socket's write timeout is `full` when this is called and
/// when it returns; only a batch that is late (a `write` call returned
/// having written part of it) costs the system calls that shorten it to
/// the time left, and set it back.
fn write_by(
    mut socket: &TcpStream,
    mut data: &[u8],
    deadline: Instant,
    full: Duration,
) -> io::Result<()> {
    let mut armed = full;
    let result = loop {
        match socket.write(data) {
            Ok(0) => break Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(ErrorKind::TimedOut.into())
            }
            Err(e) => break Err(e),
        }
        if data.is_empty() {
            break Ok(());
        }
        // Part of the batch is still to go: no longer than the time left.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(ErrorKind::TimedOut.into());
        }
        if let Err(e) = socket.set_write_timeout(Some(left)) {
            break Err(e);
        }
        armed = left;
    };
    if armed != full {
        let _ = socket.set_write_timeout(Some(full));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A peer that never reads: a batch larger than the kernel's buffers
    /// fails with `TimedOut` at its deadline, however the time is split
    /// between `write` calls, and the socket's timeout is set back after.
    #[test]
    fn a_batch_that_misses_its_deadline_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let socket = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_peer, _) = listener.accept().expect("accept");
        let full = Duration::from_millis(300);
        socket.set_write_timeout(Some(full)).expect("timeout");
        let started = Instant::now();
        let batch = vec![0u8; 64 * 1024 * 1024];
        let e = write_by(&socket, &batch, started + full, full).expect_err("nobody reads");
        let took = started.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(took >= full, "gave up early, after {took:?}");
        assert!(took < full * 4, "held for {took:?}");
        assert_eq!(socket.write_timeout().expect("timeout"), Some(full));
    }

    /// A batch that fits is written whole.
    #[test]
    fn a_batch_in_time_is_written_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let socket = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut peer, _) = listener.accept().expect("accept");
        let full = Duration::from_secs(5);
        write_by(&socket, b"hello\n", Instant::now() + full, full).expect("written");
        let mut got = [0u8; 6];
        std::io::Read::read_exact(&mut peer, &mut got).expect("read");
        assert_eq!(&got, b"hello\n");
    }
}

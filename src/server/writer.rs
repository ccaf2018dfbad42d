//! The writer thread of one client: drains the outbox, seals the lines into
//! TLS records, writes them to the socket. It is the only thread that ever
//! writes to this client's socket.
//!
//! # Sharing one TLS session with the reader
//!
//! A rustls connection is one state machine for both directions; it is not
//! full-duplex. The reader and this writer therefore share it behind a
//! `Mutex`, with one rule: **the lock guards only in-memory steps.** Here
//! that is "put plaintext into rustls and take the encrypted bytes out into
//! a `Vec`". The blocking `write` to the socket happens *after* the lock is
//! released. The reader does the same on its side: it blocks in `read` with
//! no lock, then locks only to feed rustls the bytes it got. Neither thread
//! can hold the lock while waiting for the network, so neither can stall the
//! other: a writer blocked on a peer that does not read never keeps the
//! reader from decrypting what that peer sends.
//!
//! Because only this thread writes to the socket, TLS records leave in the
//! order rustls sealed them, which TLS requires.
//!
//! # Coalescing
//!
//! After one blocking `recv`, the writer takes everything else already
//! queued (up to [`MAX_BATCH`] bytes) and seals it as one piece: a busy room
//! costs one TLS record and one `write` syscall per batch, not per line.
//!
//! # Framing: lines or WebSocket frames
//!
//! A WebSocket client (`GET /ws`, see `web::ws`) is served by this same
//! writer; only how a line is put into the batch differs ([`Framing`]): a
//! terminal client gets the line and its LF, a WebSocket client one text
//! frame holding the line without its LF. Everything else (the outbox,
//! coalescing, sealing, the deadline, the `BYE`) is the same code.

//!
//! # A deadline per batch
//!
//! A batch must be in the kernel's hands within `--write-timeout` of its
//! first `write`, or the client is closed. A timeout on each `write` call
//! would not do: a peer that reads a trickle lets every call make a little
//! progress, and held the writer (and the memory of its queue) for minutes.
//!
//! # Nothing acknowledged is lost
//!
//! A `DM` line ([`Outgoing::Dm`]) was acknowledged to its sender as
//! delivered. The writer keeps the DMs of the batch it is writing; when it
//! stops, it returns those it did not write (a failed write, a slow
//! consumer's discarded queue, whatever is still in the outbox), and the
//! session stores them for the recipient's next login.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use rustls::ServerConnection;

use crate::protocol::{ByeReason, ServerLine};

use super::client::{bye_text, Client, Closing, Outgoing};
use super::outbox::OutboxReceiver;
use crate::oneshot;

/// How many plaintext bytes one batch may gather before it is sealed and
/// written: large enough to fill TLS records, small enough that a batch is
/// never a memory problem.
pub const MAX_BATCH: usize = 64 * 1024;

/// What each of the writer's two buffers (plaintext and sealed) may keep
/// once the client has been quiet for [`IDLE_AFTER`]. A batch can need up
/// to [`MAX_BATCH`] (a `JOIN`'s history replay, a busy room), but keeping
/// that much for every idle client after one burst would cost 10,000
/// clients more than a gigabyte.
const KEEP_WHILE_IDLE: usize = 4 * 1024;

/// How long the writer waits with large buffers before giving them back.
/// Not at once: a busy writer often finds its outbox empty for an instant,
/// and shrinking then, to grow again for the next batch, cost a quarter of
/// the flat-out throughput (measured: 4.78 → 3.6 M deliveries/s).
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

/// What the writer has taken from the outbox and not yet written.
#[derive(Default)]
struct Batch {
    /// How lines are appended to `plain`.
    framing: Framing,
    /// The plaintext of its lines.
    plain: Vec<u8>,
    /// Markers, signalled once the bytes queued before them are written
    /// to the socket (see [`Outgoing::Mark`]).
    marks: Vec<oneshot::Sender<()>>,
    /// The `DM` lines among them, handed back if they are not written.
    dms: Vec<String>,
    /// Stored DMs among them, deleted once written (see
    /// [`Outgoing::Claim`]).
    claims: Vec<crate::db::ClaimedDms>,
}

impl Batch {
    /// Appends one outbox item.
    fn push(&mut self, item: Outgoing) {
        match item {
            Outgoing::Shared(line) => self.framing.append(&mut self.plain, line.as_bytes()),
            Outgoing::Owned(line) => self.framing.append(&mut self.plain, line.as_bytes()),
            Outgoing::Dm(line) => {
                self.framing.append(&mut self.plain, line.as_bytes());
                self.dms.push(line);
            }
            Outgoing::Wake => {}
            Outgoing::Mark(written) => self.marks.push(written),
            Outgoing::Claim(claim) => self.claims.push(claim),
        }
    }
}

/// Runs the writer until the connection closes, and returns the `DM` lines
/// it took but did not write (see the module's doc). `socket` is this
/// thread's own clone of the connection's socket; `framing` says how its
/// lines go on the wire.
pub fn run(
    tls: Arc<Mutex<ServerConnection>>,
    socket: Arc<TcpStream>,
    outbox: OutboxReceiver,
    client: Arc<Client>,
    write_timeout: Duration,
    queue_lines: usize,
    framing: Framing,
) -> Vec<String> {
    // What a single `write` call may block; `write_by` shortens it for the
    // rest of a batch that is late.
    if let Err(e) = socket.set_write_timeout(Some(write_timeout)) {
        log::warn!("conn {}: cannot set a write timeout: {e}", client.id);
    }
    let mut batch = Batch {
        framing,
        ..Batch::default()
    };
    let mut wire: Vec<u8> = Vec::new();
    // DMs taken but not written, returned when the writer stops.
    let mut unsent: Vec<String> = Vec::new();
    loop {
        // 1. Wait for work (unless we already know we are closing), then
        //    take whatever else is already queued. `recv` cannot fail: it
        //    does only once every sender is gone, and `client`, which this
        //    thread holds, owns one.
        if client.closing().is_none() {
            let first = if batch.plain.capacity().max(wire.capacity()) > KEEP_WHILE_IDLE {
                match outbox.recv_timeout(IDLE_AFTER) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Quiet for a while: give the burst's memory back,
                        // then wait as long as it takes.
                        batch.plain.shrink_to(KEEP_WHILE_IDLE);
                        wire.shrink_to(KEEP_WHILE_IDLE);
                        outbox.recv().ok()
                    }
                    other => other.ok(),
                }
            } else {
                outbox.recv().ok()
            };
            batch.push(first.expect("the client holds a sender of its own outbox"));
            while batch.plain.len() < MAX_BATCH {
                match outbox.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
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
                batch.plain.clear();
                unsent.append(&mut batch.dms);
                // What these markers and claims stood for will never be
                // written: their waiters hear that the writer is gone, not
                // that it wrote, and the claimed DMs stay stored.
                batch.marks.clear();
                batch.claims.clear();
            }
            Some(_) => {
                for _ in 0..queue_lines {
                    match outbox.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
            }
            None => {}
        }
        if let Some(Closing::Bye(reason)) = closing {
            let bye = ServerLine::Bye {
                reason,
                text: bye_text(reason).into(),
            };
            framing.append(&mut batch.plain, format!("{bye}\n").as_bytes());
            framing.append_close(&mut batch.plain, reason);
        }

        // 3. Seal under the lock: memory only, no I/O.
        {
            let mut conn = tls
                .lock()
                .expect("tls lock poisoned: the reader panicked mid-record");
            if !batch.plain.is_empty() {
                // The buffer limit was lifted after the handshake, so this
                // takes all of `plain`; a batch is at most MAX_BATCH plus a line.
                if let Err(e) = conn.writer().write_all(&batch.plain) {
                    log::debug!("conn {}: rustls refused plaintext: {e}", client.id);
                    break;
                }
            }
            if closing.is_some() {
                conn.send_close_notify();
            }
            while conn.wants_write() {
                if conn.write_tls(&mut wire).is_err() {
                    break;
                }
            }
        }
        batch.plain.clear();

        // 4. Write with the lock released, by the batch's deadline. The
        //    reader keeps reading meanwhile.
        if !wire.is_empty() {
            let deadline = Instant::now() + write_timeout;
            if let Err(e) = write_by(&socket, &wire, deadline, write_timeout) {
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
            wire.clear();
        }
        // Everything queued before these markers, these DMs and these
        // claimed stored DMs is now in the kernel's hands. (On a failed
        // write above the markers and claims are dropped instead: their
        // waiters hear that the writer is gone, the claimed DMs stay
        // stored; the DMs are handed back below.)
        for written in batch.marks.drain(..) {
            let _ = written.send(());
        }
        for claim in batch.claims.drain(..) {
            claim.delete_later();
        }
        batch.dms.clear();
        if closing.is_some() {
            break;
        }
    }
    // Closing both directions also wakes the reader if it is still blocked
    // in `read` (for example after a failed write).
    let _ = socket.shutdown(Shutdown::Both);
    // Once `closing` is set no DM can be queued any more (`Client::send_dm`),
    // so what is in the outbox now is all there will ever be.
    client.close(Closing::Silent);
    unsent.append(&mut batch.dms);
    while let Ok(item) = outbox.try_recv() {
        if let Outgoing::Dm(line) = item {
            unsent.push(line);
        }
    }
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

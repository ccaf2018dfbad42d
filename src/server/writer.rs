//! The writer thread of one client: drains the outbox, seals the lines into
//! TLS records, writes them to the socket. It is the only thread that ever
//! writes to this client's socket.
//!
//! # Sharing one TLS session with the reader (STYLE H9, P1)
//!
//! A rustls connection is one state machine for both directions; it is not
//! full-duplex. The reader and this writer therefore share it behind a
//! `Mutex`, with one rule: **the lock guards only in-memory steps.** Here
//! that is "put plaintext into rustls and take the encrypted bytes out into
//! a `Vec`". The blocking `write` to the socket happens *after* the lock is
//! released. The reader does the same on its side: it blocks in `read` with
//! no lock, then locks only to feed rustls the bytes it got. Neither thread
//! can hold the lock while waiting for the network, so neither can stall the
//! other (the deadlock of native-tls#276 cannot happen).
//!
//! Because only this thread writes to the socket, TLS records leave in the
//! order rustls sealed them, which TLS requires.
//!
//! # Coalescing
//!
//! After one blocking `recv`, the writer takes everything else already
//! queued (up to [`MAX_BATCH`] bytes) and seals it as one piece: a busy room
//! costs one TLS record and one `write` syscall per batch, not per line.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rustls::ServerConnection;

use crate::protocol::{ByeReason, ServerLine};

use super::client::{bye_text, Client, Closing, Outgoing};
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

/// Appends one outbox item to the batch. A marker is kept aside, to be
/// signalled once the bytes queued before it have been written to the
/// socket (see [`Outgoing::Mark`]).
fn push(plain: &mut Vec<u8>, marks: &mut Vec<oneshot::Sender<()>>, item: Outgoing) {
    match item {
        Outgoing::Shared(line) => plain.extend_from_slice(line.as_bytes()),
        Outgoing::Owned(line) => plain.extend_from_slice(line.as_bytes()),
        Outgoing::Wake => {}
        Outgoing::Mark(written) => marks.push(written),
    }
}

/// Runs the writer until the connection closes. `socket` is this thread's
/// own clone of the connection's socket.
pub fn run(
    tls: Arc<Mutex<ServerConnection>>,
    socket: Arc<TcpStream>,
    outbox: Receiver<Outgoing>,
    client: Arc<Client>,
    write_timeout: Duration,
    queue_lines: usize,
) {
    // A peer that stops reading fills its TCP window and then our write
    // blocks; the timeout bounds how long this thread can be stuck there.
    if let Err(e) = socket.set_write_timeout(Some(write_timeout)) {
        log::warn!("conn {}: cannot set a write timeout: {e}", client.id);
    }
    let mut plain: Vec<u8> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    // Markers taken with the current batch, signalled once it is written.
    let mut marks: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        // 1. Wait for work (unless we already know we are closing), then
        //    take whatever else is already queued.
        if client.closing().is_none() {
            let first = if plain.capacity().max(wire.capacity()) > KEEP_WHILE_IDLE {
                match outbox.recv_timeout(IDLE_AFTER) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Quiet for a while: give the burst's memory back,
                        // then wait as long as it takes.
                        plain.shrink_to(KEEP_WHILE_IDLE);
                        wire.shrink_to(KEEP_WHILE_IDLE);
                        outbox.recv().ok()
                    }
                    other => other.ok(),
                }
            } else {
                outbox.recv().ok()
            };
            match first {
                Some(item) => push(&mut plain, &mut marks, item),
                // Every sender is gone: nobody can reach this client any more.
                None => break,
            }
            while plain.len() < MAX_BATCH {
                match outbox.try_recv() {
                    Ok(item) => push(&mut plain, &mut marks, item),
                    Err(_) => break,
                }
            }
        }

        // 2. Closing? A slow consumer's queue is thrown away (it is the
        //    problem); otherwise what is queued still goes out, then the BYE.
        let closing = client.closing();
        match closing {
            Some(Closing::Bye(ByeReason::SlowConsumer)) => {
                plain.clear();
                // Their lines are thrown away, not written: they must not
                // be signalled (stored DMs are deleted on that signal).
                marks.clear();
            }
            Some(_) => {
                for item in outbox.try_iter().take(queue_lines) {
                    push(&mut plain, &mut marks, item);
                }
            }
            None => {}
        }
        if let Some(Closing::Bye(reason)) = closing {
            let bye = ServerLine::Bye {
                reason,
                text: bye_text(reason).into(),
            };
            plain.extend_from_slice(format!("{bye}\n").as_bytes());
        }

        // 3. Seal under the lock: memory only, no I/O.
        {
            let mut conn = tls
                .lock()
                .expect("tls lock poisoned: the reader panicked mid-record");
            if !plain.is_empty() {
                // The buffer limit was lifted after the handshake, so this
                // takes all of `plain`; a batch is at most MAX_BATCH plus a line.
                if let Err(e) = conn.writer().write_all(&plain) {
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
        plain.clear();

        // 4. Write with the lock released. This may block (up to the write
        //    timeout); the reader keeps reading meanwhile.
        if !wire.is_empty() {
            if let Err(e) = (&*socket).write_all(&wire) {
                log::debug!("conn {}: write failed: {e}", client.id);
                break;
            }
            wire.clear();
        }
        // Everything queued before these markers is now in the kernel's
        // hands: tell whoever waits. (On a failed write above they are
        // dropped instead, and their waiters hear that the writer is gone.)
        for written in marks.drain(..) {
            let _ = written.send(());
        }
        if closing.is_some() {
            break;
        }
    }
    // Closing both directions also wakes the reader if it is still blocked
    // in `read` (for example after a failed write).
    let _ = socket.shutdown(Shutdown::Both);
    client.close(Closing::Silent);
}

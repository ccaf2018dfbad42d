//! The thread of one connection: TLS handshake, then the reader loop.
//!
//! ```text
//!   conn-42 (this file)                        conn-42-writer (writer.rs)
//!   ───────────────────                        ──────────────────────────
//!   handshake (deadline)
//!   spawn writer ─────────────────────────────▶ recv outbox ◀── other threads
//!   loop:                                        lock tls: seal batch
//!     read(socket)          no lock held         write(socket)  no lock held
//!     lock tls: decrypt     memory only
//!     split lines, run each command in order
//!   on exit: SessionGuard (leave room, log out, forget) ; join writer
//! ```
//!
//! This thread owns the connection until the handshake is done, so the
//! handshake needs no lock. After that, the rustls state is shared with the
//! writer behind a mutex that guards memory-only steps (see `writer.rs` for
//! the rule). The reader blocks in `read` with no lock held; a broadcast to
//! this client never waits for this thread at all, because it goes into the
//! outbox.
//!
//! Every exit path, an error or a panic included, runs [`SessionGuard`]'s
//! `Drop`, so a client can never stay in a room, or online, after its
//! thread has ended (STYLE H12).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::protocol::{ByeReason, LeftReason, LineSplitter, ServerLine};
use crate::tls;

use super::client::{bye_text, Client, Closing};
use super::commands::{Flow, Session};
use super::{outbox, sync, writer, State, WRITER_STACK};

/// How many bytes one `read` may take from the socket. Chat lines are
/// short: a read of 4 KiB takes many of them at once, and a full 16 KiB TLS
/// record simply takes several reads. Every client holds this buffer for
/// its whole life, so it is kept small (memory per idle client matters at
/// 10,000 clients; `docs/BENCHMARKS.md` has the measurements).
const READ_CHUNK: usize = 4 * 1024;

/// Idle time before the first TCP keepalive probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Time between keepalive probes once they start.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Undoes a connection's registrations when its thread ends, however it
/// ends.
struct SessionGuard {
    /// The shared state holding the hub.
    state: Arc<State>,
    /// The connection being cleaned up.
    client: Arc<Client>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        // The order is what the other members see: first the room hears
        // `LEFT … quit`, then the user is no longer online.
        self.client.close(Closing::Silent);
        if let Some(room) = self.state.hub.leave(&self.client, LeftReason::Quit) {
            log::debug!("conn {}: left {room} on disconnect", self.client.id);
        }
        self.state.hub.logout(&self.client);
        self.state.hub.remove_conn(self.client.id);
        log::info!(
            "conn {} ({}): disconnected ({})",
            self.client.id,
            self.client.peer,
            self.client.display_name()
        );
    }
}

/// Keeps a handshaking connection's socket where shutdown can find it;
/// dropping the guard takes it out again.
struct Handshaking<'a> {
    /// The shared state holding the registry.
    state: &'a State,
    /// The connection's number.
    id: u64,
}

impl<'a> Handshaking<'a> {
    /// Registers `socket` as handshaking.
    fn register(state: &'a State, id: u64, socket: &Arc<TcpStream>) -> Self {
        sync::lock(&state.handshaking).insert(id, socket.clone());
        Handshaking { state, id }
    }
}

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        sync::lock(&self.state.handshaking).remove(&self.id);
    }
}

/// Serves one accepted connection to its end. `over_limit` means the server
/// is full: the client gets `BYE TOO_MANY_CONNECTIONS` after the handshake.
pub fn serve(state: Arc<State>, socket: TcpStream, peer: SocketAddr, id: u64, over_limit: bool) {
    let accepted = Instant::now();
    // Lines are small and latency matters more than packet count: send
    // each batch at once instead of waiting for Nagle's algorithm.
    if let Err(e) = socket.set_nodelay(true) {
        log::debug!("conn {id}: cannot set TCP_NODELAY: {e}");
    }
    // A peer that vanished without a FIN (laptop lid closed, Wi-Fi gone)
    // would otherwise leave a logged-in reader blocked forever: keepalive
    // probes find it within a few minutes and the read then fails.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(&socket).set_tcp_keepalive(&keepalive) {
        log::debug!("conn {id}: cannot enable TCP keepalive: {e}");
    }
    // The config current *now*: a reload after this point affects the next
    // connection, not this one.
    let mut conn = match ServerConnection::new(state.tls.current()) {
        Ok(c) => c,
        Err(e) => {
            log::error!("conn {id}: cannot start a TLS session: {e}");
            return;
        }
    };
    // One socket, shared: this thread reads it, the writer thread writes
    // it (`&TcpStream` is both `Read` and `Write`), and whoever closes the
    // connection shuts it down. One file descriptor per client, not three.
    let socket = Arc::new(socket);
    // Registered while handshaking, so that a shutdown can cut a slow
    // handshake short instead of waiting for its deadline.
    let handshake = {
        let _registered = Handshaking::register(&state, id, &socket);
        tls::handshake(
            &mut conn,
            &socket,
            accepted + state.config.handshake_timeout,
        )
    };
    if let Err(e) = handshake {
        log::info!("conn {id} ({peer}): handshake failed: {e}");
        return;
    }
    // With --client-ca, the verified client certificate says which
    // machine this is: its subject goes in the log with the connection.
    let client_cert = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map_or_else(String::new, |cert| {
            format!(", client certificate {}", tls::subject(cert))
        });
    log::info!(
        "conn {id} ({peer}): handshake ok ({}{client_cert})",
        conn.protocol_version()
            .map_or("?".into(), |v| format!("{v:?}"))
    );
    // From here on the writer coalesces lines and bounds its own batches, so
    // rustls need not cap the plaintext it buffers.
    conn.set_buffer_limit(None);
    if over_limit || state.shutdown.is_triggered() {
        let reason = if over_limit {
            ByeReason::TooManyConnections
        } else {
            ByeReason::Shutdown
        };
        refuse(&mut conn, &socket, reason);
        return;
    }

    let (tx, rx) = outbox::outbox(state.config.queue_lines);
    let client = Arc::new(Client::new(id, peer, tx, socket.clone()));
    let tls = Arc::new(Mutex::new(conn));

    let writer = {
        let (tls, client, writer_socket) = (tls.clone(), client.clone(), socket.clone());
        let (timeout, lines) = (state.config.write_timeout, state.config.queue_lines);
        thread::Builder::new()
            .name(format!("conn-{id}-writer"))
            .stack_size(WRITER_STACK)
            .spawn(move || writer::run(tls, writer_socket, rx, client, timeout, lines))
    };
    let writer = match writer {
        Ok(handle) => handle,
        Err(e) => {
            // No writer: the failed spawn dropped its clone of the session,
            // so this thread owns it alone again and can write the BYE
            // itself, with no lock held across the socket write.
            log::error!("conn {id}: cannot spawn a writer thread: {e}");
            if let Ok(conn) = Arc::try_unwrap(tls) {
                let mut conn = conn.into_inner().expect("tls lock poisoned");
                refuse(&mut conn, &socket, ByeReason::TooManyConnections);
            }
            return;
        }
    };

    state.hub.add_conn(client.clone());
    let guard = SessionGuard {
        state: state.clone(),
        client: client.clone(),
    };
    // A shutdown that started while we were registering would have missed us.
    if state.shutdown.is_triggered() {
        client.close(Closing::Bye(ByeReason::Shutdown));
    }

    let mut session = Session::new(client.clone(), &state);
    session.hello();
    read_loop(&state, &mut session, &socket, &tls, accepted);

    drop(guard);
    drop(session);
    if writer.join().is_err() {
        log::error!("conn {id}: the writer thread panicked");
    }
}

/// Reads, decrypts and handles lines until the connection ends.
fn read_loop(
    state: &State,
    session: &mut Session,
    socket: &TcpStream,
    tls: &Mutex<ServerConnection>,
    accepted: Instant,
) {
    let client = session.client.clone();
    let id = client.id;
    let login_deadline = accepted + state.config.login_timeout;
    let mut splitter = LineSplitter::new(state.config.max_line);
    // On the stack, not the heap: the TLS handshake has already touched
    // deeper stack pages than this loop will ever use, so this buffer costs
    // no memory of its own (memory per idle client matters at 10,000).
    let mut buf = [0u8; READ_CHUNK];
    // The read timeout currently set on the socket (the handshake left one).
    let mut armed = socket.read_timeout().ok().flatten();
    // With TLS 1.3 a client may send its first lines in the same packet as
    // its last handshake message; rustls has already decrypted them during
    // the handshake. Take them now, or they would wait for the next read.
    drain_plaintext(&mut tls.lock().expect("tls lock poisoned"), &mut splitter);
    // Set when the peer sent close_notify or broke the TLS stream: the
    // lines already decrypted are still handled, then the loop ends.
    let mut finished = false;
    loop {
        // 1. Lines, strictly in order.
        while let Some(event) = splitter.next_event() {
            if client.closing().is_some() {
                return;
            }
            if session.handle(state, event) == Flow::Close {
                return;
            }
        }
        if finished {
            if splitter.has_partial() {
                log::info!("conn {id}: peer closed in the middle of a line");
            }
            return;
        }

        // 2. Until the user logs in, a read waits no longer than the login
        //    deadline; after that, reads wait as long as the client stays
        //    silent (TCP keepalive finds peers that vanished).
        let timeout = if session.logged_in() {
            None
        } else {
            let left = login_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::info!("conn {id}: no login in time");
                client.close(Closing::Bye(ByeReason::LoginTimeout));
                return;
            }
            Some(left)
        };
        // One system call, and only when the timeout changes.
        if timeout != armed {
            if let Err(e) = socket.set_read_timeout(timeout) {
                log::debug!("conn {id}: cannot set the read timeout: {e}");
                return;
            }
            armed = timeout;
        }

        // 3. Block in read, no lock held.
        let n = match { socket }.read(&mut buf) {
            Ok(0) => {
                if splitter.has_partial() {
                    log::info!("conn {id}: connection closed in the middle of a line");
                }
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if tls::is_timeout(&e) => continue, // the deadline check above decides
            Err(e) => {
                log::debug!("conn {id}: read failed: {e}");
                return;
            }
        };

        // 4. Decrypt under the lock: memory only.
        let (peer_closed, tls_error, wants_write) = {
            let mut conn = tls.lock().expect("tls lock poisoned: the writer panicked");
            let (closed, error) = decrypt(&mut conn, &buf[..n], &mut splitter);
            (closed, error, conn.wants_write())
        };
        if wants_write {
            // An alert or a key update for the writer to send.
            client.nudge();
        }
        if let Some(e) = &tls_error {
            log::info!("conn {id}: TLS error: {e}");
        }
        finished = peer_closed || tls_error.is_some();
    }
}

/// Feeds received bytes to rustls and moves the plaintext into the line
/// splitter (a memory-only step, fine under the TLS lock; the lines are
/// handled after the lock is released).
/// Returns whether the peer sent `close_notify`, and a TLS error if the
/// bytes were bad.
fn decrypt(
    conn: &mut ServerConnection,
    mut data: &[u8],
    lines: &mut LineSplitter,
) -> (bool, Option<rustls::Error>) {
    let mut closed = false;
    while !data.is_empty() {
        if let Err(e) = conn.read_tls(&mut data) {
            return (closed, Some(rustls::Error::General(e.to_string())));
        }
        match conn.process_new_packets() {
            Ok(io_state) => closed |= io_state.peer_has_closed(),
            Err(e) => return (closed, Some(e)),
        }
        drain_plaintext(conn, lines);
    }
    (closed, None)
}

/// Moves the plaintext rustls holds into the line splitter.
fn drain_plaintext(conn: &mut ServerConnection, lines: &mut LineSplitter) {
    let mut chunk = [0u8; 4096];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => lines.push(&chunk[..n]),
            // WouldBlock: no more plaintext for now. UnexpectedEof: the
            // peer closed without close_notify (truncation).
            Err(_) => break,
        }
    }
}

/// Sends one `BYE` and closes, on a connection that has no writer thread
/// (the server is full, shutting down, or could not start a thread).
fn refuse(conn: &mut ServerConnection, mut socket: &TcpStream, reason: ByeReason) {
    let bye = ServerLine::Bye {
        reason,
        text: bye_text(reason).into(),
    };
    let _ = conn.writer().write_all(format!("{bye}\n").as_bytes());
    conn.send_close_notify();
    let _ = socket.set_write_timeout(Some(Duration::from_secs(2)));
    while conn.wants_write() {
        if conn.write_tls(&mut socket).is_err() {
            break;
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
}

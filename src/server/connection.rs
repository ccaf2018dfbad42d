//! The threads of one connection: the TLS handshake, then the reader loop.
//!
//! ```text
//!   conn-42-tls (short-lived)
//!   ─────────────────────────
//!   handshake (deadline)
//!   spawn writer ──────────────────────────────┐
//!   spawn reader ──┐                           │
//!   end            ▼                           ▼
//!   conn-42 (this file)                        conn-42-writer (writer.rs)
//!   ───────────────────                        ──────────────────────────
//!   loop:                                        recv outbox ◀── other threads
//!     read(socket)          no lock held         lock tls: seal batch
//!     lock tls: decrypt     memory only          write(socket)  no lock held
//!     split lines, run each command in order
//!   on exit: SessionGuard (leave room, log out, forget) ; join writer
//! ```
//!
//! A connection whose handshake negotiated ALPN `http/1.1` (a browser) is
//! handed to a `conn-N-http` thread instead (`web::serve`); if it upgrades
//! to WebSocket, that thread becomes its reader here ([`websocket`]), with
//! a WebSocket decoder in front of the line splitter and a writer that
//! frames each line: the rest is this file and `writer.rs` unchanged.
//!
//! The handshake thread owns the connection until the handshake is done,
//! so the handshake needs no lock. It then starts the two threads that live
//! as long as the client and ends, taking with it the stack pages and the
//! freed allocations of the deepest code a connection runs (see
//! [`handshake`]). From then on the rustls state is shared by the reader
//! and the writer behind a mutex that guards memory-only steps (see
//! `writer.rs` for the rule). The reader blocks in `read` with no lock
//! held; a broadcast to this client never waits for this thread at all,
//! because it goes into the outbox.
//!
//! Every exit path, an error or a panic included, runs [`SessionGuard`]'s
//! `Drop`, so a client can never stay in a room, or online, after its
//! thread has ended.
//!
//! Four clocks bound how long a connection may hold its threads without
//! doing its part: the handshake's deadline (`--handshake-timeout`, for the
//! whole handshake, see `tls::handshake`), the login deadline
//! (`--login-timeout`, from the accepted connection), the idle timeout
//! once logged in (`--idle-timeout`, from the last complete line) and the
//! writer's timeout for a peer that stops reading (`writer.rs`). The
//! reader enforces the middle two with its socket's read timeout.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::protocol::{ByeReason, LeftReason, LineSplitter, ServerLine};
use crate::tls;

use crate::web::metrics::Kind;
use crate::web::ws::Decoder;

use super::admission::{HandshakePermit, NotLoggedIn};
use super::client::{bye_text, Client, Closing};
use super::commands::{Flow, Session};
use super::writer::Framing;
use super::{sync, writer, Slot, State, READER_STACK, WRITER_STACK};

/// How many bytes one `read` may take from the socket. Chat lines are
/// short: a read of 2 KiB takes a couple of dozen of them at once, and a
/// full 16 KiB TLS record simply takes several reads. Every client holds
/// this buffer for its whole life, and everything the reader calls runs
/// below it on the stack, so it is kept small: 2 KiB instead of 4 saves
/// one stack page per idle client (`docs/BENCHMARKS.md`, "Memory per
/// connection", has the measurements).
const READ_CHUNK: usize = 2 * 1024;

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
        log::info!(
            "conn {} ({}): disconnected ({})",
            self.client.id,
            self.client.peer,
            self.client.display_name()
        );
    }
}

/// Keeps a connection in the hub's list of connections until its session
/// has ended completely (its writer joined, the DMs it could not write
/// stored), so that shutdown can still reach a connection whose writer is
/// stuck on a peer that does not read (see `server::run_with`).
struct Registered {
    /// The shared state holding the hub.
    state: Arc<State>,
    /// The connection's number.
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.hub.remove_conn(self.id);
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

/// A connection whose TLS handshake is done, on its way from the
/// handshake thread to its session thread.
struct Established {
    /// The client, already known to its writer.
    client: Arc<Client>,
    /// The TLS session, shared with the writer.
    tls: Arc<Mutex<ServerConnection>>,
    /// The socket, shared with the writer and whoever closes it.
    socket: Arc<TcpStream>,
    /// The writer thread, joined when the session ends; it returns the
    /// `DM` lines it could not write.
    writer: thread::JoinHandle<Vec<String>>,
    /// When the connection was accepted (the login deadline counts from it).
    accepted: Instant,
    /// The connection's place in the live count, held until the session ends.
    slot: Slot,
    /// Its place among the connections not logged in, given back at its
    /// `LOGIN` (`commands.rs`) or, at the latest, when the session ends.
    not_logged_in: NotLoggedIn,
}

/// What the accept loop hands a new connection along with its socket.
pub(super) struct Admitted {
    /// The server was full when it arrived: after the handshake it gets
    /// `BYE TOO_MANY_CONNECTIONS`.
    pub(super) over_limit: bool,
    /// Its place in the live count, held until the session ends.
    pub(super) slot: Slot,
    /// Its handshake place, given back as soon as the handshake ends.
    pub(super) handshake: HandshakePermit,
}

/// Runs on a short-lived `conn-N-tls` thread: the TLS handshake (with its
/// deadline), then hands the connection to a fresh `conn-N` thread for the
/// session and ends. A client that arrived when the server was full, or
/// when too many connections were not logged in, gets
/// `BYE TOO_MANY_CONNECTIONS` after the handshake instead.
///
/// Why a thread of its own: the handshake is the deepest code a connection
/// ever runs (key exchange and signature inside rustls and ring), and a
/// thread keeps every stack page and every freed allocation it touched for
/// as long as it lives. Done on the session thread, that cost each idle
/// client about 9 KiB more for its whole life. When this thread
/// ends, glibc gives its stack pages and its malloc cache back, so the
/// long-lived session threads start clean (measurements in
/// `docs/BENCHMARKS.md`, "Memory per connection").
pub(super) fn handshake(
    state: Arc<State>,
    socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    admitted: Admitted,
) {
    let Admitted {
        over_limit,
        slot,
        handshake: handshake_place,
    } = admitted;
    let accepted = Instant::now();
    // Lines are small and latency matters more than packet count: send
    // each batch at once instead of waiting for Nagle's algorithm.
    if let Err(e) = socket.set_nodelay(true) {
        log::debug!("conn {id}: cannot set TCP_NODELAY: {e}");
    }
    // A peer that vanished without a FIN (laptop lid closed, Wi-Fi gone)
    // would otherwise hold a logged-in reader until the idle timeout
    // (30 min by default): keepalive probes find it within a few minutes
    // and the read then fails.
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
    // One socket, shared: the reader reads it, the writer thread writes
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
    // The handshake is over, however it ended: its place lets the accept
    // loop take the next connection.
    drop(handshake_place);
    if let Err(e) = handshake {
        log::info!("conn {id} ({peer}): handshake failed: {e}");
        state.metrics.handshake_failed(failure_cause(&e));
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
    // One port, two protocols: a browser negotiated `http/1.1` in ALPN and
    // is served HTTP on a thread of its own; every other connection (no
    // ALPN: the terminal client, `openssl s_client`) is a v1 client.
    if conn.alpn_protocol() == Some(tls::ALPN_HTTP) {
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}-http"))
            .stack_size(READER_STACK)
            .spawn(move || {
                crate::web::serve(state, conn, socket, (id, peer), slot, over_limit);
            });
        if let Err(e) = spawned {
            log::error!("conn {id}: cannot start a thread: {e}");
        }
        return;
    }
    if over_limit || state.shutdown.is_triggered() {
        let reason = if over_limit {
            ByeReason::TooManyConnections
        } else {
            ByeReason::Shutdown
        };
        refuse(&mut conn, &socket, reason);
        return;
    }
    let Some(not_logged_in) = state.unauthenticated.admit(id) else {
        log::warn!(
            "conn {id} ({peer}): refused, {} connections are not logged in",
            state.config.max_unauthenticated
        );
        refuse(&mut conn, &socket, ByeReason::TooManyConnections);
        return;
    };

    // Both long-lived threads are started from here, so that neither
    // spends stack on starting a thread either.
    let Some((client, tls, writer)) =
        start_writer(&state, conn, &socket, (id, peer), Framing::Lines)
    else {
        return;
    };
    let established = Established {
        client: client.clone(),
        tls,
        socket,
        writer,
        accepted,
        slot,
        not_logged_in,
    };
    // The reader gets the connection through a channel rather than in its
    // closure: if the spawn fails, the closure is dropped but the
    // connection is still ours, and its writer can say goodbye.
    let (hand_over, take_over) = mpsc::sync_channel::<Established>(1);
    let spawned = thread::Builder::new()
        .name(format!("conn-{id}"))
        .stack_size(READER_STACK)
        .spawn(move || {
            if let Some(established) = taken_over(&take_over) {
                session(state, established, None);
            }
        });
    match spawned {
        // Detached: the slot it holds is what shutdown waits on.
        Ok(_) => {
            let _ = hand_over.send(established);
        }
        Err(e) => {
            log::error!("conn {id}: cannot spawn a reader thread: {e}");
            client.close(Closing::Bye(ByeReason::TooManyConnections));
            if established.writer.join().is_err() {
                log::error!("conn {id}: the writer thread panicked");
            }
        }
    }
}

/// The connection, once the accepting side has handed it over; `None` if
/// it never does (its spawn of this thread was reported as failed).
///
/// A function of its own, never inlined: the channel's blocking receive
/// takes a few hundred bytes of stack, and inlined into the reader's
/// first frame they would stay under its whole session, on a stack page
/// every idle client keeps (see "Memory per connection" in
/// docs/BENCHMARKS.md).
#[inline(never)]
fn taken_over(take_over: &mpsc::Receiver<Established>) -> Option<Established> {
    take_over.recv().ok()
}

/// A client whose writer runs: its handle, the TLS session it shares with
/// the writer, and the writer thread.
type Started = (
    Arc<Client>,
    Arc<Mutex<ServerConnection>>,
    thread::JoinHandle<Vec<String>>,
);

/// Starts a connection's writer thread with `framing`; returns the
/// client's handle, the shared TLS session and the writer. If the thread
/// cannot be started, the client is told `BYE TOO_MANY_CONNECTIONS` (as a
/// line) and `None` is returned.
fn start_writer(
    state: &State,
    conn: ServerConnection,
    socket: &Arc<TcpStream>,
    (id, peer): (u64, SocketAddr),
    framing: Framing,
) -> Option<Started> {
    let tls = Arc::new(Mutex::new(conn));
    let queue = (state.config.queue_lines, state.config.queue_bytes);
    let client = Arc::new(Client::new(
        id,
        peer,
        tls.clone(),
        socket.clone(),
        queue,
        framing,
    ));
    let writer = {
        let client = client.clone();
        let (timeout, lines) = (state.config.write_timeout, state.config.queue_lines);
        thread::Builder::new()
            .name(format!("conn-{id}-writer"))
            .stack_size(WRITER_STACK)
            .spawn(move || writer::run(client, timeout, lines))
    };
    match writer {
        Ok(handle) => Some((client, tls, handle)),
        Err(e) => {
            // No writer: the failed spawn dropped its clone of the client,
            // and dropping ours drops the client's share of the session,
            // so this thread owns it alone again and can write the BYE
            // itself, with no lock held across the socket write.
            log::error!("conn {id}: cannot spawn a writer thread: {e}");
            drop(client);
            if let Ok(conn) = Arc::try_unwrap(tls) {
                let mut conn = conn.into_inner().expect("tls lock poisoned");
                refuse(&mut conn, socket, ByeReason::TooManyConnections);
            }
            None
        }
    }
}

/// Runs on a `conn-N-http` thread whose request was upgraded to WebSocket
/// (`web::serve`): the connection becomes an ordinary chat client. Its
/// writer frames each line as a text message; this thread becomes its
/// reader, with a WebSocket decoder in front of the line splitter. The
/// login deadline counts from the upgrade. `already`: what the peer sent
/// behind its upgrade request.
pub(crate) fn websocket(
    state: Arc<State>,
    conn: ServerConnection,
    socket: Arc<TcpStream>,
    (id, peer): (u64, SocketAddr),
    (slot, not_logged_in): (Slot, NotLoggedIn),
    already: Vec<u8>,
) {
    let Some((client, tls, writer)) =
        start_writer(&state, conn, &socket, (id, peer), Framing::WebSocket)
    else {
        return;
    };
    let decoder = Box::new(Decoder::new(state.config.max_line, &already));
    let established = Established {
        client,
        tls,
        socket,
        writer,
        accepted: Instant::now(),
        slot,
        not_logged_in,
    };
    session(state, established, Some(decoder));
}

/// The handshake failure's cause, as `/metrics` counts it.
fn failure_cause(e: &crate::error::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("timed out") {
        "timeout"
    } else if text.contains("closed") {
        "closed"
    } else {
        "tls"
    }
}

/// Runs on the `conn-N` thread (or, for a WebSocket, on the `conn-N-http`
/// thread): reads and handles lines until the connection ends, then
/// cleans up and waits for the writer. `decoder`: the WebSocket frame
/// decoder in front of the line splitter, for a browser; boxed, so that a
/// terminal client's reader does not carry the room for one on its stack.
fn session(state: Arc<State>, established: Established, decoder: Option<Box<Decoder>>) {
    let Established {
        client,
        tls,
        socket,
        writer,
        accepted,
        slot: _slot,
        not_logged_in: _not_logged_in,
    } = established;
    let id = client.id;
    let kind = if decoder.is_some() {
        Kind::WebSocket
    } else {
        Kind::Terminal
    };
    let _counted = state.metrics.connection(kind);
    state.hub.add_conn(client.clone());
    // Dropped last, when this function returns.
    let _registered = Registered {
        state: state.clone(),
        id,
    };
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
    read_loop(&state, &mut session, (&socket, &tls), accepted, decoder);

    if client.closing() == Some(Closing::Bye(ByeReason::SlowConsumer)) {
        state.metrics.slow_consumers.inc();
    }
    drop(guard);
    drop(session);
    match writer.join() {
        Ok(unsent) => super::commands::store_unsent_dms(&state, &client, unsent),
        Err(_) => log::error!("conn {id}: the writer thread panicked"),
    }
}

/// Reads, decrypts and handles lines until the connection ends.
fn read_loop(
    state: &State,
    session: &mut Session,
    (socket, tls): (&TcpStream, &Mutex<ServerConnection>),
    accepted: Instant,
    mut decoder: Option<Box<Decoder>>,
) {
    let client = session.client.clone();
    let id = client.id;
    let login_deadline = accepted + state.config.login_timeout;
    // When the last complete line arrived: the idle timeout counts from
    // it, not from the last byte, so a client that dribbles a line that
    // never ends is as idle as a silent one.
    let mut last_line = Instant::now();
    let mut splitter = LineSplitter::new(state.config.max_line);
    // On the stack: it costs the same there as on the heap, and goes with
    // the thread.
    let mut buf = [0u8; READ_CHUNK];
    // The read timeout currently set on the socket (the handshake left one).
    let mut armed = socket.read_timeout().ok().flatten();
    // With TLS 1.3 a client may send its first lines in the same packet as
    // its last handshake message; rustls has already decrypted them during
    // the handshake. Take them now, or they would wait for the next read.
    // Set when the peer sent close_notify or broke the TLS stream (or
    // closed its WebSocket): the lines already decrypted are still
    // handled, then the loop ends.
    let mut finished = {
        let mut conn = tls.lock().expect("tls lock poisoned");
        let ended = drain_plaintext(&mut conn, &mut splitter, decoder.as_deref_mut());
        let wants_write = conn.wants_write();
        drop(conn);
        if wants_write {
            client.nudge();
        }
        ended
    };
    loop {
        // 1. Lines, strictly in order.
        while let Some(event) = splitter.next_event() {
            // Any line counts, a malformed one too (it gets its `ERR`).
            last_line = Instant::now();
            // Back-pressure: while this client's own replies wait, its
            // next line waits too (and, behind it, its TCP window).
            if client.closing().is_some() || !client.wait_for_writer() {
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

        // 2. A read waits no longer than the deadline that applies: the
        //    login deadline until the user logs in, then the idle timeout
        //    from the last complete line.
        let (deadline, reason) = if session.logged_in() {
            (last_line + state.config.idle_timeout, ByeReason::Idle)
        } else {
            (login_deadline, ByeReason::LoginTimeout)
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if session.logged_in() {
                log::info!("conn {id}: idle for {:?}", state.config.idle_timeout);
            } else {
                log::info!("conn {id}: no login in time");
            }
            client.close(Closing::Bye(reason));
            return;
        }
        // A read that wakes early costs one more turn of this loop (which
        // arms what is left); one that wakes late breaks the limit. So the
        // timeout is armed after a read timed out, or when the armed one
        // would end after the deadline, and in whole seconds while more
        // than a second is left: a busy client then costs a system call at
        // most once a second, not one per read.
        if armed.is_none_or(|armed| armed > left) {
            let timeout = if left > Duration::from_secs(1) {
                Duration::from_secs(left.as_secs())
            } else {
                left
            };
            if let Err(e) = socket.set_read_timeout(Some(timeout)) {
                log::debug!("conn {id}: cannot set the read timeout: {e}");
                return;
            }
            armed = Some(timeout);
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
            Err(e) if tls::is_timeout(&e) => {
                // Early or on time: the deadline check above decides, and
                // arms what is left.
                armed = None;
                continue;
            }
            Err(e) => {
                log::debug!("conn {id}: read failed: {e}");
                return;
            }
        };

        // 4. Decrypt under the lock: memory only.
        let (peer_closed, tls_error, wants_write) = {
            let mut conn = tls.lock().expect("tls lock poisoned: the writer panicked");
            let (closed, error) =
                decrypt(&mut conn, &buf[..n], &mut splitter, decoder.as_deref_mut());
            (closed, error, conn.wants_write())
        };
        if wants_write {
            // An alert, a key update, or a WebSocket pong or close reply
            // for the writer to send.
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
/// Returns whether the peer sent `close_notify` (or closed its WebSocket),
/// and a TLS error if the bytes were bad.
fn decrypt(
    conn: &mut ServerConnection,
    mut data: &[u8],
    lines: &mut LineSplitter,
    mut decoder: Option<&mut Decoder>,
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
        closed |= drain_plaintext(conn, lines, decoder.as_deref_mut());
    }
    (closed, None)
}

/// Moves the plaintext rustls holds into the line splitter, through the
/// WebSocket decoder if there is one (whose answers, a pong or the reply
/// to a close, go straight back into rustls: whole frames, sealed in
/// order with the writer's under the same lock). Returns whether the
/// WebSocket is over.
fn drain_plaintext(
    conn: &mut ServerConnection,
    lines: &mut LineSplitter,
    decoder: Option<&mut Decoder>,
) -> bool {
    let Some(decoder) = decoder else {
        take_plaintext(conn, |chunk| lines.push(chunk));
        return false;
    };
    take_plaintext(conn, |chunk| decoder.push(chunk));
    let decoded = decoder.decode(lines);
    if !decoded.reply.is_empty() {
        // Into rustls's plaintext buffer (memory only); the writer seals
        // and sends it once nudged.
        let _ = conn.writer().write_all(&decoded.reply);
    }
    if let Some(why) = &decoded.ended {
        log::debug!("WebSocket ended: {why}");
    }
    decoded.ended.is_some()
}

/// Hands every piece of plaintext rustls holds to `take`.
fn take_plaintext(conn: &mut ServerConnection, mut take: impl FnMut(&[u8])) {
    let mut reader = conn.reader();
    // `fill_buf` lends rustls's own buffer: no copy, and no buffer on this
    // thread's stack. An error is WouldBlock (no more plaintext for now)
    // or UnexpectedEof (the peer closed without close_notify).
    while let Ok(chunk) = reader.fill_buf() {
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        take(chunk);
        reader.consume(n);
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

//! The client's network side: connecting, the TLS handshake (and waiting
//! for the server's first words, see [`connect`]), and the one thread that
//! owns the connection afterwards.
//!
//! # One thread owns the TLS connection
//!
//! A rustls connection is a single state machine for both directions: the
//! same `ClientConnection` decrypts what arrives and encrypts what leaves,
//! and its maintainers say plainly that it is not full-duplex (rustls#288).
//! The server splits reading and writing into two threads and locks only
//! the in-memory TLS steps. The client has a simpler option,
//! which rustls's own simple examples and ureq use: **one thread owns the
//! connection and the socket, and nobody else touches either.** It loops:
//!
//! 1. take every line the UI wants sent from its channel, and encrypt it;
//! 2. write the pending TLS records to the socket;
//! 3. read from the socket with a short timeout ([`POLL`], 50 ms), decrypt,
//!    split into lines and send each one, parsed, to the UI.
//!
//! The cost is latency: a line typed while the thread waits in step 3 leaves
//! at most 50 ms later, which nobody notices in a chat, and an idle client
//! wakes 20 times a second, which costs nothing measurable. In exchange
//! there is no lock, so no risk of holding one across a blocking read (which
//! would stall every other user of the lock until the peer spoke), and records leave in the order they were sealed.
//!
//! # Keeping an idle connection alive
//!
//! Tunnels and NAT routers forget connections that stay silent for a few
//! minutes. After [`KEEPALIVE`] (30 s) without traffic in either direction
//! the thread sends `PING keepalive` and swallows the `PONG keepalive`
//! reply, so the menu never sees either (the menu itself never sends
//! `PING`, so the replies it counts stay in step). If nothing at all
//! arrives for another 30 s, the server is gone: the thread reports the
//! connection closed. The server also ends a session that sends no line
//! for its idle timeout (`BYE IDLE`, 30 min by default), even while lines
//! keep arriving from a busy room: so the thread also pings after
//! [`SEND_KEEPALIVE`] (5 min) without sending anything. [`Keepalive`] holds
//! that logic as a pure type that takes the time as an argument, so it is
//! tested without waiting.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion};

use super::trust::Trust;
use super::ui::Event;
use crate::i18n::{CertProblem, Msg};
use crate::protocol::{LineEvent, LineSplitter, ServerLine};
use crate::tls::is_timeout;

/// How long the network thread waits for data before it checks for lines
/// to send. Short enough that typing feels instant, long enough that an idle
/// client costs nothing.
pub const POLL: Duration = Duration::from_millis(50);

/// Silence (in both directions) after which a `PING` is sent, and then the
/// time a `PING` may stay unanswered before the connection counts as lost.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// Time without sending anything after which a `PING` is sent even if
/// lines keep arriving: well inside the server's idle timeout (30 min by
/// default), so that a user who only reads a busy room is not told
/// `BYE IDLE`.
pub const SEND_KEEPALIVE: Duration = Duration::from_secs(5 * 60);

/// How long connecting and the TLS handshake may each take, like the
/// server's handshake limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one socket write may block before the connection counts as
/// broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest line accepted from the server. A `MSG` line is a 4096-byte
/// `SAY` plus a room, a time and a user, so the client's limit is larger
/// than the server's; it only stops a broken server from filling memory.
pub const MAX_SERVER_LINE: usize = 64 * 1024;

/// The token of keepalive pings; the `PONG` that echoes it is swallowed.
const KEEPALIVE_TOKEN: &str = "keepalive";

/// A connection whose TLS handshake has completed, ready for [`spawn`].
#[derive(Debug)]
pub struct Connected {
    /// The TLS state machine.
    tls_conn: ClientConnection,
    /// The TCP socket under it.
    socket: TcpStream,
}

impl Connected {
    /// The negotiated TLS version, for the "handshake succeeded" line:
    /// `TLS 1.3` or `TLS 1.2`.
    pub fn tls_version(&self) -> String {
        match self.tls_conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
            Some(ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
            Some(other) => format!("{other:?}"),
            None => "TLS".into(),
        }
    }
}

/// Connects to `host:port` over TCP, completes the TLS handshake,
/// presenting `server_name` (SNI, and the name checked in `--ca` mode), and
/// waits for the server's first words (see `await_first_words`).
///
/// Runs on the calling thread before any other client thread exists, so it
/// owns the connection alone.
///
/// # Errors
///
/// The sentence to show: [`Msg::CannotResolve`], [`Msg::CannotConnect`], a refused server
/// certificate ([`Msg::CertificateNotPinned`], [`Msg::CertificateNotTrusted`]),
/// our own certificate refused by the server
/// ([`Msg::ClientCertificateRequired`], [`Msg::ClientCertificateRefused`]) or
/// [`Msg::HandshakeFailed`].
pub fn connect(
    host: &str,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<ClientConfig>,
    trust: &Trust,
) -> Result<Connected, Msg> {
    let mut socket = tcp_connect(host, port)?;
    let failed = |detail: String| Msg::HandshakeFailed { detail };
    let shown_name = server_name.to_str().into_owned();
    let mut tls_conn =
        ClientConnection::new(config, server_name).map_err(|e| failed(e.to_string()))?;

    // The handshake, with one deadline for all of it (a server that
    // trickles a byte at a time is cut off like a silent one).
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while tls_conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed("timed out".into()));
        }
        socket
            .set_read_timeout(Some(left))
            .and_then(|()| socket.set_write_timeout(Some(left)))
            .map_err(|e| failed(e.to_string()))?;
        match tls_conn.complete_io(&mut socket) {
            Ok((0, 0)) if tls_conn.is_handshaking() => {
                return Err(failed("the server closed the connection".into()));
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(failed("timed out".into())),
            Err(e) => {
                // rustls queued an alert telling the server why; deliver it,
                // best effort, as rustls's examples do.
                let _ = tls_conn.write_tls(&mut socket);
                return Err(handshake_error(&e, trust, &shown_name));
            }
        }
    }
    await_first_words(&mut tls_conn, &mut socket, deadline)?;
    socket
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .and_then(|()| socket.set_read_timeout(Some(POLL)))
        .map_err(|e| failed(e.to_string()))?;
    Ok(Connected { tls_conn, socket })
}

/// Waits, until `deadline`, for the server's first words after the
/// handshake: normally `HELLO`, which stays in rustls's buffer for the
/// network thread.
///
/// Why wait here: with TLS 1.3, a server that requires a client
/// certificate checks ours only after our side of the handshake is done,
/// and its refusal is the first thing it sends, instead of `HELLO`.
/// Waiting for it here reports the refusal as a failed connection, before
/// any "handshake succeeded" line or menu. A server that says nothing in
/// time is left to the session (whose keepalive deals with silence).
fn await_first_words(
    tls_conn: &mut ClientConnection,
    socket: &mut TcpStream,
    deadline: Instant,
) -> Result<(), Msg> {
    let failed = |detail: String| Msg::HandshakeFailed { detail };
    let refused =
        |e: rustls::Error| certificate_refusal(&e).unwrap_or_else(|| failed(e.to_string()));
    let mut state = tls_conn.process_new_packets().map_err(refused)?;
    while state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| failed(e.to_string()))?;
        match tls_conn.read_tls(socket) {
            // End of stream: the network thread reports it as a lost
            // connection, after any lines that did arrive.
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e.to_string())),
        }
        state = match tls_conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                // Send our alert, best effort, then report theirs.
                let _ = tls_conn.write_tls(socket);
                return Err(refused(e));
            }
        };
    }
    Ok(())
}

/// Opens the TCP connection, trying each address `host` resolves to
/// (`localhost` is often `::1` first, then `127.0.0.1`).
fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, Msg> {
    let addr = format!("{host}:{port}");
    let cannot = |e: io::Error| Msg::CannotConnect {
        addr: addr.clone(),
        detail: e.to_string(),
    };
    // A name that does not resolve is not a server that is down: say so,
    // so that the user checks the name rather than the server.
    let unresolved = |detail: String| Msg::CannotResolve {
        host: host.to_owned(),
        detail,
    };
    let candidates: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| unresolved(e.to_string()))?
        .collect();
    if candidates.is_empty() {
        return Err(unresolved("no address found".into()));
    }
    let mut last_error = io::Error::new(ErrorKind::NotFound, "no address found");
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(socket) => {
                // A chat sends small lines: do not let Nagle's algorithm hold
                // them back waiting for more.
                let _ = socket.set_nodelay(true);
                return Ok(socket);
            }
            Err(e) => last_error = e,
        }
    }
    Err(cannot(last_error))
}

/// The sentence for a failed handshake. rustls reports its errors inside an
/// `io::Error`; a refused certificate gets its own sentence per trust mode.
fn handshake_error(e: &io::Error, trust: &Trust, server_name: &str) -> Msg {
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match (tls_error, trust) {
        (Some(rustls::Error::InvalidCertificate(_)), Trust::Pin(file)) => {
            Msg::CertificateNotPinned {
                file: file.display().to_string(),
            }
        }
        (Some(rustls::Error::InvalidCertificate(refused)), Trust::Ca(file)) => {
            Msg::CertificateNotTrusted {
                file: file.display().to_string(),
                name: server_name.to_owned(),
                problem: cert_problem(refused),
            }
        }
        (Some(rustls::Error::InvalidCertificate(refused)), Trust::System) => {
            Msg::CertificateNotTrustedSystem {
                name: server_name.to_owned(),
                problem: cert_problem(refused),
            }
        }
        // With TLS 1.2 a mutual-TLS refusal comes inside the handshake.
        (Some(tls_error), _) => {
            certificate_refusal(tls_error).unwrap_or_else(|| Msg::HandshakeFailed {
                detail: tls_error.to_string(),
            })
        }
        (None, _) => Msg::HandshakeFailed {
            detail: e.to_string(),
        },
    }
}

/// Why webpki refused a certificate, in a user's terms.
///
/// A certificate that chains to no trusted CA is not always reported as
/// `UnknownIssuer`. When a trusted certificate has the same name as the
/// certificate's issuer (a self-signed `CN=localhost` certificate, and
/// Debian's `ssl-cert-snakeoil.pem`, also `CN=localhost`, in the system's
/// store), webpki tries that key: an RSA key cannot check an ECDSA
/// signature (`UnsupportedSignatureAlgorithmForPublicKeyContext`), and a
/// key of the right kind finds a bad signature. To the user each means
/// the same: no trusted CA signed it.
pub fn cert_problem(e: &rustls::CertificateError) -> CertProblem {
    use rustls::CertificateError as E;
    match e {
        E::UnknownIssuer
        | E::BadSignature
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
        | E::UnsupportedSignatureAlgorithmContext { .. } => CertProblem::UnknownIssuer,
        E::NotValidForName | E::NotValidForNameContext { .. } => CertProblem::WrongName,
        E::Expired | E::ExpiredContext { .. } => CertProblem::Expired,
        E::NotValidYet | E::NotValidYetContext { .. } => CertProblem::NotValidYet,
        E::Revoked => CertProblem::Revoked,
        other => CertProblem::Other(other.to_string()),
    }
}

/// The message for a TLS alert by which a mutual-TLS server refuses our
/// client certificate, or its absence; `None` for any other error.
///
/// With TLS 1.3 the client's side of the handshake is complete before the
/// server has checked the client's certificate, so this refusal arrives
/// after the handshake, as the first thing read: here, not in [`connect`].
fn certificate_refusal(e: &rustls::Error) -> Option<Msg> {
    use rustls::AlertDescription as Alert;
    match e {
        rustls::Error::AlertReceived(Alert::CertificateRequired) => {
            Some(Msg::ClientCertificateRequired)
        }
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate
            | Alert::CertificateUnknown
            | Alert::AccessDenied),
        ) => Some(Msg::ClientCertificateRefused {
            detail: format!("{alert:?}"),
        }),
        _ => None,
    }
}

/// Starts the network thread for `connected`. It sends every server line to
/// `events`, and [`Event::Closed`] when the connection ends; it sends the
/// lines received on the returned channel. Dropping that sender makes the
/// thread close the connection (TLS close_notify) and end.
///
/// The returned channel is unbounded on purpose. The UI sends into it and
/// the network thread sends into `events`, which is bounded: if both were
/// bounded and both full, each thread would wait for the other for ever. The
/// unbounded edge is the one fed by a person typing.
///
/// # Errors
///
/// When the thread cannot be spawned.
pub fn spawn(
    connected: Connected,
    events: Sender<Event>,
    keepalive: Duration,
) -> io::Result<(Sender<String>, JoinHandle<()>)> {
    let (outbox_tx, outbox) = crossbeam_channel::unbounded();
    let net = NetThread {
        tls_conn: connected.tls_conn,
        socket: connected.socket,
        outbox,
        events,
        lines: LineSplitter::new(MAX_SERVER_LINE),
        keepalive: Keepalive::new(keepalive, Instant::now()),
    };
    let handle = thread::Builder::new()
        .name("client-net".into())
        .spawn(move || net.run())?;
    Ok((outbox_tx, handle))
}

/// Why the network loop stopped.
enum Stop {
    /// The UI is gone (its sender was dropped): we closed the connection.
    UiGone,
    /// The server closed the connection; the text says how, when it was not
    /// a clean close.
    Closed(Option<String>),
    /// The server refused our client certificate, or its absence.
    Refused(Msg),
}

/// Everything the network thread owns.
struct NetThread {
    /// The TLS state machine; only this thread uses it.
    tls_conn: ClientConnection,
    /// The socket; only this thread reads or writes it.
    socket: TcpStream,
    /// Lines the UI wants sent (without LF).
    outbox: Receiver<String>,
    /// Where server lines go: the UI loop's one channel.
    events: Sender<Event>,
    /// Decrypted bytes → lines.
    lines: LineSplitter,
    /// When to ping, and when to give up.
    keepalive: Keepalive,
}

impl NetThread {
    /// The thread's body: serve until the connection or the UI ends, then
    /// tell the UI (if it is still listening).
    fn run(mut self) {
        match self.serve() {
            Stop::UiGone => {}
            Stop::Closed(detail) => {
                let _ = self.events.send(Event::Closed(detail));
            }
            Stop::Refused(why) => {
                let _ = self.events.send(Event::Refused(why));
            }
        }
    }

    /// The loop described in the module doc.
    fn serve(&mut self) -> Stop {
        let mut buf = [0u8; 4096];
        loop {
            // 1. Encrypt every line the UI has queued. try_recv never blocks:
            //    this thread must get back to reading promptly.
            loop {
                match self.outbox.try_recv() {
                    Ok(line) => self.queue_line(&line),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // The UI has finished. Say goodbye at the TLS level
                        // (close_notify), so the server logs a clean close.
                        self.tls_conn.send_close_notify();
                        let _ = self.flush();
                        return Stop::UiGone;
                    }
                }
            }
            match self.keepalive.poll(Instant::now()) {
                KeepaliveAction::Wait => {}
                KeepaliveAction::Ping => self.queue_line(&format!("PING {KEEPALIVE_TOKEN}")),
                KeepaliveAction::GiveUp => {
                    return Stop::Closed(Some(format!(
                        "no answer to PING for {} s",
                        self.keepalive.period.as_secs()
                    )));
                }
            }

            // 2. Write what is waiting to the socket (a blocking write, with
            //    a timeout; no lock is held because there is none).
            if let Err(e) = self.flush() {
                return Stop::Closed(Some(e.to_string()));
            }

            // 3. Read, at most POLL long.
            match self.tls_conn.read_tls(&mut self.socket) {
                Ok(0) => {
                    // TCP end of stream. Lines already decrypted still count.
                    if let Err(stop) = self.forward_plaintext(&mut buf) {
                        return stop;
                    }
                    return Stop::Closed(None);
                }
                Ok(_) => {
                    self.keepalive.on_receive(Instant::now());
                    if let Err(e) = self.tls_conn.process_new_packets() {
                        // A corrupt record or an alert: send ours, stop.
                        let _ = self.flush();
                        return certificate_refusal(&e)
                            .map_or_else(|| Stop::Closed(Some(e.to_string())), Stop::Refused);
                    }
                }
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Stop::Closed(Some(e.to_string())),
            }
            // Plaintext may also be waiting from the handshake's last read,
            // so this runs on every turn, not only after a successful read.
            if let Err(stop) = self.forward_plaintext(&mut buf) {
                return stop;
            }
        }
    }

    /// Encrypts one line into the TLS connection's send buffer.
    fn queue_line(&mut self, line: &str) {
        // Writing to rustls's buffer only fails once the connection is
        // closing, and then the next read reports why.
        let _ = self
            .tls_conn
            .writer()
            .write_all(format!("{line}\n").as_bytes());
        self.keepalive.on_send(Instant::now());
    }

    /// Writes every pending TLS record to the socket.
    fn flush(&mut self) -> io::Result<()> {
        while self.tls_conn.wants_write() {
            self.tls_conn.write_tls(&mut self.socket)?;
        }
        Ok(())
    }

    /// Reads the decrypted bytes rustls has, splits them into lines and
    /// sends each one to the UI.
    ///
    /// # Errors
    ///
    /// The reason to stop: the server closed the TLS session, or the UI is
    /// gone.
    fn forward_plaintext(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        loop {
            match self.tls_conn.reader().read(buf) {
                // A clean TLS close (close_notify) from the server.
                Ok(0) => {
                    self.forward_lines()?;
                    return Err(Stop::Closed(None));
                }
                Ok(n) => self.lines.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The peer went away without close_notify: a truncation.
                Err(e) => {
                    self.forward_lines()?;
                    return Err(Stop::Closed(Some(e.to_string())));
                }
            }
        }
        self.forward_lines()
    }

    /// Sends every complete line to the UI, parsed when possible.
    fn forward_lines(&mut self) -> Result<(), Stop> {
        while let Some(event) = self.lines.next_event() {
            let event = match event {
                LineEvent::Line(line) if line == format!("PONG {KEEPALIVE_TOKEN}") => continue,
                LineEvent::Line(line) => match ServerLine::parse(&line) {
                    Some(parsed) => Event::Server(parsed),
                    None => Event::Unparsed(line),
                },
                LineEvent::TooLong => Event::Garbled("(line too long)".into()),
                LineEvent::BadEncoding => Event::Garbled("(not UTF-8)".into()),
            };
            // The UI is bounded: if it is slow, we wait here and stop
            // reading, and the server's own queue absorbs the burst.
            self.events.send(event).map_err(|_| Stop::UiGone)?;
        }
        Ok(())
    }
}

/// What the keepalive logic wants now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing to do.
    Wait,
    /// Send a `PING`.
    Ping,
    /// A `PING` went unanswered for a whole period: the connection is dead.
    GiveUp,
}

/// When to send a keepalive `PING`, and when to give up on a silent server.
/// Pure: every method takes the current time.
#[derive(Debug, Clone)]
pub struct Keepalive {
    /// Silence before a `PING`, and the time a `PING` may go unanswered.
    period: Duration,
    /// When anything was last sent or received.
    last_traffic: Instant,
    /// When anything was last sent.
    last_sent: Instant,
    /// When the unanswered `PING` was sent, if there is one.
    ping_sent: Option<Instant>,
}

impl Keepalive {
    /// A keepalive with `period`, counting from `now`.
    pub fn new(period: Duration, now: Instant) -> Self {
        Keepalive {
            period,
            last_traffic: now,
            last_sent: now,
            ping_sent: None,
        }
    }

    /// Something arrived from the server: it is alive.
    pub fn on_receive(&mut self, now: Instant) {
        self.last_traffic = now;
        self.ping_sent = None;
    }

    /// Something was sent: the connection is not idle.
    pub fn on_send(&mut self, now: Instant) {
        self.last_traffic = now;
        self.last_sent = now;
    }

    /// What to do at `now`. Returns [`KeepaliveAction::Ping`] once per
    /// silence (a period without traffic, or [`SEND_KEEPALIVE`] without
    /// sending), and [`KeepaliveAction::GiveUp`] when that ping has had no
    /// answer for a whole period.
    pub fn poll(&mut self, now: Instant) -> KeepaliveAction {
        match self.ping_sent {
            Some(sent) if now.duration_since(sent) >= self.period => KeepaliveAction::GiveUp,
            Some(_) => KeepaliveAction::Wait,
            None if now.duration_since(self.last_traffic) >= self.period
                || now.duration_since(self.last_sent) >= SEND_KEEPALIVE =>
            {
                self.ping_sent = Some(now);
                KeepaliveAction::Ping
            }
            None => KeepaliveAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// webpki's reasons become a user's: the ones that mean "no trusted CA
    /// signed it", including the one a self-signed `CN=localhost`
    /// certificate gets from a system store that holds an RSA
    /// certificate named `localhost`.
    #[test]
    fn certificate_errors_in_a_users_terms() {
        use rustls::CertificateError as E;
        let ecdsa_with_sha256 = vec![6, 8, 42, 134, 72, 206, 61, 4, 3, 2];
        let rsa = vec![6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 1, 5, 0];
        let cases = [
            (E::UnknownIssuer, CertProblem::UnknownIssuer),
            (E::BadSignature, CertProblem::UnknownIssuer),
            (
                E::UnsupportedSignatureAlgorithmForPublicKeyContext {
                    signature_algorithm_id: ecdsa_with_sha256,
                    public_key_algorithm_id: rsa,
                },
                CertProblem::UnknownIssuer,
            ),
            (E::NotValidForName, CertProblem::WrongName),
            (E::Expired, CertProblem::Expired),
            (E::NotValidYet, CertProblem::NotValidYet),
            (E::Revoked, CertProblem::Revoked),
        ];
        for (error, problem) in cases {
            assert_eq!(cert_problem(&error), problem, "{error:?}");
        }
        assert!(matches!(
            cert_problem(&E::BadEncoding),
            CertProblem::Other(_)
        ));
    }

    /// Silence for a period sends one PING; an answer resets the clock.
    #[test]
    fn keepalive_pings_after_silence() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KEEPALIVE, t0);
        assert_eq!(k.poll(t0 + Duration::from_secs(29)), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + Duration::from_secs(30)), KeepaliveAction::Ping);
        assert_eq!(k.poll(t0 + Duration::from_secs(31)), KeepaliveAction::Wait);
        k.on_receive(t0 + Duration::from_secs(31));
        assert_eq!(k.poll(t0 + Duration::from_secs(60)), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + Duration::from_secs(61)), KeepaliveAction::Ping);
    }

    /// Sending counts as traffic too: a chatty user never pings.
    #[test]
    fn keepalive_counts_sent_lines() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KEEPALIVE, t0);
        k.on_send(t0 + Duration::from_secs(20));
        assert_eq!(k.poll(t0 + Duration::from_secs(40)), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + Duration::from_secs(50)), KeepaliveAction::Ping);
    }

    /// A user who only reads a busy room still pings once in
    /// [`SEND_KEEPALIVE`], so the server's idle timeout does not end the
    /// session.
    #[test]
    fn keepalive_pings_a_reader_of_a_busy_room() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KEEPALIVE, t0);
        let mut now = t0;
        while now < t0 + SEND_KEEPALIVE - Duration::from_secs(1) {
            now += Duration::from_secs(1);
            k.on_receive(now);
            assert_eq!(k.poll(now), KeepaliveAction::Wait);
        }
        now += Duration::from_secs(1);
        k.on_receive(now);
        assert_eq!(k.poll(now), KeepaliveAction::Ping);
    }

    /// A PING unanswered for a whole period means the server is gone.
    #[test]
    fn keepalive_gives_up() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KEEPALIVE, t0);
        assert_eq!(k.poll(t0 + KEEPALIVE), KeepaliveAction::Ping);
        k.on_send(t0 + KEEPALIVE); // the PING itself
        assert_eq!(
            k.poll(t0 + KEEPALIVE * 2 - Duration::from_millis(1)),
            KeepaliveAction::Wait
        );
        assert_eq!(k.poll(t0 + KEEPALIVE * 2), KeepaliveAction::GiveUp);
    }
}

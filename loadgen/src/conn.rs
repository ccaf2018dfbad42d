//! One load-generator connection: a non-blocking socket and its rustls
//! client state, driven by readiness events instead of by a thread.
//!
//! This is rustls's `tlsclient-mio` pattern. The socket never blocks:
//!
//! - **readable** → `read_tls` until the socket says `WouldBlock`, and after
//!   each chunk `process_new_packets` and drain the plaintext into
//!   its inbox, from which whole lines are handed to the scenario;
//! - **sending a line** → one `writer().write` of the whole line, so each
//!   line becomes its own TLS record, as a real client that writes one line
//!   at a time produces;
//! - **flush** → `write_tls` while rustls has records to send; if the socket
//!   is full, ask the poller for a writable event and finish then. A
//!   scenario either lets the worker flush once per event (lines sent in
//!   the same event then share one `write`), or writes each line out as it
//!   sends it ([`Conn::send_now`]: one record, one `write` per line).
//!
//! A [`Target`] may name several servers (nodes sharing their rooms): each
//! client of a run connects to one of them, chosen by its index
//! ([`Target::addr`]).
//!
//! Over WebSocket (a [`Target::websocket`]), the session offers ALPN
//! `http/1.1`, upgrades with `GET /ws` first, and each line travels as one
//! masked text frame (still one TLS record); [`WsCodec`] does the framing
//! between rustls's plaintext and the lines, and nothing else changes.
//!
//! mio's readiness is edge-triggered: a readable event is not repeated
//! until new data arrives, so every read goes on until `WouldBlock`.
//!
//! Nothing here is shared between threads: each connection belongs to the
//! one worker thread whose poller it is registered with.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::ws::{Received, WsCodec};
use chat::error::{Error, Result};

/// Where the load goes, and how to trust it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The servers' addresses, never empty: one server, or several nodes
    /// sharing their rooms, over which the clients are spread (see
    /// [`Target::addr`]).
    addrs: Vec<SocketAddr>,
    /// The client TLS config (trusting the server's CA). Shared by every
    /// connection, as rustls intends.
    pub tls: Arc<ClientConfig>,
    /// The name the certificate must match (and the SNI sent).
    pub server_name: ServerName<'static>,
    /// Speak protocol v1 over WebSocket (`GET /ws`) instead of plain lines.
    pub websocket: bool,
}

impl Target {
    /// A target that trusts the certificates in `ca` and expects
    /// `server_name`. TLS session resumption is turned off: every
    /// connection makes a full handshake, as a fresh client process would.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] when the CA file cannot be used or the name is invalid.
    pub fn new(addr: SocketAddr, ca: &Path, server_name: &str) -> Result<Target> {
        Target::spread(vec![addr], ca, server_name)
    }

    /// [`Target::new`] for several servers (nodes that share their rooms
    /// through a bus, all with a certificate for `server_name`): client `i`
    /// of a run connects to `addrs[i % addrs.len()]`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `addrs` is empty; as [`Target::new`].
    pub fn spread(addrs: Vec<SocketAddr>, ca: &Path, server_name: &str) -> Result<Target> {
        if addrs.is_empty() {
            return Err(Error::Config("no server address to connect to".into()));
        }
        let mut config = (*chat::tls::client_config(ca)?).clone();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Target {
            addrs,
            tls: Arc::new(config),
            server_name: chat::tls::server_name(server_name)?,
            websocket: false,
        })
    }

    /// The address client `client` (its index among all the clients of
    /// the run, whichever worker drives it) connects to: round robin over
    /// the addresses, so that with `n` of them client `i` goes to address
    /// `i % n`, and the same client always to the same server.
    pub fn addr(&self, client: usize) -> SocketAddr {
        self.addrs[client % self.addrs.len()]
    }

    /// Every address, in the order given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The same servers over WebSocket: the TLS session offers ALPN
    /// `http/1.1` (which routes it to the server's HTTP side, as a
    /// browser's would) and each connection upgrades with `GET /ws`, with
    /// the `Host` and `Origin` of the server's name and the port it
    /// connects to.
    pub fn websocket(&self) -> Target {
        let mut config = (*self.tls).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Target {
            addrs: self.addrs.clone(),
            tls: Arc::new(config),
            server_name: self.server_name.clone(),
            websocket: true,
        }
    }
}

/// Longest line the load generator accepts from the server (the protocol's
/// limit); a longer one means something is badly wrong.
const MAX_LINE: usize = chat::protocol::line::DEFAULT_MAX_LINE;

/// A TLS connection owned by a worker's event loop.
pub struct Conn {
    /// The non-blocking socket, registered with the worker's poller.
    socket: TcpStream,
    /// The rustls state machine: records in, plaintext out, and back.
    tls: ClientConnection,
    /// Plaintext received and not yet handed out as lines. Lines are
    /// borrowed straight from here (no allocation per line: at a million
    /// lines a second, `LineSplitter`'s `String` per line shows up).
    inbox: Vec<u8>,
    /// Scratch for one outgoing line, so that a line and its LF leave in
    /// one `write` (one TLS record).
    line: Vec<u8>,
    /// The poller token (the connection's slot in its worker).
    token: Token,
    /// True while we are registered for writable events too.
    wants_writable: bool,
    /// Set by [`Conn::close`]: the worker closes the connection after the
    /// current event.
    closing: bool,
    /// Successful `write`s to the socket so far (each may carry several
    /// TLS records), so that a scenario can check the shape it sends in.
    writes: u64,
    /// The WebSocket framing, over a [`Target::websocket`].
    ws: Option<WsCodec>,
    /// Scratch for decrypted bytes on their way into `ws`.
    plain: Vec<u8>,
}

/// What a read found, besides lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket is drained for now; more may come.
    Open,
    /// The peer closed (EOF, close_notify, or a reset).
    Closed,
}

/// A client TLS session for `target` that never refuses plaintext.
///
/// rustls caps what a session buffers (64 KiB of records not yet written to
/// the socket, by default) and past the cap `writer().write` takes *part* of
/// what it is given. A sender flat out against a busy server reaches the
/// cap whenever its socket is full: a line would then leave cut in two,
/// its head glued to the next line, and the server would rightly answer
/// `ERR LINE_TOO_LONG` for two messages the generator believes it sent
/// whole. Every scenario already bounds what a connection has in flight
/// (a sender's window of messages not yet echoed), so the session need not
/// bound it a second time, and must not cut a line.
fn client_session(target: &Target) -> Result<ClientConnection> {
    let mut tls = ClientConnection::new(target.tls.clone(), target.server_name.clone())
        .map_err(|e| Error::Tls(e.to_string()))?;
    tls.set_buffer_limit(None);
    Ok(tls)
}

impl Conn {
    /// Starts a non-blocking connect for client `client` of the run (to
    /// [`Target::addr`] of it) and registers it; the TLS handshake starts
    /// as soon as the socket becomes writable.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket cannot be created or registered.
    /// `recv_buffer` fixes the socket's receive buffer (no autotuning), for
    /// members that are meant to fall behind quickly.
    pub fn connect(
        target: &Target,
        client: usize,
        registry: &Registry,
        token: Token,
        recv_buffer: Option<usize>,
    ) -> Result<Conn> {
        let addr = target.addr(client);
        let mut socket = match recv_buffer {
            None => TcpStream::connect(addr).map_err(|e| Error::io("connect to the server", e))?,
            Some(size) => small_window_socket(addr, size)
                .map_err(|e| Error::io("connect to the server", e))?,
        };
        // Small lines, sent as soon as they are written: Nagle would only
        // add latency to what we measure.
        let _ = socket.set_nodelay(true);
        registry
            .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Error::io("register a socket", e))?;
        let mut tls = client_session(target)?;
        let mut line = Vec::with_capacity(256);
        let ws = if target.websocket {
            let host = format!("{}:{}", target.server_name.to_str(), addr.port());
            let mut ws = WsCodec::start(&host).map_err(Error::Config)?;
            // The upgrade request waits in rustls until its handshake is
            // done, then leaves first.
            ws.take_outgoing(&mut line);
            let _ = tls.writer().write_all(&line);
            Some(ws)
        } else {
            None
        };
        Ok(Conn {
            socket,
            tls,
            inbox: Vec::with_capacity(4096),
            line,
            token,
            wants_writable: true,
            closing: false,
            writes: 0,
            ws,
            plain: Vec::new(),
        })
    }

    /// Queues one line (the LF is added) as one TLS record. Nothing is
    /// written to the socket until [`Conn::flush`].
    pub fn send(&mut self, line: &str) {
        self.line.clear();
        match &mut self.ws {
            None => {
                self.line.extend_from_slice(line.as_bytes());
                self.line.push(b'\n');
            }
            Some(ws) => {
                // One text frame, no LF: still one write into rustls.
                ws.send_line(line);
                ws.take_outgoing(&mut self.line);
            }
        }
        // Writing into rustls only buffers, and without a buffer limit (see
        // `client_session`) it takes the whole line; it fails only on a
        // connection that is already closed, whose lines go nowhere anyway.
        let _ = self.tls.writer().write_all(&self.line);
    }

    /// Queues one line as one TLS record, as [`Conn::send`], and writes it
    /// to the socket at once: one line, one record, one `write`, the shape
    /// of a client that writes each line as it is typed. Whatever the
    /// socket does not take now (it is full) waits for the worker's flush
    /// on the next writable event; [`Conn::has_unsent`] tells the caller
    /// to hold its next line until then, as a blocking client would.
    pub fn send_now(&mut self, line: &str) {
        self.send(line);
        // An error is left for the worker's flush to meet and report.
        let _ = self.write_out();
    }

    /// True while TLS records wait for room in the socket.
    pub fn has_unsent(&self) -> bool {
        self.tls.wants_write()
    }

    /// Successful `write`s to the socket so far, handshake and setup
    /// included.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Writes queued records until done or the socket is full; true when
    /// nothing is left.
    fn write_out(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.socket) {
                Ok(_) => self.writes += 1,
                // Still connecting, or the send buffer is full.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Asks the worker to close this connection after the current event.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// True once [`Conn::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Reads what the socket has, until `WouldBlock` or EOF, decrypting
    /// into the inbox. Then take the lines with [`Conn::take_inbox`] and [`for_each_line`].
    ///
    /// Reads at most `budget` bytes of ciphertext, so that one busy
    /// connection cannot starve the others of its worker; returns
    /// `Ok((ReadEnd::Open, true))` when it stopped for the budget (the
    /// caller must come back: no new edge will be reported).
    ///
    /// # Errors
    ///
    /// The socket error, or a TLS error as `InvalidData`.
    pub fn read(&mut self, budget: usize) -> io::Result<(ReadEnd, bool)> {
        let mut total = 0;
        loop {
            if total >= budget {
                return Ok((ReadEnd::Open, true));
            }
            let n = match self.tls.read_tls(&mut self.socket) {
                Ok(0) => return Ok((ReadEnd::Closed, false)),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok((ReadEnd::Open, false)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            let state = match self.tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // rustls queued an alert: one best-effort write sends it.
                    let _ = self.tls.write_tls(&mut self.socket);
                    return Err(io::Error::new(ErrorKind::InvalidData, e));
                }
            };
            let plain = state.plaintext_bytes_to_read();
            let closed = state.peer_has_closed();
            if plain > 0 {
                match &mut self.ws {
                    None => {
                        let old = self.inbox.len();
                        self.inbox.resize(old + plain, 0);
                        self.tls.reader().read_exact(&mut self.inbox[old..])?;
                    }
                    Some(ws) => {
                        self.plain.resize(plain, 0);
                        self.tls.reader().read_exact(&mut self.plain)?;
                        let seen = ws.receive(&self.plain, &mut self.inbox)?;
                        // Pongs and the reply to a close go out with the
                        // worker's flush.
                        self.line.clear();
                        ws.take_outgoing(&mut self.line);
                        if !self.line.is_empty() {
                            let _ = self.tls.writer().write_all(&self.line);
                        }
                        if let Received::Closed(_) = seen {
                            return Ok((ReadEnd::Closed, false));
                        }
                    }
                }
            }
            if closed {
                return Ok((ReadEnd::Closed, false));
            }
            if self.inbox.len() > MAX_LINE && !self.inbox.contains(&b'\n') {
                return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
            }
        }
    }

    /// Moves the inbox out, so that the caller can hand its lines to a
    /// scenario that holds `&mut Conn` meanwhile; give it back with
    /// [`Conn::put_inbox`].
    pub fn take_inbox(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbox)
    }

    /// Returns the inbox, keeping only the bytes after `consumed` (the
    /// start of an unfinished line).
    pub fn put_inbox(&mut self, mut inbox: Vec<u8>, consumed: usize) {
        inbox.drain(..consumed);
        self.inbox = inbox;
    }

    /// Writes queued TLS records until done or the socket is full, and
    /// keeps the writable interest in step.
    ///
    /// # Errors
    ///
    /// The socket error (e.g. the server reset the connection).
    pub fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        self.write_out()?;
        let want = self.tls.wants_write();
        if want != self.wants_writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.socket, self.token, interest)?;
            self.wants_writable = want;
        }
        Ok(())
    }

    /// Sends close_notify (best effort) and deregisters the socket; the
    /// socket closes when `self` is dropped.
    pub fn shutdown(mut self, registry: &Registry) {
        self.tls.send_close_notify();
        let _ = self.tls.write_tls(&mut self.socket);
        let _ = registry.deregister(&mut self.socket);
    }

    /// The socket's pending error, if the connect failed.
    pub fn take_error(&self) -> Option<io::Error> {
        self.socket.take_error().ok().flatten()
    }
}

/// A non-blocking connect with `SO_RCVBUF` set before the handshake (the
/// window is negotiated then), through socket2 since mio has no such option.
fn small_window_socket(addr: SocketAddr, size: usize) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_recv_buffer_size(size)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        // EINPROGRESS: the connect finishes in the background, like mio's.
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// True for the "connect started, not finished" error of a non-blocking
/// connect (`EINPROGRESS`, which std has no stable `ErrorKind` for yet).
fn in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) {
        return true;
    }
    e.kind() == ErrorKind::WouldBlock
}

/// Splits complete lines off the front of `buf`: calls `each` with every
/// line (LF and any CR removed) and returns how many bytes were consumed.
/// A line that is not UTF-8 is passed as an empty string (the server never
/// sends one).
pub fn for_each_line(buf: &[u8], mut each: impl FnMut(&str)) -> usize {
    let mut start = 0;
    while let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') {
        let mut line = &buf[start..start + lf];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        each(std::str::from_utf8(line).unwrap_or(""));
        start += lf + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole lines come out; a partial line stays for the next read.
    #[test]
    fn lines_are_split_and_partial_kept() {
        let mut seen = Vec::new();
        let used = for_each_line(b"MSG a\r\nPONG\nHAL", |l| seen.push(l.to_owned()));
        assert_eq!(seen, ["MSG a", "PONG"]);
        assert_eq!(used, 12);
    }

    /// Clients are spread round robin by their index over the addresses,
    /// whatever the target's transport; one address takes them all.
    #[test]
    fn clients_are_spread_round_robin() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("loadgen-spread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, ca.cert.pem()).unwrap();
        let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        let c: SocketAddr = "[::1]:1003".parse().unwrap();
        let three = Target::spread(vec![a, b, c], &pem, "localhost").unwrap();
        let got: Vec<SocketAddr> = (0..7).map(|i| three.addr(i)).collect();
        assert_eq!(got, [a, b, c, a, b, c, a]);
        assert_eq!(three.websocket().addr(4), b);
        assert_eq!(three.addrs(), [a, b, c]);
        let one = Target::new(a, &pem, "localhost").unwrap();
        assert!((0..5).all(|i| one.addr(i) == a));
        assert!(Target::spread(Vec::new(), &pem, "localhost").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A session whose socket takes nothing (here: before its handshake
    /// has even started) still accepts every line whole, however many are
    /// waiting: no line can be cut in two when the socket is full.
    #[test]
    fn a_full_socket_never_cuts_a_line() {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        roots.add(ca.cert.der().clone()).unwrap();
        let tls = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let target = Target {
            addrs: vec!["127.0.0.1:9".parse().unwrap()],
            tls: Arc::new(tls),
            server_name: ServerName::try_from("localhost").unwrap(),
            websocket: false,
        };
        let mut session = client_session(&target).unwrap();
        let line = [b'x'; 3000];
        for n in 0..100 {
            let taken = session.writer().write(&line).unwrap();
            assert_eq!(taken, line.len(), "line {n} was cut");
        }
    }
}

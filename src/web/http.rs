//! HTTP/1.1 on a blocking TLS connection: reading one request head within
//! its limits, and writing one response.
//!
//! The head is parsed by `httparse` (the parser under hyper); this file
//! only decides *when* to read and *how much*:
//!
//! - **Size**: a head larger than [`MAX_HEAD`] (8 KiB) is answered 431
//!   without reading further. So is one with more than [`MAX_HEADERS`]
//!   header lines.
//! - **Time**: the whole head must arrive by one deadline, fixed when its
//!   first byte arrives (`--http-head-timeout`, 10 s after it). Every read waits
//!   only for the time left until it, so a peer that dribbles one byte
//!   every few seconds is cut at the deadline, exactly like a silent one;
//!   the deadline is not reset by each byte.
//! - **Keep-alive**: before its first request and between two requests,
//!   the connection may wait for the next head's first byte for
//!   `--http-idle-timeout` (≤ 15 s), then it is closed: an idle browser
//!   tab (or a socket a browser opened ahead of need) does not hold a
//!   thread for long.
//!
//! Requests carry no body here (every route is a `GET`): a request that
//! announces one is answered and the connection closed, so its body is
//! never read as the next request.

use std::io::{self, ErrorKind, Read as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::tls;

/// The largest request head: request line, headers and the empty line.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most header lines a request may have.
pub const MAX_HEADERS: usize = 48;

/// How long a connection closed after an error response reads (and
/// throws away) what its peer still sends, so that the response is not
/// destroyed by a reset (see [`Conn::close`]).
pub const LINGER: Duration = Duration::from_secs(1);

/// The most bytes read (and thrown away) while lingering.
pub const LINGER_BYTES: usize = 1024 * 1024;

/// The headers every response carries, and why (`docs/WEB.md`, "Security
/// headers and why"): only this server's own files run in the page, no
/// inline script or style (an injected `<script>` would not run); the
/// browser never guesses a type other than the one given; the status
/// page's address, token included, never leaks to another site in a
/// `Referer`; and no other site may frame the page.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("Content-Security-Policy", "default-src 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
];

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query: `/status`.
    pub path: String,
    /// What follows `?`, if anything.
    pub query: Option<String>,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// HTTP/1.0 (no keep-alive unless asked) rather than HTTP/1.1.
    pub http10: bool,
}

impl Request {
    /// The first header called `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to keep the connection open after this
    /// request (HTTP/1.1 does unless it says `Connection: close`).
    pub fn keep_alive(&self) -> bool {
        let said = |token: &str| {
            self.header("connection").is_some_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        };
        if self.http10 {
            said("keep-alive")
        } else {
            !said("close")
        }
    }

    /// Whether the request announces a body (which this server never reads).
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self
                .header("content-length")
                .is_some_and(|v| v.trim() != "0")
    }

    /// The value of `name` in the query string (`?token=abc`), if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value)
            })
    }
}

/// One response, before it is written.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers besides the ones every response gets.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A short plain-text response (errors).
    pub fn text(status: u16, body: &str) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.as_bytes().to_vec())
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The response as bytes: status line, headers (the security headers,
    /// `Content-Length`, and `Connection: close` unless `keep_alive`), the
    /// empty line and the body (left out for `HEAD`).
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in SECURITY_HEADERS
            .iter()
            .map(|(n, v)| (*n, *v))
            .chain(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.status != 101 {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
            if !keep_alive {
                out.push_str("Connection: close\r\n");
            }
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The reason phrase of the statuses this server uses.
fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went silent past the keep-alive timeout)
    /// between requests: the normal end of a connection.
    Done,
    /// The head did not arrive whole by its deadline.
    TimedOut,
    /// The head is larger than [`MAX_HEAD`], or has too many headers: 431.
    TooLarge,
    /// Not HTTP: 400.
    Malformed(String),
    /// The connection failed (TLS or socket): nothing more can be said.
    Failed(String),
}

/// The plaintext side of a TLS connection that one thread owns alone (no
/// writer thread yet): reads and writes with deadlines.
pub struct Conn<'a> {
    /// The TLS session.
    pub tls: &'a mut ServerConnection,
    /// Its socket.
    pub socket: &'a TcpStream,
    /// Plaintext received and not yet parsed (the next request's bytes may
    /// arrive with this one's).
    pub pending: Vec<u8>,
}

impl Conn<'_> {
    /// Reads the next request head. Waits for its first byte until
    /// `idle_deadline`; from then on the whole head must be in within
    /// `head_timeout` of that byte, a deadline fixed once.
    ///
    /// # Errors
    ///
    /// See [`ReadError`].
    pub fn read_head(
        &mut self,
        idle_deadline: Instant,
        head_timeout: Duration,
    ) -> Result<Request, ReadError> {
        // Bytes of this head that came with the previous request's start
        // the head's clock now.
        let mut deadline = if self.pending.is_empty() {
            None
        } else {
            Some(Instant::now() + head_timeout)
        };
        loop {
            if !self.pending.is_empty() {
                if let Some(request) = self.parse()? {
                    return Ok(request);
                }
                if self.pending.len() > MAX_HEAD {
                    return Err(ReadError::TooLarge);
                }
            }
            let started = deadline.is_some();
            match self.fill(deadline.unwrap_or(idle_deadline)) {
                Ok(0) if started => {
                    return Err(ReadError::Failed("closed in a request head".into()))
                }
                Ok(0) => return Err(ReadError::Done),
                Ok(_) => {}
                Err(e) if tls::is_timeout(&e) && started => return Err(ReadError::TimedOut),
                Err(e) if tls::is_timeout(&e) => return Err(ReadError::Done),
                Err(e) => return Err(ReadError::Failed(e.to_string())),
            }
            // The head's first byte fixes its deadline.
            deadline.get_or_insert_with(|| Instant::now() + head_timeout);
        }
    }

    /// Parses `pending` if it holds a whole head; takes the head's bytes
    /// out of it.
    fn parse(&mut self) -> Result<Option<Request>, ReadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let len = match parsed.parse(&self.pending) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
            Err(e) => return Err(ReadError::Malformed(e.to_string())),
        };
        if len > MAX_HEAD {
            return Err(ReadError::TooLarge);
        }
        let target = parsed.path.unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), Some(query.to_string())),
            None => (target.to_string(), None),
        };
        let request = Request {
            method: parsed.method.unwrap_or("").to_string(),
            path,
            query,
            headers: parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect(),
            http10: parsed.version == Some(0),
        };
        self.pending.drain(..len);
        Ok(Some(request))
    }

    /// Reads more plaintext into `pending`, waiting no longer than
    /// `deadline`. `Ok(0)`: the peer closed.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let mut chunk = [0u8; 2048];
        loop {
            match self.tls.reader().read(&mut chunk) {
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            self.socket.set_read_timeout(Some(left))?;
            let mut socket = self.socket;
            match self.tls.read_tls(&mut socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let processed = self.tls.process_new_packets();
            // An alert, a key update or a TLS 1.3 ticket to send back.
            if self.tls.wants_write() {
                self.flush(Duration::from_secs(5))?;
            }
            if let Err(e) = processed {
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }

    /// Writes `bytes` and everything rustls has queued, each `write` call
    /// waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// The socket's error, or `TimedOut`.
    pub fn send(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        use std::io::Write as _;
        self.tls.writer().write_all(bytes)?;
        self.flush(timeout)
    }

    /// Sends everything rustls has queued.
    fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        self.socket.set_write_timeout(Some(timeout))?;
        let mut socket = self.socket;
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut socket)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Ends the TLS session politely (close_notify) and the socket.
    ///
    /// With `linger` (a response was just sent, and the peer may still be
    /// sending: the rest of a 64 KiB head that got 431, say), the socket's
    /// sending side is shut first and what still arrives is read and
    /// thrown away for a moment ([`LINGER`], at most [`LINGER_BYTES`]).
    /// Closing a socket with unread bytes makes the kernel send a reset,
    /// which may destroy the response before the peer reads it; nginx's
    /// `lingering_close` exists for the same reason.
    pub fn close(&mut self, timeout: Duration, linger: bool) {
        self.tls.send_close_notify();
        let _ = self.flush(timeout);
        if linger {
            let _ = self.socket.shutdown(std::net::Shutdown::Write);
            let deadline = Instant::now() + LINGER;
            let mut drained = 0;
            let mut chunk = [0u8; 4096];
            let mut socket = self.socket;
            while drained < LINGER_BYTES {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                    break;
                }
                match socket.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], query: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: query.map(String::from),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            http10: false,
        }
    }

    /// Query parameters and cookies are found by name, exactly.
    #[test]
    fn query_and_cookie_lookup() {
        let r = request(
            &[("cookie", "a=1; chat_status=xyz"), ("cookie", "b=2")],
            Some("x=1&token=abc"),
        );
        assert_eq!(r.query_param("token"), Some("abc"));
        assert_eq!(r.query_param("tok"), None);
        assert_eq!(r.cookie("chat_status"), Some("xyz"));
        assert_eq!(r.cookie("b"), Some("2"));
        assert_eq!(r.cookie("c"), None);
    }

    /// Every response carries the security headers and its length.
    #[test]
    fn responses_carry_the_security_headers() {
        let text = String::from_utf8(Response::text(404, "no").to_bytes(false)).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Security-Policy: default-src 'self'\r\n"));
        assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(text.contains("Referrer-Policy: no-referrer\r\n"));
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\nno"));
    }
}

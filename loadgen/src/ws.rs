//! Protocol v1 over WebSocket, client side, for `--transport ws`: the
//! upgrade and the frames, between a connection's rustls session and the
//! scenario's lines.
//!
//! The server routes a TLS connection that negotiated ALPN `http/1.1` to
//! its HTTP side, where `GET /ws` upgrades it to WebSocket: then each text
//! message is one protocol line, without its LF, in both directions. This
//! module speaks that with `tungstenite`'s handshake and frames, never
//! hand-written:
//!
//! ```text
//!  scenario ──line──▶ WsCodec::send_line ──masked text frame──▶ outgoing ──▶ rustls (one record)
//!  rustls ──plaintext──▶ WsCodec::receive ──text messages──▶ "line\n" in the inbox ──▶ scenario
//! ```
//!
//! tungstenite wants a `Read + Write` stream and the engine's sockets are
//! non-blocking and encrypted, so tungstenite gets an in-memory [`Pipe`]:
//! the connection pushes decrypted bytes into it and takes out what
//! tungstenite wrote (the upgrade request, frames, pongs) to hand to
//! rustls. An empty pipe reads as "would block", which tungstenite's
//! handshake and reader treat as "come back with more bytes".

use std::io::{self, ErrorKind};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

/// The bytes between rustls and tungstenite (the server's own pipe, used
/// from the client's side).
pub use chat::web::ws::Pipe;

/// Where the WebSocket session is. Both live states are boxed: a
/// connection carries the small pointer, the session is on the heap.
enum State {
    /// The upgrade request is sent (or queued); waiting for `101`.
    Upgrading(Box<MidHandshake<ClientHandshake<Pipe>>>),
    /// Upgraded: frames both ways.
    Open(Box<WebSocket<Pipe>>),
    /// The server closed the session, or it failed.
    Closed,
}

/// One connection's WebSocket client.
pub struct WsCodec {
    /// The session; `Closed` also while a step is in progress.
    state: State,
}

/// What [`WsCodec::receive`] found besides lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// More may come.
    Open,
    /// The server sent a close frame (its reason, e.g. `SLOW_CONSUMER`).
    Closed(String),
}

impl WsCodec {
    /// Starts the upgrade to `wss://<host>/ws`: the request (with a fresh
    /// `Sec-WebSocket-Key`, and an `Origin` of `https://<host>`, the only
    /// origin the server accepts) is ready in [`WsCodec::take_outgoing`].
    /// `host` is `name:port` as the server is reached.
    ///
    /// # Errors
    ///
    /// A message when `host` does not make a valid request.
    pub fn start(host: &str) -> Result<WsCodec, String> {
        let mut request = format!("wss://{host}/ws")
            .into_client_request()
            .map_err(|e| format!("WebSocket request for {host}: {e}"))?;
        let origin = HeaderValue::from_str(&format!("https://{host}"))
            .map_err(|e| format!("WebSocket origin for {host}: {e}"))?;
        request.headers_mut().insert("Origin", origin);
        let mid = ClientHandshake::start(Pipe::default(), request, None)
            .map_err(|e| format!("WebSocket request: {e}"))?;
        // The first round writes the request into the pipe and then waits
        // for the response: "interrupted" is the expected outcome.
        let state = match mid.handshake() {
            Err(HandshakeError::Interrupted(mid)) => State::Upgrading(Box::new(mid)),
            Ok((ws, _)) => State::Open(Box::new(ws)),
            Err(HandshakeError::Failure(e)) => return Err(format!("WebSocket upgrade: {e}")),
        };
        Ok(WsCodec { state })
    }

    /// The pipe tungstenite writes to, whatever the state.
    fn pipe(&mut self) -> Option<&mut Pipe> {
        match &mut self.state {
            State::Upgrading(mid) => Some(mid.get_mut().get_mut()),
            State::Open(ws) => Some(ws.get_mut()),
            State::Closed => None,
        }
    }

    /// Moves out what tungstenite wrote since the last call (the upgrade
    /// request, frames, pongs), to be written into the TLS session.
    pub fn take_outgoing(&mut self, into: &mut Vec<u8>) {
        if let Some(pipe) = self.pipe() {
            into.append(&mut pipe.output);
        }
    }

    /// True once the server has accepted the upgrade.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Frames `line` as one masked text message (a client's frames are
    /// always masked), ready in [`WsCodec::take_outgoing`]. Before the
    /// upgrade completes, or after the close, the line goes nowhere (the
    /// scenarios send nothing before the server's `HELLO`).
    pub fn send_line(&mut self, line: &str) {
        if let State::Open(ws) = &mut self.state {
            // Writing into the pipe cannot block; an error means the
            // session is closing, and the read side reports that.
            let _ = ws.send(Message::text(line));
        }
    }

    /// Hands `plain` (decrypted bytes from the server) to tungstenite and
    /// appends every text message it completes to `lines`, each followed by
    /// an LF, so that the usual line splitter takes them. Pings are
    /// answered (the pong waits in [`WsCodec::take_outgoing`]).
    ///
    /// # Errors
    ///
    /// A failed upgrade (not `101`, a wrong accept key) or a protocol
    /// error, as `InvalidData`.
    pub fn receive(&mut self, plain: &[u8], lines: &mut Vec<u8>) -> io::Result<Received> {
        let Some(pipe) = self.pipe() else {
            return Ok(Received::Closed(String::new()));
        };
        pipe.input.extend(plain);
        if let State::Upgrading(_) = self.state {
            let State::Upgrading(mid) = std::mem::replace(&mut self.state, State::Closed) else {
                unreachable!("matched just above");
            };
            match (*mid).handshake() {
                Ok((ws, _response)) => self.state = State::Open(Box::new(ws)),
                Err(HandshakeError::Interrupted(mid)) => {
                    self.state = State::Upgrading(Box::new(mid));
                    return Ok(Received::Open);
                }
                Err(HandshakeError::Failure(e)) => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("WebSocket upgrade refused: {e}"),
                    ))
                }
            }
        }
        let State::Open(ws) = &mut self.state else {
            return Ok(Received::Closed(String::new()));
        };
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    lines.extend_from_slice(text.as_bytes());
                    lines.push(b'\n');
                }
                Ok(Message::Close(frame)) => {
                    // tungstenite queued the reply to the close: let it out.
                    let _ = ws.flush();
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Ok(Received::Closed(reason));
                }
                // Pings are answered by tungstenite itself; the server
                // sends no binary messages and pongs need nothing.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    // Pongs queued while reading go out with the next flush.
                    let _ = ws.flush();
                    return Ok(Received::Open);
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Received::Closed(String::new()));
                }
                Err(e) => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("WebSocket: {e}"),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::frame::CloseFrame;

    /// The server's side for these tests: tungstenite's own server
    /// handshake and frames over another in-memory pipe.
    fn server_accepts(request: &[u8]) -> (WebSocket<Pipe>, Vec<u8>, String) {
        let mut pipe = Pipe::default();
        pipe.input.extend(request);
        let mut seen = String::new();
        let callback = |req: &tungstenite::handshake::server::Request,
                        resp: tungstenite::handshake::server::Response| {
            let header = |n: &str| req.headers()[n].to_str().unwrap().to_owned();
            seen = format!("{} {} {}", req.uri(), header("host"), header("origin"));
            Ok(resp)
        };
        let mut ws = tungstenite::accept_hdr(pipe, callback).expect("the upgrade is valid");
        let response = std::mem::take(&mut ws.get_mut().output);
        (ws, response, seen)
    }

    /// The upgrade: `GET /ws` with an `Origin` equal to the `Host`, and the
    /// server's `101` (with its accept key checked by tungstenite) opens
    /// the session.
    #[test]
    fn the_upgrade_asks_for_ws_with_its_own_origin() {
        let mut client = WsCodec::start("localhost:12345").unwrap();
        assert!(!client.is_open());
        let mut request = Vec::new();
        client.take_outgoing(&mut request);
        let text = String::from_utf8(request.clone()).unwrap();
        assert!(text.starts_with("GET /ws HTTP/1.1\r\n"), "{text}");
        let (_server, response, seen) = server_accepts(&request);
        assert_eq!(seen, "/ws localhost:12345 https://localhost:12345");
        let mut lines = Vec::new();
        assert_eq!(
            client.receive(&response, &mut lines).unwrap(),
            Received::Open
        );
        assert!(client.is_open());
        assert!(lines.is_empty());
    }

    /// A response that is not `101` fails the upgrade with a clear error.
    #[test]
    fn a_refused_upgrade_is_an_error() {
        let mut client = WsCodec::start("localhost:1").unwrap();
        let response = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        let err = client.receive(response, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("refused"), "{err}");
    }

    /// Lines go out as one masked text frame each; text frames come back
    /// as lines (even split across reads), a ping is answered with a pong,
    /// and a close frame ends the session with its reason.
    #[test]
    fn lines_ride_in_text_frames_both_ways() {
        let mut client = WsCodec::start("localhost:12345").unwrap();
        let mut out = Vec::new();
        client.take_outgoing(&mut out);
        let (mut server, response, _) = server_accepts(&out);
        client.receive(&response, &mut Vec::new()).unwrap();

        // Client → server: one frame per line, masked.
        let mut frames = Vec::new();
        client.send_line("SAY hello");
        client.take_outgoing(&mut frames);
        let one = frames.len();
        // FIN + text opcode, then the mask bit and a 9-byte length, then
        // a 4-byte mask and the 9 masked bytes.
        assert_eq!(frames[0], 0x81);
        assert_eq!(frames[1], 0x80 | 9);
        assert_eq!(one, 2 + 4 + 9);
        assert_ne!(&frames[6..], b"SAY hello", "the payload is masked");
        client.send_line("PING");
        client.take_outgoing(&mut frames);
        server.get_mut().input.extend(&frames);
        assert_eq!(server.read().unwrap(), Message::text("SAY hello"));
        assert_eq!(server.read().unwrap(), Message::text("PING"));

        // Server → client: text frames become lines; a ping gets a pong.
        server.send(Message::text("MSG r 12:00 u hi")).unwrap();
        server.send(Message::Ping(b"p".to_vec().into())).unwrap();
        server.send(Message::text("PONG")).unwrap();
        let bytes = std::mem::take(&mut server.get_mut().output);
        let mut lines = Vec::new();
        let (head, tail) = bytes.split_at(5);
        assert_eq!(client.receive(head, &mut lines).unwrap(), Received::Open);
        assert!(lines.is_empty(), "half a frame is no line");
        assert_eq!(client.receive(tail, &mut lines).unwrap(), Received::Open);
        assert_eq!(lines, b"MSG r 12:00 u hi\nPONG\n");
        let mut pong = Vec::new();
        client.take_outgoing(&mut pong);
        server.get_mut().input.extend(&pong);
        assert_eq!(server.read().unwrap(), Message::Pong(b"p".to_vec().into()));
        server.send(Message::text("after")).unwrap();

        // The close frame carries the BYE reason.
        server
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "SLOW_CONSUMER".into(),
            }))
            .unwrap();
        let bytes = std::mem::take(&mut server.get_mut().output);
        let mut lines = Vec::new();
        assert_eq!(
            client.receive(&bytes, &mut lines).unwrap(),
            Received::Closed("SLOW_CONSUMER".into())
        );
        assert_eq!(lines, b"after\n");
    }
}

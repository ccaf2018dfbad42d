//! Protocol v1 over WebSocket (`GET /ws`): the upgrade, and the frames in
//! both directions. Only the framing differs from a terminal client: one
//! text message is one protocol line, without its LF.
//!
//! The frames are `tungstenite`'s, never hand-written:
//!
//! - **Upgrade**: [`accept`] checks the request (RFC 6455 §4.2.1, and an
//!   `Origin` whose host is the request's `Host`) and answers
//!   `101 Switching Protocols` with the accept key tungstenite derives.
//! - **Server → browser** ([`append_text`], [`append_close`]): the writer
//!   thread puts each line of its batch in a text frame, formatting the
//!   header with tungstenite's `FrameHeader` and appending the line's bytes
//!   after it (no copy of the line, no allocation per frame).
//! - **Browser → server** ([`Decoder`]): a tungstenite `WebSocket` that
//!   reads from an in-memory pipe. The reader thread feeds it the
//!   plaintext rustls decrypted; it unmasks, reassembles fragments, checks
//!   UTF-8, and answers pings and close frames itself; each text message
//!   becomes one line for the same line splitter a terminal client's
//!   bytes go to (a LF inside a message never makes it two lines: see
//!   `push_line`). So a message longer than `--max-line` is refused exactly
//!   like a long line (`ERR LINE_TOO_LONG`, the connection lives on), and
//!   the message size tungstenite buffers is bounded by [`hard_limit`].

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::protocol::{ByeReason, LineSplitter};

use super::http::{Request, Response};

/// The largest message (and frame) the decoder buffers: four times
/// `--max-line`, at least 16 KiB. Messages up to this size are handed to
/// the line splitter, which refuses those over `--max-line` like any long
/// line; a larger one closes the connection (close code 1009, "message too
/// big"), because tungstenite would otherwise keep it whole in memory.
pub fn hard_limit(max_line: usize) -> usize {
    max_line.saturating_mul(4).max(16 * 1024)
}

/// Why an upgrade request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a valid WebSocket upgrade: 400.
    BadUpgrade(&'static str),
    /// An `Origin` other than this server (a page of another site trying
    /// to open a socket with the user's browser), or none: 403.
    ForeignOrigin,
}

/// Checks an upgrade request and returns the `101` response for it.
///
/// # Errors
///
/// [`Refusal`] saying whether it is a bad request or a foreign origin.
pub fn accept(request: &Request) -> Result<Response, Refusal> {
    let has_token = |name: &str, token: &str| {
        request.header(name).is_some_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err(Refusal::BadUpgrade("no Upgrade: websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(Refusal::BadUpgrade("no Connection: Upgrade"));
    }
    if request.header("sec-websocket-version") != Some("13") {
        return Err(Refusal::BadUpgrade("Sec-WebSocket-Version is not 13"));
    }
    let key = request
        .header("sec-websocket-key")
        .filter(|k| !k.is_empty())
        .ok_or(Refusal::BadUpgrade("no Sec-WebSocket-Key"))?;
    if !same_origin(request.header("origin"), request.header("host")) {
        return Err(Refusal::ForeignOrigin);
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept))
}

/// Whether `origin` (`https://host:port`) names the same host and port as
/// `host` (the request's `Host` header, `host:port`), ignoring case. A
/// missing header on either side is not the same origin.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    let (Some(origin), Some(host)) = (origin, host) else {
        return false;
    };
    let Some(rest) = origin.strip_prefix("https://") else {
        return false;
    };
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

/// Appends `line` (given with its LF, which is left out) to `out` as one
/// unmasked text frame, as a server sends it.
pub fn append_text(out: &mut Vec<u8>, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    // Writing into a `Vec` cannot fail.
    let _ = header.format(line.len() as u64, out);
    out.extend_from_slice(line);
}

/// Appends a close frame carrying `reason`'s name (`SLOW_CONSUMER`…), the
/// last frame after a `BYE` line: 1001 "going away" for a shutdown, 1000
/// "normal" for every other reason.
pub fn append_close(out: &mut Vec<u8>, reason: ByeReason) {
    let code = if reason == ByeReason::Shutdown {
        CloseCode::Away
    } else {
        CloseCode::Normal
    };
    let frame = Frame::close(Some(CloseFrame {
        code,
        reason: reason.as_str().into(),
    }));
    let _ = frame.format(out);
}

/// The bytes between rustls and tungstenite: the reader pushes plaintext
/// in, tungstenite reads it out and writes its answers (pongs, the close
/// reply) to `output`. Reading an empty pipe is "would block", never the
/// end of the stream: more may come with the next TLS record. (The load
/// generator's WebSocket clients use the same pipe, from the other side.)
#[derive(Debug, Default)]
pub struct Pipe {
    /// Plaintext received and not yet read by tungstenite.
    pub input: VecDeque<u8>,
    /// Frames tungstenite wrote, for the reader to hand to rustls.
    pub output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reader's side of a WebSocket connection: frames in, lines out.
pub struct Decoder {
    /// tungstenite's state machine, server role, over the in-memory pipe.
    ws: WebSocket<Pipe>,
}

/// What one [`Decoder::decode`] produced besides lines.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Frames to send back (a pong, the reply to a close), whole frames,
    /// to be handed to rustls as they are.
    pub reply: Vec<u8>,
    /// The WebSocket session is over: the peer sent a close frame, or
    /// broke the protocol (then the reason, for the log).
    pub ended: Option<String>,
}

impl Decoder {
    /// A decoder for a client whose lines may be `max_line` bytes long
    /// (LF included); `already` is what the peer sent right behind its
    /// upgrade request.
    pub fn new(max_line: usize, already: &[u8]) -> Self {
        let limit = hard_limit(max_line);
        let config = WebSocketConfig::default()
            // Eagerly allocated per connection: chat messages are small.
            .read_buffer_size(4 * 1024)
            // Answers are written to the pipe at once.
            .write_buffer_size(0)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let mut pipe = Pipe::default();
        pipe.input.extend(already);
        Decoder {
            ws: WebSocket::from_raw_socket(pipe, Role::Server, Some(config)),
        }
    }

    /// Takes plaintext the reader decrypted.
    pub fn push(&mut self, bytes: &[u8]) {
        self.ws.get_mut().input.extend(bytes);
    }

    /// Decodes every complete message pushed so far: each text (or binary)
    /// message goes to `lines` as one line (its bytes and a LF). Pings and
    /// close frames are answered in [`Decoded::reply`].
    pub fn decode(&mut self, lines: &mut LineSplitter) -> Decoded {
        let mut ended = None;
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => push_line(lines, text.as_bytes()),
                Ok(Message::Binary(bytes)) => push_line(lines, &bytes),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    ended = Some("the peer closed the WebSocket".to_string());
                    break;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    ended = Some("the WebSocket is closed".to_string());
                    break;
                }
                Err(e) => {
                    let code = match e {
                        tungstenite::Error::Capacity(_) => CloseCode::Size,
                        tungstenite::Error::Utf8(_) => CloseCode::Invalid,
                        _ => CloseCode::Protocol,
                    };
                    let _ = self.ws.close(Some(CloseFrame {
                        code,
                        reason: "".into(),
                    }));
                    ended = Some(format!("WebSocket error: {e}"));
                    break;
                }
            }
        }
        // Pongs and close replies tungstenite has queued: into the pipe.
        let _ = self.ws.flush();
        Decoded {
            reply: std::mem::take(&mut self.ws.get_mut().output),
            ended,
        }
    }
}

/// Hands one message to the line splitter as one line: its bytes, then a
/// LF. A LF inside the message would make it two lines (two commands from
/// one message), so it goes in as a CR instead: the line then holds a
/// control character, and is refused as such (`ERR BAD_TEXT`, or the
/// command's own error) like the same line on the line protocol.
fn push_line(lines: &mut LineSplitter, message: &[u8]) {
    if message.contains(&b'\n') {
        let kept: Vec<u8> = message
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect();
        lines.push(&kept);
    } else {
        lines.push(message);
    }
    lines.push(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::LineEvent;

    /// A masked client frame, as a browser sends it.
    fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = match opcode {
            OpCode::Data(_) => Frame::message(payload.to_vec(), opcode, true),
            OpCode::Control(_) => Frame::ping(payload.to_vec()),
        };
        frame.header_mut().mask = Some([0x1f, 0x2e, 0x3d, 0x4c]);
        let mut out = Vec::new();
        frame.format(&mut out).expect("format");
        out
    }

    /// Two text messages arriving in one piece, split at any byte, are
    /// two lines; a ping is answered with a pong carrying its payload.
    #[test]
    fn messages_become_lines_and_pings_are_answered() {
        let mut wire = client_frame(OpCode::Data(Data::Text), b"PING");
        wire.extend(client_frame(
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Ping),
            b"hi",
        ));
        wire.extend(client_frame(OpCode::Data(Data::Text), b"SAY hello"));
        let mut lines = LineSplitter::new(64);
        let mut decoder = Decoder::new(64, &[]);
        let mut replies = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            let out = decoder.decode(&mut lines);
            assert!(out.ended.is_none());
            replies.extend(out.reply);
        }
        let mut got = Vec::new();
        while let Some(event) = lines.next_event() {
            got.push(event);
        }
        assert_eq!(
            got,
            vec![
                LineEvent::Line("PING".into()),
                LineEvent::Line("SAY hello".into())
            ]
        );
        let (header, len) = FrameHeader::parse(&mut io::Cursor::new(&replies))
            .expect("parse")
            .expect("a whole frame");
        assert_eq!(
            header.opcode,
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Pong)
        );
        assert_eq!(&replies[replies.len() - len as usize..], b"hi");
    }

    /// A message holding a LF stays one line (with a CR in it), never two.
    #[test]
    fn a_lf_inside_a_message_does_not_make_two_lines() {
        let mut lines = LineSplitter::new(64);
        let mut decoder = Decoder::new(64, &[]);
        decoder.push(&client_frame(OpCode::Data(Data::Text), b"SAY a\nQUIT"));
        assert!(decoder.decode(&mut lines).ended.is_none());
        assert_eq!(
            lines.next_event(),
            Some(LineEvent::Line("SAY a\rQUIT".into()))
        );
        assert_eq!(lines.next_event(), None);
    }

    /// The server's text frame holds the line without its LF.
    #[test]
    fn a_line_is_one_text_frame_without_its_lf() {
        let mut out = Vec::new();
        append_text(&mut out, b"MSG lobby ana hi\n");
        assert_eq!(out[0], 0x81, "FIN + text");
        assert_eq!(usize::from(out[1]), b"MSG lobby ana hi".len());
        assert_eq!(&out[2..], b"MSG lobby ana hi");
    }

    /// Same origin means same host and port, case aside, over https.
    #[test]
    fn origin_must_be_this_host() {
        assert!(same_origin(
            Some("https://Localhost:12345"),
            Some("localhost:12345")
        ));
        assert!(!same_origin(
            Some("https://evil.example"),
            Some("localhost:12345")
        ));
        assert!(!same_origin(
            Some("http://localhost:12345"),
            Some("localhost:12345")
        ));
        assert!(!same_origin(None, Some("localhost:12345")));
        assert!(!same_origin(Some("https://localhost:12345"), None));
    }
}

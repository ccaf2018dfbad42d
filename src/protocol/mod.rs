//! The chat protocol, version 1, as pure code: no sockets, no clock, no
//! database anywhere in this subtree.
//!
//! The grammar is layered, one file per layer, and each layer only sees the
//! one below it:
//!
//! 1. **Bytes → lines** ([`line`](mod@line)). The client sends UTF-8 text, one message
//!    per line. A line ends at LF; a CR just before the LF is dropped. A line
//!    is at most 4096 bytes counting its CR/LF: a longer one is reported as
//!    `LINE_TOO_LONG` and skipped up to its LF, and a line that is not UTF-8
//!    is reported as `BAD_ENCODING`. The connection survives both.
//! 2. **Words** ([`names`], [`text`]). A `<user>` or `<room>` is 1–32
//!    characters from `A–Z a–z 0–9 _ - .`, compared without regard to case
//!    and shown as first given. A `<password>` is the rest of the line, 1–128
//!    bytes, no control characters. A `<text>` is the rest of the line, not
//!    blank, no control characters except TAB.
//! 3. **Lines → commands** ([`command`]). The keyword is the first word, in
//!    any ASCII case; arguments are separated by one space. Each line becomes
//!    a [`Command`] or a [`ParseError`] that already holds the `ERR` code to
//!    send back.
//! 4. **Replies and events** ([`reply`]). Everything the server sends
//!    (`HELLO`, `OK`, `ERR`, `BYE`, `PONG`, `ROOM`, `USER`, `HISTORY`,
//!    `INFO`, `MSG`, `JOINED`, `LEFT`, `DM`) is a [`ServerLine`], rendered in
//!    one `Display` impl and parsed back by [`ServerLine::parse`] for the
//!    client and the tests. Times are [`Timestamp`]s supplied by the caller.
//!
//! Because nothing here does I/O, every rule of the contract can be tested
//! with plain strings and byte slices, and the server's threads only glue
//! these pieces to sockets.
//!
//! ```
//! # use chat::protocol::{Command, LineEvent, LineSplitter, ServerLine};
//! let mut lines = LineSplitter::new(4096);
//! lines.push(b"ping hello\r\n");
//! let Some(LineEvent::Line(line)) = lines.next_event() else { panic!() };
//! let Ok(Command::Ping { token }) = Command::parse(&line) else { panic!() };
//! assert_eq!(ServerLine::Pong { token }.to_string(), "PONG hello");
//! ```

pub mod command;
pub mod line;
pub mod names;
pub mod reply;
pub mod text;

pub use command::{Command, ParseError};
pub use line::{LineEvent, LineSplitter};
pub use names::{Name, NameError};
pub use reply::{ByeReason, ErrCode, LeftReason, ServerLine, Timestamp};

/// The protocol version announced in `HELLO <version> ...`.
pub const PROTOCOL_VERSION: u32 = 1;

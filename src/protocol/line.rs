//! Bytes in, lines out: the bottom layer of the protocol.
//!
//! TLS hands the connection thread decrypted bytes in chunks of any size: half
//! a line, three lines and a half, one byte at a time. [`LineSplitter`] turns
//! that stream into [`LineEvent`]s without ever touching a socket, so it can
//! be tested with plain byte strings (the "sans-IO" style of mini-redis's
//! `frame.rs` and `csv-core`).
//!
//! Three rules from the contract live here and nowhere else:
//!
//! * a line ends at LF, and a CR just before the LF is dropped;
//! * a line is at most `max_line` bytes *including* its CR/LF; a longer one
//!   is reported once as [`LineEvent::TooLong`] and then skipped up to its LF
//!   without being stored, so a peer cannot make us buffer a gigabyte;
//! * a complete line must be UTF-8, otherwise it is [`LineEvent::BadEncoding`].
//!
//! "Need more bytes" is not an error: [`LineSplitter::next_event`] simply
//! returns `None`.

/// The line length the contract uses by default: 4096 bytes including the LF.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// What the splitter found next in the byte stream.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete, UTF-8 line, without its LF and without the CR before it.
    /// An empty line is `Line(String::new())`: it is a line too.
    Line(String),
    /// A line longer than `max_line` bytes (LF and CR included). Reported
    /// once per offending line, as soon as it is known; the rest of that line
    /// is discarded, and the line after it is read normally.
    TooLong,
    /// A complete line that is not valid UTF-8. It has been discarded.
    BadEncoding,
}

/// Splits a byte stream into lines, with a hard cap on the length of a line.
///
/// # Wire format
///
/// ```text
/// <bytes that are not LF> [CR] LF        at most max_line bytes in all
/// ```
///
/// # Usage
///
/// Push every chunk read from the connection, then drain all events before
/// the next read. Memory then stays below `max_line` + the size of one chunk.
///
/// ```
/// # use chat::protocol::{LineEvent, LineSplitter};
/// let mut lines = LineSplitter::new(4096);
/// lines.push(b"PING a\r\nWHO\nSA");
/// assert_eq!(lines.next_event(), Some(LineEvent::Line("PING a".into())));
/// assert_eq!(lines.next_event(), Some(LineEvent::Line("WHO".into())));
/// assert_eq!(lines.next_event(), None); // "SA" waits for more bytes
/// assert!(lines.has_partial());
/// ```
#[derive(Debug)]
pub struct LineSplitter {
    /// Bytes received and not yet returned. Bytes before `consumed` belong to
    /// lines already returned; they are dropped at the next `push`, so that
    /// draining many short lines does not shift the buffer once per line.
    buf: Vec<u8>,
    /// How many bytes at the front of `buf` have already been handed out.
    consumed: usize,
    /// How many bytes after `consumed` are known to hold no LF: the next
    /// search starts after them. Without it, a line arriving one byte at a
    /// time (a TLS record per byte) would be rescanned from its start on
    /// every push, quadratic in its length.
    scanned: usize,
    /// The longest acceptable line, counting its LF (and CR, if any).
    max_line: usize,
    /// True after a `TooLong` while we are still skipping that line's bytes.
    /// While it is set, `push` throws bytes away up to the next LF instead of
    /// buffering them; `buf` holds nothing unread in that state.
    discarding: bool,
}

impl LineSplitter {
    /// Creates a splitter that accepts lines of at most `max_line` bytes,
    /// counting the LF and the CR before it, if any. With `max_line = 4096`,
    /// 4095 content bytes + LF are accepted and 4096 content bytes + LF are
    /// `TooLong`.
    ///
    /// # Panics
    ///
    /// Panics if `max_line` is 0: even an empty line needs one byte for its LF.
    pub fn new(max_line: usize) -> Self {
        assert!(max_line > 0, "max_line must count at least the LF");
        LineSplitter {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            max_line,
            discarding: false,
        }
    }

    /// Appends bytes received from the peer.
    ///
    /// While the splitter is skipping a too-long line, bytes up to and
    /// including the next LF are dropped here without being stored.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.discarding {
            match data.iter().position(|&b| b == b'\n') {
                // The too-long line ends in this chunk: skip it, keep the rest.
                Some(lf) => {
                    self.discarding = false;
                    data = &data[lf + 1..];
                }
                // Still inside the too-long line: nothing to keep.
                None => return,
            }
        }
        // Forget the lines already handed out before growing the buffer.
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.buf.extend_from_slice(data);
    }

    /// Returns the next event, or `None` when more bytes are needed.
    ///
    /// Call it until it returns `None` after every [`push`](Self::push).
    pub fn next_event(&mut self) -> Option<LineEvent> {
        let unread = &self.buf[self.consumed..];
        let fresh = unread[self.scanned..].iter().position(|&b| b == b'\n');
        match fresh.map(|at| self.scanned + at) {
            Some(lf) => {
                let line_len = lf + 1; // the whole line, LF (and any CR) included
                let start = self.consumed;
                self.scanned = 0;
                self.consumed += line_len;
                if line_len > self.max_line {
                    // The LF arrived in the same chunk as the max_line-th byte,
                    // so the whole line is already here: skip it in one go.
                    return Some(LineEvent::TooLong);
                }
                let mut content = &self.buf[start..start + lf];
                if let Some(without_cr) = content.strip_suffix(b"\r") {
                    content = without_cr;
                }
                Some(match std::str::from_utf8(content) {
                    Ok(text) => LineEvent::Line(text.to_owned()),
                    Err(_) => LineEvent::BadEncoding,
                })
            }
            None if unread.len() >= self.max_line => {
                // max_line bytes and still no LF: with its LF this line will be
                // longer than allowed. Say so now, and skip the rest in `push`.
                self.buf.clear();
                self.consumed = 0;
                self.scanned = 0;
                self.discarding = true;
                Some(LineEvent::TooLong)
            }
            None => {
                self.scanned = unread.len();
                None
            }
        }
    }

    /// Returns true if the peer is in the middle of a line: some bytes of an
    /// unfinished line are buffered, or a too-long line is being skipped.
    ///
    /// Meant to be asked after `next_event` returned `None`, when the peer
    /// closes: EOF with a partial line means the last line was truncated.
    pub fn has_partial(&self) -> bool {
        self.discarding || self.buf.len() > self.consumed
    }

    /// Bytes held in memory right now, read or not. Never more than
    /// `max_line` plus the size of the last push: the bound that keeps a
    /// peer from making the server buffer a gigabyte without a newline.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `data` in one go and returns every event it produces.
    fn drain(splitter: &mut LineSplitter, data: &[u8]) -> Vec<LineEvent> {
        splitter.push(data);
        std::iter::from_fn(|| splitter.next_event()).collect()
    }

    /// Shorthand for an expected `Line` event.
    fn line(s: &str) -> LineEvent {
        LineEvent::Line(s.to_owned())
    }

    /// Several lines in one push come out in order, the partial one waits.
    #[test]
    fn multiple_lines_per_push() {
        let mut s = LineSplitter::new(100);
        assert_eq!(
            drain(&mut s, b"ONE\nTWO\nTHR"),
            vec![line("ONE"), line("TWO")]
        );
        assert!(s.has_partial());
        assert_eq!(drain(&mut s, b"EE\n"), vec![line("THREE")]);
        assert!(!s.has_partial());
    }

    /// A CR right before the LF is dropped; a CR anywhere else is kept.
    #[test]
    fn crlf_is_stripped_only_at_the_end() {
        let mut s = LineSplitter::new(100);
        assert_eq!(
            drain(&mut s, b"a\r\nb\rc\n\r\r\n"),
            vec![line("a"), line("b\rc"), line("\r")]
        );
    }

    /// Empty lines (LF alone, CRLF alone) are reported as empty lines.
    #[test]
    fn empty_lines() {
        let mut s = LineSplitter::new(100);
        assert_eq!(drain(&mut s, b"\n\r\n"), vec![line(""), line("")]);
    }

    /// Feeding one byte at a time gives the same lines as one big push.
    #[test]
    fn byte_by_byte() {
        let input = "SAY olá\r\nWHO\n\nPING x y\n".as_bytes();
        let mut s = LineSplitter::new(100);
        let mut events = Vec::new();
        for &b in input {
            events.extend(drain(&mut s, &[b]));
        }
        assert_eq!(
            events,
            vec![line("SAY olá"), line("WHO"), line(""), line("PING x y")]
        );
        assert!(!s.has_partial());
    }

    /// A multi-byte UTF-8 character split across pushes is reassembled.
    #[test]
    fn utf8_split_across_pushes() {
        let mut s = LineSplitter::new(100);
        let bytes = "é\n".as_bytes();
        assert_eq!(drain(&mut s, &bytes[..1]), vec![]);
        assert_eq!(drain(&mut s, &bytes[1..]), vec![line("é")]);
    }

    /// max_line-1 content bytes + LF fit; max_line content bytes + LF do not.
    #[test]
    fn boundary_with_lf() {
        let max = 16;
        let mut s = LineSplitter::new(max);
        let mut ok = vec![b'x'; max - 1];
        ok.push(b'\n');
        assert_eq!(drain(&mut s, &ok), vec![line(&"x".repeat(max - 1))]);

        let mut too_long = vec![b'y'; max];
        too_long.push(b'\n');
        too_long.extend_from_slice(b"next\n");
        assert_eq!(
            drain(&mut s, &too_long),
            vec![LineEvent::TooLong, line("next")]
        );
    }

    /// The CR counts towards the limit: max_line-2 content + CRLF is the most.
    #[test]
    fn boundary_with_crlf() {
        let max = 16;
        let mut s = LineSplitter::new(max);
        let mut ok = vec![b'x'; max - 2];
        ok.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut s, &ok), vec![line(&"x".repeat(max - 2))]);

        let mut too_long = vec![b'x'; max - 1];
        too_long.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut s, &too_long), vec![LineEvent::TooLong]);
        assert!(!s.has_partial());
    }

    /// TooLong is reported as soon as max_line bytes without LF are buffered,
    /// exactly once, and the line after the long one is read normally.
    #[test]
    fn too_long_reported_early_and_once_then_recovers() {
        let max = 8;
        let mut s = LineSplitter::new(max);
        assert_eq!(drain(&mut s, b"1234567"), vec![]); // 7 bytes: could still fit
        assert_eq!(drain(&mut s, b"8"), vec![LineEvent::TooLong]);
        assert!(s.has_partial(), "skipping the rest of a line is mid-line");
        assert_eq!(drain(&mut s, b"more bytes, no LF"), vec![]);
        assert_eq!(drain(&mut s, b"still more"), vec![]);
        assert_eq!(drain(&mut s, b"end\nWHO\n"), vec![line("WHO")]);
        assert!(!s.has_partial());
    }

    /// A too-long line whose LF arrives in the same push is skipped whole.
    #[test]
    fn too_long_with_lf_in_same_push() {
        let mut s = LineSplitter::new(4);
        assert_eq!(
            drain(&mut s, b"abcdefgh\nok\n"),
            vec![LineEvent::TooLong, line("ok")]
        );
    }

    /// A 1 MB line sent in 16 KiB chunks gives one TooLong, memory stays
    /// bounded by max_line + one chunk, and the next line still works.
    #[test]
    fn one_megabyte_line_keeps_memory_bounded() {
        const CHUNK: usize = 16 * 1024;
        let max = DEFAULT_MAX_LINE;
        let mut input = vec![b'z'; 1024 * 1024];
        input.extend_from_slice(b"\nPING after\n");

        let mut s = LineSplitter::new(max);
        let mut events = Vec::new();
        for chunk in input.chunks(CHUNK) {
            s.push(chunk);
            assert!(
                s.buf.len() <= max + CHUNK,
                "buffer grew to {} bytes",
                s.buf.len()
            );
            events.extend(std::iter::from_fn(|| s.next_event()));
        }
        assert_eq!(events, vec![LineEvent::TooLong, line("PING after")]);
    }

    /// A complete line that is not UTF-8 is BadEncoding and is discarded.
    #[test]
    fn invalid_utf8_is_bad_encoding() {
        let mut s = LineSplitter::new(100);
        assert_eq!(
            drain(&mut s, b"SAY \xff\xfe\r\nWHO\n"),
            vec![LineEvent::BadEncoding, line("WHO")]
        );
    }

    /// has_partial is false when nothing or only whole lines were received.
    #[test]
    fn has_partial_tracks_unfinished_lines() {
        let mut s = LineSplitter::new(100);
        assert!(!s.has_partial());
        s.push(b"WHO");
        assert!(s.has_partial());
        s.push(b"\n");
        assert!(s.has_partial(), "the whole line is not drained yet");
        assert_eq!(s.next_event(), Some(line("WHO")));
        assert!(!s.has_partial());
    }

    /// A line pushed one byte at a time is searched once, not once per
    /// byte: after each push only the new byte is looked at.
    #[test]
    fn a_partial_line_is_not_rescanned() {
        let mut s = LineSplitter::new(100);
        for (i, &b) in b"SAY one byte at a time".iter().enumerate() {
            assert_eq!(drain(&mut s, &[b]), vec![]);
            assert_eq!(s.scanned, i + 1, "the bytes known to hold no LF");
        }
        assert_eq!(
            drain(&mut s, b"\nWHO"),
            vec![line("SAY one byte at a time")]
        );
        assert_eq!(s.scanned, 3, "the search restarts after the line");
        assert_eq!(drain(&mut s, b"\n"), vec![line("WHO")]);
    }

    /// A limit of zero bytes cannot hold even a LF, so it is refused.
    #[test]
    #[should_panic(expected = "max_line")]
    fn zero_max_line_panics() {
        let _ = LineSplitter::new(0);
    }
}

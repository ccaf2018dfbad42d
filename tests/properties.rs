//! Property tests of the pure protocol layer: whatever bytes a peer sends,
//! the line splitter and the command parser never panic, never buffer
//! without bound, and what they accept renders back to an equivalent line.

use chat::protocol::{Command, LineEvent, LineSplitter, ServerLine};
use proptest::prelude::*;

/// A small line limit, so that random inputs cross it often.
const MAX: usize = 64;

/// Splits `bytes` fed in pieces of the given sizes; returns the events.
fn split(bytes: &[u8], pieces: &[usize]) -> Vec<LineEvent> {
    let mut splitter = LineSplitter::new(MAX);
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        splitter.push(&rest[..n]);
        assert!(
            splitter.buffered() <= MAX + n,
            "buffered {} bytes after a push of {n}",
            splitter.buffered()
        );
        rest = &rest[n..];
        while let Some(event) = splitter.next_event() {
            events.push(event);
        }
    }
    events
}

/// Bytes that are mostly line-like: short runs, many LFs and CRs, some
/// invalid UTF-8.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"abc JOIN SAY\r\n\t".to_vec()),
            1 => any::<u8>(),
        ],
        0..600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, in any pieces: no panic, bounded memory, and the same
    /// events however the bytes were cut.
    #[test]
    fn splitter_is_total_and_chunking_invariant(
        bytes in wire_bytes(),
        pieces in prop::collection::vec(1usize..40, 1..8),
    ) {
        let whole = split(&bytes, &[bytes.len().max(1)]);
        let cut = split(&bytes, &pieces);
        prop_assert_eq!(&whole, &cut);
        for event in &whole {
            if let LineEvent::Line(line) = event {
                prop_assert!(!line.contains('\n'));
                prop_assert!(line.len() < MAX, "a {}-byte line passed a {MAX}-byte limit", line.len());
            }
        }
    }

    /// Any text: the parser answers, never panics; whatever it accepts
    /// renders back to a line that parses to the same command.
    #[test]
    fn parser_is_total_and_round_trips(line in "\\PC{0,80}") {
        if let Ok(command) = Command::parse(&line) {
            let rendered = command.to_string();
            prop_assert_eq!(Command::parse(&rendered), Ok(command));
        }
    }

    /// Lines built from protocol words parse often; each round-trips.
    #[test]
    fn command_like_lines_round_trip(
        keyword in prop::sample::select(vec![
            "REGISTER", "login", "ROOMS", "create", "JOIN", "LEAVE", "say", "WHO", "DM", "PING", "HELP", "QUIT",
        ]),
        args in prop::collection::vec("[A-Za-z0-9_.\\- ]{0,12}", 0..3),
    ) {
        let line = std::iter::once(keyword.to_string()).chain(args).collect::<Vec<_>>().join(" ");
        if let Ok(command) = Command::parse(&line) {
            prop_assert_eq!(Command::parse(&command.to_string()), Ok(command));
        }
    }

    /// Every server line the client may receive: parsing never panics, and
    /// a parsed line renders back to one that parses the same.
    #[test]
    fn server_lines_round_trip(line in "(MSG|DM|HISTORY|OK|ERR|BYE|ROOM|USER|LEFT|JOINED|PONG|INFO|HELLO)( [A-Za-z0-9:.\\-_]{0,24}){0,5}") {
        if let Some(parsed) = ServerLine::parse(&line) {
            prop_assert_eq!(ServerLine::parse(&parsed.to_string()), Some(parsed));
        }
    }
}

//! Making received text safe to print on a terminal.
//!
//! A terminal obeys control characters. ESC (`\x1b`) starts sequences that
//! move the cursor, clear the screen, change colours or the window title, and
//! on some terminals even make the terminal *type* text back; the C1 control
//! U+009B is a one-character ESC `[` on terminals that honour it; BEL
//! beeps; CR returns to the start of the line so that a message can overwrite
//! what was printed before it (`[admin@sala]: …`). The server already refuses
//! such text (PROTOCOL.md: `<text>` has no control characters), but a client
//! should not trust that: the server may be old, buggy, or not ours.
//!
//! So everything the client prints goes through [`sanitize`], which makes
//! every control character *visible* instead of obeying it:
//!
//! | received | printed |
//! |---|---|
//! | TAB | one space |
//! | other C0 (`U+0000`–`U+001F`) | caret notation: ESC → `^[`, BEL → `^G`, CR → `^M` |
//! | DEL (`U+007F`) | `^?` |
//! | C1 (`U+0080`–`U+009F`) | U+FFFD `�` |
//! | bidi overrides, embeddings, isolates (`U+202A`–`U+202E`, `U+2066`–`U+2069`), line and paragraph separators (`U+2028`, `U+2029`) | U+FFFD `�` |
//!
//! The last row is not about the terminal's commands but about what a reader
//! sees: a right-to-left override turns the rest of a line around, so that
//! `[bob@sala]: hi` can be made to look like somebody else said something
//! else, and a line separator starts a line that looks like the server's.
//! Everything else, including all printable Unicode, is kept as it is.

use crate::protocol::text::{is_control, is_reordering};

/// The replacement character printed for a C1 control.
const REPLACEMENT: char = '\u{FFFD}';

/// Returns `text` with every control character replaced by a visible
/// placeholder (see the module doc). A pure function: the result never
/// contains a control character, nor one that reorders or breaks the line.
///
/// ```
/// use chat::client::sanitize::sanitize;
/// assert_eq!(sanitize("\x1b[2Jhi\x07"), "^[[2Jhi^G");
/// assert_eq!(sanitize("olá\tmundo"), "olá mundo");
/// ```
pub fn sanitize(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => safe.push(' '),
            '\u{7f}' => safe.push_str("^?"),
            // C0: caret notation, the control's code plus 0x40 ('\x1b' + 0x40 = '[').
            '\u{0}'..='\u{1f}' => {
                safe.push('^');
                safe.push(char::from(c as u8 + 0x40));
            }
            c if is_control(c) || is_reordering(c) => safe.push(REPLACEMENT),
            c => safe.push(c),
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Characters that reorder or break a line are shown as U+FFFD, so a
    /// right-to-left override cannot turn the rest of the line around.
    #[test]
    fn reordering_is_shown_not_obeyed() {
        assert_eq!(
            sanitize("a\u{202e}b\u{2066}c\u{2028}d"),
            "a\u{fffd}b\u{fffd}c\u{fffd}d"
        );
        assert_eq!(sanitize("\u{200f}ok"), "\u{200f}ok");
    }

    /// A screen-clearing ESC sequence is shown, not obeyed.
    #[test]
    fn escape_sequences_become_visible() {
        assert_eq!(sanitize("\x1b[2J\x1b[H"), "^[[2J^[[H");
        assert_eq!(sanitize("\x1b]0;pwned\x07"), "^[]0;pwned^G");
        assert_eq!(sanitize("red \x1b[31mtext\x1b[0m"), "red ^[[31mtext^[[0m");
    }

    /// BEL, CR, LF, NUL and DEL have caret placeholders.
    #[test]
    fn other_c0_and_del() {
        assert_eq!(sanitize("ding\x07"), "ding^G");
        assert_eq!(sanitize("fake\rreal"), "fake^Mreal");
        assert_eq!(sanitize("a\nb"), "a^Jb");
        assert_eq!(sanitize("\0"), "^@");
        assert_eq!(sanitize("\x7f"), "^?");
    }

    /// The one-character CSI U+009B and the rest of C1 become U+FFFD.
    #[test]
    fn c1_controls() {
        assert_eq!(sanitize("\u{9b}2J"), "\u{FFFD}2J");
        assert_eq!(sanitize("\u{80}\u{9f}"), "\u{FFFD}\u{FFFD}");
    }

    /// TAB is harmless but is printed as a space, so columns stay simple.
    #[test]
    fn tab_is_a_space() {
        assert_eq!(sanitize("a\tb"), "a b");
    }

    /// Printable text, accents, emoji and U+00A0 (just after C1) pass
    /// through unchanged.
    #[test]
    fn printable_text_unchanged() {
        for s in [
            "olá, mundo!",
            "ação ç ü",
            "🙂 [x@y]: z",
            "\u{a0}",
            "^[ typed",
        ] {
            assert_eq!(sanitize(s), s);
        }
    }

    /// Whatever goes in, no control character comes out.
    #[test]
    fn output_has_no_controls() {
        let all: String = (0u32..0x200).filter_map(char::from_u32).collect();
        assert!(!sanitize(&all).chars().any(is_control));
    }
}

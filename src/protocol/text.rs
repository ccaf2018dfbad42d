//! Which passwords and message texts the server accepts.
//!
//! Both are "the rest of the line", so they may contain spaces. The rules
//! against control characters are a security matter, not pedantry: a message
//! carrying ESC (`\x1b`) or a C1 CSI (`U+009B`) could move the cursor, clear
//! or retitle another user's terminal when printed. TAB is harmless in a
//! message and allowed there, but not in a password, where it would be
//! invisible and almost certainly a mistake.

/// The longest password accepted, in bytes (not characters).
pub const MAX_PASSWORD_LEN: usize = 128;

/// Returns true for control characters: C0 (`U+0000`–`U+001F`, TAB, CR and
/// LF included), DEL (`U+007F`) and C1 (`U+0080`–`U+009F`).
///
/// This is the Unicode general category `Cc`, spelled out so that the rule
/// can be read next to the contract.
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{80}'..='\u{9f}')
}

/// Returns true for the characters that reorder or break what others see:
/// the bidirectional embeddings and overrides (`U+202A`–`U+202E`), the
/// bidirectional isolates (`U+2066`–`U+2069`), and the line and paragraph
/// separators (`U+2028`, `U+2029`). A message holding `U+202E` (right-to-left
/// override) shows its tail backwards, and can make the next user's name
/// appear to say something else on a student's screen; a separator starts a
/// new line inside a message, where it could pass for a line from the
/// server.
pub fn is_reordering(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
    )
}

/// Returns true if `s` is an acceptable `<password>`: 1 to
/// [`MAX_PASSWORD_LEN`] bytes, no control characters at all (TAB included).
///
/// # Wire format
///
/// ```text
/// <1..=128 bytes of UTF-8, spaces allowed, no C0/DEL/C1>
/// ```
pub fn is_valid_password(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_PASSWORD_LEN && !s.chars().any(is_control)
}

/// Returns true if `s` is an acceptable `<text>` for `SAY` and `DM`: at least
/// one byte, not only spaces and TABs, no control character except TAB, and
/// none of the characters that reorder or break lines ([`is_reordering`]).
///
/// There is no length limit of its own: the line limit bounds it.
///
/// # Wire format
///
/// ```text
/// <1 or more bytes of UTF-8, not only SP/TAB, no C0 except TAB, no DEL, no C1,
///  no U+202A..U+202E, U+2066..U+2069, U+2028, U+2029>
/// ```
pub fn is_valid_text(s: &str) -> bool {
    let only_blanks = s.chars().all(|c| c == ' ' || c == '\t');
    let bad_control = s
        .chars()
        .any(|c| (c != '\t' && is_control(c)) || is_reordering(c));
    !s.is_empty() && !only_blanks && !bad_control
}

#[cfg(test)]
mod tests {
    use super::*;

    /// is_control agrees with the standard library's `Cc` test everywhere
    /// in the first 1024 code points, and is false just outside each range.
    #[test]
    fn control_ranges() {
        for cp in 0..1024u32 {
            let c = char::from_u32(cp).unwrap();
            assert_eq!(is_control(c), c.is_control(), "U+{cp:04X}");
        }
        assert!(is_control('\u{1f}') && !is_control(' '));
        assert!(is_control('\u{7f}') && !is_control('~'));
        assert!(is_control('\u{9f}') && !is_control('\u{a0}'));
    }

    /// Password length is counted in bytes, 1..=128.
    #[test]
    fn password_length_in_bytes() {
        assert!(!is_valid_password(""));
        assert!(is_valid_password("1"));
        assert!(is_valid_password(&"a".repeat(MAX_PASSWORD_LEN)));
        assert!(!is_valid_password(&"a".repeat(MAX_PASSWORD_LEN + 1)));
        // 64 two-byte characters = 128 bytes: fine; 65 = 130 bytes: too long.
        assert!(is_valid_password(&"é".repeat(64)));
        assert!(!is_valid_password(&"é".repeat(65)));
    }

    /// Passwords may contain spaces and non-ASCII, but no control at all.
    #[test]
    fn password_characters() {
        assert!(is_valid_password("correct horse battery staple"));
        assert!(is_valid_password(" "));
        assert!(is_valid_password("sênha✓"));
        for bad in [
            "a\tb",
            "a\u{0}",
            "a\u{1b}[2J",
            "a\u{7f}",
            "a\u{85}",
            "a\u{9b}",
        ] {
            assert!(!is_valid_password(bad), "{bad:?}");
        }
    }

    /// Text must have something besides spaces and TABs.
    #[test]
    fn text_not_blank() {
        assert!(!is_valid_text(""));
        assert!(!is_valid_text(" "));
        assert!(!is_valid_text(" \t \t"));
        assert!(is_valid_text("a"));
        assert!(is_valid_text("  olá, bob!  "));
    }

    /// Text allows TAB but refuses every other control character.
    #[test]
    fn text_controls() {
        assert!(is_valid_text("col1\tcol2"));
        for bad in [
            "a\u{1b}[31m",
            "a\r",
            "a\n",
            "bell\u{7}",
            "a\u{7f}",
            "a\u{80}",
            "a\u{9b}2J",
        ] {
            assert!(!is_valid_text(bad), "{bad:?}");
        }
        // Other Unicode (non-control) is fine.
        assert!(is_valid_text("\u{a0}ok\u{200f}é✓"));
    }

    /// Bidirectional overrides, embeddings and isolates, and the line and
    /// paragraph separators are refused; their neighbours are not.
    #[test]
    fn text_reordering() {
        for cp in (0x202a..=0x202e)
            .chain(0x2066..=0x2069)
            .chain([0x2028, 0x2029])
        {
            let c = char::from_u32(cp).unwrap();
            assert!(!is_valid_text(&format!("abc{c}def")), "U+{cp:04X}");
        }
        for cp in [0x2027, 0x202f, 0x2065, 0x206a, 0x200e, 0x200f] {
            let c = char::from_u32(cp).unwrap();
            assert!(is_valid_text(&format!("abc{c}def")), "U+{cp:04X}");
        }
    }
}

//! User and room names: which strings are names, and when two names are equal.
//!
//! The contract says a `<user>` or `<room>` is 1–32 characters from
//! `A–Z a–z 0–9 _ - .`, compared without regard to case, and shown as first
//! registered or created. [`Name`] keeps the spelling it was given for
//! display, and compares, hashes and orders by its lowercase [`key`](Name::key),
//! so `Alice` and `alice` are the same key in a `HashMap` or `BTreeMap`.
//!
//! The allowed characters are all ASCII, so "characters" and "bytes" are the
//! same thing here and ASCII case folding is all the folding we need.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// The longest name accepted, in characters (which are also bytes).
pub const MAX_NAME_LEN: usize = 32;

/// A user or room name: 1–32 chars of A–Z a–z 0–9 _ - . ; compared without regard to ASCII case; displayed as given.
///
/// # Wire format
///
/// ```text
/// [A-Za-z0-9_.-]{1,32}
/// ```
///
/// ```
/// # use chat::protocol::Name;
/// let a = Name::parse("Alice").unwrap();
/// let b = Name::parse("aLiCe").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "Alice");
/// assert_eq!(b.key(), "alice");
/// ```
#[derive(Debug, Clone)]
pub struct Name {
    /// The name exactly as the user typed it: what we show to other users.
    /// Its lowercase form is the identity (see [`Name::key`]).
    display: String,
}

/// Why a string is not a valid [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The string is empty.
    Empty,
    /// The string has more than [`MAX_NAME_LEN`] characters.
    TooLong,
    /// The string contains a character outside `A–Z a–z 0–9 _ - .`.
    BadChar,
}

/// Returns true for the characters a name may contain.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl Name {
    /// Checks `s` against the name rules and keeps it as given.
    ///
    /// # Errors
    ///
    /// [`NameError::Empty`] for `""`, [`NameError::BadChar`] if any character
    /// is outside the allowed set (checked before the length, so a long
    /// string of emoji says "bad character"), [`NameError::TooLong`] for more
    /// than [`MAX_NAME_LEN`] characters.
    pub fn parse(s: &str) -> Result<Name, NameError> {
        if s.is_empty() {
            Err(NameError::Empty)
        } else if !s.chars().all(is_name_char) {
            Err(NameError::BadChar)
        } else if s.len() > MAX_NAME_LEN {
            // Only ASCII is left at this point, so bytes == characters.
            Err(NameError::TooLong)
        } else {
            Ok(Name {
                display: s.to_owned(),
            })
        }
    }

    /// The name as given, e.g. `Alice`.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The name in ASCII lowercase, e.g. `alice`: the identity used as the
    /// key of in-memory maps and in the database.
    pub fn key(&self) -> String {
        self.display.to_ascii_lowercase()
    }

    /// The bytes of the key, lowercased on the fly, for comparing and hashing
    /// without allocating a `String`.
    fn key_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.display.bytes().map(|b| b.to_ascii_lowercase())
    }
}

impl PartialEq for Name {
    /// Two names are equal when they differ at most in ASCII case.
    fn eq(&self, other: &Self) -> bool {
        self.display.eq_ignore_ascii_case(&other.display)
    }
}

impl Eq for Name {}

impl Hash for Name {
    /// Hashes the key, so that equal names (in any case) hash alike.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.display.len());
        for b in self.key_bytes() {
            state.write_u8(b);
        }
    }
}

impl PartialOrd for Name {
    /// See [`Ord for Name`](#impl-Ord-for-Name).
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    /// Orders by key, so `ROOMS` lists `apple`, `Banana`, `cherry`.
    ///
    /// The spelling is deliberately *not* used as a tie-breaker: `Ord` must
    /// agree with `Eq` (`cmp` is `Equal` exactly when `==` holds), and
    /// `Alice == alice`. A `BTreeMap<Name, _>` therefore sees them as one key.
    fn cmp(&self, other: &Self) -> Ordering {
        self.key_bytes().cmp(other.key_bytes())
    }
}

impl fmt::Display for Name {
    /// Writes the name as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl FromStr for Name {
    type Err = NameError;

    /// Same as [`Name::parse`], so `"alice".parse::<Name>()` works.
    fn from_str(s: &str) -> Result<Name, NameError> {
        Name::parse(s)
    }
}

impl fmt::Display for NameError {
    /// A lowercase description, suitable for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "name is empty",
            NameError::TooLong => "name is longer than 32 characters",
            NameError::BadChar => "name may only contain A-Z a-z 0-9 _ - .",
        })
    }
}

impl std::error::Error for NameError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;
    use std::collections::{BTreeSet, HashSet};

    /// Hashes one value with the standard hasher.
    fn hash_of(name: &Name) -> u64 {
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        h.finish()
    }

    /// Every allowed character class is accepted, and kept as given.
    #[test]
    fn accepts_allowed_characters() {
        let n = Name::parse("Az09_-.").unwrap();
        assert_eq!(n.as_str(), "Az09_-.");
        assert_eq!(n.to_string(), "Az09_-.");
        assert_eq!(n.key(), "az09_-.");
    }

    /// The length limit is 32 characters, inclusive.
    #[test]
    fn length_limits() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert!(Name::parse("a").is_ok());
        assert!(Name::parse(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert_eq!(
            Name::parse(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong)
        );
    }

    /// Spaces, punctuation, controls and non-ASCII letters are refused.
    #[test]
    fn refuses_other_characters() {
        for bad in [
            "a b", "a\tb", "a/b", "a@b", "olá", "a\u{0}", "é", "a\n", "a,b",
        ] {
            assert_eq!(Name::parse(bad), Err(NameError::BadChar), "{bad:?}");
        }
        // A bad character wins over a bad length.
        assert_eq!(Name::parse(&"é".repeat(40)), Err(NameError::BadChar));
    }

    /// Equality, hashing and ordering ignore ASCII case; display does not.
    #[test]
    fn case_insensitive_identity() {
        let a = Name::parse("Alice").unwrap();
        let b = Name::parse("aLICE").unwrap();
        let c = Name::parse("Alicia").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_ne!(a.to_string(), b.to_string());

        let set: HashSet<Name> = [a.clone(), b.clone(), c.clone()].into();
        assert_eq!(set.len(), 2);
        let tree: BTreeSet<Name> = [a, b, c].into();
        assert_eq!(tree.len(), 2);
    }

    /// Names sort by key, not by byte value of the display form.
    #[test]
    fn orders_by_key() {
        let mut names: Vec<Name> = ["cherry", "Banana", "apple", "_x", "Zed"]
            .iter()
            .map(|s| Name::parse(s).unwrap())
            .collect();
        names.sort();
        let shown: Vec<&str> = names.iter().map(Name::as_str).collect();
        // '_' (0x5F) sorts before lowercase letters once everything is lowercase.
        assert_eq!(shown, ["_x", "apple", "Banana", "cherry", "Zed"]);
    }

    /// `str::parse` goes through the same rules.
    #[test]
    fn from_str_matches_parse() {
        assert_eq!("Bob".parse::<Name>().unwrap().as_str(), "Bob");
        assert_eq!("".parse::<Name>(), Err(NameError::Empty));
    }
}

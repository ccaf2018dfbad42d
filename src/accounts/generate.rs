//! Random passwords for the roster rows that come without one.
//!
//! A teacher reads these aloud or hands them out on paper, and a student
//! types them on a school keyboard: so the alphabet leaves out the
//! characters that look alike in many fonts (`0 O o`, `1 l I`), and
//! punctuation, which is hard to find on some layouts. 56 characters, 12
//! of them: about 70 bits, far beyond guessing at argon2id's cost.
//!
//! The randomness is the operating system's, through *ring*'s
//! `SystemRandom`, as the crypto provider of every TLS config of this
//! crate hands it out (the same source as the status page's token). Each
//! character is drawn from one random byte by rejection, so that every
//! character of the alphabet is exactly as likely.

use crate::error::{Error, Result};

/// The characters of a generated password: letters and digits without
/// `0 O o 1 l I`.
pub const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The length of a generated password (the protocol's "12 characters").
pub const RANDOM_PASSWORD_LEN: usize = 12;

/// A new random password of [`RANDOM_PASSWORD_LEN`] characters from
/// [`PASSWORD_ALPHABET`].
///
/// # Errors
///
/// [`Error::Account`] if the system's random source fails.
pub fn random_password() -> Result<String> {
    let random = rustls::crypto::ring::default_provider().secure_random;
    // The largest multiple of the alphabet's size that fits in a byte: a
    // byte at or above it is thrown away, so that `byte % len` favours no
    // character.
    let len = PASSWORD_ALPHABET.len();
    let limit = 256 / len * len;
    let mut password = String::with_capacity(RANDOM_PASSWORD_LEN);
    let mut bytes = [0u8; 32];
    while password.len() < RANDOM_PASSWORD_LEN {
        random
            .fill(&mut bytes)
            .map_err(|_| Error::Account("the system's random source failed".into()))?;
        for &byte in &bytes {
            let byte = usize::from(byte);
            if byte < limit && password.len() < RANDOM_PASSWORD_LEN {
                password.push(char::from(PASSWORD_ALPHABET[byte % len]));
            }
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::text::is_valid_password;

    /// Twelve characters of the alphabet, a valid password, and never
    /// twice the same; the alphabet has no look-alikes and no repeats.
    #[test]
    fn twelve_unambiguous_characters() {
        for bad in b"0Oo1lI" {
            assert!(!PASSWORD_ALPHABET.contains(bad), "{}", char::from(*bad));
        }
        let mut sorted = PASSWORD_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PASSWORD_ALPHABET.len());
        assert_eq!(PASSWORD_ALPHABET.len(), 56);

        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let password = random_password().unwrap();
            assert_eq!(password.len(), RANDOM_PASSWORD_LEN);
            assert!(password.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
            assert!(is_valid_password(&password));
            assert!(seen.insert(password), "a password came twice");
        }
    }
}

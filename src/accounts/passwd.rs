//! `server user passwd <name>`: a new password for an existing account
//! (a student forgot theirs; the teacher hands out a new one).

use std::path::Path;

use super::{check_password, no_such_user, parse_name};
use crate::auth::Hasher;
use crate::db;
use crate::error::Result;

/// The stored spelling of the account `name` (any case) in the existing
/// database at `path`: what the binary checks before it asks for a
/// password, so that a typo is said before anyone types one.
///
/// # Errors
///
/// [`Error::Account`](crate::Error::Account) for a bad name or no such
/// account; [`Error::Db`](crate::Error::Db) if the file is missing or
/// cannot be read.
pub fn find_user(path: &Path, name: &str) -> Result<String> {
    let name = parse_name(name)?;
    db::existing_user(path, name.as_str())?.ok_or_else(|| no_such_user(name.as_str(), path))
}

/// Replaces the password of the account `name` (any case) in the existing
/// database at `path`, hashed with argon2id at the production cost, and
/// returns the name as stored. The server's sessions go on; the new
/// password is the one the next `LOGIN` needs.
///
/// # Errors
///
/// [`Error::Account`](crate::Error::Account) for a bad name, a password
/// that breaks the protocol's rule, or no such account;
/// [`Error::Db`](crate::Error::Db) if the file is missing or cannot be
/// written.
pub fn set_password(path: &Path, name: &str, password: &str) -> Result<String> {
    let name = parse_name(name)?;
    check_password(password)?;
    // Refused before the hash when the account is not there.
    find_user(path, name.as_str())?;
    let hash = Hasher::new(false)?.hash(password)?;
    db::set_password_hash(path, name.as_str(), &hash)?
        .ok_or_else(|| no_such_user(name.as_str(), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::add_user;
    use crate::auth::Verdict;

    /// The stored hash of `name`.
    fn stored_hash(path: &Path, name: &str) -> String {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// The new password replaces the old one (argon2id); a bad password,
    /// a bad name and an unknown name change nothing and say why.
    #[test]
    fn new_password_replaces_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        add_user(&path, "Ana", "old one").unwrap();
        assert_eq!(set_password(&path, "ana", "new one").unwrap(), "Ana");
        let hasher = Hasher::new(true).unwrap();
        let hash = stored_hash(&path, "Ana");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(hasher.verify("new one", Some(&hash)), Verdict::Ok);
        assert_eq!(hasher.verify("old one", Some(&hash)), Verdict::Bad);

        let err = set_password(&path, "ana", "").unwrap_err().to_string();
        assert!(err.contains("1 to 128 bytes"), "{err}");
        let err = set_password(&path, "a b", "pw").unwrap_err().to_string();
        assert!(err.contains("not a valid user name"), "{err}");
        let err = set_password(&path, "bob", "pw").unwrap_err().to_string();
        assert_eq!(err, format!("no such user bob in {}", path.display()));
        assert_eq!(stored_hash(&path, "Ana"), hash);
    }
}

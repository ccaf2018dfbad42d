//! Accounts made from the server's command line: `server user add <name>`.
//!
//! A server run with `--registration closed` refuses `REGISTER`, so that a
//! script on the internet cannot fill its database with accounts; the
//! teacher makes each student's account here instead. This works on the
//! database file directly, with the same rules as `REGISTER` (a valid name,
//! a valid password, argon2id, a name taken in any letter case is refused),
//! and is safe while the server runs: SQLite's write lock and the WAL
//! journal keep the two writers apart, and the running server sees the new
//! account at its first `LOGIN`, because it looks accounts up in the
//! database every time.

use std::path::Path;

use crate::auth::Hasher;
use crate::db;
use crate::error::{Error, Result};
use crate::protocol::{text::is_valid_password, Name};

/// Creates the account `name` with `password` in the database at `path`
/// (created and migrated if needed) and returns the name as stored.
///
/// # Errors
///
/// [`Error::Account`] for a name or password that breaks the protocol's
/// rules, or a name that is taken (in any letter case); [`Error::Db`] if
/// the database cannot be opened or written.
pub fn add_user(path: &Path, name: &str, password: &str) -> Result<String> {
    let name = Name::parse(name).map_err(|_| {
        Error::Account(format!(
            "{name:?} is not a valid user name: 1 to 32 characters from A-Z a-z 0-9 _ - ."
        ))
    })?;
    if !is_valid_password(password) {
        return Err(Error::Account(
            "the password must have 1 to 128 bytes and no control characters".into(),
        ));
    }
    // Checked before the hash, so that a taken name answers at once; the
    // insert below is still the judge if a `REGISTER` gets there meanwhile.
    if db::user_exists(path, name.as_str())? {
        return Err(Error::Account(format!("the user {name} exists already")));
    }
    // The production cost, always: these are real accounts.
    let hash = Hasher::new(false)?.hash(password)?;
    let now = crate::server::hub::now().0;
    if !db::insert_user(path, name.as_str(), &hash, now)? {
        return Err(Error::Account(format!("the user {name} exists already")));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account is created once; the same name in another case, a bad
    /// name and a bad password are refused with a sentence that says why.
    #[test]
    fn add_then_refuse_duplicates_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        assert_eq!(add_user(&path, "Alice", "s3cret pw").unwrap(), "Alice");
        let taken = add_user(&path, "alice", "other").unwrap_err().to_string();
        assert_eq!(taken, "the user alice exists already");
        let bad = add_user(&path, "a b", "pw").unwrap_err().to_string();
        assert!(bad.contains("not a valid user name"), "{bad}");
        let bad = add_user(&path, "bob", "tab\there").unwrap_err().to_string();
        assert!(bad.contains("password"), "{bad}");
        assert!(db::user_exists(&path, "ALICE").unwrap());
        assert!(!db::user_exists(&path, "bob").unwrap());
    }
}

//! `server user add <name>`: one account, with a password the teacher
//! typed (the binary asks for it).

use std::path::Path;

use super::{check_password, now_ms, parse_name};
use crate::auth::Hasher;
use crate::db;
use crate::error::{Error, Result};

/// Creates the account `name` with `password` in the database at `path`
/// (created and migrated if needed) and returns the name as stored.
///
/// # Errors
///
/// [`Error::Account`] for a name or password that breaks the protocol's
/// rules, or a name that is taken (in any letter case); [`Error::Db`] if
/// the database cannot be opened or written.
pub fn add_user(path: &Path, name: &str, password: &str) -> Result<String> {
    let name = parse_name(name)?;
    check_password(password)?;
    // Checked before the hash, so that a taken name answers at once; the
    // insert below is still the judge if a `REGISTER` gets there meanwhile.
    if db::user_exists(path, name.as_str())? {
        return Err(Error::Account(format!("the user {name} exists already")));
    }
    // The production cost, always: these are real accounts.
    let hash = Hasher::new(false)?.hash(password)?;
    if !db::insert_user(path, name.as_str(), &hash, now_ms())? {
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

//! `server user admin <name> on|off [--force]`: the admin role of the
//! moderation commands (an admin may moderate every room),
//! granted and removed here only.
//!
//! Removing the role of the last admin is refused without `--force`: a
//! class left without an admin has nobody who may suspend a user or
//! close a room, and the teacher may not notice until it matters. Every
//! change is written to the `moderation` table like the protocol's own
//! moderation actions (actor `server`).

use std::fmt;
use std::path::Path;

use super::{no_such_user, now_ms, parse_name};
use crate::db::{self, AdminChange};
use crate::error::{Error, Result};

/// What [`set_admin`] did; its `Display` is the line the binary prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminReport {
    /// The account, as stored.
    pub name: String,
    /// The role it has now.
    pub admin: bool,
    /// Whether that changed (`false`: it had that role already).
    pub changed: bool,
}

impl fmt::Display for AdminReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match (self.admin, self.changed) {
            (true, true) => write!(f, "{name} is now an admin"),
            (false, true) => write!(f, "{name} is no longer an admin"),
            (true, false) => write!(f, "{name} was an admin already: nothing changed"),
            (false, false) => write!(f, "{name} was not an admin: nothing changed"),
        }
    }
}

/// Grants (`admin == true`) or removes the admin role of the account
/// `name` (any case) in the existing database at `path`. The user's
/// sessions keep the role they logged in with; the next `LOGIN` reads the
/// new one.
///
/// # Errors
///
/// [`Error::Account`] for a bad name, no such account, or the removal of
/// the last admin without `force`; [`Error::Db`] if the file is missing
/// or cannot be written.
pub fn set_admin(path: &Path, name: &str, admin: bool, force: bool) -> Result<AdminReport> {
    let name = parse_name(name)?;
    let report = |name: String, changed| AdminReport {
        name,
        admin,
        changed,
    };
    match db::set_admin(path, name.as_str(), admin, force, now_ms())? {
        AdminChange::Changed(name) => Ok(report(name, true)),
        AdminChange::Unchanged(name) => Ok(report(name, false)),
        AdminChange::NoSuchUser => Err(no_such_user(name.as_str(), path)),
        AdminChange::LastAdmin(name) => Err(Error::Account(format!(
            "{name} is the last admin in {}: without one nobody may suspend users or \
             close rooms; make another admin first (server user admin NAME on), or add \
             --force to remove it anyway",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences, and the last admin refused with a sentence that
    /// names `--force`.
    #[test]
    fn reports_and_last_admin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        db::insert_user(&path, "Ana", "h", 1).unwrap();
        let on = set_admin(&path, "ana", true, false).unwrap();
        assert_eq!(on.to_string(), "Ana is now an admin");
        let again = set_admin(&path, "ana", true, false).unwrap();
        assert_eq!(
            again.to_string(),
            "Ana was an admin already: nothing changed"
        );
        let err = set_admin(&path, "ana", false, false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Ana is the last admin in "), "{err}");
        assert!(err.contains("--force"), "{err}");
        let off = set_admin(&path, "ana", false, true).unwrap();
        assert_eq!(off.to_string(), "Ana is no longer an admin");
        let not = set_admin(&path, "ana", false, false).unwrap();
        assert_eq!(not.to_string(), "Ana was not an admin: nothing changed");
        let err = set_admin(&path, "bob", true, false)
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("no such user bob in {}", path.display()));
        let err = set_admin(&path, "b b", true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid user name"), "{err}");
    }
}

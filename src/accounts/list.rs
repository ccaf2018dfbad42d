//! `server user list`: every account as CSV, for a teacher to read or a
//! script to use.
//!
//! # Format
//!
//! ```text
//! name,admin,created,suspended_until
//! Ana,yes,2025-03-01T12:00:00.000Z,
//! bob,no,2025-03-01T12:00:05.250Z,forever
//! carol,no,,2025-03-02T08:00:00.000Z
//! ```
//!
//! One row per account, by name in any letter case. `admin` is `yes` or
//! `no`. Times are RFC 3339 UTC with milliseconds, like the protocol's
//! timestamps; `created` is empty when unknown (accounts migrated from the
//! Python original, which kept no creation time). `suspended_until` is the
//! end of the suspension in force, `forever` for one until lifted, empty
//! for none (an expired suspension is none).

use std::io::Write;
use std::path::Path;

use super::now_ms;
use crate::db::{self, Suspended, UserSummary};
use crate::error::{Error, Result};
use crate::protocol::reply::Timestamp;

/// Every account of the existing database at `path`, by name, with the
/// suspensions in force now.
///
/// # Errors
///
/// [`Error::Db`] if the file is missing or cannot be read.
pub fn list_users(path: &Path) -> Result<Vec<UserSummary>> {
    db::list_users(path, now_ms())
}

/// Writes `users` to `out` as CSV with a header (see the module doc).
///
/// # Errors
///
/// [`Error::Io`] if `out` cannot be written.
pub fn write_user_list(out: impl Write, users: &[UserSummary]) -> Result<()> {
    let failed = |e: csv::Error| Error::io("write the list", e.into());
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["name", "admin", "created", "suspended_until"])
        .map_err(failed)?;
    for user in users {
        let created = match user.created_ms {
            0 => String::new(),
            ms => Timestamp(ms).to_string(),
        };
        let suspended = match user.suspended {
            None => String::new(),
            Some(Suspended::UntilLifted) => "forever".to_string(),
            Some(Suspended::Until(ms)) => Timestamp(ms).to_string(),
        };
        let admin = if user.admin { "yes" } else { "no" };
        csv.write_record([user.name.as_str(), admin, &created, &suspended])
            .map_err(failed)?;
    }
    csv.flush().map_err(|e| Error::io("write the list", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact CSV: header, yes/no, times, `forever`, empty fields.
    #[test]
    fn list_as_csv() {
        let users = [
            UserSummary {
                name: "Ana".into(),
                admin: true,
                created_ms: 1_740_830_400_000,
                suspended: None,
            },
            UserSummary {
                name: "bob".into(),
                admin: false,
                created_ms: 1_740_830_405_250,
                suspended: Some(Suspended::UntilLifted),
            },
            UserSummary {
                name: "carol".into(),
                admin: false,
                created_ms: 0,
                suspended: Some(Suspended::Until(1_740_902_400_000)),
            },
        ];
        let mut out = Vec::new();
        write_user_list(&mut out, &users).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name,admin,created,suspended_until\n\
             Ana,yes,2025-03-01T12:00:00.000Z,\n\
             bob,no,2025-03-01T12:00:05.250Z,forever\n\
             carol,no,,2025-03-02T08:00:00.000Z\n"
        );
    }
}

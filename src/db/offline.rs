//! The database without the server: one-off reads and writes on the file,
//! for the server's command-line subcommands (`server user add`).
//!
//! Each call opens its own connection (with the server's PRAGMAs and
//! migrations), does one statement and closes it. A running server holds
//! the same file open; SQLite's locking and the WAL journal make that safe,
//! and the busy timeout makes this side wait for the server's write lock
//! instead of failing.

use std::path::Path;

use rusqlite::OptionalExtension;

use super::{open_connection, schema};
use crate::error::{Error, Result};

/// Is there an account with this name, in any letter case?
///
/// # Errors
///
/// [`Error::Db`] if the file cannot be opened or read.
pub fn user_exists(path: &Path, name: &str) -> Result<bool> {
    let conn = open_connection(path)?;
    let found: Option<String> = conn
        .query_row(schema::SELECT_USER, [name], |row| row.get(0))
        .optional()
        .map_err(|e| Error::Db(format!("reading {}: {e}", path.display())))?;
    Ok(found.is_some())
}

/// Adds an account with an already made password hash. Returns `false`,
/// changing nothing, if the name is taken in any letter case.
///
/// # Errors
///
/// [`Error::Db`] if the file cannot be opened or written.
pub fn insert_user(path: &Path, name: &str, password_hash: &str, now_ms: i64) -> Result<bool> {
    let conn = open_connection(path)?;
    let inserted = conn
        .execute(
            schema::INSERT_USER,
            rusqlite::params![name, password_hash, now_ms],
        )
        .map_err(|e| Error::Db(format!("writing {}: {e}", path.display())))?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// Eight processes' worth of openers (here: threads, each with its own
    /// connection) creating the same new file at once all succeed: the
    /// schema is made once, under the write lock, and the others see it.
    #[test]
    fn a_new_file_opened_by_many_at_once() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("chat.db");
            let start = Barrier::new(8);
            std::thread::scope(|s| {
                let openers: Vec<_> = (0..8)
                    .map(|i| {
                        let (path, start) = (&path, &start);
                        s.spawn(move || {
                            start.wait();
                            insert_user(path, &format!("u{i}"), "h", 0)
                        })
                    })
                    .collect();
                for opener in openers {
                    let result = opener.join().unwrap();
                    assert!(matches!(result, Ok(true)), "round {round}: {result:?}");
                }
            });
            assert!(user_exists(&path, "u7").unwrap());
        }
    }
}

//! `server user import <roster.csv>`: a whole class's accounts at once,
//! from a roster file, with a password for each printed as CSV for the
//! teacher to hand out.
//!
//! # Steps
//!
//! 1. [`read_roster`]: the file, at most [`MAX_ROSTER_BYTES`].
//! 2. `parse_roster` (`roster.rs`): every row checked; one bad row and
//!    the whole file is refused, before the database is touched.
//! 3. [`import`]: the names that have an account already are left
//!    untouched (`exists`); each other row gets its password (given, or
//!    random from `generate.rs`), hashed with argon2id at the production
//!    cost, then **one transaction** inserts them all: the class gets all
//!    its accounts or, if the disk fails, none.
//! 4. [`write_imported`]: `name,password,status` as CSV.
//!
//! # Output
//!
//! ```text
//! name,password,status
//! ana,7kPq2mZx9aRt,created
//! Bruno,"a password, with a comma",created
//! carla,,exists
//! ```
//!
//! One row per roster row, in its order. `created`: the account was made
//! with that password (the one given in the file, or a generated one).
//! `exists`: an account of that name (in any letter case; its stored
//! spelling is shown) was there already and was left as it was, its
//! password included, so that column is empty. This is the only place a
//! password is ever printed; that is the point of it.
//!
//! # Hashing on a few threads
//!
//! An argon2id hash at the production cost is slow on purpose, and a
//! class needs forty. They are independent, so up to [`HASHING_THREADS`]
//! threads (and no more than the machine has cores) each ask the shared
//! [`Hasher`] for one after the other; its own pool bounds the memory.
//! Each thread takes the next row from a shared counter, and the results
//! are put back in the roster's order.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::generate::random_password;
use super::now_ms;
use super::roster::RosterRow;
use crate::auth::Hasher;
use crate::db;
use crate::error::{Error, Result};

/// The largest roster file read, in bytes: far more than
/// [`MAX_ROSTER_ROWS`](super::MAX_ROSTER_ROWS) rows of the longest names
/// and passwords need, so that a wrong file (a video, a database) is
/// refused before it is read into memory.
pub const MAX_ROSTER_BYTES: u64 = 1024 * 1024;

/// The most threads that hash at once during an import.
const HASHING_THREADS: usize = 4;

/// What happened to one roster row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The account was made.
    Created,
    /// An account of that name was there already: left untouched.
    Exists,
}

impl Status {
    /// The word in the output's `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Exists => "exists",
        }
    }
}

/// One roster row's result.
#[derive(Clone, PartialEq, Eq)]
pub struct Imported {
    /// The name: as written in the roster if created, as stored if it
    /// existed.
    pub name: String,
    /// The new account's password (given or generated); `None` when the
    /// account existed.
    pub password: Option<String>,
    /// What happened.
    pub status: Status,
}

impl std::fmt::Debug for Imported {
    /// Never shows the password (see [`write_imported`] for where it goes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imported")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("status", &self.status)
            .finish()
    }
}

/// Reads a roster file whole, refusing one over [`MAX_ROSTER_BYTES`].
///
/// # Errors
///
/// [`Error::Io`] naming the file if it cannot be read; [`Error::Account`]
/// if it is too large.
pub fn read_roster(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let mut bytes = Vec::new();
    // One byte more than the limit tells "too large" from "exactly at it",
    // whatever the file claims its size is (a pipe has none).
    file.take(MAX_ROSTER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_ROSTER_BYTES {
        return Err(Error::Account(format!(
            "{} is larger than {} KiB: is it the roster? nothing was created",
            path.display(),
            MAX_ROSTER_BYTES / 1024
        )));
    }
    Ok(bytes)
}

/// Makes the accounts of `rows` (already checked by `parse_roster`) in the
/// database at `path` (created and migrated if missing) and returns one
/// result per row, in order. See the module doc.
///
/// # Errors
///
/// [`Error::Db`] if the database cannot be opened or written (then no
/// account was made), [`Error::Hash`] if hashing fails, [`Error::Account`]
/// if the system's random source fails, [`Error::Spawn`] if a hashing
/// thread cannot start.
pub fn import(path: &Path, rows: &[RosterRow]) -> Result<Vec<Imported>> {
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let existing = db::existing_users(path, &names)?;
    // The password of each row to create; `None` for the rows that exist.
    let mut passwords: Vec<Option<String>> = Vec::with_capacity(rows.len());
    for (row, exists) in rows.iter().zip(&existing) {
        passwords.push(match (exists, &row.password) {
            (Some(_), _) => None,
            (None, Some(given)) => Some(given.clone()),
            (None, None) => Some(random_password()?),
        });
    }
    let hashes = hash_all(&passwords)?;
    let accounts: Vec<(&str, &str)> = names
        .iter()
        .zip(&hashes)
        .filter_map(|(name, hash)| Some((*name, hash.as_deref()?)))
        .collect();
    let mut created = db::insert_users(path, &accounts, now_ms())?.into_iter();

    let mut results = Vec::with_capacity(rows.len());
    for ((row, exists), password) in rows.iter().zip(existing).zip(passwords) {
        // A row that was to be created but whose insert changed nothing:
        // the name was taken meanwhile (a `REGISTER` on the running
        // server), so that account is reported as existing, untouched.
        let made = password.is_some() && created.next() == Some(true);
        results.push(if made {
            Imported {
                name: row.name.to_string(),
                password,
                status: Status::Created,
            }
        } else {
            Imported {
                name: exists.unwrap_or_else(|| row.name.to_string()),
                password: None,
                status: Status::Exists,
            }
        });
    }
    Ok(results)
}

/// The argon2id hash of each password (`None` stays `None`), in order,
/// made on up to [`HASHING_THREADS`] threads (see the module doc).
fn hash_all(passwords: &[Option<String>]) -> Result<Vec<Option<String>>> {
    let todo: Vec<(usize, &str)> = passwords
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.as_deref()?)))
        .collect();
    let mut hashes = vec![None; passwords.len()];
    if todo.is_empty() {
        return Ok(hashes);
    }
    // The production cost, always: these are real accounts.
    let hasher = Hasher::new(false)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = HASHING_THREADS.min(cores).min(todo.len()).max(1);
    let next = AtomicUsize::new(0);
    // Each thread hashes the next row not taken yet, until none is left,
    // and returns its `(row, hash)` pairs; a failure stops that thread.
    let work = || -> Result<Vec<(usize, String)>> {
        let mut done = Vec::new();
        loop {
            let Some(&(row, password)) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(done);
            };
            done.push((row, hasher.hash(password)?));
        }
    };
    let results: Vec<Result<Vec<(usize, String)>>> = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        // The calling thread is one of the workers; the others are spawned.
        for i in 1..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("import-{i}"))
                .spawn_scoped(s, work);
            match spawned {
                Ok(handle) => handles.push(handle),
                // Fewer threads is slower, not wrong: the others take
                // this one's share.
                Err(e) => log::warn!("import: hashing on fewer threads: {e}"),
            }
        }
        let mut results = vec![work()];
        for handle in handles {
            results.push(
                handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Hash("a hashing thread panicked".into()))),
            );
        }
        results
    });
    for result in results {
        for (row, hash) in result? {
            hashes[row] = Some(hash);
        }
    }
    Ok(hashes)
}

/// Writes the import's results to `out` as CSV with a header (see the
/// module doc): the one place where passwords are printed.
///
/// # Errors
///
/// [`Error::Io`] if `out` cannot be written.
pub fn write_imported(out: impl Write, results: &[Imported]) -> Result<()> {
    let failed = |e: csv::Error| Error::io("write the passwords", e.into());
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["name", "password", "status"])
        .map_err(failed)?;
    for result in results {
        csv.write_record([
            result.name.as_str(),
            result.password.as_deref().unwrap_or(""),
            result.status.as_str(),
        ])
        .map_err(failed)?;
    }
    csv.flush().map_err(|e| Error::io("write the passwords", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{add_user, parse_roster};
    use crate::auth::Verdict;

    /// The stored hash of `name`, if there is such an account.
    fn stored_hash(path: &Path, name: &str) -> Option<String> {
        use rusqlite::OptionalExtension;
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }

    /// A roster with a given password, generated ones and an account that
    /// exists: each new account logs in with the password reported, the
    /// existing one keeps its own, and the CSV says so in order.
    #[test]
    fn creates_reports_and_leaves_existing_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        add_user(&path, "Carla", "hers").unwrap();
        let before = stored_hash(&path, "carla").unwrap();
        let rows =
            parse_roster(b"name,password\nana\nBruno,\"given, pw\"\ncarla,ignored\n").unwrap();
        let results = import(&path, &rows).unwrap();

        let statuses: Vec<(&str, Status)> = results
            .iter()
            .map(|r| (r.name.as_str(), r.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("ana", Status::Created),
                ("Bruno", Status::Created),
                ("Carla", Status::Exists)
            ]
        );
        let generated = results[0].password.clone().unwrap();
        assert_eq!(generated.len(), 12);
        assert_eq!(results[1].password.as_deref(), Some("given, pw"));
        assert_eq!(results[2].password, None);
        assert_eq!(stored_hash(&path, "carla").unwrap(), before);

        let hasher = Hasher::new(true).unwrap();
        let ana = stored_hash(&path, "ana").unwrap();
        assert!(ana.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ana}");
        assert_eq!(hasher.verify(&generated, Some(&ana)), Verdict::Ok);
        let bruno = stored_hash(&path, "bruno").unwrap();
        assert_eq!(hasher.verify("given, pw", Some(&bruno)), Verdict::Ok);

        let mut out = Vec::new();
        write_imported(&mut out, &results).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "name,password,status\nana,{generated},created\n\
                 Bruno,\"given, pw\",created\nCarla,,exists\n"
            )
        );
        assert!(!format!("{results:?}").contains("given, pw"));

        // Again: everything exists now, nothing is hashed or changed.
        let again = import(&path, &rows).unwrap();
        assert!(again
            .iter()
            .all(|r| r.status == Status::Exists && r.password.is_none()));
        assert_eq!(stored_hash(&path, "ana").unwrap(), ana);
    }

    /// A file over the size limit is refused before it is parsed; a
    /// missing one says so.
    #[test]
    fn roster_file_limits() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.csv");
        std::fs::write(&big, vec![b'a'; MAX_ROSTER_BYTES as usize + 1]).unwrap();
        let err = read_roster(&big).unwrap_err().to_string();
        assert!(err.contains("is larger than 1024 KiB"), "{err}");
        let fits = dir.path().join("fits.csv");
        std::fs::write(&fits, vec![b'a'; MAX_ROSTER_BYTES as usize]).unwrap();
        assert_eq!(read_roster(&fits).unwrap().len(), MAX_ROSTER_BYTES as usize);
        let err = read_roster(&dir.path().join("none.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read "), "{err}");
    }
}

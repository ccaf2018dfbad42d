//! The database without the server: one-off reads and writes on the file,
//! for the server's command-line subcommands (`server user add`, `passwd`,
//! `admin`, `list`, `import`).
//!
//! Each call opens its own connection (with the server's PRAGMAs and
//! migrations), does its statements (in one transaction when there are
//! several that must all happen or none) and closes it. A running server
//! holds the same file open; SQLite's locking and the WAL journal make that
//! safe, and the busy timeout makes this side wait for the server's write
//! lock instead of failing. The server reads an account from the file at
//! every `LOGIN`, so it sees a change made here at the user's next login.
//!
//! `add` and `import` create the file if it is missing (a teacher's first
//! step); `passwd`, `admin` and `list` refuse a missing file instead, so
//! that a mistyped `--db` says so rather than showing an empty new
//! database.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::schema;
use super::sqlite::open_connection;
use crate::error::{Error, Result};

/// Opens a database file that must exist already (see the module doc).
fn open_existing(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(Error::Db(format!(
            "there is no database at {}: give the server's file with --db",
            path.display()
        )));
    }
    open_connection(path)
}

/// The error of a failed statement on `path`, saying what we were doing.
fn failed(doing: &str, path: &Path, e: rusqlite::Error) -> Error {
    Error::Db(format!("{doing} {}: {e}", path.display()))
}

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

/// The stored spelling of the account `name` (any case) in an existing
/// file, or `None` if there is no such account.
///
/// # Errors
///
/// [`Error::Db`] if the file does not exist, or cannot be opened or read.
pub fn existing_user(path: &Path, name: &str) -> Result<Option<String>> {
    let conn = open_existing(path)?;
    conn.query_row(schema::SELECT_USER, [name], |row| row.get(0))
        .optional()
        .map_err(|e| failed("reading", path, e))
}

/// Replaces the password hash of the account `name` (any case) in an
/// existing file; returns its stored spelling, or `None` (nothing changed)
/// if there is no such account.
///
/// # Errors
///
/// [`Error::Db`] if the file does not exist, or cannot be opened or written.
pub fn set_password_hash(path: &Path, name: &str, password_hash: &str) -> Result<Option<String>> {
    let conn = open_existing(path)?;
    conn.query_row(schema::CHANGE_PASSWORD_HASH, [name, password_hash], |row| {
        row.get(0)
    })
    .optional()
    .map_err(|e| failed("writing", path, e))
}

/// What [`set_admin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    /// There is no account of that name.
    NoSuchUser,
    /// The account (stored spelling) already had the role asked for.
    Unchanged(String),
    /// The role was granted or removed, and the change logged.
    Changed(String),
    /// Refused: the account (stored spelling) is the last admin, and the
    /// caller did not force the removal. Nothing changed.
    LastAdmin(String),
}

/// Grants (`admin == true`) or removes the admin role of the account
/// `name` (any case) in an existing file, and writes the change to the
/// `moderation` table (actor `server`, action `admin on` / `admin off`).
/// Removing the role of the last admin is refused unless `force`.
///
/// The check, the change and the log line are one `IMMEDIATE` transaction:
/// two of these run at once cannot both remove "the other" admin and leave
/// none.
///
/// # Errors
///
/// [`Error::Db`] if the file does not exist, or cannot be opened or written.
pub fn set_admin(
    path: &Path,
    name: &str,
    admin: bool,
    force: bool,
    now_ms: i64,
) -> Result<AdminChange> {
    let mut conn = open_existing(path)?;
    let write = |e| failed("writing", path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write)?;
    let found: Option<(i64, String, bool)> = tx
        .query_row(schema::SELECT_USER_ADMIN, [name], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()
        .map_err(write)?;
    let Some((id, stored, was_admin)) = found else {
        return Ok(AdminChange::NoSuchUser);
    };
    if was_admin == admin {
        return Ok(AdminChange::Unchanged(stored));
    }
    let mut reason = None;
    if !admin {
        let admins: i64 = tx
            .query_row(schema::COUNT_ADMINS, [], |row| row.get(0))
            .map_err(write)?;
        if admins <= 1 {
            if !force {
                return Ok(AdminChange::LastAdmin(stored));
            }
            reason = Some("forced: the last admin");
        }
    }
    tx.execute(schema::UPDATE_USER_ADMIN, rusqlite::params![id, admin])
        .map_err(write)?;
    let action = if admin { "admin on" } else { "admin off" };
    tx.execute(
        schema::LOG_SERVER_MODERATION,
        rusqlite::params![now_ms, action, stored, reason],
    )
    .map_err(write)?;
    tx.commit().map_err(write)?;
    Ok(AdminChange::Changed(stored))
}

/// A suspension in force, as [`list_users`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspended {
    /// Until this time (milliseconds since the Unix epoch).
    Until(i64),
    /// Until an admin lifts it.
    UntilLifted,
}

/// One account, as [`list_users`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The name as stored.
    pub name: String,
    /// Whether the account has the admin role.
    pub admin: bool,
    /// When it was created (milliseconds since the Unix epoch); 0 when
    /// unknown (an account migrated from the Python original).
    pub created_ms: i64,
    /// The suspension in force, if any (an expired one is none).
    pub suspended: Option<Suspended>,
}

/// Every account of an existing file, by name in any letter case, with
/// the suspensions in force at `now_ms`.
///
/// # Errors
///
/// [`Error::Db`] if the file does not exist, or cannot be opened or read.
pub fn list_users(path: &Path, now_ms: i64) -> Result<Vec<UserSummary>> {
    let conn = open_existing(path)?;
    let read = |e| failed("reading", path, e);
    let mut select = conn.prepare(schema::SELECT_USER_LIST).map_err(read)?;
    let rows = select
        .query_map([now_ms], |row| {
            let suspended: bool = row.get(3)?;
            let until: Option<i64> = row.get(4)?;
            Ok(UserSummary {
                name: row.get(0)?,
                admin: row.get(1)?,
                created_ms: row.get(2)?,
                suspended: suspended.then_some(match until {
                    Some(ms) => Suspended::Until(ms),
                    None => Suspended::UntilLifted,
                }),
            })
        })
        .map_err(read)?;
    rows.collect::<rusqlite::Result<_>>().map_err(read)
}

/// For each name, the stored spelling of the account of that name (any
/// case), or `None`: what `server user import` leaves untouched. Creates
/// the file if it is missing, like [`insert_user`].
///
/// # Errors
///
/// [`Error::Db`] if the file cannot be opened or read.
pub fn existing_users(path: &Path, names: &[&str]) -> Result<Vec<Option<String>>> {
    let conn = open_connection(path)?;
    let read = |e| failed("reading", path, e);
    let mut select = conn.prepare(schema::SELECT_USER).map_err(read)?;
    names
        .iter()
        .map(|name| {
            select
                .query_row([name], |row| row.get(0))
                .optional()
                .map_err(read)
        })
        .collect()
}

/// Adds accounts `(name, password hash)` in one transaction, all created
/// at `now_ms`: either every insert is done or none. Returns, for each,
/// whether it was created (`false`: the name was taken in any letter case
/// meanwhile, and that row changed nothing).
///
/// # Errors
///
/// [`Error::Db`] if the file cannot be opened or written; then nothing
/// was added.
pub fn insert_users(path: &Path, accounts: &[(&str, &str)], now_ms: i64) -> Result<Vec<bool>> {
    let mut conn = open_connection(path)?;
    let write = |e| failed("writing", path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write)?;
    let mut created = Vec::with_capacity(accounts.len());
    {
        let mut insert = tx.prepare(schema::INSERT_USER).map_err(write)?;
        for (name, hash) in accounts {
            let n = insert
                .execute(rusqlite::params![name, hash, now_ms])
                .map_err(write)?;
            created.push(n == 1);
        }
    }
    tx.commit().map_err(write)?;
    Ok(created)
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

    /// A new file with the accounts `names`, made by [`insert_users`].
    fn with_users(names: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let accounts: Vec<(&str, &str)> = names.iter().map(|n| (*n, "h")).collect();
        assert!(insert_users(&path, &accounts, 7)
            .unwrap()
            .iter()
            .all(|c| *c));
        (dir, path)
    }

    /// The moderation log's rows, oldest first: (actor, action, target,
    /// reason).
    fn moderation_log(path: &Path) -> Vec<(String, String, String, Option<String>)> {
        let conn = Connection::open(path).unwrap();
        let mut select = conn
            .prepare("SELECT actor, action, target, reason FROM moderation ORDER BY id")
            .unwrap();
        let rows = select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// The admin role: granted and removed by name in any case, logged
    /// each time it changes; the last admin stays unless forced; an
    /// unknown name changes nothing.
    #[test]
    fn admin_role_and_the_last_admin() {
        let (_dir, path) = with_users(&["Ana", "bob"]);
        assert_eq!(
            set_admin(&path, "ana", true, false, 1).unwrap(),
            AdminChange::Changed("Ana".into())
        );
        assert_eq!(
            set_admin(&path, "ANA", true, false, 2).unwrap(),
            AdminChange::Unchanged("Ana".into())
        );
        assert_eq!(
            set_admin(&path, "ana", false, false, 3).unwrap(),
            AdminChange::LastAdmin("Ana".into())
        );
        assert_eq!(
            set_admin(&path, "bob", true, false, 4).unwrap(),
            AdminChange::Changed("bob".into())
        );
        assert_eq!(
            set_admin(&path, "ana", false, false, 5).unwrap(),
            AdminChange::Changed("Ana".into())
        );
        assert_eq!(
            set_admin(&path, "bob", false, false, 6).unwrap(),
            AdminChange::LastAdmin("bob".into())
        );
        assert_eq!(
            set_admin(&path, "bob", false, true, 7).unwrap(),
            AdminChange::Changed("bob".into())
        );
        assert_eq!(
            set_admin(&path, "carol", true, false, 8).unwrap(),
            AdminChange::NoSuchUser
        );
        let server = |action: &str, target: &str, reason: Option<&str>| {
            (
                "server".to_string(),
                action.to_string(),
                target.to_string(),
                reason.map(str::to_string),
            )
        };
        assert_eq!(
            moderation_log(&path),
            vec![
                server("admin on", "Ana", None),
                server("admin on", "bob", None),
                server("admin off", "Ana", None),
                server("admin off", "bob", Some("forced: the last admin")),
            ]
        );
        assert!(list_users(&path, 0).unwrap().iter().all(|u| !u.admin));
    }

    /// The list: by name in any case, with the admin flag, the creation
    /// time, and only the suspensions in force.
    #[test]
    fn list_shows_suspensions_in_force() {
        let (_dir, path) = with_users(&["carol", "Bob", "ana", "dan"]);
        set_admin(&path, "bob", true, false, 1).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
                 SELECT id, NULL, 'Bob', 1 FROM users WHERE name = 'carol';
             INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
                 SELECT id, 5000, 'Bob', 1 FROM users WHERE name = 'ana';
             INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
                 SELECT id, 999, 'Bob', 1 FROM users WHERE name = 'dan';",
        )
        .unwrap();
        let summary = |name: &str, admin, suspended| UserSummary {
            name: name.into(),
            admin,
            created_ms: 7,
            suspended,
        };
        assert_eq!(
            list_users(&path, 1000).unwrap(),
            vec![
                summary("ana", false, Some(Suspended::Until(5000))),
                summary("Bob", true, None),
                summary("carol", false, Some(Suspended::UntilLifted)),
                summary("dan", false, None),
            ]
        );
    }

    /// A password change finds the account in any case and says which one;
    /// an unknown name changes nothing; a missing file is refused, not
    /// created.
    #[test]
    fn password_change_and_missing_file() {
        let (dir, path) = with_users(&["Ana"]);
        assert_eq!(
            set_password_hash(&path, "ANA", "h2").unwrap(),
            Some("Ana".into())
        );
        assert_eq!(set_password_hash(&path, "bob", "h3").unwrap(), None);
        let hash: String = Connection::open(&path)
            .unwrap()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(hash, "h2");
        assert_eq!(existing_user(&path, "ana").unwrap(), Some("Ana".into()));
        let missing = dir.path().join("typo.db");
        let err = list_users(&missing, 0).unwrap_err().to_string();
        assert!(err.contains("there is no database at"), "{err}");
        assert!(existing_user(&missing, "ana").is_err());
        assert!(!missing.exists());
    }

    /// Several accounts in one transaction: a name taken (in any case)
    /// is reported as not created and keeps its row.
    #[test]
    fn insert_many_reports_taken_names() {
        let (_dir, path) = with_users(&["Ana"]);
        let created = insert_users(&path, &[("bob", "h"), ("ANA", "other"), ("cy", "h")], 9);
        assert_eq!(created.unwrap(), vec![true, false, true]);
        assert_eq!(
            existing_users(&path, &["ana", "BOB", "zed"]).unwrap(),
            vec![Some("Ana".into()), Some("bob".into()), None]
        );
        let ana: String = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT password_hash FROM users WHERE name = 'ana'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ana, "h");
    }
}

//! Accounts: one winner when many register the same name at once, names
//! that ignore case, accounts that survive a restart, login failures that
//! say nothing about which names exist, real argon2id hashes on disk, and
//! the migration of a database made by the Python original of the course.
//!
//! The database checks open the SQLite file with rusqlite *after* the
//! server has stopped, so they read what a restarted server would.

mod support;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use support::TestServer;

/// The one answer to every failed `LOGIN`, whatever the reason.
const BAD_CREDENTIALS: &str = "ERR BAD_CREDENTIALS Wrong user name or password.";

/// The stored password hash of `user` (by the name as stored).
fn stored_hash(db: &Path, user: &str) -> String {
    Connection::open(db)
        .expect("open the database")
        .query_row(
            "SELECT password_hash FROM users WHERE name = ?1",
            [user],
            |row| row.get(0),
        )
        .expect("the user's row")
}

/// How the Python original stored a password: lowercase hex of SHA-256.
fn python_hash(password: &str) -> String {
    Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fifty clients registering the same name at the same moment: exactly one gets `OK REGISTER`, the other 49 `USER_EXISTS`.
#[test]
fn only_one_simultaneous_registration_wins() {
    const CLIENTS: usize = 50;
    let server = TestServer::start();
    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut c = server.connect();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                c.send("REGISTER same pw");
                c.line()
            })
        })
        .collect();
    let mut replies: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("a client's thread failed"))
        .collect();
    replies.sort();

    let mut expected = vec!["ERR USER_EXISTS That user name is taken.".to_string(); CLIENTS - 1];
    expected.push("OK REGISTER same".to_string());
    expected.sort();
    assert_eq!(replies, expected);
}

/// User names ignore case: `alice` is taken once `Alice` exists, and `LOGIN ALICE` answers with the name as registered.
#[test]
fn user_names_ignore_case() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("REGISTER Alice pw");
    c.expect("OK REGISTER Alice");
    c.send("REGISTER alice outra");
    c.expect("ERR USER_EXISTS That user name is taken.");
    c.send("LOGIN ALICE pw");
    c.expect("OK LOGIN Alice");
}

/// An account is on disk: it logs in after a restart, and a wrong password and an unknown user get the very same line.
#[test]
fn accounts_survive_a_restart() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("REGISTER alice pw");
    c.expect("OK REGISTER alice");
    drop(c);

    let server = server.restart();
    let mut c = server.connect();
    c.send("LOGIN alice errada");
    c.expect(BAD_CREDENTIALS);
    c.send("LOGIN ninguem pw");
    c.expect(BAD_CREDENTIALS);
    c.send("LOGIN alice pw");
    c.expect("OK LOGIN alice");
}

/// With real hashing (`fast_hash = false`) the account works and the file holds an argon2id hash with the default cost.
#[test]
fn real_argon2id_hash_is_stored() {
    let mut server = TestServer::start_with(|c| c.fast_hash = false);
    let mut c = server.user("alice");
    c.send("QUIT");
    c.expect("BYE QUIT Goodbye.");
    server.stop();

    let hash = stored_hash(&server.config.db_path, "alice");
    assert!(hash.starts_with("$argon2id$"), "stored hash: {hash}");
    // The argon2 crate's defaults, not the cheap test parameters.
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "stored hash: {hash}"
    );
}

/// A database made by the Python original is migrated: its users log in with their old passwords (upgraded to argon2id at login), and its rooms keep their privacy and passwords.
#[test]
fn python_database_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("python.db");
    {
        let db = Connection::open(&path).expect("create the Python database");
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, is_private INTEGER NOT NULL DEFAULT 0, password_hash TEXT);",
        )
        .expect("Python schema");
        let add_user = "INSERT INTO users (username, password_hash) VALUES (?1, ?2)";
        db.execute(add_user, ["usuario1", &python_hash("123")])
            .expect("usuario1");
        db.execute(add_user, ["usuario2", &python_hash("abc")])
            .expect("usuario2");
        let add_room = "INSERT INTO rooms (name, is_private, password_hash) VALUES (?1, ?2, ?3)";
        db.execute(
            add_room,
            rusqlite::params!["sala_publica", 0, None::<String>],
        )
        .expect("sala_publica");
        db.execute(
            add_room,
            rusqlite::params!["sala_privada", 1, python_hash("senhasecreta")],
        )
        .expect("sala_privada");
    }

    let mut server = TestServer::start_on(&path, |_| {});
    let mut c = server.connect();
    c.send("LOGIN usuario1 errada");
    c.expect(BAD_CREDENTIALS);
    c.send("LOGIN usuario1 123");
    c.expect("OK LOGIN usuario1");
    c.send("ROOMS");
    c.expect("ROOM sala_privada private 0");
    c.expect("ROOM sala_publica public 0");
    c.expect("OK ROOMS 2");
    c.send("JOIN sala_privada errada");
    c.expect("ERR BAD_ROOM_PASSWORD Wrong or missing room password.");
    c.send("JOIN sala_privada senhasecreta");
    c.expect("OK JOIN sala_privada");
    c.send("QUIT");
    c.expect("BYE QUIT Goodbye.");
    server.stop();

    let upgraded = stored_hash(&path, "usuario1");
    assert!(upgraded.starts_with("$argon2id$"), "usuario1: {upgraded}");
    let untouched = stored_hash(&path, "usuario2");
    assert_eq!(untouched, python_hash("abc"));
    assert!(untouched.len() == 64 && untouched.bytes().all(|b| b.is_ascii_hexdigit()));
    let version: i64 = Connection::open(&path)
        .expect("open the database")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, chat::db::SCHEMA_VERSION);

    // The private room's password was upgraded at that JOIN too, and still
    // opens the room after a restart (wrong passwords still do not).
    let room_hash: String = Connection::open(&path)
        .expect("open the database")
        .query_row(
            "SELECT password_hash FROM rooms WHERE name = 'sala_privada'",
            [],
            |row| row.get(0),
        )
        .expect("room hash");
    assert!(
        room_hash.starts_with("$argon2id$"),
        "sala_privada: {room_hash}"
    );
    let server = server.restart();
    let mut c = server.connect();
    c.send("LOGIN usuario2 abc");
    c.expect("OK LOGIN usuario2");
    c.send("JOIN sala_privada errada");
    c.expect("ERR BAD_ROOM_PASSWORD Wrong or missing room password.");
    c.send("JOIN sala_privada senhasecreta");
    c.expect("OK JOIN sala_privada");
}

//! `server user add | passwd | admin | list | import`: the real binary on a
//! fresh database and on one made by the Python original, its exit codes,
//! the exact lines and CSV it prints, the all-or-nothing import, and
//! accounts it makes or changes logging in to a running server.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use chat::protocol::Timestamp;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use support::{error_line, wait_for_exit, TestServer};

/// The one answer to every failed `LOGIN`, whatever the reason.
const BAD_CREDENTIALS: &str = "ERR BAD_CREDENTIALS Wrong user name or password.";

/// Runs `server ARGS...` with `stdin` piped to it (nothing, if `None`:
/// standard input is then empty, not a terminal), waiting at most the
/// support module's deadline.
fn server(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let mut input = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        // A command refused before it reads (no such user) may be gone
        // already: its stdin is then closed, and that is no failure here.
        if let Err(e) = input.write_all(text.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    drop(input);
    wait_for_exit(child)
}

/// `server user ARGS... --db DB`, the database named after the subcommand.
fn user(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let db = db.to_str().expect("a UTF-8 temp path");
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", db]);
    server(&all, stdin)
}

/// The standard output of a run that must have succeeded, with nothing
/// on stderr but the lines that start with `allowed` (if any).
fn success(out: &Output, allowed: Option<&str>) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    for line in stderr.lines() {
        assert!(
            allowed.is_some_and(|a| line.starts_with(a)),
            "unexpected stderr line {line:?}"
        );
    }
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The one `error: ` line of a failed run, asserting that it mentions
/// `needle` and that nothing was printed on stdout.
fn failure(out: &Output, needle: &str) -> String {
    let line = error_line(out);
    assert!(
        line.contains(needle),
        "{line:?} does not mention {needle:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    line
}

/// `server user list`'s rows, without the header, each split in its four
/// fields; checks the header and that `created` is empty or a timestamp.
fn list(db: &Path) -> Vec<[String; 4]> {
    let out = success(&user(db, &["list"], None), None);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("name,admin,created,suspended_until"),
        "{out}"
    );
    lines
        .map(|line| {
            let fields: Vec<String> = line.split(',').map(str::to_string).collect();
            let fields: [String; 4] = fields.try_into().expect("four fields");
            assert!(
                fields[2].is_empty() || Timestamp::parse(&fields[2]).is_some(),
                "created {:?}",
                fields[2]
            );
            fields
        })
        .collect()
}

/// `(name, admin)` of every account, from `server user list`.
fn names_and_admin(db: &Path) -> Vec<(String, String)> {
    list(db)
        .into_iter()
        .map(|[name, admin, ..]| (name, admin))
        .collect()
}

/// `(name, password, status)` rows of an import's CSV, header checked.
/// (The passwords of these tests have no comma or quote, except where a
/// test reads the CSV itself.)
fn imported(stdout: &str) -> Vec<(String, String, String)> {
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("name,password,status"), "{stdout}");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "{line}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// A database made by the Python original: `alice` (password `123`) and
/// `Bob` (`pw bob`), one public room.
fn python_database(path: &Path) {
    let hash = |pw: &str| -> String {
        Sha256::digest(pw.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let db = Connection::open(path).expect("create the Python database");
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, is_private INTEGER NOT NULL DEFAULT 0, password_hash TEXT);
         INSERT INTO rooms (name, is_private, password_hash) VALUES ('sala', 0, NULL);",
    )
    .expect("Python schema");
    let add = "INSERT INTO users (username, password_hash) VALUES (?1, ?2)";
    db.execute(add, ["alice", &hash("123")]).expect("alice");
    db.execute(add, ["Bob", &hash("pw bob")]).expect("Bob");
}

/// add, passwd and admin on a fresh database: the line each prints, the
/// last-admin rule and `--force`, and the moderation log they leave.
#[test]
fn add_passwd_admin_on_a_fresh_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let at = db.display().to_string();

    let out = success(&user(&db, &["add", "Ana"], Some("first pw\n")), None);
    assert_eq!(out, format!("created user Ana in {at}\n"));
    success(&user(&db, &["add", "bob"], Some("bob pw\n")), None);
    failure(
        &user(&db, &["add", "ANA"], Some("x\n")),
        "the user ANA exists already",
    );

    let out = success(&user(&db, &["passwd", "ana"], Some("second pw\n")), None);
    assert_eq!(out, format!("changed the password of user Ana in {at}\n"));
    failure(
        &user(&db, &["passwd", "carol"], Some("x\n")),
        &format!("no such user carol in {at}"),
    );
    failure(
        &user(&db, &["passwd", "ana"], None),
        "no password on standard input (give one line, e.g. `echo PASSWORD | server user passwd NAME`)",
    );
    failure(
        &user(&db, &["passwd", "ana"], Some("tab\there\n")),
        "the password must have 1 to 128 bytes and no control characters",
    );
    failure(
        &user(&db, &["passwd", "a/b"], Some("x\n")),
        "\"a/\"… is not a valid user name: '/' is not allowed",
    );

    let admin = |args: &[&str]| user(&db, &[&["admin"], args].concat(), None);
    assert_eq!(
        success(&admin(&["ana", "on"]), None),
        format!("Ana is now an admin in {at}\n")
    );
    assert_eq!(
        success(&admin(&["ANA", "on"]), None),
        format!("Ana was an admin already: nothing changed in {at}\n")
    );
    let refused = failure(&admin(&["ana", "off"]), "Ana is the last admin in");
    assert!(refused.contains("--force"), "{refused}");
    assert_eq!(
        names_and_admin(&db),
        vec![("Ana".into(), "yes".into()), ("bob".into(), "no".into())]
    );
    success(&admin(&["bob", "on"]), None);
    assert_eq!(
        success(&admin(&["ana", "off"]), None),
        format!("Ana is no longer an admin in {at}\n")
    );
    failure(&admin(&["bob", "off"]), "bob is the last admin");
    assert_eq!(
        success(&admin(&["bob", "off", "--force"]), None),
        format!("bob is no longer an admin in {at}\n")
    );
    assert_eq!(
        success(&admin(&["bob", "off"]), None),
        format!("bob was not an admin: nothing changed in {at}\n")
    );
    failure(
        &admin(&["carol", "on"]),
        &format!("no such user carol in {at}"),
    );
    // clap's own refusal of a bad role: a usage error, not a panic.
    let bad_role = admin(&["ana", "maybe"]);
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&bad_role.stderr).contains("panicked"));

    let log: Vec<(String, String, String, Option<String>)> = {
        let conn = Connection::open(&db).expect("open");
        let mut select = conn
            .prepare("SELECT actor, action, target, reason FROM moderation ORDER BY id")
            .expect("prepare");
        let rows = select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query");
        rows.collect::<rusqlite::Result<_>>().expect("rows")
    };
    let entry = |action: &str, target: &str, reason: Option<&str>| {
        (
            "server".to_string(),
            action.to_string(),
            target.to_string(),
            reason.map(str::to_string),
        )
    };
    assert_eq!(
        log,
        vec![
            entry("admin on", "Ana", None),
            entry("admin on", "bob", None),
            entry("admin off", "Ana", None),
            entry("admin off", "bob", Some("forced: the last admin")),
        ]
    );
}

/// `server --db DB user ARGS...` if `before`, else `server user ARGS...
/// --db DB`.
fn placed(db: &str, before: bool, args: &[&str], stdin: Option<&str>) -> Output {
    if before {
        server(&[&["--db", db, "user"], args].concat(), stdin)
    } else {
        server(&[&["user"], args, &["--db", db]].concat(), stdin)
    }
}

/// `--db` works before and after the subcommand, for every subcommand;
/// without it, `chat.db` in the working directory is used.
#[test]
fn db_before_or_after_every_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("x.db");
    let db = db.to_str().expect("UTF-8 path");
    let roster = dir.path().join("r.csv");
    std::fs::write(&roster, "cy,cy pw\n").expect("write roster");
    let roster = roster.to_str().expect("UTF-8 path");

    // The first `add` and `import` make the account; the second finds it.
    let made = placed(db, true, &["add", "ana"], Some("pw\n"));
    assert_eq!(success(&made, None), format!("created user ana in {db}\n"));
    let again = placed(db, false, &["add", "ana"], Some("pw\n"));
    failure(&again, "the user ana exists already");
    let made = placed(db, false, &["import", roster], None);
    let made = success(&made, Some("imported "));
    assert_eq!(made, "name,password,status\ncy,cy pw,created\n");
    let again = placed(db, true, &["import", roster], None);
    let again = success(&again, Some("imported "));
    assert_eq!(again, "name,password,status\ncy,,exists\n");

    for before in [true, false] {
        let out = placed(db, before, &["passwd", "ana"], Some("pw2\n"));
        let expected = format!("changed the password of user ana in {db}\n");
        assert_eq!(success(&out, None), expected, "before: {before}");
        let out = placed(db, before, &["admin", "cy", "on"], None);
        assert!(success(&out, None).starts_with("cy "), "before: {before}");
        let out = placed(db, before, &["list"], None);
        let rows: Vec<String> = success(&out, None)
            .lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect();
        assert_eq!(
            rows,
            vec!["name,admin", "ana,no", "cy,yes"],
            "before: {before}"
        );
    }

    // No --db: chat.db where the command runs.
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["user", "add", "dee"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(b"pw\n").expect("write the password");
    drop(input);
    let out = wait_for_exit(child);
    assert_eq!(success(&out, None), "created user dee in chat.db\n");
    assert!(dir.path().join("chat.db").exists());
}

/// `list` and `import` on a fresh database: the exact CSV, an import that
/// creates, leaves existing accounts alone and prints the passwords, and a
/// bad roster that creates nothing and names each bad line.
#[test]
fn import_and_list_all_or_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    success(&user(&db, &["add", "Carla"], Some("carla pw\n")), None);

    // A bad roster: three bad rows among good ones; nothing is created.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "name,password\nana\nbruno,\"given, pw\"\nx y\nANA\ndee,pw,extra\ncarla\n",
    )
    .expect("write roster");
    let out = user(&db, &["import", bad.to_str().expect("UTF-8")], None);
    let at = bad.display();
    failure(
        &out,
        &format!(
            "error: {at}: 3 bad rows (lines 4, 5, 6); nothing was created: fix the file and \
             import it again"
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let listed: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("error: "))
        .collect();
    assert_eq!(
        listed,
        vec![
            format!(
                "{at}:4: \"x \"… is not a valid user name: ' ' is not allowed (1 to 32 \
                 characters from A-Z a-z 0-9 _ - .)"
            ),
            format!("{at}:5: ANA is on line 2 already (names are the same in any letter case)"),
            format!("{at}:6: too many columns (3): give `name` or `name,password`"),
        ]
    );
    assert_eq!(names_and_admin(&db), vec![("Carla".into(), "no".into())]);

    // The same roster without its bad rows.
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "name,password\nana\nbruno,\"given, pw\"\ncarla\n").expect("write");
    let out = user(&db, &["import", good.to_str().expect("UTF-8")], None);
    let stdout = success(&out, Some("imported "));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "imported {} into {}: 2 created, 1 existed already (left untouched)\n",
            good.display(),
            db.display()
        )
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("name,password,status"));
    let ana = lines.next().expect("ana's row");
    let password = ana
        .strip_prefix("ana,")
        .and_then(|rest| rest.strip_suffix(",created"))
        .expect("ana,PASSWORD,created");
    assert_eq!(password.len(), 12);
    assert!(password
        .bytes()
        .all(|b| chat::accounts::PASSWORD_ALPHABET.contains(&b)));
    assert_eq!(lines.next(), Some("bruno,\"given, pw\",created"));
    assert_eq!(lines.next(), Some("Carla,,exists"));
    assert_eq!(lines.next(), None);

    let rows = list(&db);
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, vec!["ana", "bruno", "Carla"]);
    assert!(rows
        .iter()
        .all(|r| r[1] == "no" && !r[2].is_empty() && r[3].is_empty()));

    // A suspension in force, one until lifted, and an expired one.
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch(
        "INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
             SELECT id, 32503680000000, 'x', 1 FROM users WHERE name = 'ana';
         INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
             SELECT id, NULL, 'x', 1 FROM users WHERE name = 'bruno';
         INSERT INTO suspensions (user_id, until_ms, by_user, created_ms)
             SELECT id, 1000, 'x', 1 FROM users WHERE name = 'carla';",
    )
    .expect("suspend");
    drop(conn);
    let until: Vec<String> = list(&db).into_iter().map(|r| r[3].clone()).collect();
    assert_eq!(until, vec!["3000-01-01T00:00:00.000Z", "forever", ""]);

    // Unreadable, empty and oversized files, and a missing database for
    // list: one clear line each.
    failure(
        &user(&db, &["import", "/nonexistent/roster.csv"], None),
        "cannot read /nonexistent/roster.csv",
    );
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "name,password\n").expect("write");
    failure(
        &user(&db, &["import", empty.to_str().expect("UTF-8")], None),
        "no accounts in it",
    );
    let huge = dir.path().join("huge.csv");
    std::fs::write(&huge, "a\n".repeat(600_000)).expect("write");
    failure(
        &user(&db, &["import", huge.to_str().expect("UTF-8")], None),
        "is larger than 1024 KiB",
    );
    let many = dir.path().join("many.csv");
    let rows: String = (0..=chat::accounts::MAX_ROSTER_ROWS)
        .map(|i| format!("u{i}\n"))
        .collect();
    std::fs::write(&many, rows).expect("write");
    failure(
        &user(&db, &["import", many.to_str().expect("UTF-8")], None),
        "more than 2000 rows",
    );
    let missing = dir.path().join("typo.db");
    failure(&user(&missing, &["list"], None), "there is no database at");
    assert!(!missing.exists());
    assert_eq!(list(&db).len(), 3);
}

/// A database made by the Python original: `list` shows its accounts with
/// no creation time; `import` finds them in any letter case; `admin` and
/// `passwd` work on them, and the new password logs in.
#[test]
fn on_a_python_original_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("python.db");
    python_database(&db);

    assert_eq!(
        list(&db),
        vec![
            ["alice".into(), "no".into(), String::new(), String::new()],
            ["Bob".into(), "no".into(), String::new(), String::new()],
        ]
    );
    let roster = dir.path().join("class.csv");
    std::fs::write(&roster, "ALICE\nbob,new\ncarol,carol pw\n").expect("write");
    let out = user(&db, &["import", roster.to_str().expect("UTF-8")], None);
    assert_eq!(
        imported(&success(&out, Some("imported "))),
        vec![
            ("alice".into(), String::new(), "exists".into()),
            ("Bob".into(), String::new(), "exists".into()),
            ("carol".into(), "carol pw".into(), "created".into()),
        ]
    );
    success(&user(&db, &["admin", "bob", "on"], None), None);
    success(&user(&db, &["passwd", "ALICE"], Some("alice new\n")), None);
    assert_eq!(
        names_and_admin(&db),
        vec![
            ("alice".into(), "no".into()),
            ("Bob".into(), "yes".into()),
            ("carol".into(), "no".into()),
        ]
    );

    let server = TestServer::start_on(&db, |c| c.registration_open = false);
    let mut c = server.connect();
    c.send("LOGIN alice 123");
    c.expect(BAD_CREDENTIALS);
    c.send("LOGIN alice alice new");
    c.expect("OK LOGIN alice");
    let mut b = server.connect();
    b.send("LOGIN bob pw bob");
    b.expect("OK LOGIN Bob");
}

/// An account made by `import` logs in to a running server over TLS with
/// the printed password; `passwd` while the server runs changes what the
/// next login accepts; an account imported while it runs logs in too.
#[test]
fn imported_account_logs_in_and_passwd_changes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let roster = dir.path().join("class.csv");
    std::fs::write(&roster, "name\nAluno1\n").expect("write");
    let roster = roster.to_str().expect("UTF-8");
    let rows = imported(&success(
        &user(&db, &["import", roster], None),
        Some("imported "),
    ));
    let (name, password, status) = &rows[0];
    assert_eq!((name.as_str(), status.as_str()), ("Aluno1", "created"));

    let server = TestServer::start_on(&db, |c| c.registration_open = false);
    let mut c = server.connect();
    c.send(&format!("LOGIN aluno1 {password}"));
    c.expect("OK LOGIN Aluno1");
    c.send("QUIT");
    c.expect("BYE QUIT Goodbye.");

    success(
        &user(&db, &["passwd", "Aluno1"], Some("nova senha\n")),
        None,
    );
    let mut c = server.connect();
    c.send(&format!("LOGIN Aluno1 {password}"));
    c.expect(BAD_CREDENTIALS);
    c.send("LOGIN Aluno1 nova senha");
    c.expect("OK LOGIN Aluno1");

    let late = dir.path().join("late.csv");
    std::fs::write(&late, "Aluno2,senha dois\n").expect("write");
    let out = user(&db, &["import", late.to_str().expect("UTF-8")], None);
    success(&out, Some("imported "));
    let mut d = server.connect();
    d.send("LOGIN aluno2 senha dois");
    d.expect("OK LOGIN Aluno2");
}

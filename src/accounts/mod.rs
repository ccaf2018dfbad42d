//! Accounts made and changed from the server's command line:
//! `server user add | passwd | admin | list | import`.
//!
//! A server run with `--registration closed` refuses `REGISTER`, so that a
//! script on the internet cannot fill its database with accounts; the
//! teacher makes each student's account here instead, one at a time
//! (`add`) or a whole class from a roster file (`import`). The admin role
//! of the moderation commands is granted here too, and nowhere else: no
//! protocol command can.
//!
//! Every job works on the database file directly, with the same rules as
//! the protocol (a valid name, a valid password, argon2id at the
//! production cost, a name taken in any letter case is taken), and is
//! safe while the server runs: SQLite's write lock and the WAL journal
//! keep the two writers apart (see `db::offline`), and the running server
//! sees a change at the user's next `LOGIN`, because it looks accounts up
//! in the database every time.
//!
//! # Layout: one job per file
//!
//! - `add.rs`: `server user add` ([`add_user`]);
//! - `passwd.rs`: `server user passwd` ([`set_password`]);
//! - `admin.rs`: `server user admin` ([`set_admin`]);
//! - `list.rs`: `server user list` ([`list_users`], [`write_user_list`]);
//! - `roster.rs`: the rules of a roster file, pure ([`parse_roster`]);
//! - `generate.rs`: random passwords for the roster rows without one;
//! - `import.rs`: `server user import` ([`read_roster`], [`import`],
//!   [`write_imported`]).
//!
//! The binary (`src/bin/server.rs`) reads passwords from the terminal and
//! prints; nothing here prints, and no function here ever logs a password.

mod add;
mod admin;
mod generate;
mod import;
mod list;
mod passwd;
mod roster;

pub use add::add_user;
pub use admin::{set_admin, AdminReport};
pub use generate::{random_password, PASSWORD_ALPHABET, RANDOM_PASSWORD_LEN};
pub use import::{import, read_roster, write_imported, Imported, Status, MAX_ROSTER_BYTES};
pub use list::{list_users, write_user_list};
pub use passwd::{find_user, set_password};
pub use roster::{parse_roster, BadRow, RosterError, RosterRow, MAX_ROSTER_ROWS};

use crate::error::{Error, Result};
use crate::protocol::names::is_name_char;
use crate::protocol::text::is_valid_password;
use crate::protocol::Name;

/// What a password must be, said once for every job that takes one.
const PASSWORD_RULE: &str = "the password must have 1 to 128 bytes and no control characters";

/// Why `given` is not a user name, in a sentence that shows it only up
/// to its first bad character: in a roster whose fields were separated by
/// something else than a comma (`ana;secret`, `ana secret`), the rest is a
/// password.
fn name_rule(given: &str) -> String {
    const RULE: &str = "1 to 32 characters from A-Z a-z 0-9 _ - .";
    match given.char_indices().find(|&(_, c)| !is_name_char(c)) {
        None if given.is_empty() => format!("the name is empty: {RULE}"),
        None => format!("{} is not a valid user name: {RULE}", shown(given)),
        Some((at, c)) => {
            let upto = &given[..at + c.len_utf8()];
            let more = if upto.len() < given.len() { "…" } else { "" };
            let hint = if matches!(c, ';' | '\t') {
                "; separate the name and the password with a comma"
            } else {
                ""
            };
            format!(
                "{}{more} is not a valid user name: {c:?} is not allowed ({RULE}){hint}",
                shown(upto)
            )
        }
    }
}

/// `given` quoted for a message, cut to 40 characters: a roster row may
/// hold a whole paragraph, and the message must stay one readable line.
fn shown(given: &str) -> String {
    const MAX: usize = 40;
    match given.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &given[..cut]),
        None => format!("{given:?}"),
    }
}

/// `given` as a user name.
///
/// # Errors
///
/// [`Error::Account`] saying the rule, if it breaks it.
fn parse_name(given: &str) -> Result<Name> {
    Name::parse(given).map_err(|_| Error::Account(name_rule(given)))
}

/// Checks `password` against the protocol's rule.
///
/// # Errors
///
/// [`Error::Account`] saying the rule (never the password), if it breaks
/// it.
fn check_password(password: &str) -> Result<()> {
    if is_valid_password(password) {
        Ok(())
    } else {
        Err(Error::Account(PASSWORD_RULE.into()))
    }
}

/// The error for a name with no account in the file at `path`.
fn no_such_user(name: &str, path: &std::path::Path) -> Error {
    Error::Account(format!("no such user {name} in {}", path.display()))
}

/// Milliseconds since the Unix epoch, now: the time written with a change.
fn now_ms() -> i64 {
    crate::server::hub::now().0
}

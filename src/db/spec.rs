//! Which store a server keeps what must last in: `--store sqlite:PATH`
//! (the default, `--db`'s file) or `--store postgres://USER@HOST:PORT/DB`.
//!
//! Parsing only; opening is [`open_store`](super::open_store)'s job.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// One SQLite file, owned by this server alone: the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL database, which any number of server nodes may share.
    /// The connection string as given (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a file, as in sqlite:chat.db".into());
            }
            return Ok(StoreSpec::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(s.to_owned()));
        }
        Err(format!(
            "{s:?} is not a store: use sqlite:PATH or postgres://USER@HOST:PORT/DB"
        ))
    }
}

impl fmt::Display for StoreSpec {
    /// The spec without a password, fit for a log line or the status page.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreSpec::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl StoreSpec {
    /// The short name of the engine: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            StoreSpec::Sqlite(_) => "sqlite",
            StoreSpec::Postgres(_) => "postgres",
        }
    }
}

/// `url` with the password of its user part, if any, replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _password)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_engines_and_refuses_the_rest() {
        assert_eq!(
            "sqlite:chat.db".parse(),
            Ok(StoreSpec::Sqlite(PathBuf::from("chat.db")))
        );
        assert_eq!(
            "postgres://chat@127.0.0.1:5432/chat".parse(),
            Ok(StoreSpec::Postgres(
                "postgres://chat@127.0.0.1:5432/chat".into()
            ))
        );
        assert!("postgresql://h/db".parse::<StoreSpec>().is_ok());
        assert!("sqlite:".parse::<StoreSpec>().is_err());
        assert!("mysql://h/db".parse::<StoreSpec>().is_err());
        assert!("chat.db".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn a_password_never_reaches_the_display() {
        let spec: StoreSpec = "postgres://chat:s3cret@db:5432/chat".parse().unwrap();
        assert_eq!(spec.to_string(), "postgres://chat:***@db:5432/chat");
        assert_eq!(
            without_password("postgres://chat@db/chat"),
            "postgres://chat@db/chat"
        );
        assert_eq!(
            without_password("redis://:pw@h:6379/"),
            "redis://:***@h:6379/"
        );
    }
}

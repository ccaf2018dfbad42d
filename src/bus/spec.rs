//! Which bus a server's hub talks through: `--bus local` (the default: this
//! process alone) or `--bus redis://HOST:PORT/` (any number of nodes that
//! share one Redis).
//!
//! Parsing only.

use std::fmt;
use std::str::FromStr;

use crate::db::without_password;

/// A `--bus` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusSpec {
    /// The in-process hub alone: one server, the embedded default.
    Local,
    /// A Redis (or Valkey) server shared by every node. The URL as given.
    Redis(String),
}

impl FromStr for BusSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "local" {
            return Ok(BusSpec::Local);
        }
        if s.starts_with("redis://") {
            return Ok(BusSpec::Redis(s.to_owned()));
        }
        Err(format!(
            "{s:?} is not a bus: use local or redis://HOST:PORT/"
        ))
    }
}

impl fmt::Display for BusSpec {
    /// The spec without a password, fit for a log line or the status page.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusSpec::Local => f.write_str("local"),
            BusSpec::Redis(url) => f.write_str(&without_password(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_redis_and_refuses_the_rest() {
        assert_eq!("local".parse(), Ok(BusSpec::Local));
        assert_eq!(
            "redis://127.0.0.1:6379/".parse(),
            Ok(BusSpec::Redis("redis://127.0.0.1:6379/".into()))
        );
        assert!("nats://h".parse::<BusSpec>().is_err());
        assert!("".parse::<BusSpec>().is_err());
    }
}

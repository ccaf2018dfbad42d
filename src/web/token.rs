//! The token of the teacher's pages (`/status`, `/status.json`,
//! `/metrics`).
//!
//! Behind ngrok every peer is 127.0.0.1, so "only from this machine" would
//! protect nothing. As Jupyter does, the server makes a random token at
//! each start (or takes `--status-token`) and logs the status page's whole
//! address with it once; whoever can read the server's log can open the
//! page. A request shows the token in one of three ways:
//!
//! - `?token=…` in the address (the logged link): the response then sets a
//!   cookie (`HttpOnly`: no script can read it; `Secure`: only over TLS;
//!   `SameSite=Strict`: no other site's page can make the browser send
//!   it), so the page's own refreshes need no token in their address;
//! - that cookie;
//! - `Authorization: Bearer …`, what Prometheus' `bearer_token` sends.
//!
//! The comparison takes the same time whatever the guess (`subtle`), so
//! the token cannot be found a character at a time by timing answers.

use subtle::ConstantTimeEq;

use super::http::Request;

/// The cookie that carries the token once a `?token=` link was opened.
pub const COOKIE: &str = "chat_status";

/// How a request showed a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// In the address: the response sets the cookie.
    Query,
    /// In the cookie, or as a bearer token.
    Kept,
}

/// The token in force.
pub struct Token(String);

impl Token {
    /// `given` (`--status-token`, already validated), or 16 random bytes
    /// in hex.
    ///
    /// # Errors
    ///
    /// The system's random source failing (a message for the log).
    pub fn new(given: Option<&str>) -> Result<Token, String> {
        if let Some(given) = given {
            return Ok(Token(given.to_string()));
        }
        // *ring*'s `SystemRandom` (the operating system's generator), as
        // the crypto provider every TLS config of this crate uses hands it
        // out.
        let mut bytes = [0u8; 16];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| "the system's random source failed".to_string())?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The token itself, for the one log line that prints it.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is the token, in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }

    /// How `request` showed the token, or `None` if it did not.
    pub fn check(&self, request: &Request) -> Option<Shown> {
        if let Some(bearer) = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            if self.matches(bearer.trim()) {
                return Some(Shown::Kept);
            }
        }
        if request
            .query_param("token")
            .is_some_and(|t| self.matches(t))
        {
            return Some(Shown::Query);
        }
        if request.cookie(COOKIE).is_some_and(|t| self.matches(t)) {
            return Some(Shown::Kept);
        }
        None
    }

    /// The `Set-Cookie` value that keeps the token in the browser.
    pub fn set_cookie(&self) -> String {
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict",
            self.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random tokens are 32 hex digits and differ; a given one is kept.
    #[test]
    fn tokens() {
        let a = Token::new(None).expect("random");
        let b = Token::new(None).expect("random");
        assert_eq!(a.reveal().len(), 32);
        assert_ne!(a.reveal(), b.reveal());
        let c = Token::new(Some("teacher-token-0123")).expect("given");
        assert!(c.matches("teacher-token-0123"));
        assert!(!c.matches("teacher-token-012"));
        assert!(!c.matches(""));
    }
}

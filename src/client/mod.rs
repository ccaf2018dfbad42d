//! The terminal client: `cargo run --bin client -- [PORT]`.
//!
//! It looks and behaves like the original Python course client (numbered
//! menus, `usuario1 123` at a prompt, `/menu` and `/leave` in a room) while
//! speaking protocol v1, verifying the server, and never letting another
//! user's text drive the terminal. `docs/CLIENT.md` is the user's guide.
//!
//! # Layout
//!
//! - [`menu`]: the client's behaviour as a pure state machine: typed lines
//!   and server lines in, protocol lines and sentences out. Unit-tested.
//! - [`net`]: connecting, the TLS handshake, and the network thread that
//!   alone owns the TLS connection.
//! - [`trust`]: the four ways to trust a server (pinned certificate, CA
//!   file, the system's CAs, none) and the pinning verifier; [`danger`]: the no-verification one.
//! - [`ui`]: the UI loop, the only code that prints.
//! - [`terminal`]: rustyline in a terminal or plain lines in a pipe; the
//!   input thread.
//! - [`sanitize`]: makes received text safe to print.
//!
//! # Threads
//!
//! ```text
//!  client-input: stdin ──Event::Input──┐
//!                                      ├──▶ UI loop (main thread): Menu → print / send
//!  client-net: TLS socket ─Event::Server┘            │
//!       ▲                                            │
//!       └──────────── protocol lines ────────────────┘
//! ```
//!
//! All user-facing text comes from the catalog in [`crate::i18n`].

pub mod danger;
pub mod menu;
pub mod net;
pub mod sanitize;
pub mod terminal;
pub mod trust;
pub mod ui;

use std::time::Duration;

use rustls::pki_types::ServerName;

pub use menu::Ending;
pub use trust::Trust;

use crate::i18n::{Locale, Msg};
use menu::Menu;
use ui::Ui;

/// How many events may wait for the UI loop. When the terminal is slow the
/// network thread waits, stops reading, and the server's per-client queue
/// takes the burst (and drops a client that never catches up).
pub const EVENT_QUEUE: usize = 256;

/// What the client was asked to do, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's host name or address, e.g. `localhost` or
    /// `0.tcp.sa.ngrok.io`.
    pub host: String,
    /// The server's port (12345 by default).
    pub port: u16,
    /// The name to send as SNI and, with a CA, to check in the certificate;
    /// `None` means `host`.
    pub server_name: Option<String>,
    /// How the server's certificate is checked.
    pub trust: Trust,
    /// A client certificate to present (`--cert`, `--key`), for a server
    /// that requires one (mutual TLS); `None` for the usual case.
    pub identity: Option<crate::tls::ClientIdentity>,
    /// The language of everything shown.
    pub locale: Locale,
    /// Silence after which a keepalive `PING` is sent ([`net::KEEPALIVE`]).
    pub keepalive: Duration,
}

/// The port argument of the command line.
///
/// # Errors
///
/// [`Msg::PortWithHost`] for `HOST:PORT` (`localhost:12345`, what
/// `openssl s_client -connect` takes), which names the host and the port
/// the user meant; [`Msg::BadPort`] for anything else that is not a port
/// from 1 to 65535.
pub fn parse_port(given: &str) -> Result<u16, Msg> {
    let port = |s: &str| s.parse::<u16>().ok().filter(|&p| p != 0);
    if let Some(p) = port(given) {
        return Ok(p);
    }
    match given.rsplit_once(':') {
        Some((host, p)) if !host.is_empty() && port(p).is_some() => Err(Msg::PortWithHost {
            // `[::1]:12345`: --host takes the address without brackets.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: p.to_owned(),
        }),
        _ => Err(Msg::BadPort {
            given: given.to_owned(),
        }),
    }
}

/// Connects, runs the session until it ends, and says how it ended.
///
/// # Errors
///
/// The sentence to show (in `options.locale`) when the session could not
/// start: a certificate that cannot be loaded, a server that cannot be
/// reached, a refused certificate, a failed handshake.
pub fn run(options: &Options) -> Result<Ending, Msg> {
    let config = trust::client_config(&options.trust, options.identity.as_ref())?;
    let name = options.server_name.as_deref().unwrap_or(&options.host);
    let server_name = ServerName::try_from(name.to_owned()).map_err(|_| Msg::BadServerName {
        name: name.to_owned(),
    })?;
    let connected = net::connect(
        &options.host,
        options.port,
        server_name,
        config,
        &options.trust,
    )?;

    // The first lines shown: the original's "SSL handshake succeeded", with
    // what was verified and how.
    let version = connected.tls_version();
    let intro = match &options.trust {
        Trust::Pin(file) => vec![Msg::HandshakePinned {
            version,
            file: file.display().to_string(),
        }],
        Trust::Ca(file) => vec![Msg::HandshakeCa {
            version,
            file: file.display().to_string(),
            name: name.to_owned(),
        }],
        Trust::System => vec![Msg::HandshakeSystem {
            version,
            name: name.to_owned(),
        }],
        Trust::Insecure => vec![Msg::InsecureWarning, Msg::HandshakeInsecure { version }],
    };

    let cannot_start = |e: std::io::Error| Msg::HandshakeFailed {
        detail: format!("cannot start a thread: {e}"),
    };
    let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
    let (to_server, net_thread) =
        net::spawn(connected, events_tx.clone(), options.keepalive).map_err(cannot_start)?;
    let interactive = terminal::is_interactive();
    // Restores the terminal on every way out of this function (Drop).
    let _terminal = interactive.then(terminal::TerminalGuard::save);
    let output = terminal::start(events_tx, interactive).map_err(cannot_start)?;

    let ui = Ui::new(
        Menu::new(options.locale),
        options.locale,
        output,
        to_server,
        events,
    );
    let ending = ui.run(&intro);
    // The UI is gone, so the network thread sees its channel closed, sends
    // close_notify and ends. The input thread may be blocked reading stdin:
    // it is not joined, and ends with the process.
    let _ = net_thread.join();
    Ok(ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port is 1 to 65535; `HOST:PORT` names the host and port for
    /// the message (IPv6 without its brackets); anything else is no port.
    #[test]
    fn parse_port_says_what_was_meant() {
        assert_eq!(parse_port("12345"), Ok(12345));
        assert_eq!(
            parse_port("localhost:12345"),
            Err(Msg::PortWithHost {
                host: "localhost".into(),
                port: "12345".into()
            })
        );
        assert_eq!(
            parse_port("[::1]:443"),
            Err(Msg::PortWithHost {
                host: "::1".into(),
                port: "443".into()
            })
        );
        for bad in ["0", "65536", "localhost", ":12345", "host:port", ""] {
            assert_eq!(
                parse_port(bad),
                Err(Msg::BadPort { given: bad.into() }),
                "{bad}"
            );
        }
    }
}

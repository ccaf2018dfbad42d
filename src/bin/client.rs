//! `client`: the terminal chat client. Parses the options, calls
//! [`chat::client::run`], and turns the outcome into an exit status: 0 after
//! a normal quit, 1 with one line on stderr when the session could not
//! start or the server ended it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use chat::client::{self, Ending, Options, Trust};
use chat::i18n::Locale;
use chat::tls::ClientIdentity;

/// The chat client: connects over TLS to a chat server and shows menus.
//
// No `about` in `#[command]`: that would print the package's description
// at the top of `--help`; without it clap uses this item's doc comment.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Args {
    /// The server's port (the host goes in --host).
    // Text, not `u16`: a `HOST:PORT` here gets a sentence of the catalog,
    // in the user's language, that says to use --host (see `parse_port`).
    #[arg(default_value = "12345")]
    port: String,
    /// The server's host name or address (e.g. an ngrok host like 0.tcp.sa.ngrok.io).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Language: en or pt (default: from LANG; pt* is Portuguese).
    #[arg(long, value_name = "LANG")]
    lang: Option<Locale>,
    /// Trust exactly the server certificate in FILE, whatever the host name (the default mode).
    #[arg(long, value_name = "FILE", default_value = "cert.pem")]
    cert_pin: PathBuf,
    /// Instead of pinning, verify the server and its name with the CA certificate(s) in FILE,
    /// or with the operating system's trusted CAs if FILE is `system` (use ./system for a file
    /// of that name).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// With --ca: the name to check in the certificate (and send as SNI) instead of --host.
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Present the client certificate in FILE (PEM), for a server that requires one (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Do NOT verify the server at all (like the original client). Prints a warning.
    #[arg(long)]
    insecure: bool,
    /// Seconds of silence before a keepalive PING.
    #[arg(long, value_name = "SECS", default_value_t = 30, hide = true)]
    keepalive: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let locale = args.lang.unwrap_or_else(Locale::from_env);
    let port = match client::parse_port(&args.port) {
        Ok(port) => port,
        Err(msg) => {
            eprintln!("{}", msg.render(locale));
            return ExitCode::FAILURE;
        }
    };
    let trust = match (args.insecure, args.ca) {
        (true, _) => Trust::Insecure,
        // `--ca system` is the operating system's trust store; a file named
        // "system" in the current folder is still reachable as `./system`.
        (false, Some(ca)) if ca.as_os_str() == "system" => Trust::System,
        (false, Some(ca)) => Trust::Ca(ca),
        (false, None) => Trust::Pin(args.cert_pin),
    };
    let options = Options {
        host: args.host,
        port,
        server_name: args.server_name,
        trust,
        identity: args
            .cert
            .zip(args.key)
            .map(|(cert, key)| ClientIdentity { cert, key }),
        locale,
        keepalive: std::time::Duration::from_secs(args.keepalive.max(1)),
    };
    match client::run(&options) {
        Ok(Ending::Quit) => ExitCode::SUCCESS,
        // The UI has shown why (the BYE reason or the lost connection).
        Ok(Ending::ServerClosed) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("{}", msg.render(locale));
            ExitCode::FAILURE
        }
    }
}

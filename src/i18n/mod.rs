//! Every sentence the terminal client shows, in one catalog, in English and
//! Brazilian Portuguese.
//!
//! The rule: no user-facing text is written inline anywhere
//! else. Code that wants to say something builds a [`Msg`], a value that
//! names *what* to say and carries the data to say it with (a room name, a
//! user, a TLS version). [`Msg::render`] turns it into text for a
//! [`Locale`] through one exhaustive `match` per language, in [`en`] and
//! [`pt_br`]. Adding a variant without translating it is a compile error in
//! both files, so the two catalogs cannot drift apart.
//!
//! Protocol tokens stay English on the wire (`JOIN`, `BAD_ROOM_PASSWORD`):
//! the client translates *codes* into sentences, and shows the server's
//! English error text only after such a sentence, where the text says what
//! the code cannot (`BANNED` and `SUSPENDED` name when they end), or when
//! the code is one this client does not know.
//!
//! ```
//! use chat::i18n::{Locale, Msg};
//! let msg = Msg::UserJoined { user: "bob".into() };
//! assert_eq!(msg.render(Locale::PtBr), "*** bob entrou na sala. ***");
//! assert_eq!(msg.render(Locale::En), "*** bob joined the room. ***");
//! ```

pub mod en;
pub mod pt_br;

use std::fmt;
use std::str::FromStr;

use crate::protocol::{ByeReason, ErrCode, Timestamp};

/// A language the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    /// English, the default.
    #[default]
    En,
    /// Brazilian Portuguese, the language of the original course client.
    PtBr,
}

impl Locale {
    /// The locale for a POSIX locale name such as `pt_BR.UTF-8` or `C`:
    /// anything that starts with `pt` is Portuguese, everything else
    /// (including nothing at all) is English.
    pub fn from_posix(name: Option<&str>) -> Locale {
        match name {
            Some(name) if name.to_ascii_lowercase().starts_with("pt") => Locale::PtBr,
            _ => Locale::En,
        }
    }

    /// The locale the environment asks for, with POSIX precedence: the first
    /// non-empty one of `LC_ALL`, `LC_MESSAGES` and `LANG`.
    pub fn from_env() -> Locale {
        let name = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|value| !value.is_empty());
        Locale::from_posix(name.as_deref())
    }
}

impl FromStr for Locale {
    type Err = String;

    /// Parses the value of `--lang`: `en`, or `pt` / `pt-BR` / `pt_BR`
    /// (any case).
    fn from_str(s: &str) -> Result<Locale, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Ok(Locale::En),
            "pt" | "pt-br" | "pt_br" => Ok(Locale::PtBr),
            // The one message of this module that is not in the catalog: it
            // is clap's, shown while the language is still unknown.
            _ => Err(format!(
                "{s:?} is not a language of the client: use en or pt"
            )),
        }
    }
}

impl fmt::Display for Locale {
    /// Writes the value `--lang` takes: `en` or `pt`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Locale::En => "en",
            Locale::PtBr => "pt",
        })
    }
}

/// One room in the answer to "list rooms".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room's name, as created.
    pub name: String,
    /// True if joining needs a password.
    pub private: bool,
    /// How many members are in it now.
    pub online: usize,
}

/// One ban in the answer to `/bans`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// Who is banned.
    pub user: String,
    /// When the ban ends; `None` until lifted.
    pub until: Option<Timestamp>,
    /// Who banned them.
    pub by: String,
}

/// A moderation slash command, as `/help` lists it and as its usage line
/// names it. Which ones `/help` lists comes from the server's `HELP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Moderation {
    /// `/kick <user> [reason]`.
    Kick,
    /// `/ban <user> [minutes] [reason]`.
    Ban,
    /// `/unban <user>`.
    Unban,
    /// `/bans`.
    Bans,
    /// `/topic <text>`: setting the topic (reading it is for everybody).
    SetTopic,
    /// `/close [room]`.
    Close,
    /// `/suspend <user> [minutes] [reason]`.
    Suspend,
    /// `/unsuspend <user>`.
    Unsuspend,
    /// `/announce <text>`.
    Announce,
}

impl Moderation {
    /// Every moderation command, in the order `/help` lists them.
    pub const ALL: &'static [Moderation] = &[
        Moderation::Kick,
        Moderation::Ban,
        Moderation::Unban,
        Moderation::Bans,
        Moderation::SetTopic,
        Moderation::Close,
        Moderation::Suspend,
        Moderation::Unsuspend,
        Moderation::Announce,
    ];
}

/// A time as people read it: `2026-11-30 07:50 UTC` (English) or
/// `30/11/2026 07:50 UTC` (Portuguese). The client has no time zone
/// database, so the time stays in UTC and says so.
pub fn readable_time(time: Timestamp, locale: Locale) -> String {
    // `Timestamp` displays as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    let wire = time.to_string();
    let (Some(date), Some(clock)) = (wire.get(..10), wire.get(11..16)) else {
        return wire;
    };
    match locale {
        Locale::En => format!("{date} {clock} UTC"),
        Locale::PtBr => {
            let mut parts = date.splitn(3, '-');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y} {clock} UTC"),
                _ => format!("{date} {clock} UTC"),
            }
        }
    }
}

/// Lines of `  <left>  <right>`, the left column as wide as its widest
/// entry (in characters), for help texts.
pub(crate) fn two_columns(rows: &[(&str, &str)]) -> String {
    let width = rows
        .iter()
        .map(|(left, _)| left.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (left, right) in rows {
        if !text.is_empty() {
            text.push('\n');
        }
        let pad = width - left.chars().count();
        text.push_str(&format!("  {left}{}  {right}", " ".repeat(pad)));
    }
    text
}

/// Why a server's certificate was refused in `--ca` mode, in the words a
/// user can act on (rustls's own reasons are Rust type names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// No chain to a trusted CA: the certificate is self-signed, or signed
    /// by a CA that is not the one trusted (the class server's usual case
    /// with `--ca system`).
    UnknownIssuer,
    /// The certificate is not for the name that was checked.
    WrongName,
    /// The certificate's end date has passed.
    Expired,
    /// The certificate's start date is in the future (or this computer's
    /// clock is wrong).
    NotValidYet,
    /// The CA has revoked the certificate.
    Revoked,
    /// Anything else, as rustls says it.
    Other(String),
}

/// Everything the client can say to its user. Texts that come from other
/// people (`text`, `user`, `room`) are carried as received; the UI makes
/// them safe for the terminal when it prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // ----- connecting -----
    /// `--insecure` is on: the server's identity is not checked.
    InsecureWarning,
    /// The TLS handshake succeeded and the certificate was the pinned one
    /// (the original's "SSL handshake succeeded").
    HandshakePinned {
        /// `TLS 1.3` or `TLS 1.2`.
        version: String,
        /// The file holding the pinned certificate.
        file: String,
    },
    /// The TLS handshake succeeded and the certificate chains to the CA.
    HandshakeCa {
        /// `TLS 1.3` or `TLS 1.2`.
        version: String,
        /// The CA file.
        file: String,
        /// The server name that was checked.
        name: String,
    },
    /// The TLS handshake succeeded and the certificate chains to a CA of
    /// the operating system's trust store (`--ca system`).
    HandshakeSystem {
        /// `TLS 1.3` or `TLS 1.2`.
        version: String,
        /// The server name that was checked.
        name: String,
    },
    /// The TLS handshake succeeded without any verification.
    HandshakeInsecure {
        /// `TLS 1.3` or `TLS 1.2`.
        version: String,
    },
    /// The certificate to trust (pin or CA) could not be loaded.
    TrustFileUnusable {
        /// The library's error, naming the file.
        detail: String,
    },
    /// `--ca system`: the operating system's trust store has no usable CA.
    SystemTrustUnusable {
        /// The library's error.
        detail: String,
    },
    /// The client certificate (`--cert`, `--key`) could not be loaded.
    ClientCertUnusable {
        /// The library's error, naming the file.
        detail: String,
    },
    /// The port argument is `HOST:PORT` (e.g. `localhost:12345`): the host
    /// goes in `--host`.
    PortWithHost {
        /// The part before the last colon.
        host: String,
        /// The part after it.
        port: String,
    },
    /// The port argument is not a port number (1 to 65535).
    BadPort {
        /// The argument as given.
        given: String,
    },
    /// `--host` or `--server-name` is not a DNS name or IP address.
    BadServerName {
        /// The name as given.
        name: String,
    },
    /// The host name could not be turned into an address (DNS).
    CannotResolve {
        /// The host name as given.
        host: String,
        /// The resolver's reason.
        detail: String,
    },
    /// No TCP connection could be made.
    CannotConnect {
        /// `host:port`.
        addr: String,
        /// The operating system's reason.
        detail: String,
    },
    /// The server showed a certificate other than the pinned one.
    CertificateNotPinned {
        /// The file holding the pinned certificate.
        file: String,
    },
    /// The server's certificate does not chain to the CA or does not match
    /// the server name.
    CertificateNotTrusted {
        /// The CA file.
        file: String,
        /// The server name that was checked.
        name: String,
        /// Why.
        problem: CertProblem,
    },
    /// `--ca system`: the server's certificate does not chain to a CA the
    /// system trusts, or does not match the server name.
    CertificateNotTrustedSystem {
        /// The server name that was checked.
        name: String,
        /// Why.
        problem: CertProblem,
    },
    /// The TLS handshake failed for another reason (protocol, timeout).
    HandshakeFailed {
        /// What went wrong, in English.
        detail: String,
    },
    /// The server speaks a protocol version this client does not know.
    UnknownProtocolVersion {
        /// The version in the server's `HELLO`.
        version: u32,
    },

    // ----- menus -----
    /// The start menu: register, log in, quit.
    StartMenu,
    /// The main menu after login; options 5 and 6 only while in `room`.
    MainMenu {
        /// The room the user is in, if any.
        room: Option<String>,
    },
    /// A menu choice that is not one of the options.
    InvalidOption,
    /// Asks for `user password` on one line.
    AskCredentials,
    /// The credentials line was not `user password`.
    CredentialsUsage,
    /// The account was created.
    Registered {
        /// The new account's name.
        user: String,
    },
    /// The user is logged in.
    LoggedIn {
        /// The account's name as registered.
        user: String,
    },
    /// Asks for `name n` or `name s password`.
    AskCreate,
    /// The create line was not understood.
    CreateUsage,
    /// A room was created.
    Created {
        /// The room's name.
        room: String,
        /// True for a private room.
        private: bool,
    },
    /// Asks for `name [password]`.
    AskJoin,
    /// The list of rooms follows.
    RoomList {
        /// The rooms, sorted by name.
        rooms: Vec<RoomInfo>,
    },
    /// The user entered a room and is now in chat mode.
    EnteredRoom {
        /// The room.
        room: String,
    },
    /// The user is back in chat mode from the menu.
    BackToChat {
        /// The room.
        room: String,
    },
    /// The user left the room.
    LeftRoom {
        /// The room.
        room: String,
    },
    /// Before the messages replayed on join.
    HistoryStart {
        /// How many messages follow.
        count: usize,
    },
    /// One message said before the user joined.
    HistoryLine {
        /// The room.
        room: String,
        /// Who said it.
        user: String,
        /// What was said.
        text: String,
    },
    /// After the messages replayed on join.
    HistoryEnd,
    /// The answer to `/help`: the commands everybody has, and the
    /// moderation commands this session may use (as the server's `HELP`
    /// listed them).
    Help {
        /// The moderation commands to list, in [`Moderation::ALL`] order.
        allowed: Vec<Moderation>,
    },
    /// A `/command` the client does not know.
    UnknownChatCommand {
        /// What was typed, up to the first space.
        command: String,
    },
    /// `/msg` without a user or a text.
    MsgUsage,
    /// A moderation command typed without what it needs.
    ModerationUsage(Moderation),
    /// The answer to `/who`.
    WhoList {
        /// The members, as the server listed them.
        users: Vec<String>,
    },
    /// A direct message reached its recipient.
    DmDelivered {
        /// The recipient.
        user: String,
    },
    /// A direct message was stored for an offline recipient.
    DmStored {
        /// The recipient.
        user: String,
    },
    /// The session ended normally.
    Goodbye,

    // ----- moderation: answers to the user's own commands -----
    /// `OK KICK`: the user put someone out of the room.
    KickDone {
        /// Who was put out.
        user: String,
    },
    /// `OK BAN`.
    BanDone {
        /// Who is banned.
        user: String,
        /// The room.
        room: String,
        /// For how long; `None` until lifted.
        minutes: Option<u32>,
    },
    /// `OK UNBAN`.
    UnbanDone {
        /// Whose ban was lifted.
        user: String,
        /// The room.
        room: String,
    },
    /// The answer to `/bans`.
    BanList {
        /// The room.
        room: String,
        /// Its bans, as the server listed them.
        bans: Vec<BanInfo>,
    },
    /// A room's topic: on joining it, and as the answer to `/topic`.
    RoomTopic {
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// When.
        time: Timestamp,
        /// The topic.
        topic: String,
    },
    /// The answer to `/topic` in a room without one.
    NoTopic {
        /// The room.
        room: String,
    },
    /// `OK CLOSE`.
    CloseDone {
        /// The room that is gone.
        room: String,
    },
    /// `OK SUSPEND`.
    SuspendDone {
        /// Who is suspended.
        user: String,
        /// For how long; `None` until lifted.
        minutes: Option<u32>,
    },
    /// `OK UNSUSPEND`.
    UnsuspendDone {
        /// Whose suspension was lifted.
        user: String,
    },
    /// `OK ANNOUNCE`.
    AnnounceDone {
        /// How many connections got the notice.
        count: usize,
    },
    /// `NOT_ALLOWED` in answer to a moderation command: who may do it.
    NotAllowed {
        /// True for the admin-only commands (`SUSPEND`, `UNSUSPEND`,
        /// `ANNOUNCE`); false for those a room's owner may use too.
        admin_only: bool,
    },
    /// `NO_SUCH_USER` in answer to `/kick`: the user is not in the room.
    NotAMember {
        /// Who was named.
        user: String,
    },

    // ----- what other people do -----
    /// A message said in the room: `[alice@sala]: texto`.
    Said {
        /// The room.
        room: String,
        /// Who said it.
        user: String,
        /// What was said.
        text: String,
    },
    /// Someone entered the room.
    UserJoined {
        /// Who.
        user: String,
    },
    /// Someone left the room on purpose (`LEFT ... leave`).
    UserLeft {
        /// Who.
        user: String,
    },
    /// Someone's connection ended (`LEFT ... quit`).
    UserDisconnected {
        /// Who.
        user: String,
    },
    /// A direct message to the user.
    DirectMessage {
        /// Who sent it.
        from: String,
        /// What was sent.
        text: String,
    },
    /// Someone was put out of the room by its owner or an admin
    /// (`LEFT ... kick`, which does not say by whom or why).
    UserKicked {
        /// Who.
        user: String,
    },
    /// The user was put out of the room (`KICKED`); they are in no room.
    YouWereKicked {
        /// The room.
        room: String,
        /// Who did it.
        by: String,
        /// Why; empty when no reason was given.
        reason: String,
    },
    /// The room the user was in was closed (`CLOSED`); they are in no room.
    RoomClosed {
        /// The room.
        room: String,
        /// Who closed it.
        by: String,
    },
    /// The room's topic was set just now.
    TopicChanged {
        /// Who set it.
        by: String,
        /// The new topic.
        topic: String,
    },
    /// An admin's announcement to everybody connected (`NOTICE`).
    Notice {
        /// Which admin sent it.
        from: String,
        /// What it says.
        text: String,
    },

    // ----- the server -----
    /// An `ERR` reply: one sentence per code.
    Error(ErrCode),
    /// An `ERR` reply whose text matters to the user: `BANNED` and
    /// `SUSPENDED` name when the ban or suspension ends. The sentence of
    /// the code, then the server's text.
    ErrorWithText {
        /// The code.
        code: ErrCode,
        /// The server's text, as received.
        text: String,
    },
    /// An `ERR` reply with a code this client does not know.
    UnknownError {
        /// The server's text, as received.
        text: String,
    },
    /// The server ended the session (`BYE`): one sentence per reason.
    ServerBye(ByeReason),
    /// `BYE SUSPENDED`: the sentence, and the server's text, which says
    /// until when.
    SuspendedBye {
        /// The server's text, as received.
        text: String,
    },
    /// A `BYE` with a reason this client does not know.
    UnknownBye {
        /// The server's text, as received.
        text: String,
    },
    /// The server ended the session with a TLS alert saying that it needs
    /// a client certificate and we sent none (`--client-ca` servers).
    ClientCertificateRequired,
    /// The server ended the session with a TLS alert refusing the client
    /// certificate we sent.
    ClientCertificateRefused {
        /// The alert, as rustls names it.
        detail: String,
    },
    /// The connection ended without a `BYE`.
    ConnectionLost {
        /// What the network layer saw, in English, if anything.
        detail: Option<String>,
    },
    /// A line from the server that this client does not understand.
    UnknownLine {
        /// The line as received.
        line: String,
    },
}

impl Msg {
    /// The text of this message in `locale`. It may span several lines
    /// (menus do); it never ends with a newline.
    pub fn render(&self, locale: Locale) -> String {
        match locale {
            Locale::En => en::text(self),
            Locale::PtBr => pt_br::text(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LANG=pt_BR.UTF-8` and friends pick Portuguese; anything else English.
    #[test]
    fn locale_from_posix_names() {
        assert_eq!(Locale::from_posix(Some("pt_BR.UTF-8")), Locale::PtBr);
        assert_eq!(Locale::from_posix(Some("pt_PT")), Locale::PtBr);
        assert_eq!(Locale::from_posix(Some("PT")), Locale::PtBr);
        assert_eq!(Locale::from_posix(Some("en_US.UTF-8")), Locale::En);
        assert_eq!(Locale::from_posix(Some("C")), Locale::En);
        assert_eq!(Locale::from_posix(None), Locale::En);
    }

    /// `--lang` takes en and pt (and pt-BR spelled either way).
    #[test]
    fn locale_from_lang_option() {
        assert_eq!("en".parse(), Ok(Locale::En));
        assert_eq!("pt".parse(), Ok(Locale::PtBr));
        assert_eq!("pt-BR".parse(), Ok(Locale::PtBr));
        assert_eq!("pt_br".parse(), Ok(Locale::PtBr));
        assert!("fr".parse::<Locale>().is_err());
    }

    /// Every error code and every BYE reason has its own sentence in each
    /// language, and the two languages differ (nothing was left untranslated).
    #[test]
    fn every_code_has_a_sentence() {
        for locale in [Locale::En, Locale::PtBr] {
            let mut seen = std::collections::HashSet::new();
            for &code in ErrCode::ALL {
                let text = Msg::Error(code).render(locale);
                assert!(!text.is_empty() && !text.contains(code.as_str()), "{text}");
                assert!(seen.insert(text.clone()), "two codes share {text:?}");
            }
            for &reason in ByeReason::ALL {
                assert!(seen.insert(Msg::ServerBye(reason).render(locale)));
            }
        }
        for &code in ErrCode::ALL {
            assert_ne!(
                Msg::Error(code).render(Locale::En),
                Msg::Error(code).render(Locale::PtBr)
            );
        }
    }

    /// The start-up messages of issue 11, exactly, in both languages:
    /// each says what happened and what to do next, on one line.
    #[test]
    fn start_up_messages_say_what_to_do() {
        let cases = [
            (
                Msg::PortWithHost {
                    host: "localhost".into(),
                    port: "12345".into(),
                },
                "localhost:12345 is a host and a port: give the port alone, and the host with \
                 --host (e.g. client --host localhost 12345).",
                "localhost:12345 é um host e uma porta: dê só a porta, e o host com --host \
                 (ex.: client --host localhost 12345).",
            ),
            (
                Msg::BadPort {
                    given: "abc".into(),
                },
                "\"abc\" is not a port number (1 to 65535): give the server's port alone \
                 (e.g. client 12345), and its host with --host.",
                "\"abc\" não é um número de porta (1 a 65535): dê só a porta do servidor \
                 (ex.: client 12345), e o host dele com --host.",
            ),
            (
                Msg::CannotResolve {
                    host: "chat.invalid".into(),
                    detail: "Name or service not known".into(),
                },
                "Cannot find the server chat.invalid: the name could not be resolved (Name or \
                 service not known). Check the name given with --host (or use the server's IP \
                 address) and this computer's network.",
                "Não foi possível encontrar o servidor chat.invalid: o nome não pôde ser \
                 resolvido (Name or service not known). Confira o nome dado em --host (ou use o \
                 endereço IP do servidor) e a rede deste computador.",
            ),
            (
                Msg::CannotConnect {
                    addr: "localhost:12345".into(),
                    detail: "Connection refused".into(),
                },
                "Cannot connect to localhost:12345 (Connection refused). Check that the server \
                 is running and that the port and --host are the server's.",
                "Não foi possível conectar a localhost:12345 (Connection refused). Confira se o \
                 servidor está rodando e se a porta e o --host são os dele.",
            ),
            (
                Msg::CertificateNotTrustedSystem {
                    name: "localhost".into(),
                    problem: CertProblem::UnknownIssuer,
                },
                "REFUSED: the server's certificate is not signed by any CA this system trusts \
                 (it is self-signed, or made by another CA). Nothing was sent. If this is the \
                 class server, pin the server's own certificate instead: --cert-pin FILE, FILE \
                 being the server's cert.pem.",
                "RECUSADO: o certificado do servidor não foi assinado por nenhuma CA em que este \
                 sistema confia (é autoassinado, ou feito por outra CA). Nada foi enviado. Se \
                 este é o servidor da turma, fixe o próprio certificado do servidor: --cert-pin \
                 ARQUIVO, sendo ARQUIVO o cert.pem do servidor.",
            ),
            (
                Msg::CertificateNotTrusted {
                    file: "ca.pem".into(),
                    name: "chat.example".into(),
                    problem: CertProblem::WrongName,
                },
                "REFUSED: the server's certificate is not for the name chat.example. Nothing was \
                 sent. Give a name it has with --server-name NAME, or pin the server's own \
                 certificate instead: --cert-pin FILE, FILE being the server's cert.pem.",
                "RECUSADO: o certificado do servidor não é para o nome chat.example. Nada foi \
                 enviado. Dê um nome que ele tenha com --server-name NOME, ou fixe o próprio \
                 certificado do servidor: --cert-pin ARQUIVO, sendo ARQUIVO o cert.pem do \
                 servidor.",
            ),
            (
                Msg::CertificateNotTrusted {
                    file: "ca.pem".into(),
                    name: "localhost".into(),
                    problem: CertProblem::NotValidYet,
                },
                "REFUSED: the server's certificate is not valid yet. Nothing was sent. Check \
                 this computer's date and time.",
                "RECUSADO: o certificado do servidor ainda não é válido. Nada foi enviado. \
                 Confira a data e a hora deste computador.",
            ),
            (
                Msg::Error(ErrCode::BadRoomPassword),
                "Wrong or missing password: that room is private; join it with its name and its \
                 password (e.g. sala_privada senhasecreta).",
                "Senha incorreta ou ausente: essa sala é privada; entre com o nome e a senha \
                 dela (ex.: sala_privada senhasecreta).",
            ),
        ];
        for (msg, en, pt) in cases {
            assert_eq!(msg.render(Locale::En), en);
            assert_eq!(msg.render(Locale::PtBr), pt);
        }
        // Every refusal of a certificate is one line that ends with a next step.
        for problem in [
            CertProblem::UnknownIssuer,
            CertProblem::WrongName,
            CertProblem::Expired,
            CertProblem::NotValidYet,
            CertProblem::Revoked,
            CertProblem::Other("BadEncoding".into()),
        ] {
            for locale in [Locale::En, Locale::PtBr] {
                let text = Msg::CertificateNotTrustedSystem {
                    name: "localhost".into(),
                    problem: problem.clone(),
                }
                .render(locale);
                assert!(!text.contains('\n'), "{text}");
                let next = text.rsplit(". Nada foi enviado. ").next().unwrap();
                let next = next.rsplit(". Nothing was sent. ").next().unwrap();
                assert!(next != text && next.ends_with('.'), "{text}");
            }
        }
    }

    /// Catalog texts never contain control characters other than the LF
    /// between the lines of a menu.
    #[test]
    fn catalog_has_no_control_characters() {
        let samples = [
            Msg::StartMenu,
            Msg::MainMenu {
                room: Some("sala".into()),
            },
            Msg::Help {
                allowed: Moderation::ALL.to_vec(),
            },
            Msg::Help {
                allowed: Vec::new(),
            },
            Msg::InsecureWarning,
            Msg::RoomList {
                rooms: vec![RoomInfo {
                    name: "sala".into(),
                    private: true,
                    online: 2,
                }],
            },
        ];
        for locale in [Locale::En, Locale::PtBr] {
            for msg in &samples {
                let text = msg.render(locale);
                assert!(!text.ends_with('\n'), "{text:?}");
                assert!(
                    !text
                        .chars()
                        .any(|c| c != '\n' && crate::protocol::text::is_control(c)),
                    "{text:?}"
                );
            }
        }
    }
}

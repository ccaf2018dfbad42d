//! Everything the server sends, rendered in one place.
//!
//! [`ServerLine`] has one variant per kind of line the server writes: the
//! greeting, final replies (`OK`, `ERR`, `BYE`, `PONG`), data lines that come
//! before a final reply (`ROOM`, `USER`, `HISTORY`, `INFO`) and events that
//! may arrive at any time (`MSG`, `JOINED`, `LEFT`, `DM`). Its `Display` is
//! the exact wire line without the LF; [`ServerLine::parse`] reads one back,
//! for the terminal client and for tests.
//!
//! The wire tokens (`BAD_ARGS`, `SLOW_CONSUMER`, `leave`, ...) are enums
//! ([`ErrCode`], [`ByeReason`], [`LeftReason`]) so that a typo is a compile
//! error, and times are a [`Timestamp`] that renders as RFC 3339 UTC with
//! milliseconds. This module never reads the clock: the caller supplies the
//! time.
//!
//! # Empty trailing text
//!
//! The last field of many lines is free text (`ERR <CODE> <text>`). When that
//! text is empty the line is rendered without the space before it
//! (`OK HELP`, `INFO`), and the parser reads a missing trailing field as
//! empty. `PONG` is the exception: `PONG` (no token) and `PONG ` (an empty
//! token) are different replies, echoing `PING` and `PING `.

use std::fmt;

/// Declares a wire-token enum with `as_str`, `from_token`, `Display` and an
/// `ALL` list, so that the token table is written once per enum.
macro_rules! wire_tokens {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $token:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order (for tests and help texts).
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The exact token sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $token, )+
                }
            }

            /// The variant whose wire token is exactly `token` (case-sensitive),
            /// or `None`.
            pub fn from_token(token: &str) -> Option<Self> {
                match token {
                    $( $token => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            /// Writes the wire token.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_tokens! {
    /// The `<CODE>` of an `ERR <CODE> <text>` reply.
    ///
    /// # Wire format
    ///
    /// ```text
    /// ERR BAD_ARGS usage: JOIN <room> [<password>]
    /// ```
    pub enum ErrCode {
        /// Missing, extra or empty arguments.
        BadArgs => "BAD_ARGS",
        /// A name that breaks the name rules (REGISTER, CREATE).
        BadName => "BAD_NAME",
        /// A password that breaks the password rules (REGISTER, CREATE).
        BadPassword => "BAD_PASSWORD",
        /// REGISTER with a name already taken (in any case).
        UserExists => "USER_EXISTS",
        /// LOGIN failed; deliberately says nothing about which part was wrong.
        BadCredentials => "BAD_CREDENTIALS",
        /// LOGIN on a connection that is logged in already.
        AlreadyLoggedIn => "ALREADY_LOGGED_IN",
        /// Too many messages or failed logins; try again later.
        RateLimited => "RATE_LIMITED",
        /// The command needs a logged-in user.
        NotLoggedIn => "NOT_LOGGED_IN",
        /// CREATE with a room name already taken (in any case).
        RoomExists => "ROOM_EXISTS",
        /// JOIN of a room that does not exist.
        NoSuchRoom => "NO_SUCH_ROOM",
        /// JOIN of a private room with a wrong or missing password.
        BadRoomPassword => "BAD_ROOM_PASSWORD",
        /// JOIN of the room the user is already in.
        AlreadyInRoom => "ALREADY_IN_ROOM",
        /// A room command (SAY, WHO, LEAVE) outside any room.
        NotInRoom => "NOT_IN_ROOM",
        /// Message text that is blank or contains control characters.
        BadText => "BAD_TEXT",
        /// DM to a user that does not exist.
        NoSuchUser => "NO_SUCH_USER",
        /// An empty line or an unknown keyword.
        UnknownCommand => "UNKNOWN_COMMAND",
        /// A line over the length limit; its rest was discarded.
        LineTooLong => "LINE_TOO_LONG",
        /// A line that was not UTF-8; it was discarded.
        BadEncoding => "BAD_ENCODING",
        /// The server could not do it (e.g. the database failed).
        ServerError => "SERVER_ERROR",
        /// CREATE past `--max-rooms` in all, or past `--rooms-per-user` owned
        /// by this account.
        TooManyRooms => "TOO_MANY_ROOMS",
        /// REGISTER while the server runs with `--registration closed`.
        RegistrationClosed => "REGISTRATION_CLOSED",
        /// DM to an offline user whose stored messages reached `--mailbox`;
        /// nothing was stored.
        MailboxFull => "MAILBOX_FULL",
        /// A moderation command from someone without the role it needs, or
        /// aimed at oneself or at an admin.
        NotAllowed => "NOT_ALLOWED",
        /// JOIN of a room the user is banned from.
        Banned => "BANNED",
        /// UNBAN of a user who is not banned from the room.
        NotBanned => "NOT_BANNED",
        /// LOGIN of a suspended account (with the right password).
        Suspended => "SUSPENDED",
        /// UNSUSPEND of an account that is not suspended.
        NotSuspended => "NOT_SUSPENDED",
    }
}

wire_tokens! {
    /// The `<REASON>` of a `BYE <REASON> <text>` line, after which the server
    /// closes the connection.
    ///
    /// # Wire format
    ///
    /// ```text
    /// BYE SHUTDOWN The server is stopping.
    /// ```
    pub enum ByeReason {
        /// The client sent QUIT.
        Quit => "QUIT",
        /// The server is stopping.
        Shutdown => "SHUTDOWN",
        /// No successful LOGIN in time.
        LoginTimeout => "LOGIN_TIMEOUT",
        /// The same user logged in on another connection (newest wins).
        LoggedInElsewhere => "LOGGED_IN_ELSEWHERE",
        /// The client stopped reading and its outgoing queue filled up.
        SlowConsumer => "SLOW_CONSUMER",
        /// The server is at its connection limit.
        TooManyConnections => "TOO_MANY_CONNECTIONS",
        /// A logged-in client sent no line for `--idle-timeout`.
        Idle => "IDLE",
        /// An admin suspended this user.
        Suspended => "SUSPENDED",
    }
}

wire_tokens! {
    /// Why a member left a room, the last word of a `LEFT` event.
    ///
    /// # Wire format
    ///
    /// ```text
    /// LEFT <room> <user> <leave|quit|kick>
    /// ```
    pub enum LeftReason {
        /// The member sent LEAVE, or JOINed another room.
        Leave => "leave",
        /// The member disconnected, timed out, was dropped or was replaced by
        /// a newer login.
        Quit => "quit",
        /// The room's owner or an admin put the member out (`KICK`, `BAN`).
        Kick => "kick",
    }
}

/// Milliseconds since the Unix epoch, UTC. Display = RFC 3339 with exactly 3 fractional digits and Z, e.g. 2026-11-30T07:50:09.123Z
///
/// The calendar arithmetic is Howard Hinnant's `days_from_civil` /
/// `civil_from_days` (proleptic Gregorian calendar), so no date library is
/// needed. Leap seconds do not exist in Unix time, so `:60` never appears.
///
/// # Wire format
///
/// ```text
/// YYYY-MM-DDTHH:MM:SS.mmmZ        e.g. 2026-11-30T07:50:09.123Z
/// ```
///
/// Years outside 0000–9999 cannot be written in RFC 3339; `Display` then
/// writes the year with a sign or more digits, and `parse` refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(
    /// Milliseconds since 1970-01-01T00:00:00.000Z (negative before it).
    pub i64,
);

/// Milliseconds in a day.
const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March, so that the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // year of era, 0..=399
    let mp = i64::from((month + 9) % 12); // March = 0, ..., February = 11
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // day of year, 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // day of era, 0..=146096
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // 1..=31, fits
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // 1..=12, fits
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// True for leap years of the Gregorian calendar.
fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads exactly `digits.len()` ASCII digits as a number; `None` otherwise.
fn parse_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

impl Timestamp {
    /// Parses the exact format `Display` writes, and nothing else: four-digit
    /// year, uppercase `T` and `Z`, exactly three fractional digits, a real
    /// calendar date, hours 00–23, minutes and seconds 00–59.
    ///
    /// # Wire format
    ///
    /// ```text
    /// YYYY-MM-DDTHH:MM:SS.mmmZ
    /// ```
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() != 24 {
            return None;
        }
        // Check every separator at its fixed position.
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ];
        if separators.iter().any(|&(i, sep)| b[i] != sep) {
            return None;
        }
        let year = i64::from(parse_digits(&b[0..4])?);
        let month = parse_digits(&b[5..7])?;
        let day = parse_digits(&b[8..10])?;
        let hour = parse_digits(&b[11..13])?;
        let minute = parse_digits(&b[14..16])?;
        let second = parse_digits(&b[17..19])?;
        let milli = parse_digits(&b[20..23])?;
        let date_ok = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        if !date_ok || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let time_of_day = ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second))
            * 1000
            + i64::from(milli);
        Some(Timestamp(
            days_from_civil(year, month, day) * MS_PER_DAY + time_of_day,
        ))
    }
}

impl fmt::Display for Timestamp {
    /// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (secs, milli) = (ms_of_day / 1000, ms_of_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Every line the server sends, rendered in one place (Display, no LF) and parsed back (for clients and tests).
///
/// Names are plain `String`s here: the server has validated them already,
/// and a client should not refuse to show a line because of a name rule.
/// Text fields must not contain CR or LF; the server only ever puts validated
/// `<text>` (which has no control characters but TAB) or its own messages
/// into them.
///
/// # Wire format
///
/// ```text
/// HELLO <version> <software>/<version> <text>
/// OK <COMMAND> [<rest>]
/// ERR <CODE> <text>
/// BYE <REASON> <text>
/// PONG [<token>]
/// ROOM <room> <public|private> <members-online>
/// USER <user>
/// HISTORY <room> <time> <user> <text>
/// INFO <text>
/// MSG <room> <time> <user> <text>
/// JOINED <room> <user>
/// LEFT <room> <user> <leave|quit>
/// DM <from-user> <time> <text>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// The greeting, sent once after the TLS handshake.
    ///
    /// ```text
    /// HELLO 1 chat-server/0.1.0 Type HELP for commands.
    /// ```
    Hello {
        /// The protocol version, [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
        version: u32,
        /// `<software>/<version>`, one word, e.g. `chat-server/0.1.0`.
        software: String,
        /// A free hint for humans.
        text: String,
    },
    /// Success of a command.
    ///
    /// ```text
    /// OK LOGIN Alice
    /// OK HELP
    /// ```
    Ok {
        /// The command's keyword, uppercase, e.g. `LOGIN`.
        command: String,
        /// What follows the keyword (may be empty, may contain spaces), e.g.
        /// `Alice` or `bob delivered`.
        rest: String,
    },
    /// Failure of a command; the connection stays open.
    ///
    /// ```text
    /// ERR NOT_IN_ROOM Join a room first.
    /// ```
    Err {
        /// What went wrong, for programs.
        code: ErrCode,
        /// What went wrong, for humans.
        text: String,
    },
    /// The last line of a connection.
    ///
    /// ```text
    /// BYE QUIT Goodbye.
    /// ```
    Bye {
        /// Why the server is closing, for programs.
        reason: ByeReason,
        /// Why the server is closing, for humans.
        text: String,
    },
    /// The answer to `PING`, echoing its token.
    ///
    /// ```text
    /// PONG
    /// PONG abc def
    /// ```
    Pong {
        /// The rest of the `PING` line, if it had a space after `PING`.
        token: Option<String>,
    },
    /// One room in the answer to `ROOMS`.
    ///
    /// ```text
    /// ROOM sala public 3
    /// ```
    Room {
        /// The room's name as created.
        name: String,
        /// True if joining needs a password.
        private: bool,
        /// How many members are in the room now.
        online: usize,
    },
    /// One member in the answer to `WHO`.
    ///
    /// ```text
    /// USER alice
    /// ```
    User {
        /// The member's name as registered.
        name: String,
    },
    /// One past message, sent on `JOIN` before `OK JOIN`.
    ///
    /// ```text
    /// HISTORY sala 2026-11-30T07:50:09.123Z alice olá, bob!
    /// ```
    History {
        /// The room the message was said in.
        room: String,
        /// When it was said (the same time its `MSG` had).
        time: Timestamp,
        /// Who said it.
        user: String,
        /// What was said.
        text: String,
    },
    /// One line of human-readable information, e.g. the `HELP` text.
    ///
    /// ```text
    /// INFO JOIN <room> [<password>]  enter a room
    /// ```
    Info {
        /// The information.
        text: String,
    },
    /// A message said in the room the receiver is in.
    ///
    /// ```text
    /// MSG sala 2026-11-30T07:50:09.123Z alice olá, bob!
    /// ```
    Msg {
        /// The room it was said in.
        room: String,
        /// When the server received it.
        time: Timestamp,
        /// Who said it.
        user: String,
        /// What was said.
        text: String,
    },
    /// Someone else entered the receiver's room.
    ///
    /// ```text
    /// JOINED sala bob
    /// ```
    Joined {
        /// The room.
        room: String,
        /// Who entered.
        user: String,
    },
    /// Someone else left the receiver's room.
    ///
    /// ```text
    /// LEFT sala bob leave
    /// ```
    Left {
        /// The room.
        room: String,
        /// Who left.
        user: String,
        /// Whether they left on purpose or their connection ended.
        reason: LeftReason,
    },
    /// A direct message to the receiver.
    ///
    /// ```text
    /// DM alice 2026-11-30T07:50:09.123Z are you there?
    /// ```
    Dm {
        /// Who sent it.
        from: String,
        /// When the server received it.
        time: Timestamp,
        /// What was sent.
        text: String,
    },
    /// The receiver was put out of its room; it is in no room now.
    ///
    /// ```text
    /// KICKED sala professor please stop flooding
    /// ```
    Kicked {
        /// The room.
        room: String,
        /// Who did it.
        by: String,
        /// Why (may be empty).
        reason: String,
    },
    /// A room's topic: set just now (an event to every member), or the
    /// current one (a data line on `JOIN` and `TOPIC`).
    ///
    /// ```text
    /// TOPIC sala professor 2026-11-30T07:50:09.123Z Exam review until 10:00
    /// ```
    Topic {
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// When it was set.
        time: Timestamp,
        /// The topic.
        topic: String,
    },
    /// The receiver's room was closed (deleted); it is in no room now.
    ///
    /// ```text
    /// CLOSED sala professor
    /// ```
    Closed {
        /// The room.
        room: String,
        /// Who closed it.
        by: String,
    },
    /// An admin's announcement to every logged-in connection.
    ///
    /// ```text
    /// NOTICE 2026-11-30T07:50:09.123Z professor class ends in five minutes
    /// ```
    Notice {
        /// When it was sent.
        time: Timestamp,
        /// Which admin sent it.
        from: String,
        /// What it says.
        text: String,
    },
    /// One ban in the answer to `BANS`.
    ///
    /// ```text
    /// BANNED sala bob 2026-11-30T08:50:09.123Z professor
    /// BANNED sala eve forever professor
    /// ```
    Banned {
        /// The room.
        room: String,
        /// Who is banned.
        user: String,
        /// When the ban ends; `None` until lifted (`forever`).
        until: Option<Timestamp>,
        /// Who banned them.
        by: String,
    },
}

/// Writes `" " + text`, or nothing when `text` is empty (see the module doc).
fn write_trailing(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.is_empty() {
        Ok(())
    } else {
        write!(f, " {text}")
    }
}

impl fmt::Display for ServerLine {
    /// Writes the wire line, without the LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerLine::Hello {
                version,
                software,
                text,
            } => {
                write!(f, "HELLO {version} {software}")?;
                write_trailing(f, text)
            }
            ServerLine::Ok { command, rest } => {
                write!(f, "OK {command}")?;
                write_trailing(f, rest)
            }
            ServerLine::Err { code, text } => {
                write!(f, "ERR {code}")?;
                write_trailing(f, text)
            }
            ServerLine::Bye { reason, text } => {
                write!(f, "BYE {reason}")?;
                write_trailing(f, text)
            }
            ServerLine::Pong { token: None } => f.write_str("PONG"),
            ServerLine::Pong { token: Some(token) } => write!(f, "PONG {token}"),
            ServerLine::Room {
                name,
                private,
                online,
            } => {
                let kind = if *private { "private" } else { "public" };
                write!(f, "ROOM {name} {kind} {online}")
            }
            ServerLine::User { name } => write!(f, "USER {name}"),
            ServerLine::History {
                room,
                time,
                user,
                text,
            } => {
                write!(f, "HISTORY {room} {time} {user}")?;
                write_trailing(f, text)
            }
            ServerLine::Info { text } => {
                f.write_str("INFO")?;
                write_trailing(f, text)
            }
            ServerLine::Msg {
                room,
                time,
                user,
                text,
            } => {
                write!(f, "MSG {room} {time} {user}")?;
                write_trailing(f, text)
            }
            ServerLine::Joined { room, user } => write!(f, "JOINED {room} {user}"),
            ServerLine::Left { room, user, reason } => write!(f, "LEFT {room} {user} {reason}"),
            ServerLine::Dm { from, time, text } => {
                write!(f, "DM {from} {time}")?;
                write_trailing(f, text)
            }
            ServerLine::Kicked { room, by, reason } => {
                write!(f, "KICKED {room} {by}")?;
                write_trailing(f, reason)
            }
            ServerLine::Topic {
                room,
                by,
                time,
                topic,
            } => {
                write!(f, "TOPIC {room} {by} {time}")?;
                write_trailing(f, topic)
            }
            ServerLine::Closed { room, by } => write!(f, "CLOSED {room} {by}"),
            ServerLine::Notice { time, from, text } => {
                write!(f, "NOTICE {time} {from}")?;
                write_trailing(f, text)
            }
            ServerLine::Banned {
                room,
                user,
                until,
                by,
            } => {
                write!(f, "BANNED {room} {user} ")?;
                match until {
                    Some(until) => write!(f, "{until}")?,
                    None => f.write_str("forever")?,
                }
                write!(f, " {by}")
            }
        }
    }
}

/// Reads space-separated words off the front of a server line.
struct Fields<'a> {
    /// What has not been read yet; `None` once the line is used up.
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Starts reading after the keyword.
    fn new(after_keyword: Option<&'a str>) -> Self {
        Fields {
            rest: after_keyword,
        }
    }

    /// The next word: non-empty, up to the next space or the end.
    fn word(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let (word, after) = match rest.split_once(' ') {
            Some((word, after)) => (word, Some(after)),
            None => (rest, None),
        };
        self.rest = after;
        (!word.is_empty()).then_some(word)
    }

    /// Everything left, as the trailing free text ("" when nothing is left).
    fn text(self) -> String {
        self.rest.unwrap_or("").to_owned()
    }

    /// True if the line has been read completely (no extra words).
    fn is_done(&self) -> bool {
        self.rest.is_none()
    }
}

/// Reads a decimal count made only of ASCII digits (no sign, no spaces).
fn parse_count<T: std::str::FromStr>(word: &str) -> Option<T> {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        word.parse().ok()
    } else {
        None
    }
}

impl ServerLine {
    /// Parses one line (without its LF) as the server writes it. Keywords and
    /// tokens are case-sensitive, words must be non-empty, and lines with a
    /// fixed number of words (`ROOM`, `USER`, `JOINED`, `LEFT`) must have
    /// no extra ones. Returns `None` for anything else.
    ///
    /// # Wire format
    ///
    /// See [`ServerLine`].
    pub fn parse(line: &str) -> Option<ServerLine> {
        let (keyword, after) = match line.split_once(' ') {
            Some((keyword, after)) => (keyword, Some(after)),
            None => (line, None),
        };
        let mut fields = Fields::new(after);
        let parsed = match keyword {
            "HELLO" => ServerLine::Hello {
                version: parse_count(fields.word()?)?,
                software: fields.word()?.to_owned(),
                text: fields.text(),
            },
            "OK" => ServerLine::Ok {
                command: fields.word()?.to_owned(),
                rest: fields.text(),
            },
            "ERR" => ServerLine::Err {
                code: ErrCode::from_token(fields.word()?)?,
                text: fields.text(),
            },
            "BYE" => ServerLine::Bye {
                reason: ByeReason::from_token(fields.word()?)?,
                text: fields.text(),
            },
            "PONG" => ServerLine::Pong {
                token: after.map(str::to_owned),
            },
            "ROOM" => {
                let name = fields.word()?.to_owned();
                let private = match fields.word()? {
                    "public" => false,
                    "private" => true,
                    _ => return None,
                };
                let online = parse_count(fields.word()?)?;
                fields.is_done().then_some(ServerLine::Room {
                    name,
                    private,
                    online,
                })?
            }
            "USER" => {
                let name = fields.word()?.to_owned();
                fields.is_done().then_some(ServerLine::User { name })?
            }
            "HISTORY" => ServerLine::History {
                room: fields.word()?.to_owned(),
                time: Timestamp::parse(fields.word()?)?,
                user: fields.word()?.to_owned(),
                text: fields.text(),
            },
            "INFO" => ServerLine::Info {
                text: fields.text(),
            },
            "MSG" => ServerLine::Msg {
                room: fields.word()?.to_owned(),
                time: Timestamp::parse(fields.word()?)?,
                user: fields.word()?.to_owned(),
                text: fields.text(),
            },
            "JOINED" => {
                let room = fields.word()?.to_owned();
                let user = fields.word()?.to_owned();
                fields
                    .is_done()
                    .then_some(ServerLine::Joined { room, user })?
            }
            "LEFT" => {
                let room = fields.word()?.to_owned();
                let user = fields.word()?.to_owned();
                // The compatibility rule: a reason we do not know (one a
                // later server may add) reads as `leave`.
                let reason = LeftReason::from_token(fields.word()?).unwrap_or(LeftReason::Leave);
                fields
                    .is_done()
                    .then_some(ServerLine::Left { room, user, reason })?
            }
            "DM" => ServerLine::Dm {
                from: fields.word()?.to_owned(),
                time: Timestamp::parse(fields.word()?)?,
                text: fields.text(),
            },
            "KICKED" => ServerLine::Kicked {
                room: fields.word()?.to_owned(),
                by: fields.word()?.to_owned(),
                reason: fields.text(),
            },
            "TOPIC" => ServerLine::Topic {
                room: fields.word()?.to_owned(),
                by: fields.word()?.to_owned(),
                time: Timestamp::parse(fields.word()?)?,
                topic: fields.text(),
            },
            "CLOSED" => {
                let room = fields.word()?.to_owned();
                let by = fields.word()?.to_owned();
                fields
                    .is_done()
                    .then_some(ServerLine::Closed { room, by })?
            }
            "NOTICE" => ServerLine::Notice {
                time: Timestamp::parse(fields.word()?)?,
                from: fields.word()?.to_owned(),
                text: fields.text(),
            },
            "BANNED" => {
                let room = fields.word()?.to_owned();
                let user = fields.word()?.to_owned();
                let until = match fields.word()? {
                    "forever" => None,
                    time => Some(Timestamp::parse(time)?),
                };
                let by = fields.word()?.to_owned();
                fields.is_done().then_some(ServerLine::Banned {
                    room,
                    user,
                    until,
                    by,
                })?
            }
            _ => return None,
        };
        Some(parsed)
    }

    /// True for the lines that end the answer to one client line: `OK`,
    /// `ERR`, `BYE` and `PONG`. Data lines and events are not final.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ServerLine::Ok { .. }
                | ServerLine::Err { .. }
                | ServerLine::Bye { .. }
                | ServerLine::Pong { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T07:50:09.123Z in milliseconds since the epoch.
    const EXAMPLE_MS: i64 = 1_796_025_009_123;

    /// Renders `line`, checks the exact text, and checks it parses back.
    fn round_trip(line: ServerLine, wire: &str) {
        assert_eq!(line.to_string(), wire);
        assert_eq!(ServerLine::parse(wire), Some(line), "{wire:?}");
    }

    /// Every token table is a bijection between variants and wire tokens.
    #[test]
    fn tokens_round_trip() {
        for &code in ErrCode::ALL {
            assert_eq!(ErrCode::from_token(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        for &reason in ByeReason::ALL {
            assert_eq!(ByeReason::from_token(&reason.to_string()), Some(reason));
        }
        for &reason in LeftReason::ALL {
            assert_eq!(LeftReason::from_token(reason.as_str()), Some(reason));
        }
        assert_eq!(ErrCode::ALL.len(), 27);
        assert_eq!(ByeReason::ALL.len(), 8);
    }

    /// Spot-check tokens against the contract's spelling; tokens are case-sensitive.
    #[test]
    fn token_spelling() {
        assert_eq!(ErrCode::BadRoomPassword.to_string(), "BAD_ROOM_PASSWORD");
        assert_eq!(ErrCode::UnknownCommand.as_str(), "UNKNOWN_COMMAND");
        assert_eq!(ErrCode::ServerError.as_str(), "SERVER_ERROR");
        assert_eq!(ByeReason::LoggedInElsewhere.as_str(), "LOGGED_IN_ELSEWHERE");
        assert_eq!(
            ByeReason::TooManyConnections.as_str(),
            "TOO_MANY_CONNECTIONS"
        );
        assert_eq!(ErrCode::TooManyRooms.as_str(), "TOO_MANY_ROOMS");
        assert_eq!(ErrCode::RegistrationClosed.as_str(), "REGISTRATION_CLOSED");
        assert_eq!(ErrCode::MailboxFull.as_str(), "MAILBOX_FULL");
        assert_eq!(ByeReason::Idle.as_str(), "IDLE");
        assert_eq!(LeftReason::Leave.as_str(), "leave");
        assert_eq!(LeftReason::Kick.as_str(), "kick");
        assert_eq!(ErrCode::NotAllowed.as_str(), "NOT_ALLOWED");
        assert_eq!(ErrCode::NotBanned.as_str(), "NOT_BANNED");
        assert_eq!(ErrCode::NotSuspended.as_str(), "NOT_SUSPENDED");
        assert_eq!(ByeReason::Suspended.as_str(), "SUSPENDED");
        assert_eq!(ErrCode::from_token("bad_args"), None);
        assert_eq!(LeftReason::from_token("QUIT"), None);
    }

    /// The epoch and the contract's example instant render exactly.
    #[test]
    fn timestamp_known_instants() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(EXAMPLE_MS).to_string(),
            "2026-11-30T07:50:09.123Z"
        );
        assert_eq!(
            Timestamp::parse("2026-11-30T07:50:09.123Z"),
            Some(Timestamp(EXAMPLE_MS))
        );
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp(946_684_800_000).to_string(),
            "2000-01-01T00:00:00.000Z"
        );
    }

    /// 2024-02-29 exists and is followed by March 1st.
    #[test]
    fn timestamp_leap_day() {
        let leap_day = Timestamp::parse("2024-02-29T12:00:00.000Z").unwrap();
        assert_eq!(leap_day.0, 1_709_208_000_000);
        assert_eq!(leap_day.to_string(), "2024-02-29T12:00:00.000Z");
        assert_eq!(
            Timestamp(leap_day.0 + MS_PER_DAY).to_string(),
            "2024-03-01T12:00:00.000Z"
        );
    }

    /// 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    #[test]
    fn timestamp_year_2100_not_leap() {
        assert_eq!(Timestamp::parse("2100-02-29T00:00:00.000Z"), None);
        let feb28 = Timestamp::parse("2100-02-28T23:59:59.999Z").unwrap();
        assert_eq!(feb28.0, 4_107_542_399_999);
        assert_eq!(
            Timestamp(feb28.0 + 1).to_string(),
            "2100-03-01T00:00:00.000Z"
        );
        assert!(Timestamp::parse("2000-02-29T00:00:00.000Z").is_some());
    }

    /// Display and parse agree over a wide range of instants, one every ~37 hours.
    #[test]
    fn timestamp_display_parse_agree() {
        let step = 37 * 3_600_000 + 12_345;
        let mut ms = 0i64;
        while ms < 8_000_000_000_000 {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
            ms += step;
        }
    }

    /// Parsing is strict: anything but the exact format is refused.
    #[test]
    fn timestamp_parse_is_strict() {
        for bad in [
            "",
            "2026-11-30T07:50:09Z",
            "2026-11-30T07:50:09.12Z",
            "2026-11-30T07:50:09.1234Z",
            "2026-11-30t07:50:09.123Z",
            "2026-11-30T07:50:09.123z",
            "2026-11-30 07:50:09.123Z",
            "2026-11-30T07:50:09.123+00:00",
            "2026-13-30T07:50:09.123Z",
            "2026-00-30T07:50:09.123Z",
            "2026-11-31T07:50:09.123Z",
            "2026-11-00T07:50:09.123Z",
            "2026-11-30T24:00:00.000Z",
            "2026-11-30T07:60:09.123Z",
            "2026-11-30T07:50:60.123Z",
            "2026-11-30T07:50:+9.123Z",
            "+026-11-30T07:50:09.123Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }

    /// Greeting, final replies and their empty-text forms round-trip.
    #[test]
    fn final_replies_round_trip() {
        round_trip(
            ServerLine::Hello {
                version: 1,
                software: "chat-server/0.1.0".into(),
                text: "Type HELP for commands.".into(),
            },
            "HELLO 1 chat-server/0.1.0 Type HELP for commands.",
        );
        round_trip(
            ServerLine::Ok {
                command: "LOGIN".into(),
                rest: "Alice".into(),
            },
            "OK LOGIN Alice",
        );
        round_trip(
            ServerLine::Ok {
                command: "DM".into(),
                rest: "bob stored".into(),
            },
            "OK DM bob stored",
        );
        round_trip(
            ServerLine::Ok {
                command: "HELP".into(),
                rest: String::new(),
            },
            "OK HELP",
        );
        round_trip(
            ServerLine::Err {
                code: ErrCode::LineTooLong,
                text: "Lines are at most 4096 bytes.".into(),
            },
            "ERR LINE_TOO_LONG Lines are at most 4096 bytes.",
        );
        round_trip(
            ServerLine::Bye {
                reason: ByeReason::SlowConsumer,
                text: "You stopped reading.".into(),
            },
            "BYE SLOW_CONSUMER You stopped reading.",
        );
        round_trip(ServerLine::Pong { token: None }, "PONG");
        round_trip(
            ServerLine::Pong {
                token: Some(String::new()),
            },
            "PONG ",
        );
        round_trip(
            ServerLine::Pong {
                token: Some("abc  def\t".into()),
            },
            "PONG abc  def\t",
        );
    }

    /// Data lines round-trip.
    #[test]
    fn data_lines_round_trip() {
        round_trip(
            ServerLine::Room {
                name: "sala".into(),
                private: false,
                online: 3,
            },
            "ROOM sala public 3",
        );
        round_trip(
            ServerLine::Room {
                name: "Secreta".into(),
                private: true,
                online: 0,
            },
            "ROOM Secreta private 0",
        );
        round_trip(
            ServerLine::User {
                name: "alice".into(),
            },
            "USER alice",
        );
        round_trip(
            ServerLine::Info {
                text: "JOIN <room> [<password>]  enter a room".into(),
            },
            "INFO JOIN <room> [<password>]  enter a room",
        );
        round_trip(
            ServerLine::Info {
                text: String::new(),
            },
            "INFO",
        );
    }

    /// Events and history keep spaces and TABs in their text.
    #[test]
    fn events_round_trip_with_spaces_and_tabs() {
        let time = Timestamp(EXAMPLE_MS);
        round_trip(
            ServerLine::History {
                room: "sala".into(),
                time,
                user: "alice".into(),
                text: "  two  spaces\tand a tab ".into(),
            },
            "HISTORY sala 2026-11-30T07:50:09.123Z alice   two  spaces\tand a tab ",
        );
        round_trip(
            ServerLine::Msg {
                room: "sala_publica".into(),
                time,
                user: "alice".into(),
                text: "olá, bob!".into(),
            },
            "MSG sala_publica 2026-11-30T07:50:09.123Z alice olá, bob!",
        );
        round_trip(
            ServerLine::Msg {
                room: "r".into(),
                time,
                user: "u".into(),
                text: "a\tb c".into(),
            },
            "MSG r 2026-11-30T07:50:09.123Z u a\tb c",
        );
        round_trip(
            ServerLine::Joined {
                room: "sala".into(),
                user: "bob".into(),
            },
            "JOINED sala bob",
        );
        round_trip(
            ServerLine::Left {
                room: "sala".into(),
                user: "bob".into(),
                reason: LeftReason::Quit,
            },
            "LEFT sala bob quit",
        );
        round_trip(
            ServerLine::Left {
                room: "sala".into(),
                user: "bob".into(),
                reason: LeftReason::Leave,
            },
            "LEFT sala bob leave",
        );
        round_trip(
            ServerLine::Dm {
                from: "Alice".into(),
                time,
                text: "are you\tthere? ".into(),
            },
            "DM Alice 2026-11-30T07:50:09.123Z are you\tthere? ",
        );
        round_trip(
            ServerLine::Left {
                room: "sala".into(),
                user: "bob".into(),
                reason: LeftReason::Kick,
            },
            "LEFT sala bob kick",
        );
        round_trip(
            ServerLine::Kicked {
                room: "sala".into(),
                by: "professor".into(),
                reason: "stop  flooding".into(),
            },
            "KICKED sala professor stop  flooding",
        );
        round_trip(
            ServerLine::Kicked {
                room: "sala".into(),
                by: "professor".into(),
                reason: String::new(),
            },
            "KICKED sala professor",
        );
        round_trip(
            ServerLine::Topic {
                room: "sala".into(),
                by: "professor".into(),
                time,
                topic: "Exam\treview".into(),
            },
            "TOPIC sala professor 2026-11-30T07:50:09.123Z Exam\treview",
        );
        round_trip(
            ServerLine::Closed {
                room: "sala".into(),
                by: "professor".into(),
            },
            "CLOSED sala professor",
        );
        round_trip(
            ServerLine::Notice {
                time,
                from: "professor".into(),
                text: "class ends in 5 minutes".into(),
            },
            "NOTICE 2026-11-30T07:50:09.123Z professor class ends in 5 minutes",
        );
        round_trip(
            ServerLine::Banned {
                room: "sala".into(),
                user: "bob".into(),
                until: Some(time),
                by: "professor".into(),
            },
            "BANNED sala bob 2026-11-30T07:50:09.123Z professor",
        );
        round_trip(
            ServerLine::Banned {
                room: "sala".into(),
                user: "bob".into(),
                until: None,
                by: "professor".into(),
            },
            "BANNED sala bob forever professor",
        );
    }

    /// The compatibility rule: a `LEFT` reason a later server may add reads
    /// as `leave`.
    #[test]
    fn unknown_left_reason_is_leave() {
        assert_eq!(
            ServerLine::parse("LEFT sala bob banished"),
            Some(ServerLine::Left {
                room: "sala".into(),
                user: "bob".into(),
                reason: LeftReason::Leave,
            })
        );
    }

    /// Malformed or unknown lines are refused rather than half-parsed.
    #[test]
    fn parse_refuses_malformed_lines() {
        for bad in [
            "",
            "ok LOGIN a",
            "OK",
            "OK  x",
            "ERR NOPE text",
            "ERR",
            "BYE bye",
            "ROOM sala open 3",
            "ROOM sala public -3",
            "ROOM sala public +3",
            "ROOM sala public 3 extra",
            "ROOM sala public",
            "USER",
            "USER a b",
            "JOINED sala",
            "JOINED  bob",
            "LEFT sala bob quit now",
            "CLOSED sala",
            "CLOSED sala bob extra",
            "BANNED sala bob never professor",
            "BANNED sala bob forever",
            "BANNED sala bob forever professor extra",
            "NOTICE today professor hi",
            "TOPIC sala professor",
            "MSG sala yesterday alice hi",
            "MSG sala 2026-11-30T07:50:09.123Z",
            "DM alice",
            "HELLO one chat/1 hi",
            "WHAT is this",
        ] {
            assert_eq!(ServerLine::parse(bad), None, "{bad:?}");
        }
    }

    /// Only OK, ERR, BYE and PONG end a reply.
    #[test]
    fn finality() {
        let time = Timestamp(0);
        let finals = [
            ServerLine::Ok {
                command: "WHO".into(),
                rest: "0".into(),
            },
            ServerLine::Err {
                code: ErrCode::BadArgs,
                text: "x".into(),
            },
            ServerLine::Bye {
                reason: ByeReason::Quit,
                text: "x".into(),
            },
            ServerLine::Pong { token: None },
        ];
        assert!(finals.iter().all(ServerLine::is_final));
        let not_final = [
            ServerLine::Hello {
                version: 1,
                software: "s/1".into(),
                text: String::new(),
            },
            ServerLine::Room {
                name: "r".into(),
                private: false,
                online: 1,
            },
            ServerLine::User { name: "u".into() },
            ServerLine::Info { text: "i".into() },
            ServerLine::History {
                room: "r".into(),
                time,
                user: "u".into(),
                text: "t".into(),
            },
            ServerLine::Msg {
                room: "r".into(),
                time,
                user: "u".into(),
                text: "t".into(),
            },
            ServerLine::Joined {
                room: "r".into(),
                user: "u".into(),
            },
            ServerLine::Left {
                room: "r".into(),
                user: "u".into(),
                reason: LeftReason::Leave,
            },
            ServerLine::Dm {
                from: "u".into(),
                time,
                text: "t".into(),
            },
        ];
        assert!(!not_final.iter().any(ServerLine::is_final));
    }
}

//! Lines in, commands out: the client's side of the vocabulary.
//!
//! [`Command::parse`] turns one line (already split off and checked for
//! UTF-8 by [`LineSplitter`](super::LineSplitter)) into a [`Command`], or
//! into a [`ParseError`] that carries the exact `ERR` code to send back. It
//! checks everything that can be checked from the line alone: the keyword,
//! the number of arguments, the name, password and text rules. Whether the
//! user exists, the room is full or the client is logged in is the server's
//! business, not this module's.
//!
//! The rules, in the order they are applied:
//!
//! 1. An empty line is `UNKNOWN_COMMAND`.
//! 2. The keyword is everything up to the first space (or the whole line),
//!    matched without regard to ASCII case. Unknown keywords are
//!    `UNKNOWN_COMMAND`.
//! 3. Arguments are separated by exactly one space. A `<password>` or
//!    `<text>` is the rest of the line after the space that ends the word
//!    before it, so it may contain spaces, even leading ones. An empty word
//!    (two spaces in a row, or a trailing space) is a missing argument:
//!    `BAD_ARGS`.
//! 4. Each argument is then checked by its own rule, giving the code the
//!    contract lists for that command.

use std::fmt;

use super::names::Name;
use super::reply::{ErrCode, ServerLine};
use super::text::{is_valid_password, is_valid_text};

/// The text of every `BAD_CREDENTIALS` error. `LOGIN` must fail the same way
/// whether the name is unknown, syntactically invalid, or the password is
/// wrong, so the parser and the server share this one string.
pub const BAD_CREDENTIALS_TEXT: &str = "Wrong user name or password.";

/// The text of a `NO_SUCH_ROOM` error, shared with the server so that an
/// invalid room name and an unknown one read the same.
pub const NO_SUCH_ROOM_TEXT: &str = "No such room.";

/// The text of a `NO_SUCH_USER` error, shared with the server so that an
/// invalid user name and an unknown one read the same.
pub const NO_SUCH_USER_TEXT: &str = "No such user.";

/// Human text for a name that breaks the name rules.
const BAD_NAME_TEXT: &str = "Names are 1 to 32 characters, each one of A-Z a-z 0-9 _ - or a dot.";

/// Human text for a password that breaks the password rules.
const BAD_PASSWORD_TEXT: &str = "Passwords are 1 to 128 bytes with no control characters.";

/// Human text for a message that breaks the text rules.
const BAD_TEXT_TEXT: &str = "Text must not be blank or contain control characters (TAB is fine).";

/// One line from a client, understood.
///
/// # Wire format
///
/// ```text
/// REGISTER <user> <password>
/// LOGIN <user> <password>
/// ROOMS
/// CREATE <room> [<password>]
/// JOIN <room> [<password>]
/// LEAVE
/// SAY <text>
/// WHO
/// DM <user> <text>
/// PING [<token>]
/// HELP
/// QUIT
/// KICK <user> [<reason>]
/// BAN <user> [<minutes>] [<reason>]
/// UNBAN <user>
/// BANS
/// TOPIC [<topic>]
/// CLOSE <room>
/// SUSPEND <user> [<minutes>] [<reason>]
/// UNSUSPEND <user>
/// ANNOUNCE <text>
/// ```
///
/// `Debug` and `Display` show passwords: log [`Command::keyword`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create an account.
    Register {
        /// The new account's name, as it will be shown.
        user: Name,
        /// Its password, already checked against the password rules.
        password: String,
    },
    /// Log in to an existing account.
    Login {
        /// The account's name, in any case.
        user: Name,
        /// The password to check, already checked against the password rules.
        password: String,
    },
    /// List the rooms.
    Rooms,
    /// Create a room: public without a password, private with one.
    Create {
        /// The new room's name, as it will be shown.
        room: Name,
        /// The room's password, already checked against the password rules.
        password: Option<String>,
    },
    /// Enter a room, leaving the current one.
    Join {
        /// The room's name, in any case.
        room: Name,
        /// The password given, exactly as typed and not checked: a password
        /// that breaks the rules just cannot match (`BAD_ROOM_PASSWORD`).
        password: Option<String>,
    },
    /// Leave the current room.
    Leave,
    /// Say something in the current room.
    Say {
        /// The message, already checked against the text rules.
        text: String,
    },
    /// List the members of the current room.
    Who,
    /// Send a direct message.
    Dm {
        /// The recipient, in any case.
        user: Name,
        /// The message, already checked against the text rules.
        text: String,
    },
    /// Check that the server is alive; it echoes the token.
    Ping {
        /// The rest of the line after `PING `, anything at all; `None` when
        /// the line is just `PING`.
        token: Option<String>,
    },
    /// Ask for the list of commands.
    Help,
    /// End the session.
    Quit,
    /// Put a member out of the sender's room.
    Kick {
        /// The member, in any case.
        user: Name,
        /// Why, already checked against the text rules.
        reason: Option<String>,
    },
    /// Keep a user out of the sender's room, for a while or until lifted.
    Ban {
        /// The account, in any case.
        user: Name,
        /// How long, 1 to [`MAX_MINUTES`]; `None` until lifted.
        minutes: Option<u32>,
        /// Why, already checked against the text rules.
        reason: Option<String>,
    },
    /// Lift a ban in the sender's room.
    Unban {
        /// The account, in any case.
        user: Name,
    },
    /// List the bans of the sender's room.
    Bans,
    /// Read the topic of the sender's room (`None`), or set it.
    Topic {
        /// The new topic, already checked against the text rules.
        topic: Option<String>,
    },
    /// Delete a room with its history, bans and topic.
    Close {
        /// The room, in any case.
        room: Name,
    },
    /// Keep an account from logging in, for a while or until lifted.
    Suspend {
        /// The account, in any case.
        user: Name,
        /// How long, 1 to [`MAX_MINUTES`]; `None` until lifted.
        minutes: Option<u32>,
        /// Why, already checked against the text rules.
        reason: Option<String>,
    },
    /// Lift a suspension.
    Unsuspend {
        /// The account, in any case.
        user: Name,
    },
    /// Say something to every logged-in connection.
    Announce {
        /// The notice, already checked against the text rules.
        text: String,
    },
}

/// The longest ban or suspension with a duration, in minutes: a year.
pub const MAX_MINUTES: u32 = 525_600;

/// Why a line is not a valid command: the `ERR` reply to send.
///
/// # Wire format
///
/// ```text
/// ERR <code> <message>
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The machine-readable code, e.g. [`ErrCode::BadArgs`].
    pub code: ErrCode,
    /// The human text for `ERR <CODE> <message>`.
    pub message: &'static str,
}

impl ParseError {
    /// Shorthand used by the parser.
    fn new(code: ErrCode, message: &'static str) -> Self {
        ParseError { code, message }
    }
}

impl fmt::Display for ParseError {
    /// Writes `<CODE> <message>`, e.g. for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for ServerLine {
    /// The `ERR` line that answers an unparsable command.
    fn from(err: ParseError) -> ServerLine {
        ServerLine::Err {
            code: err.code,
            text: err.message.to_owned(),
        }
    }
}

/// Splits at the first space: `("word", Some("rest"))`, or `(s, None)` when
/// there is no space at all. `rest` may be empty (a trailing space).
fn split_word(s: &str) -> (&str, Option<&str>) {
    match s.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (s, None),
    }
}

/// A `BAD_ARGS` error with the command's usage as its message.
fn bad_args(usage: &'static str) -> ParseError {
    ParseError::new(ErrCode::BadArgs, usage)
}

/// Splits `<word> <rest>` where both are required and non-empty.
///
/// # Errors
///
/// `BAD_ARGS` with `usage` if the word or the rest is missing or empty.
fn word_and_rest<'a>(
    args: Option<&'a str>,
    usage: &'static str,
) -> Result<(&'a str, &'a str), ParseError> {
    let (word, rest) = split_word(args.ok_or(bad_args(usage))?);
    match rest {
        Some(rest) if !word.is_empty() && !rest.is_empty() => Ok((word, rest)),
        _ => Err(bad_args(usage)),
    }
}

/// Splits `<word> [<rest>]` where the word is required and non-empty; a
/// present `rest` is returned as is, even when empty.
///
/// # Errors
///
/// `BAD_ARGS` with `usage` if the word is missing or empty.
fn word_and_optional_rest<'a>(
    args: Option<&'a str>,
    usage: &'static str,
) -> Result<(&'a str, Option<&'a str>), ParseError> {
    let (word, rest) = split_word(args.ok_or(bad_args(usage))?);
    if word.is_empty() {
        return Err(bad_args(usage));
    }
    Ok((word, rest))
}

/// Accepts a command that takes no arguments.
///
/// # Errors
///
/// `BAD_ARGS` with `usage` if anything follows the keyword, even one space.
fn no_args(
    args: Option<&str>,
    command: Command,
    usage: &'static str,
) -> Result<Command, ParseError> {
    match args {
        None => Ok(command),
        Some(_) => Err(bad_args(usage)),
    }
}

/// Reads the `<user>` of a moderation command: a name that breaks the rules
/// cannot belong to anybody (`NO_SUCH_USER`, as for `DM`).
fn target(word: &str) -> Result<Name, ParseError> {
    Name::parse(word).map_err(|_| ParseError::new(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT))
}

/// Checks an optional `<reason>`: present means non-empty and within the
/// text rules. A bad reason is `BAD_ARGS`, the code the contract lists for
/// `KICK`, `BAN` and `SUSPEND` (it has no `BAD_TEXT` for them).
fn reason(rest: Option<&str>, usage: &'static str) -> Result<Option<String>, ParseError> {
    match rest {
        None => Ok(None),
        Some(text) if !text.is_empty() && is_valid_text(text) => Ok(Some(text.to_owned())),
        Some(_) => Err(bad_args(usage)),
    }
}

/// Reads `<user> [<minutes>] [<reason>]` (`BAN`, `SUSPEND`). The word after
/// the user is the duration if it is all ASCII digits, and must then be
/// 1 to [`MAX_MINUTES`]; any other word starts the reason.
fn timed(
    args: Option<&str>,
    usage: &'static str,
) -> Result<(Name, Option<u32>, Option<String>), ParseError> {
    let (user, rest) = word_and_optional_rest(args, usage)?;
    let user = target(user)?;
    let Some(rest) = rest else {
        return Ok((user, None, None));
    };
    let (word, after) = split_word(rest);
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((user, None, reason(Some(rest), usage)?));
    }
    let minutes = word
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=MAX_MINUTES).contains(m))
        .ok_or(bad_args(usage))?;
    Ok((user, Some(minutes), reason(after, usage)?))
}

/// Reads a command whose only argument is one `<user>`.
fn one_user(args: Option<&str>, usage: &'static str) -> Result<Name, ParseError> {
    match word_and_optional_rest(args, usage)? {
        (user, None) => target(user),
        (_, Some(_)) => Err(bad_args(usage)),
    }
}

impl Command {
    /// Parses one line, without its LF.
    ///
    /// # Wire format
    ///
    /// ```text
    /// <KEYWORD>[ <arguments>]          keyword in any ASCII case
    /// ```
    ///
    /// See [`Command`] for each command's arguments.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] with the code the contract lists for the command:
    ///
    /// | problem | code |
    /// |---|---|
    /// | empty line, unknown keyword | `UNKNOWN_COMMAND` |
    /// | missing, extra or empty argument | `BAD_ARGS` |
    /// | bad name in `REGISTER`, `CREATE` | `BAD_NAME` |
    /// | bad password in `REGISTER`, `CREATE` | `BAD_PASSWORD` |
    /// | bad name or password in `LOGIN` | `BAD_CREDENTIALS` ([`BAD_CREDENTIALS_TEXT`]) |
    /// | bad name in `JOIN` | `NO_SUCH_ROOM` |
    /// | bad name in `DM` | `NO_SUCH_USER` |
    /// | bad text in `SAY`, `DM`, `TOPIC`, `ANNOUNCE` | `BAD_TEXT` |
    /// | bad name in `KICK`, `BAN`, `UNBAN`, `SUSPEND`, `UNSUSPEND` | `NO_SUCH_USER` |
    /// | bad name in `CLOSE` | `NO_SUCH_ROOM` |
    /// | bad `<minutes>` (0, over [`MAX_MINUTES`]) or bad `<reason>` | `BAD_ARGS` |
    ///
    /// ```
    /// # use chat::protocol::{Command, ErrCode};
    /// assert_eq!(Command::parse("join Sala"), Ok(Command::Join {
    ///     room: "sala".parse().unwrap(),
    ///     password: None,
    /// }));
    /// assert_eq!(Command::parse("WHO ").unwrap_err().code, ErrCode::BadArgs);
    /// ```
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        use ErrCode::*;

        if line.is_empty() {
            return Err(ParseError::new(
                UnknownCommand,
                "Empty line. Type HELP for the list of commands.",
            ));
        }
        let (keyword, args) = split_word(line);
        // ASCII-only case folding: "joın" (dotless i) is not JOIN.
        match keyword.to_ascii_uppercase().as_str() {
            "REGISTER" => {
                const USAGE: &str = "Usage: REGISTER <user> <password>";
                let (user, password) = word_and_rest(args, USAGE)?;
                let user =
                    Name::parse(user).map_err(|_| ParseError::new(BadName, BAD_NAME_TEXT))?;
                if !is_valid_password(password) {
                    return Err(ParseError::new(BadPassword, BAD_PASSWORD_TEXT));
                }
                Ok(Command::Register {
                    user,
                    password: password.to_owned(),
                })
            }
            "LOGIN" => {
                const USAGE: &str = "Usage: LOGIN <user> <password>";
                let (user, password) = word_and_rest(args, USAGE)?;
                // An invalid name or password cannot belong to an account.
                // Say exactly what a wrong password says, so that LOGIN never
                // teaches anything about which accounts exist.
                let denied = ParseError::new(BadCredentials, BAD_CREDENTIALS_TEXT);
                let user = Name::parse(user).map_err(|_| denied)?;
                if !is_valid_password(password) {
                    return Err(denied);
                }
                Ok(Command::Login {
                    user,
                    password: password.to_owned(),
                })
            }
            "ROOMS" => no_args(args, Command::Rooms, "Usage: ROOMS (no arguments)"),
            "CREATE" => {
                const USAGE: &str = "Usage: CREATE <room> [<password>]";
                let (room, password) = word_and_optional_rest(args, USAGE)?;
                let room =
                    Name::parse(room).map_err(|_| ParseError::new(BadName, BAD_NAME_TEXT))?;
                // "CREATE sala " has an empty password: refuse it rather than
                // quietly creating a public room the user meant to be private.
                if password.is_some_and(|p| !is_valid_password(p)) {
                    return Err(ParseError::new(BadPassword, BAD_PASSWORD_TEXT));
                }
                Ok(Command::Create {
                    room,
                    password: password.map(str::to_owned),
                })
            }
            "JOIN" => {
                const USAGE: &str = "Usage: JOIN <room> [<password>]";
                let (room, password) = word_and_optional_rest(args, USAGE)?;
                // No room can have an invalid name, so it does not exist.
                let room = Name::parse(room)
                    .map_err(|_| ParseError::new(NoSuchRoom, NO_SUCH_ROOM_TEXT))?;
                // "JOIN sala " is a word followed by nothing: a missing
                // argument, like two spaces in a row, not an empty password.
                if password == Some("") {
                    return Err(bad_args(USAGE));
                }
                Ok(Command::Join {
                    room,
                    password: password.map(str::to_owned),
                })
            }
            "LEAVE" => no_args(args, Command::Leave, "Usage: LEAVE (no arguments)"),
            "SAY" => {
                let text = args
                    .filter(|t| !t.is_empty())
                    .ok_or(bad_args("Usage: SAY <text>"))?;
                if !is_valid_text(text) {
                    return Err(ParseError::new(BadText, BAD_TEXT_TEXT));
                }
                Ok(Command::Say {
                    text: text.to_owned(),
                })
            }
            "WHO" => no_args(args, Command::Who, "Usage: WHO (no arguments)"),
            "DM" => {
                let (user, text) = word_and_rest(args, "Usage: DM <user> <text>")?;
                // No user can have an invalid name, so they do not exist.
                let user = Name::parse(user)
                    .map_err(|_| ParseError::new(NoSuchUser, NO_SUCH_USER_TEXT))?;
                if !is_valid_text(text) {
                    return Err(ParseError::new(BadText, BAD_TEXT_TEXT));
                }
                Ok(Command::Dm {
                    user,
                    text: text.to_owned(),
                })
            }
            "PING" => Ok(Command::Ping {
                token: args.map(str::to_owned),
            }),
            "HELP" => no_args(args, Command::Help, "Usage: HELP (no arguments)"),
            "QUIT" => no_args(args, Command::Quit, "Usage: QUIT (no arguments)"),
            "KICK" => {
                const USAGE: &str = "Usage: KICK <user> [<reason>]";
                let (user, rest) = word_and_optional_rest(args, USAGE)?;
                Ok(Command::Kick {
                    user: target(user)?,
                    reason: reason(rest, USAGE)?,
                })
            }
            "BAN" => {
                let (user, minutes, reason) =
                    timed(args, "Usage: BAN <user> [<minutes>] [<reason>]")?;
                Ok(Command::Ban {
                    user,
                    minutes,
                    reason,
                })
            }
            "UNBAN" => Ok(Command::Unban {
                user: one_user(args, "Usage: UNBAN <user>")?,
            }),
            "BANS" => no_args(args, Command::Bans, "Usage: BANS (no arguments)"),
            "TOPIC" => match args {
                None => Ok(Command::Topic { topic: None }),
                Some("") => Err(bad_args("Usage: TOPIC [<topic>]")),
                Some(topic) if is_valid_text(topic) => Ok(Command::Topic {
                    topic: Some(topic.to_owned()),
                }),
                Some(_) => Err(ParseError::new(BadText, BAD_TEXT_TEXT)),
            },
            "CLOSE" => {
                const USAGE: &str = "Usage: CLOSE <room>";
                match word_and_optional_rest(args, USAGE)? {
                    (room, None) => Ok(Command::Close {
                        room: Name::parse(room)
                            .map_err(|_| ParseError::new(NoSuchRoom, NO_SUCH_ROOM_TEXT))?,
                    }),
                    (_, Some(_)) => Err(bad_args(USAGE)),
                }
            }
            "SUSPEND" => {
                let (user, minutes, reason) =
                    timed(args, "Usage: SUSPEND <user> [<minutes>] [<reason>]")?;
                Ok(Command::Suspend {
                    user,
                    minutes,
                    reason,
                })
            }
            "UNSUSPEND" => Ok(Command::Unsuspend {
                user: one_user(args, "Usage: UNSUSPEND <user>")?,
            }),
            "ANNOUNCE" => {
                let text = args
                    .filter(|t| !t.is_empty())
                    .ok_or(bad_args("Usage: ANNOUNCE <text>"))?;
                if !is_valid_text(text) {
                    return Err(ParseError::new(BadText, BAD_TEXT_TEXT));
                }
                Ok(Command::Announce {
                    text: text.to_owned(),
                })
            }
            _ => Err(ParseError::new(
                UnknownCommand,
                "Unknown command. Type HELP for the list of commands.",
            )),
        }
    }

    /// The command's wire keyword in uppercase, e.g. `"JOIN"`: what `OK`
    /// repeats, and what is safe to log (it never contains a password).
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::Register { .. } => "REGISTER",
            Command::Login { .. } => "LOGIN",
            Command::Rooms => "ROOMS",
            Command::Create { .. } => "CREATE",
            Command::Join { .. } => "JOIN",
            Command::Leave => "LEAVE",
            Command::Say { .. } => "SAY",
            Command::Who => "WHO",
            Command::Dm { .. } => "DM",
            Command::Ping { .. } => "PING",
            Command::Help => "HELP",
            Command::Quit => "QUIT",
            Command::Kick { .. } => "KICK",
            Command::Ban { .. } => "BAN",
            Command::Unban { .. } => "UNBAN",
            Command::Bans => "BANS",
            Command::Topic { .. } => "TOPIC",
            Command::Close { .. } => "CLOSE",
            Command::Suspend { .. } => "SUSPEND",
            Command::Unsuspend { .. } => "UNSUSPEND",
            Command::Announce { .. } => "ANNOUNCE",
        }
    }
}

impl fmt::Display for Command {
    /// Writes the command as a client would send it, without the LF, e.g.
    /// `JOIN sala secret`. Names are written as given. For every command
    /// that `parse` returns, parsing this text gives the same command back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())?;
        match self {
            Command::Register { user, password } | Command::Login { user, password } => {
                write!(f, " {user} {password}")
            }
            Command::Create { room, password } | Command::Join { room, password } => {
                write!(f, " {room}")?;
                match password {
                    Some(password) => write!(f, " {password}"),
                    None => Ok(()),
                }
            }
            Command::Say { text } | Command::Announce { text } => write!(f, " {text}"),
            Command::Dm { user, text } => write!(f, " {user} {text}"),
            Command::Kick { user, reason } => {
                write!(f, " {user}")?;
                write_optional(f, reason.as_deref())
            }
            Command::Ban {
                user,
                minutes,
                reason,
            }
            | Command::Suspend {
                user,
                minutes,
                reason,
            } => {
                write!(f, " {user}")?;
                if let Some(minutes) = minutes {
                    write!(f, " {minutes}")?;
                }
                write_optional(f, reason.as_deref())
            }
            Command::Unban { user } | Command::Unsuspend { user } => write!(f, " {user}"),
            Command::Topic { topic } => write_optional(f, topic.as_deref()),
            Command::Close { room } => write!(f, " {room}"),
            Command::Ping { token: Some(token) } => write!(f, " {token}"),
            Command::Ping { token: None }
            | Command::Rooms
            | Command::Leave
            | Command::Who
            | Command::Help
            | Command::Quit
            | Command::Bans => Ok(()),
        }
    }
}

/// Writes `" " + text` if there is a text.
fn write_optional(f: &mut fmt::Formatter<'_>, text: Option<&str>) -> fmt::Result {
    match text {
        Some(text) => write!(f, " {text}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrCode::*;

    /// Shorthand for a valid name.
    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    /// Asserts that `line` fails with `code`, and returns the message.
    fn fails(line: &str, code: ErrCode) -> &'static str {
        match Command::parse(line) {
            Err(err) => {
                assert_eq!(err.code, code, "{line:?}: {}", err.message);
                err.message
            }
            Ok(cmd) => panic!("{line:?} parsed as {cmd:?}, expected ERR {code}"),
        }
    }

    /// Empty lines and unknown keywords are UNKNOWN_COMMAND.
    #[test]
    fn empty_and_unknown() {
        assert_eq!(
            fails("", UnknownCommand),
            "Empty line. Type HELP for the list of commands."
        );
        fails("HELLO", UnknownCommand);
        fails(" JOIN sala", UnknownCommand);
        fails("JOIN\tsala", UnknownCommand);
        fails("joın sala", UnknownCommand); // dotless i is not ASCII I
        fails("SAYhello", UnknownCommand);
    }

    /// Keywords match in any ASCII case.
    #[test]
    fn keyword_case_insensitive() {
        for kw in ["who", "WHO", "Who", "wHo"] {
            assert_eq!(Command::parse(kw), Ok(Command::Who));
        }
        assert_eq!(
            Command::parse("jOiN sala"),
            Ok(Command::Join {
                room: name("sala"),
                password: None
            })
        );
        assert_eq!(Command::parse("quit"), Ok(Command::Quit));
    }

    /// Commands without arguments refuse anything after the keyword.
    #[test]
    fn no_argument_commands() {
        let cases = [
            ("ROOMS", Command::Rooms),
            ("LEAVE", Command::Leave),
            ("WHO", Command::Who),
            ("HELP", Command::Help),
            ("QUIT", Command::Quit),
        ];
        for (kw, cmd) in cases {
            assert_eq!(Command::parse(kw), Ok(cmd));
            fails(&format!("{kw} "), BadArgs);
            fails(&format!("{kw} now"), BadArgs);
        }
    }

    /// REGISTER: structure, then name, then password; passwords keep spaces.
    #[test]
    fn register() {
        assert_eq!(
            Command::parse("REGISTER Alice my secret "),
            Ok(Command::Register {
                user: name("Alice"),
                password: "my secret ".into()
            })
        );
        assert_eq!(
            Command::parse("REGISTER alice  lead"),
            Ok(Command::Register {
                user: name("alice"),
                password: " lead".into()
            })
        );
        for line in [
            "REGISTER",
            "REGISTER ",
            "REGISTER alice",
            "REGISTER alice ",
            "REGISTER  pw",
        ] {
            fails(line, BadArgs);
        }
        fails("REGISTER al/ice pw", BadName);
        fails(&format!("REGISTER {} pw", "a".repeat(33)), BadName);
        fails("REGISTER alice pw\tx", BadPassword);
        fails(&format!("REGISTER alice {}", "p".repeat(129)), BadPassword);
        assert!(Command::parse(&format!("REGISTER alice {}", "p".repeat(128))).is_ok());
    }

    /// LOGIN: bad names and passwords look exactly like wrong credentials.
    #[test]
    fn login() {
        assert_eq!(
            Command::parse("login bob 123"),
            Ok(Command::Login {
                user: name("bob"),
                password: "123".into()
            })
        );
        for line in ["LOGIN", "LOGIN bob", "LOGIN bob ", "LOGIN  123"] {
            fails(line, BadArgs);
        }
        for line in [
            "LOGIN b@d 123".to_owned(),
            format!("LOGIN {} 123", "a".repeat(33)),
            "LOGIN bob 1\u{7}3".to_owned(),
            format!("LOGIN bob {}", "p".repeat(129)),
        ] {
            assert_eq!(fails(&line, BadCredentials), BAD_CREDENTIALS_TEXT);
        }
    }

    /// CREATE: optional password, which must be valid when present.
    #[test]
    fn create() {
        assert_eq!(
            Command::parse("CREATE sala"),
            Ok(Command::Create {
                room: name("sala"),
                password: None
            })
        );
        assert_eq!(
            Command::parse("create Secreta abre te"),
            Ok(Command::Create {
                room: name("Secreta"),
                password: Some("abre te".into())
            })
        );
        fails("CREATE", BadArgs);
        fails("CREATE ", BadArgs);
        fails("CREATE  pw", BadArgs);
        fails("CREATE sala!", BadName);
        fails("CREATE sala ", BadPassword);
        fails("CREATE sala a\tb", BadPassword);
    }

    /// JOIN: invalid names are NO_SUCH_ROOM; any password passes through as is.
    #[test]
    fn join() {
        assert_eq!(
            Command::parse("JOIN sala x\ty"),
            Ok(Command::Join {
                room: name("sala"),
                password: Some("x\ty".into())
            })
        );
        fails("JOIN sala ", BadArgs);
        fails("JOIN", BadArgs);
        fails("JOIN ", BadArgs);
        fails("JOIN  pw", BadArgs);
        assert_eq!(fails("JOIN sala#1", NoSuchRoom), NO_SUCH_ROOM_TEXT);
    }

    /// SAY: the text is the whole rest of the line and must be valid text.
    #[test]
    fn say() {
        assert_eq!(
            Command::parse("SAY  olá,\tbob! "),
            Ok(Command::Say {
                text: " olá,\tbob! ".into()
            })
        );
        fails("SAY", BadArgs);
        fails("SAY ", BadArgs);
        fails("SAY  ", BadText);
        fails("SAY \t", BadText);
        fails("SAY hi\u{1b}[2J", BadText);
        fails("SAY hi\u{9b}", BadText);
    }

    /// DM: user and text required; invalid user is NO_SUCH_USER.
    #[test]
    fn dm() {
        assert_eq!(
            Command::parse("dm Bob are you  there?"),
            Ok(Command::Dm {
                user: name("bob"),
                text: "are you  there?".into()
            })
        );
        for line in ["DM", "DM ", "DM bob", "DM bob ", "DM  hi"] {
            fails(line, BadArgs);
        }
        assert_eq!(fails("DM b*b hi", NoSuchUser), NO_SUCH_USER_TEXT);
        fails("DM bob  ", BadText);
        fails("DM bob hi\u{0}", BadText);
    }

    /// PING never fails; its token is the raw rest of the line.
    #[test]
    fn ping() {
        assert_eq!(Command::parse("PING"), Ok(Command::Ping { token: None }));
        assert_eq!(
            Command::parse("ping "),
            Ok(Command::Ping {
                token: Some(String::new())
            })
        );
        assert_eq!(
            Command::parse("PING a  b\u{7}"),
            Ok(Command::Ping {
                token: Some("a  b\u{7}".into())
            })
        );
    }

    /// Display renders each variant as a wire line that parses back to it.
    #[test]
    fn display_round_trip() {
        let cases = [
            (
                Command::Register {
                    user: name("Alice"),
                    password: "p w".into(),
                },
                "REGISTER Alice p w",
            ),
            (
                Command::Login {
                    user: name("alice"),
                    password: " x".into(),
                },
                "LOGIN alice  x",
            ),
            (Command::Rooms, "ROOMS"),
            (
                Command::Create {
                    room: name("sala"),
                    password: None,
                },
                "CREATE sala",
            ),
            (
                Command::Create {
                    room: name("Sala"),
                    password: Some("se cret".into()),
                },
                "CREATE Sala se cret",
            ),
            (
                Command::Join {
                    room: name("sala"),
                    password: None,
                },
                "JOIN sala",
            ),
            (
                Command::Join {
                    room: name("sala"),
                    password: Some("x y".into()),
                },
                "JOIN sala x y",
            ),
            (Command::Leave, "LEAVE"),
            (
                Command::Say {
                    text: "olá\tbob ".into(),
                },
                "SAY olá\tbob ",
            ),
            (Command::Who, "WHO"),
            (
                Command::Dm {
                    user: name("Bob"),
                    text: "hi there".into(),
                },
                "DM Bob hi there",
            ),
            (Command::Ping { token: None }, "PING"),
            (
                Command::Ping {
                    token: Some("t 1".into()),
                },
                "PING t 1",
            ),
            (Command::Help, "HELP"),
            (Command::Quit, "QUIT"),
            (
                Command::Kick {
                    user: name("Bob"),
                    reason: Some("be nice".into()),
                },
                "KICK Bob be nice",
            ),
            (
                Command::Ban {
                    user: name("bob"),
                    minutes: Some(30),
                    reason: Some("spam".into()),
                },
                "BAN bob 30 spam",
            ),
            (
                Command::Suspend {
                    user: name("bob"),
                    minutes: None,
                    reason: None,
                },
                "SUSPEND bob",
            ),
            (Command::Unban { user: name("bob") }, "UNBAN bob"),
            (Command::Unsuspend { user: name("bob") }, "UNSUSPEND bob"),
            (Command::Bans, "BANS"),
            (Command::Topic { topic: None }, "TOPIC"),
            (
                Command::Topic {
                    topic: Some("a b".into()),
                },
                "TOPIC a b",
            ),
            (Command::Close { room: name("Sala") }, "CLOSE Sala"),
            (
                Command::Announce {
                    text: "hi all".into(),
                },
                "ANNOUNCE hi all",
            ),
        ];
        for (cmd, wire) in cases {
            assert_eq!(cmd.to_string(), wire);
            let back = Command::parse(wire).unwrap();
            assert_eq!(back, cmd);
            // Names compare without case, so check the spelling survived too.
            assert_eq!(back.to_string(), wire);
        }
    }

    /// keyword() is the uppercase wire keyword, and never shows a password.
    #[test]
    fn keywords() {
        let login = Command::parse("login bob hunter2").unwrap();
        assert_eq!(login.keyword(), "LOGIN");
        assert!(!login.keyword().contains("hunter2"));
        assert_eq!(Command::parse("dm a b").unwrap().keyword(), "DM");
        assert_eq!(Command::parse("ping").unwrap().keyword(), "PING");
    }

    /// The moderation commands: arguments, durations and reasons.
    #[test]
    fn moderation() {
        assert_eq!(
            Command::parse("kick Bob  flooding"),
            Ok(Command::Kick {
                user: name("Bob"),
                reason: Some(" flooding".into())
            })
        );
        assert_eq!(
            Command::parse("KICK bob"),
            Ok(Command::Kick {
                user: name("bob"),
                reason: None
            })
        );
        fails("KICK", BadArgs);
        fails("KICK bob ", BadArgs);
        fails("KICK bob bad\u{1}reason", BadArgs);
        fails("KICK b@d", NoSuchUser);

        assert_eq!(
            Command::parse("BAN bob 10 spam"),
            Ok(Command::Ban {
                user: name("bob"),
                minutes: Some(10),
                reason: Some("spam".into())
            })
        );
        assert_eq!(
            Command::parse("BAN bob 525600"),
            Ok(Command::Ban {
                user: name("bob"),
                minutes: Some(MAX_MINUTES),
                reason: None
            })
        );
        assert_eq!(
            Command::parse("BAN bob 2nd warning"),
            Ok(Command::Ban {
                user: name("bob"),
                minutes: None,
                reason: Some("2nd warning".into())
            })
        );
        fails("BAN bob 0", BadArgs);
        fails("BAN bob 525601", BadArgs);
        fails("BAN bob 99999999999999999999", BadArgs);
        fails("BAN bob 10 ", BadArgs);
        fails("BAN", BadArgs);
        assert_eq!(
            Command::parse("suspend eve 1"),
            Ok(Command::Suspend {
                user: name("eve"),
                minutes: Some(1),
                reason: None
            })
        );

        assert_eq!(
            Command::parse("UNBAN bob"),
            Ok(Command::Unban { user: name("bob") })
        );
        fails("UNBAN bob x", BadArgs);
        fails("UNSUSPEND", BadArgs);
        assert_eq!(Command::parse("bans"), Ok(Command::Bans));
        fails("BANS x", BadArgs);

        assert_eq!(Command::parse("TOPIC"), Ok(Command::Topic { topic: None }));
        assert_eq!(
            Command::parse("TOPIC Exam at 10"),
            Ok(Command::Topic {
                topic: Some("Exam at 10".into())
            })
        );
        fails("TOPIC ", BadArgs);
        fails("TOPIC a\u{7}", BadText);

        assert_eq!(
            Command::parse("CLOSE Sala"),
            Ok(Command::Close { room: name("Sala") })
        );
        fails("CLOSE", BadArgs);
        fails("CLOSE a b", BadArgs);
        fails("CLOSE b@d", NoSuchRoom);

        assert_eq!(
            Command::parse("ANNOUNCE class ends in 5 minutes"),
            Ok(Command::Announce {
                text: "class ends in 5 minutes".into()
            })
        );
        fails("ANNOUNCE", BadArgs);
        fails("ANNOUNCE ", BadArgs);
        fails("ANNOUNCE \u{1b}[2J", BadText);
    }

    /// A ParseError becomes the matching ERR line.
    #[test]
    fn parse_error_to_err_line() {
        let err = Command::parse("SAY").unwrap_err();
        let line = ServerLine::from(err);
        assert_eq!(line.to_string(), "ERR BAD_ARGS Usage: SAY <text>");
    }
}

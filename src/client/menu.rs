//! The client's behaviour as a pure state machine: what the user types and
//! what the server sends go in, protocol lines to send and text to show come
//! out. No sockets, no terminal, no clock: the unit tests at the bottom walk
//! through the whole original course session with plain strings.
//!
//! # The flow (the original Python client's, option for option)
//!
//! ```text
//!  start menu ──1──▶ "user password" ──REGISTER──▶ start menu
//!             ──2──▶ "user password" ──LOGIN────▶ main menu
//!             ──3──▶ QUIT
//!  main menu  ──1──▶ ROOMS (list)                 ──▶ main menu
//!             ──2──▶ "name n" | "name s password" ──CREATE──▶ main menu
//!             ──3──▶ "name [password]" ──JOIN──▶ chat
//!             ──4──▶ QUIT
//!             ──5──▶ LEAVE ──▶ main menu          (only while in a room)
//!             ──6──▶ chat                         (only while in a room)
//!  chat       text ──SAY──   /menu ──▶ main menu (still in the room)
//!             /leave ──LEAVE──▶ main menu   /who   /msg user text   /help   /quit
//!             moderation: /kick /ban /unban /bans /topic /close /suspend
//!             /unsuspend /announce (also at the main menu, as every /command)
//!  KICKED or CLOSED of the user's room ──▶ main menu (in no room)
//! ```
//!
//! # Which reply belongs to which request
//!
//! The server answers every line with exactly one final reply, in order
//! (PROTOCOL.md, "Session"). So the menu keeps a queue of `Pending`
//! requests: each `OK`/`ERR` answers the oldest one. Data lines (`ROOM`,
//! `USER`, `HISTORY`, `BANNED`, `INFO`, and `TOPIC` while a `JOIN` or a
//! `TOPIC` is pending) are collected into the oldest pending request, and
//! events (`MSG`, `JOINED`, `LEFT`, `DM`, `KICKED`, `CLOSED`, `NOTICE`, a
//! `TOPIC` that was just set) are shown as they come.
//!
//! One exception needs care: a successful `SAY` has no `OK`; the sender's
//! own `MSG` echo is its confirmation. Since the server handles a
//! connection's lines in order, that echo arrives exactly when the `SAY` is
//! the oldest pending request, so an echo of our own name pops it.
//!
//! # What `/help` lists
//!
//! No command reveals the user's roles, but the server's `HELP` lists the
//! moderation commands this session may use (one `INFO` line each, starting
//! with its keyword). So `/help` sends `HELP`, collects those keywords
//! without showing the server's English lines, and shows the client's own
//! help, in the user's language, with the moderation commands that
//! appeared.
//!
//! # Lines this client does not know
//!
//! A line whose first word the client does not know is ignored (the
//! compatibility rule of the moderation protocol): a newer server may send
//! new events. An `ERR` or `BYE` with an unknown code is still a final
//! reply, so it answers the oldest request (or ends the session) with the
//! server's own text. A known line that does not parse is shown as it is.
//!
//! # Typing ahead
//!
//! What a line means depends on the screen, and the screen often depends on
//! a reply (after `LOGIN` comes the main menu, or the start menu again if the
//! password was wrong). While a request that decides the next screen is in
//! flight, typed lines wait in a queue and are handled, in order, once the
//! reply has arrived. This is what makes `printf '2\nalice 123\n1\n' |
//! client` behave exactly like a person typing slowly.

use std::collections::VecDeque;

use crate::i18n::{BanInfo, Locale, Moderation, Msg, RoomInfo};
use crate::protocol::{ByeReason, Command, ErrCode, LeftReason, ServerLine, PROTOCOL_VERSION};

/// The first words of the lines the server sends (`ServerLine`). A line
/// that starts with one of them but does not parse is shown (`ERR` and
/// `BYE` with an unknown code are still answers, see
/// [`Menu::on_unknown_line`]); any other line is ignored.
const KNOWN_WORDS: &[&str] = &[
    "HELLO", "OK", "ERR", "BYE", "PONG", "ROOM", "USER", "HISTORY", "INFO", "MSG", "JOINED",
    "LEFT", "DM", "KICKED", "TOPIC", "CLOSED", "NOTICE", "BANNED",
];

/// How a session ended; the binary turns it into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The user quit (a menu option, `/quit`, or the end of the input):
    /// exit status 0.
    Quit,
    /// The server closed the session or the connection was lost: the reason
    /// has been shown, exit status 1.
    ServerClosed,
}

/// What the menu asks the UI loop to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this protocol line (without its LF) to the server.
    Send(String),
    /// Show this text to the user (already in the user's language; it may
    /// span several lines).
    Show(String),
    /// The session is over.
    Quit(Ending),
}

/// Which account operation the credentials line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Account {
    /// Option 1 of the start menu.
    Register,
    /// Option 2 of the start menu.
    Login,
}

/// What the next typed line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// A choice of the start menu (1–3).
    Start,
    /// `user password` for registering or logging in.
    Credentials(Account),
    /// A choice of the main menu (1–4, and 5–6 while in a room).
    Main,
    /// `name n` or `name s password`.
    CreateArgs,
    /// `name [password]`.
    JoinArgs,
    /// Chat mode: text to say, or a `/command`.
    Chat,
}

/// A request sent to the server whose final reply has not arrived yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// `REGISTER`: back to the start menu either way.
    Register,
    /// `LOGIN`: the main menu on success.
    Login,
    /// `ROOMS`: collects `ROOM` lines until `OK ROOMS`.
    Rooms(Vec<RoomInfo>),
    /// `CREATE`, public or private.
    Create {
        /// True when a password was given.
        private: bool,
    },
    /// `JOIN`: collects `HISTORY` lines and the `TOPIC` line until
    /// `OK JOIN`.
    Join {
        /// The room asked for, as typed (the server may spell it otherwise).
        room: String,
        /// The room's recent messages, oldest first.
        history: Vec<Msg>,
        /// The room's topic, if it has one.
        topic: Option<Msg>,
    },
    /// `LEAVE`.
    Leave,
    /// `SAY`: answered by our own `MSG` echo, or an `ERR`.
    Say,
    /// `WHO`: collects `USER` lines until `OK WHO`.
    Who(Vec<String>),
    /// `DM`.
    Dm,
    /// `HELP`: collects the moderation commands its `INFO` lines name.
    Help(Vec<Moderation>),
    /// `KICK`.
    Kick {
        /// The user named, as typed.
        user: String,
    },
    /// `BAN`.
    Ban {
        /// The room the user was in when it was sent.
        room: String,
        /// For how long; `None` until lifted.
        minutes: Option<u32>,
    },
    /// `UNBAN`.
    Unban {
        /// The room the user was in when it was sent.
        room: String,
    },
    /// `BANS`: collects `BANNED` lines until `OK BANS`.
    Bans {
        /// The room the user was in when it was sent.
        room: String,
        /// The bans listed so far.
        bans: Vec<BanInfo>,
    },
    /// `TOPIC`, reading or setting.
    Topic {
        /// The room the user was in when it was sent.
        room: String,
        /// True for reading (no text): the `TOPIC` line is collected and
        /// shown at `OK TOPIC`. When setting, the `TOPIC` event that every
        /// member gets is the confirmation.
        read: bool,
        /// The topic collected while reading.
        topic: Option<Msg>,
    },
    /// `CLOSE`.
    Close {
        /// True when it is the user's own room: `CLOSED` then puts the user
        /// at the main menu, so what is typed meanwhile waits.
        ours: bool,
    },
    /// `SUSPEND`.
    Suspend {
        /// For how long; `None` until lifted.
        minutes: Option<u32>,
    },
    /// `UNSUSPEND`.
    Unsuspend,
    /// `ANNOUNCE`.
    Announce,
    /// `QUIT`: answered by `BYE QUIT`.
    Quit,
}

impl Pending {
    /// True if the reply decides what the next typed line means, so typed
    /// lines must wait for it. `SAY`, `WHO`, `DM`, `HELP` and the moderation
    /// commands other than `CLOSE` of the user's own room do not change the
    /// screen, so chatting never waits for them.
    fn decides_screen(&self) -> bool {
        matches!(
            self,
            Pending::Register
                | Pending::Login
                | Pending::Rooms(_)
                | Pending::Create { .. }
                | Pending::Join { .. }
                | Pending::Leave
                | Pending::Close { ours: true }
                | Pending::Quit
        )
    }

    /// For a moderation request: `Some(true)` if only an admin may make it,
    /// `Some(false)` if a room's owner may too; `None` for the others.
    fn admin_only(&self) -> Option<bool> {
        match self {
            Pending::Kick { .. }
            | Pending::Ban { .. }
            | Pending::Unban { .. }
            | Pending::Bans { .. }
            | Pending::Topic { .. }
            | Pending::Close { .. } => Some(false),
            Pending::Suspend { .. } | Pending::Unsuspend | Pending::Announce => Some(true),
            _ => None,
        }
    }
}

/// The client's state: the screen, who and where the user is, and the
/// requests in flight. See the module doc.
#[derive(Debug)]
pub struct Menu {
    /// The language every [`Action::Show`] is rendered in.
    locale: Locale,
    /// What the next typed line means.
    screen: Screen,
    /// The logged-in user's name as the server spells it, once logged in:
    /// how we recognise the echo of our own `SAY`.
    user: Option<String>,
    /// The room we are in, as the server spells it.
    room: Option<String>,
    /// Requests sent and not yet answered, oldest first.
    pending: VecDeque<Pending>,
    /// Lines typed while a screen-deciding request was in flight.
    typed_ahead: VecDeque<String>,
    /// The input has ended: quit as soon as everything typed is handled.
    input_ended: bool,
    /// `QUIT` has been sent: ignore further input.
    quitting: bool,
}

impl Menu {
    /// A menu at the start screen, speaking `locale`.
    pub fn new(locale: Locale) -> Menu {
        Menu {
            locale,
            screen: Screen::Start,
            user: None,
            room: None,
            pending: VecDeque::new(),
            typed_ahead: VecDeque::new(),
            input_ended: false,
            quitting: false,
        }
    }

    /// True once `QUIT` has been sent: the UI then waits briefly for `BYE`.
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// True while in chat mode (the UI does not need it; tests and a prompt
    /// might).
    pub fn in_chat(&self) -> bool {
        self.screen == Screen::Chat
    }

    /// What to do when the connection is up: show the start menu.
    pub fn on_start(&mut self) -> Vec<Action> {
        vec![self.show(Msg::StartMenu)]
    }

    /// What to do with one line the user typed (without its line end).
    pub fn on_input(&mut self, line: &str) -> Vec<Action> {
        // A terminal on Windows, or a file saved there, ends lines with CRLF.
        let line = line.strip_suffix('\r').unwrap_or(line);
        if self.quitting {
            return Vec::new();
        }
        if self.waiting_for_screen() {
            self.typed_ahead.push_back(line.to_owned());
            return Vec::new();
        }
        let mut actions = self.handle_input(line);
        actions.extend(self.after_reply());
        actions
    }

    /// What to do when the input ends (Ctrl-D, end of a pipe): finish what
    /// was typed, then quit.
    pub fn on_input_end(&mut self) -> Vec<Action> {
        self.input_ended = true;
        self.after_reply()
    }

    /// What to do when the connection ends without a `BYE`.
    pub fn on_closed(&mut self, detail: Option<&str>) -> Vec<Action> {
        if self.quitting {
            return vec![self.show(Msg::Goodbye), Action::Quit(Ending::Quit)];
        }
        let detail = detail.map(str::to_owned);
        vec![
            self.show(Msg::ConnectionLost { detail }),
            Action::Quit(Ending::ServerClosed),
        ]
    }

    /// What to do when the server refuses our client certificate (or its
    /// absence): say what to do about it, and quit.
    pub fn on_refused(&mut self, why: Msg) -> Vec<Action> {
        vec![self.show(why), Action::Quit(Ending::ServerClosed)]
    }

    /// What to do with one line from the server that did not parse as a
    /// [`ServerLine`]. A line whose first word this client does not know is
    /// ignored; an `ERR` or `BYE` with an unknown code still answers the
    /// oldest request or ends the session; any other line is shown as it
    /// is (see the module doc).
    pub fn on_unknown_line(&mut self, line: &str) -> Vec<Action> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        // What follows the code of an ERR or BYE.
        let text = rest.split_once(' ').map_or("", |(_, text)| text).to_owned();
        match word {
            "ERR" => {
                let mut actions = vec![self.show(Msg::UnknownError { text })];
                if let Some(request) = self.pending.pop_front() {
                    actions.extend(self.on_err(request));
                }
                actions.extend(self.after_reply());
                actions
            }
            "BYE" => {
                self.quitting = true;
                vec![
                    self.show(Msg::UnknownBye { text }),
                    Action::Quit(Ending::ServerClosed),
                ]
            }
            word if KNOWN_WORDS.contains(&word) => self.on_garbled(line),
            // The compatibility rule: a newer server's line, not for us.
            _ => Vec::new(),
        }
    }

    /// What to do with something from the server that is not a line at all
    /// (too long, not UTF-8), or a known line that does not parse: show it.
    pub fn on_garbled(&mut self, line: &str) -> Vec<Action> {
        vec![self.show(Msg::UnknownLine {
            line: line.to_owned(),
        })]
    }

    /// What to do with one line from the server.
    pub fn on_server(&mut self, line: &ServerLine) -> Vec<Action> {
        let mut actions = match line {
            ServerLine::Hello { version, .. } if *version != PROTOCOL_VERSION => {
                vec![self.show(Msg::UnknownProtocolVersion { version: *version })]
            }
            // PONG: the network thread swallows its own keepalive replies,
            // and the menu never sends PING.
            ServerLine::Hello { .. } | ServerLine::Pong { .. } => Vec::new(),
            // INFO: only `/help` sends HELP, and its lines are read, not
            // shown (the help shown is the client's own, localized).
            ServerLine::Info { text } => {
                if let (Some(Pending::Help(allowed)), Some(command)) =
                    (self.pending.front_mut(), moderation_in_help(text))
                {
                    if !allowed.contains(&command) {
                        allowed.push(command);
                    }
                }
                Vec::new()
            }
            ServerLine::Kicked { room, by, reason } => self.put_out(
                room,
                Msg::YouWereKicked {
                    room: room.clone(),
                    by: by.clone(),
                    reason: reason.clone(),
                },
            ),
            ServerLine::Closed { room, by } => self.put_out(
                room,
                Msg::RoomClosed {
                    room: room.clone(),
                    by: by.clone(),
                },
            ),
            ServerLine::Topic {
                room,
                by,
                time,
                topic,
            } => {
                let current = Msg::RoomTopic {
                    room: room.clone(),
                    by: by.clone(),
                    time: *time,
                    topic: topic.clone(),
                };
                match self.pending.front_mut() {
                    // The data line of JOIN (after HISTORY, before OK JOIN).
                    Some(Pending::Join {
                        room: joining,
                        topic: slot,
                        ..
                    }) if joining.eq_ignore_ascii_case(room) => {
                        *slot = Some(current);
                        Vec::new()
                    }
                    // The answer to reading the topic.
                    Some(Pending::Topic {
                        read: true,
                        topic: slot,
                        ..
                    }) => {
                        *slot = Some(current);
                        Vec::new()
                    }
                    // Set just now, by the user or someone else.
                    _ => vec![self.show(Msg::TopicChanged {
                        by: by.clone(),
                        topic: topic.clone(),
                    })],
                }
            }
            ServerLine::Notice { from, text, .. } => vec![self.show(Msg::Notice {
                from: from.clone(),
                text: text.clone(),
            })],
            ServerLine::Banned {
                user, until, by, ..
            } => {
                if let Some(Pending::Bans { bans, .. }) = self.pending.front_mut() {
                    bans.push(BanInfo {
                        user: user.clone(),
                        until: *until,
                        by: by.clone(),
                    });
                }
                Vec::new()
            }
            ServerLine::Msg {
                room, user, text, ..
            } => {
                let ours = self
                    .user
                    .as_deref()
                    .is_some_and(|me| me.eq_ignore_ascii_case(user));
                if ours && self.pending.front() == Some(&Pending::Say) {
                    self.pending.pop_front();
                }
                vec![self.show(Msg::Said {
                    room: room.clone(),
                    user: user.clone(),
                    text: text.clone(),
                })]
            }
            ServerLine::Joined { user, .. } => {
                vec![self.show(Msg::UserJoined { user: user.clone() })]
            }
            ServerLine::Left { user, reason, .. } => {
                let user = user.clone();
                vec![self.show(match reason {
                    LeftReason::Leave => Msg::UserLeft { user },
                    LeftReason::Quit => Msg::UserDisconnected { user },
                    LeftReason::Kick => Msg::UserKicked { user },
                })]
            }
            ServerLine::Dm { from, text, .. } => vec![self.show(Msg::DirectMessage {
                from: from.clone(),
                text: text.clone(),
            })],
            ServerLine::History {
                room, user, text, ..
            } => {
                let line = Msg::HistoryLine {
                    room: room.clone(),
                    user: user.clone(),
                    text: text.clone(),
                };
                match self.pending.front_mut() {
                    Some(Pending::Join { history, .. }) => {
                        history.push(line);
                        Vec::new()
                    }
                    _ => vec![self.show(line)],
                }
            }
            ServerLine::Room {
                name,
                private,
                online,
            } => {
                if let Some(Pending::Rooms(rooms)) = self.pending.front_mut() {
                    rooms.push(RoomInfo {
                        name: name.clone(),
                        private: *private,
                        online: *online,
                    });
                }
                Vec::new()
            }
            ServerLine::User { name } => {
                if let Some(Pending::Who(users)) = self.pending.front_mut() {
                    users.push(name.clone());
                }
                Vec::new()
            }
            ServerLine::Ok { rest, .. } => match self.pending.pop_front() {
                Some(request) => self.on_ok(request, rest),
                None => Vec::new(),
            },
            ServerLine::Err { code, text } => {
                let request = self.pending.pop_front();
                let mut actions = vec![self.show(error_sentence(*code, text, request.as_ref()))];
                if let Some(request) = request {
                    actions.extend(self.on_err(request));
                }
                actions
            }
            ServerLine::Bye { reason, text } => return self.on_bye(*reason, text),
        };
        actions.extend(self.after_reply());
        actions
    }

    /// Handles the `OK` that answers `request`; `rest` is what follows
    /// `OK <COMMAND>`.
    fn on_ok(&mut self, request: Pending, rest: &str) -> Vec<Action> {
        match request {
            Pending::Register => {
                self.screen = Screen::Start;
                vec![
                    self.show(Msg::Registered { user: rest.into() }),
                    self.show(Msg::StartMenu),
                ]
            }
            Pending::Login => {
                self.user = Some(rest.to_owned());
                self.main_menu(vec![self.show(Msg::LoggedIn { user: rest.into() })])
            }
            Pending::Rooms(rooms) => self.main_menu(vec![self.show(Msg::RoomList { rooms })]),
            Pending::Create { private } => self.main_menu(vec![self.show(Msg::Created {
                room: rest.into(),
                private,
            })]),
            Pending::Join { history, topic, .. } => {
                self.room = Some(rest.to_owned());
                self.screen = Screen::Chat;
                let mut actions = vec![self.show(Msg::EnteredRoom { room: rest.into() })];
                if !history.is_empty() {
                    actions.push(self.show(Msg::HistoryStart {
                        count: history.len(),
                    }));
                    actions.extend(history.into_iter().map(|line| self.show(line)));
                    actions.push(self.show(Msg::HistoryEnd));
                }
                actions.extend(topic.map(|topic| self.show(topic)));
                actions
            }
            Pending::Leave => {
                self.room = None;
                self.main_menu(vec![self.show(Msg::LeftRoom { room: rest.into() })])
            }
            Pending::Who(users) => vec![self.show(Msg::WhoList { users })],
            Pending::Dm => {
                // `OK DM <user> delivered` or `OK DM <user> stored`.
                let (user, how) = rest.rsplit_once(' ').unwrap_or((rest, ""));
                let user = user.to_owned();
                vec![self.show(match how {
                    "stored" => Msg::DmStored { user },
                    _ => Msg::DmDelivered { user },
                })]
            }
            Pending::Help(mut allowed) => {
                allowed.sort_by_key(|c| Moderation::ALL.iter().position(|m| m == c));
                vec![self.show(Msg::Help { allowed })]
            }
            Pending::Kick { .. } => vec![self.show(Msg::KickDone { user: rest.into() })],
            Pending::Ban { room, minutes } => vec![self.show(Msg::BanDone {
                user: rest.into(),
                room,
                minutes,
            })],
            Pending::Unban { room } => vec![self.show(Msg::UnbanDone {
                user: rest.into(),
                room,
            })],
            Pending::Bans { room, bans } => vec![self.show(Msg::BanList { room, bans })],
            Pending::Topic {
                read: true,
                topic,
                room,
            } => vec![self.show(topic.unwrap_or(Msg::NoTopic { room }))],
            // The TOPIC event every member gets has shown the new topic.
            Pending::Topic { read: false, .. } => Vec::new(),
            Pending::Close { .. } => vec![self.show(Msg::CloseDone { room: rest.into() })],
            Pending::Suspend { minutes } => vec![self.show(Msg::SuspendDone {
                user: rest.into(),
                minutes,
            })],
            Pending::Unsuspend => vec![self.show(Msg::UnsuspendDone { user: rest.into() })],
            Pending::Announce => vec![self.show(Msg::AnnounceDone {
                count: rest.trim().parse().unwrap_or(0),
            })],
            // Neither has an OK; a server that sends one anyway is ignored.
            Pending::Say | Pending::Quit => Vec::new(),
        }
    }

    /// Handles the `ERR` that answers `request` (the error sentence has
    /// been shown already): go back to the screen the request came from.
    fn on_err(&mut self, request: Pending) -> Vec<Action> {
        match request {
            Pending::Register | Pending::Login => {
                self.screen = Screen::Start;
                vec![self.show(Msg::StartMenu)]
            }
            Pending::Rooms(_) | Pending::Create { .. } | Pending::Join { .. } | Pending::Leave => {
                self.main_menu(Vec::new())
            }
            // The commands everybody has are still worth listing.
            Pending::Help(_) => vec![self.show(Msg::Help {
                allowed: Vec::new(),
            })],
            Pending::Say
            | Pending::Who(_)
            | Pending::Dm
            | Pending::Kick { .. }
            | Pending::Ban { .. }
            | Pending::Unban { .. }
            | Pending::Bans { .. }
            | Pending::Topic { .. }
            | Pending::Close { .. }
            | Pending::Suspend { .. }
            | Pending::Unsuspend
            | Pending::Announce
            | Pending::Quit => Vec::new(),
        }
    }

    /// Handles `BYE`: the session is over either way.
    fn on_bye(&mut self, reason: ByeReason, text: &str) -> Vec<Action> {
        self.quitting = true;
        let why = match reason {
            ByeReason::Quit => return vec![self.show(Msg::Goodbye), Action::Quit(Ending::Quit)],
            ByeReason::Suspended => Msg::SuspendedBye { text: text.into() },
            other => Msg::ServerBye(other),
        };
        vec![self.show(why), Action::Quit(Ending::ServerClosed)]
    }

    /// Handles `KICKED` and `CLOSED`: shows `why`, and if `room` is the
    /// user's room, the user is in no room now. In chat mode, and at the
    /// main menu (whose options 5 and 6 named the room), the main menu is
    /// shown; a question being asked (a room's name, ...) or a reply still
    /// to come decides the next screen itself.
    fn put_out(&mut self, room: &str, why: Msg) -> Vec<Action> {
        let shown = vec![self.show(why)];
        let ours = self
            .room
            .as_deref()
            .is_some_and(|current| current.eq_ignore_ascii_case(room));
        if !ours {
            return shown;
        }
        self.room = None;
        match self.screen {
            Screen::Chat => self.main_menu(shown),
            Screen::Main if !self.waiting_for_screen() => self.main_menu(shown),
            _ => shown,
        }
    }

    /// After a reply: handle the lines typed ahead while we waited, then
    /// quit if the input has ended and nothing is left to do.
    fn after_reply(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while !self.quitting && !self.waiting_for_screen() {
            match self.typed_ahead.pop_front() {
                Some(line) => actions.extend(self.handle_input(&line)),
                None => break,
            }
        }
        if self.input_ended
            && !self.quitting
            && !self.waiting_for_screen()
            && self.typed_ahead.is_empty()
        {
            actions.extend(self.quit());
        }
        actions
    }

    /// True while a reply that decides the next screen is outstanding.
    fn waiting_for_screen(&self) -> bool {
        self.pending.iter().any(Pending::decides_screen)
    }

    /// Interprets one typed line on the current screen.
    fn handle_input(&mut self, line: &str) -> Vec<Action> {
        match self.screen {
            Screen::Start => self.start_choice(line.trim()),
            Screen::Credentials(account) => self.credentials(account, line),
            Screen::Main => self.main_choice(line.trim()),
            Screen::CreateArgs => self.create_args(line),
            Screen::JoinArgs => self.join_args(line),
            Screen::Chat => self.chat_line(line),
        }
    }

    /// A choice of the start menu.
    fn start_choice(&mut self, choice: &str) -> Vec<Action> {
        match choice {
            "1" | "2" => {
                let account = if choice == "1" {
                    Account::Register
                } else {
                    Account::Login
                };
                self.screen = Screen::Credentials(account);
                vec![self.show(Msg::AskCredentials)]
            }
            "3" => self.quit(),
            _ => vec![self.show(Msg::InvalidOption), self.show(Msg::StartMenu)],
        }
    }

    /// `user password` after option 1 or 2 of the start menu.
    fn credentials(&mut self, account: Account, line: &str) -> Vec<Action> {
        let line = line.trim();
        if line.is_empty() {
            self.screen = Screen::Start;
            return vec![self.show(Msg::StartMenu)];
        }
        // The password is the rest of the line, so it may contain spaces.
        let Some((user, password)) = line.split_once(' ') else {
            return vec![self.show(Msg::CredentialsUsage)];
        };
        let password = password.trim_start();
        let command = match account {
            Account::Register => format!("REGISTER {user} {password}"),
            Account::Login => format!("LOGIN {user} {password}"),
        };
        self.screen = Screen::Start;
        let pending = match account {
            Account::Register => Pending::Register,
            Account::Login => Pending::Login,
        };
        self.request(&command, pending).unwrap_or_else(|mut shown| {
            shown.push(self.show(Msg::StartMenu));
            shown
        })
    }

    /// A choice of the main menu, or a `/command`.
    fn main_choice(&mut self, choice: &str) -> Vec<Action> {
        if choice.starts_with('/') {
            return self.slash_command(choice);
        }
        let room = self.room.clone();
        match (choice, room) {
            ("1", _) => self
                .request("ROOMS", Pending::Rooms(Vec::new()))
                .unwrap_or_default(),
            ("2", _) => {
                self.screen = Screen::CreateArgs;
                vec![self.show(Msg::AskCreate)]
            }
            ("3", _) => {
                self.screen = Screen::JoinArgs;
                vec![self.show(Msg::AskJoin)]
            }
            ("4", _) => self.quit(),
            ("5", Some(_)) => self.request("LEAVE", Pending::Leave).unwrap_or_default(),
            ("6", Some(room)) => {
                self.screen = Screen::Chat;
                vec![self.show(Msg::BackToChat { room })]
            }
            _ => {
                let mut actions = vec![self.show(Msg::InvalidOption)];
                actions.extend(self.main_menu(Vec::new()));
                actions
            }
        }
    }

    /// `name n`, `name s password` or `name y password` after option 2.
    /// A name alone is a public room too.
    fn create_args(&mut self, line: &str) -> Vec<Action> {
        let line = line.trim();
        if line.is_empty() {
            return self.main_menu(Vec::new());
        }
        let (name, kind) = match line.split_once(' ') {
            Some((name, kind)) => (name, Some(kind.trim_start())),
            None => (line, None),
        };
        let (command, private) = match kind.map(|k| k.split_once(' ').unwrap_or((k, ""))) {
            None | Some(("n" | "N", "")) => (format!("CREATE {name}"), false),
            Some(("s" | "S" | "y" | "Y", password)) if !password.trim().is_empty() => {
                (format!("CREATE {name} {}", password.trim_start()), true)
            }
            Some(_) => return vec![self.show(Msg::CreateUsage)],
        };
        self.screen = Screen::Main;
        self.request(&command, Pending::Create { private })
            .unwrap_or_else(|shown| self.main_menu(shown))
    }

    /// `name [password]` after option 3.
    fn join_args(&mut self, line: &str) -> Vec<Action> {
        let line = line.trim();
        if line.is_empty() {
            return self.main_menu(Vec::new());
        }
        self.screen = Screen::Main;
        let room = line.split(' ').next().unwrap_or(line).to_owned();
        let pending = Pending::Join {
            room,
            history: Vec::new(),
            topic: None,
        };
        self.request(&format!("JOIN {line}"), pending)
            .unwrap_or_else(|shown| self.main_menu(shown))
    }

    /// A line typed in chat mode: a `/command`, or text to say.
    fn chat_line(&mut self, line: &str) -> Vec<Action> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        if !line.starts_with('/') {
            return self
                .request(&format!("SAY {line}"), Pending::Say)
                .unwrap_or_else(|shown| shown);
        }
        self.slash_command(line)
    }

    /// A `/command`, typed in chat mode or at the main menu.
    fn slash_command(&mut self, line: &str) -> Vec<Action> {
        let (command, args) = line.split_once(' ').unwrap_or((line, ""));
        match command.to_ascii_lowercase().as_str() {
            "/menu" => self.main_menu(Vec::new()),
            "/leave" => self.request("LEAVE", Pending::Leave).unwrap_or_default(),
            "/who" => self
                .request("WHO", Pending::Who(Vec::new()))
                .unwrap_or_default(),
            "/msg" => match args.trim_start().split_once(' ') {
                Some((user, text)) if !text.trim().is_empty() => self
                    .request(&format!("DM {user} {text}"), Pending::Dm)
                    .unwrap_or_else(|shown| shown),
                _ => vec![self.show(Msg::MsgUsage)],
            },
            "/help" => self
                .request("HELP", Pending::Help(Vec::new()))
                .unwrap_or_default(),
            "/quit" => self.quit(),
            "/kick" => self.moderate("KICK", args, Moderation::Kick),
            "/ban" => self.moderate("BAN", args, Moderation::Ban),
            "/unban" => self.moderate("UNBAN", args, Moderation::Unban),
            "/bans" => self.moderate("BANS", args, Moderation::Bans),
            "/topic" => self.moderate("TOPIC", args, Moderation::SetTopic),
            "/close" => match (args.trim(), self.room.clone()) {
                ("", Some(room)) => self.moderate("CLOSE", &room, Moderation::Close),
                ("", None) => vec![self.show(Msg::ModerationUsage(Moderation::Close))],
                (room, _) => self.moderate("CLOSE", room, Moderation::Close),
            },
            "/suspend" => self.moderate("SUSPEND", args, Moderation::Suspend),
            "/unsuspend" => self.moderate("UNSUSPEND", args, Moderation::Unsuspend),
            "/announce" => self.moderate("ANNOUNCE", args, Moderation::Announce),
            _ => vec![self.show(Msg::UnknownChatCommand {
                command: command.to_owned(),
            })],
        }
    }

    /// Checks `line` with the protocol's own parser and, if it is a valid
    /// command, sends it and remembers `pending`.
    ///
    /// Checking here means a bad name or a control character in a message
    /// gets the same sentence as the server's `ERR` would give, without a
    /// round trip, and that nothing the user types can smuggle a second
    /// command onto the wire.
    ///
    /// # Errors
    ///
    /// The actions that show the error sentence, when the line is refused.
    fn request(&mut self, line: &str, pending: Pending) -> Result<Vec<Action>, Vec<Action>> {
        match Command::parse(line) {
            Ok(command) => {
                self.pending.push_back(pending);
                Ok(vec![Action::Send(command.to_string())])
            }
            Err(refused) => Err(vec![self.show(Msg::Error(refused.code))]),
        }
    }

    /// Sends `<keyword> <args>` (the keyword alone when `args` is blank),
    /// checked like every request; a line the protocol refuses for its
    /// arguments gets the usage of `usage`.
    fn moderate(&mut self, keyword: &str, args: &str, usage: Moderation) -> Vec<Action> {
        let args = args.trim();
        let line = if args.is_empty() {
            keyword.to_owned()
        } else {
            format!("{keyword} {args}")
        };
        let command = match Command::parse(&line) {
            Ok(command) => command,
            Err(refused) if refused.code == ErrCode::BadArgs => {
                return vec![self.show(Msg::ModerationUsage(usage))];
            }
            Err(refused) => return vec![self.show(Msg::Error(refused.code))],
        };
        let room = self.room.clone().unwrap_or_default();
        let pending = match &command {
            Command::Kick { user, .. } => Pending::Kick {
                user: user.to_string(),
            },
            Command::Ban { minutes, .. } => Pending::Ban {
                room,
                minutes: *minutes,
            },
            Command::Unban { .. } => Pending::Unban { room },
            Command::Bans => Pending::Bans {
                room,
                bans: Vec::new(),
            },
            Command::Topic { topic } => Pending::Topic {
                room,
                read: topic.is_none(),
                topic: None,
            },
            Command::Close { room: closing } => Pending::Close {
                ours: self
                    .room
                    .as_deref()
                    .is_some_and(|current| closing.as_str().eq_ignore_ascii_case(current)),
            },
            Command::Suspend { minutes, .. } => Pending::Suspend { minutes: *minutes },
            Command::Unsuspend { .. } => Pending::Unsuspend,
            Command::Announce { .. } => Pending::Announce,
            // Every keyword passed in is one of the above.
            _ => return vec![self.show(Msg::ModerationUsage(usage))],
        };
        self.pending.push_back(pending);
        vec![Action::Send(command.to_string())]
    }

    /// Sends `QUIT`; everything typed after it is ignored.
    fn quit(&mut self) -> Vec<Action> {
        self.quitting = true;
        self.pending.push_back(Pending::Quit);
        vec![Action::Send("QUIT".into())]
    }

    /// Switches to the main menu and shows it after `before`.
    fn main_menu(&mut self, mut before: Vec<Action>) -> Vec<Action> {
        self.screen = Screen::Main;
        before.push(self.show(Msg::MainMenu {
            room: self.room.clone(),
        }));
        before
    }

    /// Renders `msg` in the user's language.
    fn show(&self, msg: Msg) -> Action {
        Action::Show(msg.render(self.locale))
    }
}

/// The moderation command that a line of the server's `HELP` names, if
/// any: the line starts with its keyword; `TOPIC <topic>` (with an
/// argument in `<>`) is setting the topic, `TOPIC` alone reading it.
fn moderation_in_help(line: &str) -> Option<Moderation> {
    let mut words = line.split_whitespace();
    let keyword = words.next()?.to_ascii_uppercase();
    Some(match keyword.as_str() {
        "KICK" => Moderation::Kick,
        "BAN" => Moderation::Ban,
        "UNBAN" => Moderation::Unban,
        "BANS" => Moderation::Bans,
        "TOPIC" if words.next().is_some_and(|w| w.starts_with('<')) => Moderation::SetTopic,
        "CLOSE" => Moderation::Close,
        "SUSPEND" => Moderation::Suspend,
        "UNSUSPEND" => Moderation::Unsuspend,
        "ANNOUNCE" => Moderation::Announce,
        _ => return None,
    })
}

/// The sentence for `ERR <code> <text>` in answer to `request`: most codes
/// have one sentence, but `BANNED` and `SUSPENDED` carry the server's text
/// (it names the end), and a refused moderation command says who may use
/// it.
fn error_sentence(code: ErrCode, text: &str, request: Option<&Pending>) -> Msg {
    match (code, request) {
        (ErrCode::Banned | ErrCode::Suspended, _) => Msg::ErrorWithText {
            code,
            text: text.to_owned(),
        },
        (ErrCode::NotAllowed, Some(request)) => match request.admin_only() {
            Some(admin_only) => Msg::NotAllowed { admin_only },
            None => Msg::Error(code),
        },
        (ErrCode::NoSuchUser, Some(Pending::Kick { user })) => {
            Msg::NotAMember { user: user.clone() }
        }
        _ => Msg::Error(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrCode;

    /// A menu plus helpers that play the user and the server.
    struct Script {
        /// The menu under test.
        menu: Menu,
    }

    impl Script {
        /// A fresh menu in `locale`, with the start menu already shown.
        fn new(locale: Locale) -> Script {
            let mut menu = Menu::new(locale);
            let start = menu.on_start();
            assert_eq!(start, vec![Action::Show(Msg::StartMenu.render(locale))]);
            Script { menu }
        }

        /// The user types `line`.
        fn input(&mut self, line: &str) -> Vec<Action> {
            self.menu.on_input(line)
        }

        /// The server sends `line` (in wire syntax).
        fn server(&mut self, line: &str) -> Vec<Action> {
            let parsed = ServerLine::parse(line).unwrap_or_else(|| panic!("bad line {line:?}"));
            self.menu.on_server(&parsed)
        }

        /// Logs in as `user` (the wire exchange included).
        fn logged_in(locale: Locale, user: &str) -> Script {
            let mut s = Script::new(locale);
            s.input("2");
            assert_eq!(
                sent(&s.input(&format!("{user} 123"))),
                [format!("LOGIN {user} 123")]
            );
            s.server(&format!("OK LOGIN {user}"));
            s
        }

        /// Logs in and joins `room`.
        fn in_room(locale: Locale, user: &str, room: &str) -> Script {
            let mut s = Script::logged_in(locale, user);
            s.input("3");
            assert_eq!(sent(&s.input(room)), [format!("JOIN {room}")]);
            s.server(&format!("OK JOIN {room}"));
            assert!(s.menu.in_chat());
            s
        }
    }

    /// The protocol lines among `actions`.
    fn sent(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(line) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    /// The screen lines among `actions`, split at line ends.
    fn shown(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Show(text) => Some(text.lines().map(str::to_owned).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Asserts that some shown line equals `expected`.
    fn assert_shows(actions: &[Action], expected: &str) {
        let lines = shown(actions);
        assert!(
            lines.iter().any(|l| l == expected),
            "expected {expected:?} among {lines:#?}"
        );
    }

    /// Asserts that no shown line starts with `prefix`.
    fn assert_hides(actions: &[Action], prefix: &str) {
        let lines = shown(actions);
        assert!(
            !lines.iter().any(|l| l.starts_with(prefix)),
            "{prefix:?} should not be among {lines:#?}"
        );
    }

    /// The original course session, in Portuguese, as pure inputs and
    /// outputs: register, log in, create a public and a private room, list
    /// them, join, chat, see someone arrive, go to the menu and back, leave.
    #[test]
    fn original_walkthrough_in_portuguese() {
        let mut s = Script::new(Locale::PtBr);

        // 1 = register; `usuario1 123` on one line.
        assert_shows(
            &s.input("1"),
            "Digite usuário e senha na mesma linha (ex.: usuario1 123):",
        );
        assert_eq!(sent(&s.input("usuario1 123")), ["REGISTER usuario1 123"]);
        let out = s.server("OK REGISTER usuario1");
        assert_shows(
            &out,
            "Conta usuario1 criada. Agora entre com ela (opção 2).",
        );
        assert_shows(&out, "1 - Registrar");

        // 2 = log in.
        s.input("2");
        assert_eq!(sent(&s.input("usuario1 123")), ["LOGIN usuario1 123"]);
        let out = s.server("OK LOGIN usuario1");
        assert_shows(&out, "Você entrou como usuario1.");
        assert_shows(&out, "1 - Listar salas");
        assert_hides(&out, "5 -");

        // 2 = create, public then private.
        assert_shows(&s.input("2"), "Nome e tipo da sala: `nome n` para uma sala pública, `nome s senha` para uma privada (linha vazia volta):");
        assert_eq!(sent(&s.input("sala_publica n")), ["CREATE sala_publica"]);
        assert_shows(
            &s.server("OK CREATE sala_publica"),
            "Sala pública sala_publica criada.",
        );
        s.input("2");
        assert_eq!(
            sent(&s.input("sala_privada s senhasecreta")),
            ["CREATE sala_privada senhasecreta"]
        );
        assert_shows(
            &s.server("OK CREATE sala_privada"),
            "Sala privada sala_privada criada.",
        );

        // 1 = list.
        assert_eq!(sent(&s.input("1")), ["ROOMS"]);
        assert!(s.server("ROOM sala_privada private 0").is_empty());
        assert!(s.server("ROOM sala_publica public 0").is_empty());
        let out = s.server("OK ROOMS 2");
        assert_eq!(
            shown(&out)[..3],
            [
                "Salas:",
                "  sala_privada (privada, 0 online)",
                "  sala_publica (pública, 0 online)"
            ]
        );

        // 3 = join; the history is marked as earlier messages.
        s.input("3");
        assert_eq!(sent(&s.input("sala_publica")), ["JOIN sala_publica"]);
        assert!(s
            .server("HISTORY sala_publica 2026-11-30T07:50:09.123Z bob oi")
            .is_empty());
        let out = s.server("OK JOIN sala_publica");
        assert_eq!(
            shown(&out),
            [
                "Você está na sala sala_publica. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.",
                "--- 1 mensagem anterior ---",
                "  [bob@sala_publica]: oi",
                "--- fim das mensagens anteriores ---",
            ]
        );

        // Chat: a typed line is said; the echo confirms it.
        assert_eq!(sent(&s.input("olá, pessoal!")), ["SAY olá, pessoal!"]);
        let out = s.server("MSG sala_publica 2026-11-30T07:50:10.000Z usuario1 olá, pessoal!");
        assert_eq!(shown(&out), ["[usuario1@sala_publica]: olá, pessoal!"]);
        assert_eq!(
            shown(&s.server("JOINED sala_publica usuario2")),
            ["*** usuario2 entrou na sala. ***"]
        );
        assert_eq!(
            shown(&s.server("MSG sala_publica 2026-11-30T07:50:11.000Z usuario2 oi!")),
            ["[usuario2@sala_publica]: oi!"]
        );

        // /menu shows 5 and 6 (naming the room); messages keep arriving.
        let out = s.input("/menu");
        assert_shows(&out, "5 - Sair da sala sala_publica");
        assert_shows(&out, "6 - Voltar ao chat da sala sala_publica");
        assert_shows(
            &s.server("MSG sala_publica 2026-11-30T07:50:12.000Z usuario2 cadê você?"),
            "[usuario2@sala_publica]: cadê você?",
        );
        // 6 goes back to the chat.
        assert_shows(&s.input("6"), "De volta ao chat da sala sala_publica.");
        assert_eq!(sent(&s.input("voltei")), ["SAY voltei"]);
        s.server("MSG sala_publica 2026-11-30T07:50:13.000Z usuario1 voltei");

        // /leave leaves and shows a menu without 5 and 6.
        assert_eq!(sent(&s.input("/leave")), ["LEAVE"]);
        let out = s.server("OK LEAVE sala_publica");
        assert_shows(&out, "Você saiu da sala sala_publica.");
        assert_shows(&out, "4 - Sair do programa");
        assert_hides(&out, "5 -");
        assert_hides(&out, "6 -");

        // 4 = quit; BYE QUIT ends with status 0.
        assert_eq!(sent(&s.input("4")), ["QUIT"]);
        assert!(s.menu.is_quitting());
        let out = s.server("BYE QUIT Goodbye.");
        assert_shows(&out, "Até logo!");
        assert_eq!(out.last(), Some(&Action::Quit(Ending::Quit)));
    }

    /// The same walk in English, more briefly: the menus and notices are
    /// the English catalog's.
    #[test]
    fn original_walkthrough_in_english() {
        let mut s = Script::new(Locale::En);
        assert_shows(
            &s.input("1"),
            "Type your user name and password on one line (e.g. usuario1 123):",
        );
        assert_eq!(sent(&s.input("alice 123")), ["REGISTER alice 123"]);
        assert_shows(
            &s.server("OK REGISTER alice"),
            "Account alice created. Now log in (option 2).",
        );
        s.input("2");
        s.input("alice 123");
        let out = s.server("OK LOGIN alice");
        assert_shows(&out, "Logged in as alice.");
        assert_shows(&out, "1 - List rooms");
        s.input("3");
        assert_eq!(
            sent(&s.input("sala_privada senhasecreta")),
            ["JOIN sala_privada senhasecreta"]
        );
        assert_shows(
            &s.server("OK JOIN sala_privada"),
            "You are in sala_privada. Type to chat; /menu opens the menu, \
             /leave leaves the room, /help lists the commands.",
        );
        assert_eq!(
            shown(&s.server("JOINED sala_privada bob")),
            ["*** bob joined the room. ***"]
        );
        assert_eq!(
            shown(&s.server("LEFT sala_privada bob leave")),
            ["*** bob left the room. ***"]
        );
        assert_eq!(
            shown(&s.server("LEFT sala_privada carol quit")),
            ["*** carol disconnected. ***"]
        );
        let out = s.input("/menu");
        assert_shows(&out, "5 - Leave the room sala_privada");
        assert_shows(&out, "6 - Back to the chat in sala_privada");
        assert_shows(&s.input("6"), "Back to the chat in sala_privada.");
        s.input("/leave");
        let out = s.server("OK LEAVE sala_privada");
        assert_shows(&out, "You left sala_privada.");
        assert_hides(&out, "5 -");
        assert_eq!(sent(&s.input("4")), ["QUIT"]);
    }

    /// A wrong private-room password is a sentence in the user's language,
    /// never the server's English text, and leads back to the main menu.
    #[test]
    fn wrong_room_password_is_localized() {
        for (locale, sentence) in [
            (
                Locale::PtBr,
                "Senha incorreta ou ausente: essa sala é privada; entre com o nome e a senha \
                 dela (ex.: sala_privada senhasecreta).",
            ),
            (
                Locale::En,
                "Wrong or missing password: that room is private; join it with its name and \
                 its password (e.g. sala_privada senhasecreta).",
            ),
        ] {
            // A wrong password, and none at all: the server's one code for
            // both, and a sentence that fits both.
            for typed in ["sala_privada errada", "sala_privada"] {
                let mut s = Script::logged_in(locale, "alice");
                s.input("3");
                assert_eq!(sent(&s.input(typed)), [format!("JOIN {typed}")]);
                let out = s.server("ERR BAD_ROOM_PASSWORD Wrong or missing room password.");
                assert_shows(&out, sentence);
                assert!(!shown(&out).iter().any(|l| l.contains("room password")));
                assert!(!s.menu.in_chat());
            }
            let mut s = Script::logged_in(locale, "alice");
            s.input("3");
            s.input("sala_privada errada");
            let out = s.server("ERR BAD_ROOM_PASSWORD Wrong or missing room password.");
            assert_shows(&out, sentence);
            assert!(!s.menu.in_chat());
            // Back at the main menu: 1 lists rooms.
            assert_eq!(sent(&s.input("1")), ["ROOMS"]);
        }
    }

    /// A failed login goes back to the start menu; the next choice works.
    #[test]
    fn failed_login_returns_to_start_menu() {
        let mut s = Script::new(Locale::En);
        s.input("2");
        s.input("alice wrong");
        let out = s.server("ERR BAD_CREDENTIALS Wrong user name or password.");
        assert_shows(
            &out,
            "Wrong user name or password: check both and try again, or register first.",
        );
        assert_shows(&out, "2 - Log in");
        assert_shows(
            &s.input("1"),
            "Type your user name and password on one line (e.g. usuario1 123):",
        );
    }

    /// Direct messages: received ones are marked, sent ones are confirmed
    /// as delivered or stored.
    #[test]
    fn direct_messages() {
        for (locale, received, delivered, stored) in [
            (
                Locale::En,
                "[DM from bob]: psst",
                "Direct message delivered to bob.",
                "carol is offline: the direct message is stored and will be delivered at their next login.",
            ),
            (
                Locale::PtBr,
                "[mensagem direta de bob]: psst",
                "Mensagem direta entregue a bob.",
                "carol está offline: a mensagem direta foi guardada e será entregue no próximo login.",
            ),
        ] {
            let mut s = Script::in_room(locale, "alice", "sala");
            assert_eq!(shown(&s.server("DM bob 2026-11-30T07:50:09.123Z psst")), [received]);
            assert_eq!(sent(&s.input("/msg bob oi tudo bem")), ["DM bob oi tudo bem"]);
            assert_eq!(shown(&s.server("OK DM bob delivered")), [delivered]);
            s.input("/msg carol depois");
            assert_eq!(shown(&s.server("OK DM carol stored")), [stored]);
            // Missing text: usage, nothing sent.
            assert!(sent(&s.input("/msg bob")).is_empty());
        }
    }

    /// Join, leave and disconnect notices are distinct, in both languages.
    #[test]
    fn room_notices() {
        for (locale, joined, left, quit) in [
            (
                Locale::PtBr,
                "*** bob entrou na sala. ***",
                "*** bob saiu da sala. ***",
                "*** bob desconectou. ***",
            ),
            (
                Locale::En,
                "*** bob joined the room. ***",
                "*** bob left the room. ***",
                "*** bob disconnected. ***",
            ),
        ] {
            let mut s = Script::in_room(locale, "alice", "sala");
            assert_eq!(shown(&s.server("JOINED sala bob")), [joined]);
            assert_eq!(shown(&s.server("LEFT sala bob leave")), [left]);
            assert_eq!(shown(&s.server("LEFT sala bob quit")), [quit]);
        }
    }

    /// `/who` collects the USER lines into one sentence.
    #[test]
    fn who_lists_members() {
        let mut s = Script::in_room(Locale::PtBr, "alice", "sala");
        assert_eq!(sent(&s.input("/who")), ["WHO"]);
        assert!(s.server("USER alice").is_empty());
        assert!(s.server("USER bob").is_empty());
        assert_eq!(shown(&s.server("OK WHO 2")), ["Na sala (2): alice, bob"]);
    }

    /// A message with a control character is refused before it is sent,
    /// with the same sentence as the server's BAD_TEXT.
    #[test]
    fn control_characters_are_refused_locally() {
        let mut s = Script::in_room(Locale::En, "alice", "sala");
        let out = s.input("\x1b[2Jgotcha");
        assert!(sent(&out).is_empty());
        assert_eq!(
            shown(&out),
            [Msg::Error(ErrCode::BadText).render(Locale::En)]
        );
        assert!(sent(&s.input("/msg bob \u{9b}31m")).is_empty());
    }

    /// A SAY refused by the server (rate limit) is answered by ERR, which
    /// pops the SAY, so the next reply still finds its own request.
    #[test]
    fn say_errors_keep_replies_in_step() {
        let mut s = Script::in_room(Locale::En, "alice", "sala");
        s.input("one");
        s.input("/who");
        assert_shows(
            &s.server("ERR RATE_LIMITED Slow down."),
            "Too fast: wait a moment and try again.",
        );
        s.server("USER alice");
        assert_eq!(shown(&s.server("OK WHO 1")), ["In the room (1): alice"]);
    }

    /// Lines typed before a screen-deciding reply wait for it, then are
    /// handled on the screen that reply leads to.
    #[test]
    fn typed_ahead_lines_wait_for_the_reply() {
        let mut s = Script::new(Locale::En);
        s.input("2");
        assert_eq!(sent(&s.input("alice 123")), ["LOGIN alice 123"]);
        // Typed before OK LOGIN: "3" must mean "join", not "quit".
        assert!(s.input("3").is_empty());
        assert!(s.input("sala").is_empty());
        let out = s.server("OK LOGIN alice");
        assert_eq!(sent(&out), ["JOIN sala"]);
    }

    /// The end of the input quits once everything typed has been handled.
    #[test]
    fn end_of_input_quits() {
        let mut s = Script::new(Locale::En);
        s.input("2");
        s.input("alice 123");
        assert!(s.menu.on_input_end().is_empty()); // LOGIN still pending
        assert_eq!(sent(&s.server("OK LOGIN alice")), ["QUIT"]);
        assert_eq!(
            s.server("BYE QUIT Goodbye.").last(),
            Some(&Action::Quit(Ending::Quit))
        );
    }

    /// A BYE other than QUIT, or a lost connection, ends with ServerClosed
    /// and a sentence saying why.
    #[test]
    fn server_endings() {
        let mut s = Script::new(Locale::PtBr);
        let out = s.server("BYE SHUTDOWN Server shutting down.");
        assert_eq!(
            out,
            [
                Action::Show(
                    "O servidor está sendo desligado: rode o cliente de novo quando ele voltar."
                        .into()
                ),
                Action::Quit(Ending::ServerClosed)
            ]
        );
        let mut s = Script::new(Locale::En);
        assert_eq!(
            s.menu.on_closed(None).last(),
            Some(&Action::Quit(Ending::ServerClosed))
        );
    }

    /// A refused client certificate says what to do, in the user's
    /// language, and ends like a server close.
    #[test]
    fn refused_certificate_says_what_to_do() {
        let mut s = Script::new(Locale::PtBr);
        let out = s.menu.on_refused(Msg::ClientCertificateRequired);
        assert_eq!(
            out,
            [
                Action::Show(
                    "O servidor só aceita clientes com certificado: rode o cliente com \
                     --cert ARQUIVO --key ARQUIVO (seu professor fornece esses arquivos)."
                        .into()
                ),
                Action::Quit(Ending::ServerClosed)
            ]
        );
    }

    /// Invalid menu choices say so and show the menu again; 5 and 6 are
    /// invalid outside a room.
    #[test]
    fn invalid_choices() {
        let mut s = Script::logged_in(Locale::En, "alice");
        for choice in ["9", "", "5", "6", "abc"] {
            let out = s.input(choice);
            assert!(sent(&out).is_empty(), "{choice:?}");
            assert_shows(&out, "That is not one of the options: type its number.");
        }
        s.input("2");
        let out = s.input("sala x");
        assert!(sent(&out).is_empty());
        assert_shows(
            &out,
            "Type `name n` (public) or `name s password` (private), or an empty line to go back:",
        );
        assert_eq!(
            sent(&s.input("sala y pass word")),
            ["CREATE sala pass word"]
        );
    }

    /// Each moderation slash command sends its protocol line, in a room and
    /// at the main menu; one typed without what it needs shows its usage
    /// and sends nothing.
    #[test]
    fn moderation_commands_send_their_lines() {
        let mut s = Script::in_room(Locale::En, "prof", "sala");
        for (typed, line) in [
            ("/kick bob", "KICK bob"),
            (
                "/kick bob please stop flooding",
                "KICK bob please stop flooding",
            ),
            ("/ban bob", "BAN bob"),
            ("/ban bob 30", "BAN bob 30"),
            ("/ban bob 30 flooding", "BAN bob 30 flooding"),
            ("/ban bob flooding again", "BAN bob flooding again"),
            ("/unban bob", "UNBAN bob"),
            ("/bans", "BANS"),
            ("/topic", "TOPIC"),
            ("/topic   ", "TOPIC"),
            (
                "/topic Exam review until 10:00",
                "TOPIC Exam review until 10:00",
            ),
            ("/close other", "CLOSE other"),
            ("/suspend eve", "SUSPEND eve"),
            ("/suspend eve 1440 cheating", "SUSPEND eve 1440 cheating"),
            ("/unsuspend eve", "UNSUSPEND eve"),
            (
                "/announce class ends in five minutes",
                "ANNOUNCE class ends in five minutes",
            ),
            ("/KICK bob", "KICK bob"),
            ("/close", "CLOSE sala"),
        ] {
            assert_eq!(sent(&s.input(typed)), [line], "{typed}");
        }
        // Closing the user's own room decides the next screen, so what is
        // typed now waits for the replies (here, all refusals).
        assert!(s.input("/kick").is_empty());
        for _ in 0..17 {
            s.server("ERR NOT_ALLOWED Only the room's owner or an admin may.");
        }
        let out = s.server("ERR NOT_ALLOWED Only the room's owner or an admin may.");
        assert_shows(&out, "Usage: /kick <user> [reason]");
        assert!(s.menu.in_chat());
        for (typed, usage) in [
            ("/kick", "Usage: /kick <user> [reason]"),
            (
                "/ban",
                "Usage: /ban <user> [minutes] [reason] (minutes: 1 to 525600)",
            ),
            (
                "/ban bob 0",
                "Usage: /ban <user> [minutes] [reason] (minutes: 1 to 525600)",
            ),
            (
                "/ban bob 525601",
                "Usage: /ban <user> [minutes] [reason] (minutes: 1 to 525600)",
            ),
            ("/unban", "Usage: /unban <user>"),
            ("/unban bob carol", "Usage: /unban <user>"),
            ("/bans all", "Usage: /bans"),
            (
                "/suspend",
                "Usage: /suspend <user> [minutes] [reason] (minutes: 1 to 525600)",
            ),
            ("/unsuspend", "Usage: /unsuspend <user>"),
            ("/announce", "Usage: /announce <text>"),
            (
                "/close a b",
                "Usage: /close <room> (or /close alone, in the room to close)",
            ),
        ] {
            let out = s.input(typed);
            assert!(sent(&out).is_empty(), "{typed}");
            assert_eq!(shown(&out), [usage], "{typed}");
        }
        // Text the protocol refuses is refused here, with its sentence.
        let out = s.input("/announce \x1b[2Jhi");
        assert!(sent(&out).is_empty());
        assert_shows(&out, &Msg::Error(ErrCode::BadText).render(Locale::En));

        // At the main menu, a line that starts with / is a command too;
        // /close alone needs a room.
        let mut s = Script::logged_in(Locale::PtBr, "prof");
        assert_eq!(
            sent(&s.input("/announce a aula acabou")),
            ["ANNOUNCE a aula acabou"]
        );
        assert_eq!(sent(&s.input("/suspend eve 10")), ["SUSPEND eve 10"]);
        assert_eq!(sent(&s.input("/close sala")), ["CLOSE sala"]);
        let out = s.input("/close");
        assert!(sent(&out).is_empty());
        assert_eq!(
            shown(&out),
            ["Uso: /close <sala> (ou /close sozinho, na sala a fechar)"]
        );
        // Numbers still choose options.
        assert_eq!(sent(&s.input("1")), ["ROOMS"]);
    }

    /// The OK of each moderation command is a sentence in each language.
    #[test]
    fn moderation_replies_are_sentences() {
        for (locale, expected) in [
            (
                Locale::En,
                [
                    "You removed bob from the room.",
                    "bob is banned from sala for 30 minutes.",
                    "bob is banned from sala for 1 minute.",
                    "bob is banned from sala until the ban is lifted (/unban).",
                    "bob may join sala again.",
                    "eve is suspended for 1440 minutes: their sessions are closed and they cannot log in.",
                    "eve is suspended until the suspension is lifted (/unsuspend): their sessions are closed and they cannot log in.",
                    "eve may log in again.",
                    "Notice sent to 12 connections.",
                    "Notice sent to 1 connection.",
                    "The room other is closed: its messages, bans and topic are deleted.",
                ],
            ),
            (
                Locale::PtBr,
                [
                    "Você removeu bob da sala.",
                    "bob fica fora de sala por 30 minutos.",
                    "bob fica fora de sala por 1 minuto.",
                    "bob fica fora de sala até o banimento ser retirado (/unban).",
                    "bob pode entrar de novo em sala.",
                    "A conta eve está suspensa por 1440 minutos: as sessões dela foram encerradas e ela não consegue entrar.",
                    "A conta eve está suspensa até a suspensão ser retirada (/unsuspend): as sessões dela foram encerradas e ela não consegue entrar.",
                    "A conta eve pode entrar de novo.",
                    "Aviso enviado a 12 conexões.",
                    "Aviso enviado a 1 conexão.",
                    "A sala other foi fechada: as mensagens, os banimentos e o tópico dela foram apagados.",
                ],
            ),
        ] {
            let mut s = Script::in_room(locale, "prof", "sala");
            let mut got = Vec::new();
            for (typed, reply) in [
                ("/kick bob", "OK KICK bob"),
                ("/ban bob 30", "OK BAN bob"),
                ("/ban bob 1 again", "OK BAN bob"),
                ("/ban bob", "OK BAN bob"),
                ("/unban bob", "OK UNBAN bob"),
                ("/suspend eve 1440", "OK SUSPEND eve"),
                ("/suspend eve", "OK SUSPEND eve"),
                ("/unsuspend eve", "OK UNSUSPEND eve"),
                ("/announce hi", "OK ANNOUNCE 12"),
                ("/announce hi", "OK ANNOUNCE 1"),
                ("/close other", "OK CLOSE other"),
            ] {
                assert_eq!(sent(&s.input(typed)).len(), 1, "{typed}");
                got.extend(shown(&s.server(reply)));
            }
            assert_eq!(got, expected);
            // Still chatting in the room.
            assert!(s.menu.in_chat());
            assert_eq!(sent(&s.input("oi")), ["SAY oi"]);
        }
    }

    /// A refused moderation command says who may use it; `/kick` of
    /// someone who is not in the room says so.
    #[test]
    fn moderation_refusals_say_who_may() {
        for (locale, owner, admin, member) in [
            (
                Locale::En,
                "Only the room's owner or an admin may do that, and nobody may kick or ban \
                 themselves or an admin.",
                "Only an admin may do that, and nobody may suspend themselves or an admin.",
                "bob is not in this room.",
            ),
            (
                Locale::PtBr,
                "Só o dono da sala ou um administrador pode fazer isso, e ninguém pode remover ou \
                 banir a si mesmo nem um administrador.",
                "Só um administrador pode fazer isso, e ninguém pode suspender a si mesmo nem um \
                 administrador.",
                "bob não está nesta sala.",
            ),
        ] {
            let mut s = Script::in_room(locale, "alice", "sala");
            for typed in [
                "/kick bob",
                "/ban bob",
                "/unban bob",
                "/bans",
                "/topic x",
                "/close",
            ] {
                s.input(typed);
                assert_eq!(
                    shown(&s.server("ERR NOT_ALLOWED Only the room's owner or an admin may.")),
                    [owner],
                    "{typed}"
                );
            }
            for typed in ["/suspend bob", "/unsuspend bob", "/announce hi"] {
                s.input(typed);
                assert_eq!(
                    shown(&s.server("ERR NOT_ALLOWED Only an admin may.")),
                    [admin],
                    "{typed}"
                );
            }
            s.input("/kick bob");
            assert_eq!(shown(&s.server("ERR NO_SUCH_USER No such user.")), [member]);
            s.input("/unban bob");
            assert_eq!(
                shown(&s.server("ERR NOT_BANNED bob is not banned.")),
                [Msg::Error(ErrCode::NotBanned).render(locale)]
            );
            assert!(s.menu.in_chat());
        }
    }

    /// `/bans` collects the BANNED lines into one list: who, until when
    /// (readable, in UTC) or until lifted, and by whom.
    #[test]
    fn bans_are_listed() {
        for (locale, list, empty) in [
            (
                Locale::En,
                [
                    "Bans in sala (2):",
                    "  bob until 2026-11-30 08:50 UTC, by prof",
                    "  eve until lifted, by carol",
                ],
                "Nobody is banned from sala.",
            ),
            (
                Locale::PtBr,
                [
                    "Banimentos em sala (2):",
                    "  bob até 30/11/2026 08:50 UTC, por prof",
                    "  eve até ser retirado, por carol",
                ],
                "Ninguém está banido de sala.",
            ),
        ] {
            let mut s = Script::in_room(locale, "prof", "sala");
            assert_eq!(sent(&s.input("/bans")), ["BANS"]);
            assert!(s
                .server("BANNED sala bob 2026-11-30T08:50:09.123Z prof")
                .is_empty());
            assert!(s.server("BANNED sala eve forever carol").is_empty());
            assert_eq!(shown(&s.server("OK BANS 2")), list);
            s.input("/bans");
            assert_eq!(shown(&s.server("OK BANS 0")), [empty]);
        }
    }

    /// The topic: shown after the history on joining, as the answer to
    /// `/topic`, and when someone sets it.
    #[test]
    fn topic_is_shown() {
        for (locale, entered, current, none, changed) in [
            (
                Locale::En,
                "You are in sala. Type to chat; /menu opens the menu, /leave leaves the room, \
                 /help lists the commands.",
                "Topic of sala: Exam review (set by prof, 2026-11-30 07:50 UTC)",
                "other has no topic.",
                "*** prof set the topic: Exam on Friday ***",
            ),
            (
                Locale::PtBr,
                "Você está na sala sala. Digite para conversar; /menu abre o menu, /leave sai da \
                 sala, /help lista os comandos.",
                "Tópico de sala: Exam review (definido por prof em 30/11/2026 07:50 UTC)",
                "A sala other não tem tópico.",
                "*** prof definiu o tópico: Exam on Friday ***",
            ),
        ] {
            let mut s = Script::logged_in(locale, "bob");
            s.input("3");
            assert_eq!(sent(&s.input("SALA")), ["JOIN SALA"]);
            assert!(s
                .server("HISTORY sala 2026-11-30T07:49:00.000Z prof hello")
                .is_empty());
            assert!(s
                .server("TOPIC sala prof 2026-11-30T07:50:09.123Z Exam review")
                .is_empty());
            let out = shown(&s.server("OK JOIN sala"));
            assert_eq!(out[0], entered);
            assert_eq!(out.last().map(String::as_str), Some(current));

            // /topic reads it.
            assert_eq!(sent(&s.input("/topic")), ["TOPIC"]);
            assert!(s
                .server("TOPIC sala prof 2026-11-30T07:50:09.123Z Exam review")
                .is_empty());
            assert_eq!(shown(&s.server("OK TOPIC")), [current]);

            // Set by someone: an event.
            assert_eq!(
                shown(&s.server("TOPIC sala prof 2026-11-30T08:00:00.000Z Exam on Friday")),
                [changed]
            );
            // Set by the user: the event is the confirmation; OK adds nothing.
            assert_eq!(
                sent(&s.input("/topic Exam on Friday")),
                ["TOPIC Exam on Friday"]
            );
            assert_eq!(
                shown(&s.server("TOPIC sala prof 2026-11-30T08:00:00.000Z Exam on Friday")),
                [changed]
            );
            assert!(s.server("OK TOPIC").is_empty());

            // A room without a topic.
            let mut s = Script::in_room(locale, "bob", "other");
            s.input("/topic");
            assert_eq!(shown(&s.server("OK TOPIC")), [none]);
        }
    }

    /// Kicked: the user sees who did it and why, and is back at the main
    /// menu in no room; the others see that someone was removed.
    #[test]
    fn kicked_goes_back_to_the_menu() {
        for (locale, others, you, you_no_reason, menu_title) in [
            (
                Locale::En,
                "*** bob was removed from the room. ***",
                "*** You were removed from sala by prof: please stop flooding ***",
                "*** You were removed from sala by prof. ***",
                "--- Main menu ---",
            ),
            (
                Locale::PtBr,
                "*** bob foi removido da sala. ***",
                "*** Você foi removido da sala sala por prof: please stop flooding ***",
                "*** Você foi removido da sala sala por prof. ***",
                "--- Menu principal ---",
            ),
        ] {
            let mut s = Script::in_room(locale, "alice", "sala");
            assert_eq!(shown(&s.server("LEFT sala bob kick")), [others]);

            let out = s.server("KICKED sala prof please stop flooding");
            assert_eq!(shown(&out)[..2], [you, menu_title]);
            assert_hides(&out, "5 -");
            assert!(!s.menu.in_chat());
            // In no room: 5 is not an option, 3 joins.
            assert_shows(&s.input("5"), &Msg::InvalidOption.render(locale));
            s.input("3");
            assert_eq!(sent(&s.input("sala")), ["JOIN sala"]);
            s.server("OK JOIN sala");
            assert!(s.menu.in_chat());

            // Without a reason; while at the main menu the menu is shown
            // again, without 5 and 6.
            s.input("/menu");
            let out = s.server("KICKED sala prof");
            assert_eq!(shown(&out)[..2], [you_no_reason, menu_title]);
            assert_hides(&out, "6 -");
        }
    }

    /// A closed room: everybody in it sees who closed it and is back at
    /// the main menu; the user who closed it also gets the OK.
    #[test]
    fn closed_goes_back_to_the_menu() {
        let mut s = Script::in_room(Locale::PtBr, "bob", "sala");
        let out = s.server("CLOSED sala prof");
        assert_eq!(
            shown(&out)[..2],
            [
                "*** A sala sala foi fechada por prof. ***",
                "--- Menu principal ---"
            ]
        );
        assert_hides(&out, "5 -");
        assert!(!s.menu.in_chat());

        // The owner closes their own room from the chat.
        let mut s = Script::in_room(Locale::En, "prof", "sala");
        assert_eq!(sent(&s.input("/close")), ["CLOSE sala"]);
        // Typed before the reply: waits, since the room may be gone.
        assert!(s.input("still here?").is_empty());
        let out = s.server("CLOSED sala prof");
        assert_eq!(
            shown(&out)[..2],
            [
                "*** The room sala was closed by prof. ***",
                "--- Main menu ---"
            ]
        );
        let out = s.server("OK CLOSE sala");
        assert_shows(
            &out,
            "The room sala is closed: its messages, bans and topic are deleted.",
        );
        // The line typed ahead is now a (wrong) menu choice, not a SAY.
        assert!(sent(&out).is_empty());
        assert_shows(&out, "That is not one of the options: type its number.");

        // CLOSED of another room (not ours) changes nothing.
        let mut s = Script::in_room(Locale::En, "bob", "sala");
        assert_eq!(
            shown(&s.server("CLOSED other prof")),
            ["*** The room other was closed by prof. ***"]
        );
        assert!(s.menu.in_chat());
    }

    /// An announcement is marked as a notice, distinct from room messages,
    /// wherever the user is.
    #[test]
    fn notices_stand_out() {
        let mut s = Script::in_room(Locale::En, "bob", "sala");
        assert_eq!(
            shown(&s.server("NOTICE 2026-11-30T07:50:09.123Z prof class ends in five minutes")),
            ["[NOTICE from prof]: class ends in five minutes"]
        );
        let mut s = Script::logged_in(Locale::PtBr, "bob");
        assert_eq!(
            shown(&s.server("NOTICE 2026-11-30T07:50:09.123Z prof a aula acabou")),
            ["[AVISO de prof]: a aula acabou"]
        );
    }

    /// The server's HELP of a plain user (today's server, every line):
    /// `/help` shows the commands everybody has, and none of the server's
    /// English lines.
    #[test]
    fn help_without_moderation() {
        let mut s = Script::in_room(Locale::En, "bob", "sala");
        assert_eq!(sent(&s.input("/help")), ["HELP"]);
        for line in [
            "INFO Commands (words in <> are yours, [] is optional; keywords in any case):",
            "INFO REGISTER <user> <password>   create an account",
            "INFO LOGIN <user> <password>      log in (offline direct messages follow)",
            "INFO ROOMS                        list the rooms",
            "INFO JOIN <room> [<password>]     enter a room (leaving the current one)",
            "INFO SAY <text>                   talk to everyone in your room",
            "INFO DM <user> <text>             send a direct message (kept if offline)",
            "INFO TOPIC                        show the room's topic",
            "INFO HELP                         this text",
            "INFO QUIT                         say goodbye and disconnect",
        ] {
            assert!(s.server(line).is_empty(), "{line}");
        }
        let out = shown(&s.server("OK HELP"));
        assert_eq!(
            out,
            [
                "Chat commands:",
                "  /menu               open the menu (you stay in the room)",
                "  /leave              leave the room",
                "  /who                who is in the room",
                "  /msg <user> <text>  send a direct message",
                "  /topic              show the room's topic",
                "  /help               this help",
                "  /quit               quit",
                "Anything else is said in the room. At the main menu, a line that starts with / \
                 is one of these commands.",
            ]
        );
        // Chatting did not wait for the help.
        assert!(s.menu.in_chat());
    }

    /// The server's HELP of a room's owner, then of an admin: `/help`
    /// lists exactly the moderation commands that appeared, in Portuguese
    /// too; an error still shows the commands everybody has.
    #[test]
    fn help_with_moderation() {
        let owner = [
            "INFO SAY <text>                   talk to everyone in your room",
            "INFO TOPIC                        show the room's topic",
            "INFO KICK <user> [<reason>]       put a member out of your room",
            "INFO BAN <user> [<minutes>] [<reason>]  keep a user out of your room",
            "INFO UNBAN <user>                 lift a ban",
            "INFO BANS                         list your room's bans",
            "INFO TOPIC <topic>                set your room's topic",
            "INFO CLOSE <room>                 delete a room",
        ];
        let admin = [
            "INFO SUSPEND <user> [<minutes>] [<reason>]  keep a user from logging in",
            "INFO UNSUSPEND <user>             lift a suspension",
            "INFO ANNOUNCE <text>              tell every connection",
        ];

        let mut s = Script::in_room(Locale::En, "alice", "sala");
        s.input("/help");
        for line in owner {
            assert!(s.server(line).is_empty());
        }
        let out = shown(&s.server("OK HELP"));
        assert!(
            out.contains(
                &"  /kick <user> [reason]           put someone out of the room".to_string()
            ),
            "{out:#?}"
        );
        assert!(
            out.contains(
                &"  /topic [text]                   show the room's topic, or set it".to_string()
            ),
            "{out:#?}"
        );
        assert!(out
            .iter()
            .any(|l| l.starts_with("  /ban <user> [minutes] [reason]  ")));
        assert!(out.iter().any(|l| l.starts_with("  /unban <user> ")));
        assert!(out.iter().any(|l| l.starts_with("  /bans ")));
        assert!(out.iter().any(|l| l.starts_with("  /close [room] ")));
        assert!(!out.iter().any(|l| l.starts_with("  /topic  ")));
        for admin_only in ["  /suspend", "  /unsuspend", "  /announce"] {
            assert!(!out.iter().any(|l| l.starts_with(admin_only)), "{out:#?}");
        }

        let mut s = Script::logged_in(Locale::PtBr, "prof");
        assert_eq!(sent(&s.input("/help")), ["HELP"]);
        // An admin's list, in another order: shown in the usual order.
        for line in admin.iter().rev().chain(owner.iter()) {
            assert!(s.server(line).is_empty());
        }
        let out = shown(&s.server("OK HELP"));
        let commands: Vec<&str> = out
            .iter()
            .filter_map(|l| l.trim_start().split(' ').next())
            .filter(|w| w.starts_with('/'))
            .collect();
        assert_eq!(
            commands,
            [
                "/menu",
                "/leave",
                "/who",
                "/msg",
                "/kick",
                "/ban",
                "/unban",
                "/bans",
                "/topic",
                "/close",
                "/suspend",
                "/unsuspend",
                "/announce",
                "/help",
                "/quit"
            ]
        );
        assert!(
            out.contains(
                &"  /announce <texto>                      um aviso para todos os conectados"
                    .to_string()
            ),
            "{out:#?}"
        );

        // HELP refused (too many lines): the commands everybody has.
        s.input("/help");
        let out = shown(&s.server("ERR RATE_LIMITED Slow down."));
        assert_eq!(
            out[0],
            Msg::Error(ErrCode::RateLimited).render(Locale::PtBr)
        );
        assert_eq!(out[1], "Comandos do chat:");
        assert!(!out.iter().any(|l| l.contains("/kick")));
    }

    /// A line whose first word the client does not know is ignored, and
    /// replies keep finding their requests; an unknown LEFT reason reads
    /// as leave; an ERR or BYE with an unknown code still answers.
    #[test]
    fn unknown_lines_are_ignored() {
        let mut s = Script::in_room(Locale::En, "alice", "sala");
        s.input("/who");
        assert!(s.menu.on_unknown_line("FROBNICATE sala 42").is_empty());
        assert!(s.menu.on_unknown_line("REACTION sala bob :+1:").is_empty());
        assert!(s.menu.on_unknown_line("").is_empty());
        s.server("USER alice");
        assert_eq!(shown(&s.server("OK WHO 1")), ["In the room (1): alice"]);
        assert_eq!(
            shown(&s.server("LEFT sala bob vanished")),
            ["*** bob left the room. ***"]
        );

        // A known word that does not parse is shown as it is.
        assert_eq!(
            shown(&s.menu.on_unknown_line("JOINED sala")),
            ["(the server sent a line this client does not understand: JOINED sala)"]
        );

        // ERR with a new code answers the oldest request, with its text.
        s.input("/msg bob hi");
        s.input("/who");
        assert_eq!(
            shown(&s.menu.on_unknown_line("ERR SHINY_NEW_CODE Not today.")),
            ["The server refused that: Not today."]
        );
        s.server("USER alice");
        assert_eq!(shown(&s.server("OK WHO 1")), ["In the room (1): alice"]);

        // BYE with a new reason ends the session.
        let out = s.menu.on_unknown_line("BYE MAINTENANCE Back at noon.");
        assert_eq!(
            out,
            [
                Action::Show("The server closed the session: Back at noon.".into()),
                Action::Quit(Ending::ServerClosed)
            ]
        );
    }

    /// BANNED on join and SUSPENDED on login: the sentence, then the
    /// server's text, which names the end; BYE SUSPENDED ends the session
    /// with its sentence and the server's text, which names the end too.
    #[test]
    fn banned_and_suspended() {
        let mut s = Script::logged_in(Locale::PtBr, "bob");
        s.input("3");
        s.input("sala");
        let out = s.server("ERR BANNED Banned from sala until 2026-11-30T08:50:09.123Z.");
        assert_shows(
            &out,
            "Um banimento impede você de entrar nessa sala. O servidor diz: Banned from sala \
             until 2026-11-30T08:50:09.123Z.",
        );
        assert_shows(&out, "--- Menu principal ---");

        let mut s = Script::new(Locale::En);
        s.input("2");
        s.input("bob 123");
        let out = s.server("ERR SUSPENDED Suspended until lifted.");
        assert_shows(
            &out,
            "Your account is suspended: you cannot log in while it lasts. The server says: \
             Suspended until lifted.",
        );
        assert_shows(&out, "2 - Log in");

        let mut s = Script::in_room(Locale::En, "bob", "sala");
        let out = s.server(
            "BYE SUSPENDED An admin suspended this account until 2026-11-30T08:50:09.123Z.",
        );
        assert_eq!(
            out,
            [
                Action::Show(
                    "An admin suspended your account; this session is closed. The server says: \
                     An admin suspended this account until 2026-11-30T08:50:09.123Z."
                        .into()
                ),
                Action::Quit(Ending::ServerClosed)
            ]
        );
        assert!(s.menu.is_quitting());
    }
}

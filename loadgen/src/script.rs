//! The commands a load-generator connection sends before the load starts:
//! `REGISTER`, `LOGIN`, `CREATE`, `JOIN` (and `QUIT` for the login loop),
//! and the replies that count as success.
//!
//! The protocol gives every line exactly one final reply (`OK`, `ERR`,
//! `BYE`, `PONG`), in order, with events (`MSG`, `JOINED`, `LEFT`, `DM`)
//! and data lines (`HISTORY`, …) possibly in between. So a script is a queue
//! of the steps sent and not yet answered: each final reply answers the
//! oldest one. Everything that is not a final reply is ignored here.
//!
//! A rerun against the same database finds its names taken, so
//! `USER_EXISTS` and `ROOM_EXISTS` count as success (the names carry a
//! per-run prefix anyway, see [`clock::run_id`](super::clock::run_id)).
//!
//! `JOIN` answered `NO_SUCH_ROOM` is retried (up to [`JOIN_RETRIES`]
//! times): when many members `CREATE` one room at once, the server may say
//! `ROOM_EXISTS` to one (the database has the room) before the creator's
//! thread has made the room visible to `JOIN`. The retries are counted.

use std::collections::VecDeque;

use super::conn::Conn;
use chat::protocol::{ByeReason, ErrCode, ServerLine};

/// How many times a `JOIN` answered `NO_SUCH_ROOM` is sent again.
pub const JOIN_RETRIES: u32 = 1000;

/// The password of every load-generator account.
pub const PASSWORD: &str = "loadgen";

/// One command of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `REGISTER <user> <password>`: `OK REGISTER` or `ERR USER_EXISTS`.
    Register,
    /// `LOGIN <user> <password>`: `OK LOGIN`.
    Login,
    /// `CREATE <room>`: `OK CREATE` or `ERR ROOM_EXISTS`.
    Create,
    /// `JOIN <room>`: `OK JOIN` (after any `HISTORY`).
    Join,
    /// `QUIT`: `BYE QUIT`.
    Quit,
}

/// How a script is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still waiting for replies (or the line was not a reply).
    Running,
    /// Every step got its expected reply.
    Done,
    /// A reply was not the expected one: the line, for the report.
    Failed(String),
}

/// A queue of steps for one connection.
#[derive(Debug, Clone)]
pub struct Script {
    /// The steps not sent yet.
    todo: VecDeque<Step>,
    /// The steps sent and not answered yet, oldest first.
    sent: VecDeque<Step>,
    /// Send every step at once after `HELLO` (pipelining, which the
    /// protocol allows) rather than one per reply, as a person would.
    pipelined: bool,
    /// The user name.
    user: String,
    /// The room, for `CREATE` and `JOIN`.
    room: String,
    /// True once `HELLO` arrived.
    greeted: bool,
    /// `JOIN`s sent again after `NO_SUCH_ROOM` (see the module doc).
    pub join_retries: u32,
}

impl Script {
    /// A script of `steps` for `user` (and `room`, if it has room steps).
    pub fn new(steps: &[Step], user: String, room: String, pipelined: bool) -> Script {
        Script {
            todo: steps.iter().copied().collect(),
            sent: VecDeque::new(),
            pipelined,
            user,
            room,
            greeted: false,
            join_retries: 0,
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sends the next step(s).
    fn send_more(&mut self, conn: &mut Conn) {
        while let Some(step) = self.todo.pop_front() {
            let line = match step {
                Step::Register => format!("REGISTER {} {PASSWORD}", self.user),
                Step::Login => format!("LOGIN {} {PASSWORD}", self.user),
                Step::Create => format!("CREATE {}", self.room),
                Step::Join => format!("JOIN {}", self.room),
                Step::Quit => "QUIT".to_owned(),
            };
            conn.send(&line);
            self.sent.push_back(step);
            if !self.pipelined {
                break;
            }
        }
    }

    /// Handles one line from the server.
    pub fn on_line(&mut self, line: &str, conn: &mut Conn) -> Progress {
        let Some(parsed) = ServerLine::parse(line) else {
            return Progress::Failed(format!("not a protocol line: {line}"));
        };
        if !self.greeted {
            return match parsed {
                ServerLine::Hello { .. } => {
                    self.greeted = true;
                    self.send_more(conn);
                    Progress::Running
                }
                _ => Progress::Failed(line.to_owned()),
            };
        }
        if !parsed.is_final() {
            return Progress::Running; // an event or a data line
        }
        let Some(step) = self.sent.pop_front() else {
            return Progress::Failed(format!("reply to nothing: {line}"));
        };
        let ok = match (step, &parsed) {
            (Step::Register, ServerLine::Ok { command, .. }) => command == "REGISTER",
            (Step::Register, ServerLine::Err { code, .. }) => *code == ErrCode::UserExists,
            (Step::Login, ServerLine::Ok { command, .. }) => command == "LOGIN",
            (Step::Create, ServerLine::Ok { command, .. }) => command == "CREATE",
            (Step::Create, ServerLine::Err { code, .. }) => *code == ErrCode::RoomExists,
            (Step::Join, ServerLine::Ok { command, .. }) => command == "JOIN",
            (Step::Quit, ServerLine::Bye { reason, .. }) => *reason == ByeReason::Quit,
            _ => false,
        };
        let retry = step == Step::Join
            && self.join_retries < JOIN_RETRIES
            && matches!(
                parsed,
                ServerLine::Err {
                    code: ErrCode::NoSuchRoom,
                    ..
                }
            );
        if retry {
            self.join_retries += 1;
            self.todo.push_front(Step::Join);
        } else if !ok {
            return Progress::Failed(line.to_owned());
        }
        self.send_more(conn);
        if self.todo.is_empty() && self.sent.is_empty() {
            Progress::Done
        } else {
            Progress::Running
        }
    }
}

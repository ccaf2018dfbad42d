//! The UI loop: the only code of the client that writes to the terminal.
//!
//! Three sources produce things to show or do: the person typing (the input
//! thread), the server (the network thread), and time (waiting for `BYE`
//! after `QUIT`). If each printed on its own, a message arriving while a
//! menu is printed would land in the middle of it. So the other threads
//! only *send* [`Event`]s into one channel, and this loop, alone, feeds them
//! to the [`Menu`] and carries out its [`Action`]s: it prints, it sends
//! protocol lines to the network thread, it ends the session. One printer
//! for all output is what keeps it whole, as in tools like ripgrep that
//! serialise all their output in one place.
//!
//! Every line is made safe for the terminal here, at the last step before
//! it is written ([`sanitize`]), so no path (a chat message, a name, a
//! server's error text) can forget it.

use std::io;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::menu::{Action, Ending, Menu};
use super::sanitize::sanitize;
use crate::i18n::{Locale, Msg};
use crate::protocol::ServerLine;

/// How long to wait for `BYE QUIT` after sending `QUIT` before leaving
/// anyway. The server answers at once; this only matters when it is gone.
pub const QUIT_WAIT: Duration = Duration::from_secs(2);

/// Everything that can happen to the client, in the one channel the UI
/// loop reads.
#[derive(Debug)]
pub enum Event {
    /// The user typed a line (without its line end).
    Input(String),
    /// The input ended (Ctrl-D, Ctrl-C, end of a pipe).
    InputEnd,
    /// A line from the server.
    Server(ServerLine),
    /// A line from the server that is not valid protocol.
    Unparsed(String),
    /// Something from the server that is not a line (too long, not
    /// UTF-8), described in a few words.
    Garbled(String),
    /// The connection ended; the text says how, when it was not clean.
    Closed(Option<String>),
    /// The server refused this client's certificate, or its lack of one,
    /// with a TLS alert; the message says what to do.
    Refused(Msg),
}

/// Where the UI's text goes: stdout, or the line editor's printer (which
/// prints above the line being typed).
pub trait Output {
    /// Writes `text`, which is one or more complete lines, each ending with
    /// a newline.
    ///
    /// # Errors
    ///
    /// When the terminal or pipe cannot be written.
    fn write_lines(&mut self, text: &str) -> io::Result<()>;
}

/// The UI loop's state.
pub struct Ui {
    /// The client's behaviour.
    menu: Menu,
    /// The language of the UI's own messages.
    locale: Locale,
    /// Where text goes.
    output: Box<dyn Output>,
    /// Protocol lines for the network thread.
    to_server: Sender<String>,
    /// The one channel the loop reads.
    events: Receiver<Event>,
}

impl Ui {
    /// A UI loop around `menu`.
    pub fn new(
        menu: Menu,
        locale: Locale,
        output: Box<dyn Output>,
        to_server: Sender<String>,
        events: Receiver<Event>,
    ) -> Ui {
        Ui {
            menu,
            locale,
            output,
            to_server,
            events,
        }
    }

    /// Shows `intro` (the TLS lines), then runs until the session ends.
    pub fn run(mut self, intro: &[Msg]) -> Ending {
        let mut text = String::new();
        for msg in intro {
            text.push_str(&msg.render(self.locale));
            text.push('\n');
        }
        if self.print(&text).is_err() {
            return Ending::Quit;
        }
        let start = self.menu.on_start();
        if let Some(ending) = self.apply(start) {
            return ending;
        }

        // Set once QUIT has been sent: when to stop waiting for BYE.
        let mut quit_deadline: Option<Instant> = None;
        loop {
            let event = match quit_deadline {
                None => self
                    .events
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => self.events.recv_deadline(deadline),
            };
            let actions = match event {
                Ok(Event::Input(line)) => self.menu.on_input(&line),
                Ok(Event::InputEnd) => self.menu.on_input_end(),
                Ok(Event::Server(line)) => self.menu.on_server(&line),
                Ok(Event::Unparsed(line)) => self.menu.on_unknown_line(&line),
                Ok(Event::Garbled(what)) => self.menu.on_garbled(&what),
                Ok(Event::Closed(detail)) => self.menu.on_closed(detail.as_deref()),
                Ok(Event::Refused(why)) => self.menu.on_refused(why),
                // QUIT was sent and no BYE came in time: leave anyway.
                Err(RecvTimeoutError::Timeout) => return Ending::Quit,
                // Every sender is gone: nothing more can happen.
                Err(RecvTimeoutError::Disconnected) => self.menu.on_closed(None),
            };
            if let Some(ending) = self.apply(actions) {
                return ending;
            }
            if self.menu.is_quitting() && quit_deadline.is_none() {
                quit_deadline = Some(Instant::now() + QUIT_WAIT);
            }
        }
    }

    /// Carries out the menu's actions in order; returns the ending if one
    /// of them ends the session.
    fn apply(&mut self, actions: Vec<Action>) -> Option<Ending> {
        let mut text = String::new();
        let mut ending = None;
        for action in actions {
            match action {
                Action::Show(shown) => {
                    text.push_str(&shown);
                    text.push('\n');
                }
                // If the network thread is gone, its Closed event is on
                // its way and will end the session; nothing to do here.
                Action::Send(line) => {
                    let _ = self.to_server.send(line);
                }
                Action::Quit(how) => {
                    ending = Some(how);
                    break;
                }
            }
        }
        // If the terminal (or the pipe reading our output) is gone, nobody
        // can see anything: end the session as if the user had quit.
        if self.print(&text).is_err() {
            return Some(Ending::Quit);
        }
        ending
    }

    /// Writes `text` with every line sanitized.
    fn print(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut safe = String::with_capacity(text.len());
        for line in text.lines() {
            safe.push_str(&sanitize(line));
            safe.push('\n');
        }
        self.output.write_lines(&safe)
    }
}

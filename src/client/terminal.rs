//! The terminal's two modes, and the input thread.
//!
//! * **A terminal** (stdin and stdout are both TTYs): `rustyline` edits the
//!   line being typed, and the UI prints through rustyline's *external
//!   printer*, which clears the half-typed line, prints the message above
//!   it and redraws the line. Another user's message never lands in the
//!   middle of what you are typing. No history is kept: menu lines carry
//!   passwords.
//! * **A pipe or a file** (tests, `printf ... | client`, `client > log`):
//!   plain lines in, plain lines out, no prompt, no escape sequences.
//!
//! Either way a separate input thread blocks on reading, and sends each
//! line to the UI loop as an [`Event::Input`]; the end of the input (Ctrl-D,
//! Ctrl-C, the end of a pipe) is [`Event::InputEnd`].
//!
//! rustyline puts the terminal in raw mode while it reads a line. If the
//! client ends while the input thread is inside `readline` (the server shut
//! down, say), the process would exit with the terminal still raw: no echo,
//! no line editing in the shell afterwards. [`TerminalGuard`] saves the
//! terminal's settings at the start and puts them back when dropped, on
//! every way out of [`run`](super::run).

use std::io::{self, BufRead, IsTerminal, Write};
use std::thread;

use crossbeam_channel::Sender;
use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};

use super::ui::{Event, Output};

/// The prompt of the line editor. Menus print their own question on the
/// line above, so the prompt is just a marker.
const PROMPT: &str = "> ";

/// True when the client talks to a person at a terminal.
pub fn is_interactive() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// Starts the input thread, and returns where the UI should print.
///
/// With `interactive`, tries rustyline first and falls back to plain lines
/// if the terminal cannot be set up.
///
/// # Errors
///
/// When the thread cannot be spawned.
pub fn start(events: Sender<Event>, interactive: bool) -> io::Result<Box<dyn Output>> {
    if interactive {
        if let Ok(mut editor) = DefaultEditor::new() {
            if let Ok(printer) = editor.create_external_printer() {
                thread::Builder::new()
                    .name("client-input".into())
                    .spawn(move || read_edited(editor, &events))?;
                return Ok(Box::new(PrinterOutput(Box::new(printer))));
            }
        }
    }
    thread::Builder::new()
        .name("client-input".into())
        .spawn(move || read_plain(&events))?;
    Ok(Box::new(StdoutOutput))
}

/// The input thread with rustyline: one `readline` per line.
fn read_edited(mut editor: DefaultEditor, events: &Sender<Event>) {
    loop {
        let event = match editor.readline(PROMPT) {
            Ok(line) => Event::Input(line),
            // Ctrl-C and Ctrl-D both mean "I am done": quit politely.
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Event::InputEnd,
            Err(_) => Event::InputEnd,
        };
        let ended = matches!(event, Event::InputEnd);
        if events.send(event).is_err() || ended {
            return;
        }
    }
}

/// The input thread without a terminal: plain lines from stdin. Bytes that
/// are not UTF-8 are replaced (U+FFFD), not fatal.
fn read_plain(events: &Sender<Event>) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let event = match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => Event::InputEnd,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                Event::Input(text.trim_end_matches('\n').to_owned())
            }
        };
        let ended = matches!(event, Event::InputEnd);
        if events.send(event).is_err() || ended {
            return;
        }
    }
}

/// Output to stdout, flushed after each batch so a pipe sees it at once.
struct StdoutOutput;

impl Output for StdoutOutput {
    fn write_lines(&mut self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }
}

/// Output through rustyline, above the line being edited.
struct PrinterOutput(Box<dyn ExternalPrinter + Send>);

impl Output for PrinterOutput {
    fn write_lines(&mut self, text: &str) -> io::Result<()> {
        self.0.print(text.to_owned()).map_err(io::Error::other)
    }
}

/// Restores the terminal's settings when dropped (see the module doc).
#[derive(Debug)]
pub struct TerminalGuard {
    /// The settings at start, when stdin is a terminal (Unix only).
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl TerminalGuard {
    /// Saves the terminal's current settings, if stdin is a terminal.
    pub fn save() -> TerminalGuard {
        TerminalGuard {
            #[cfg(unix)]
            saved: nix::sys::termios::tcgetattr(io::stdin()).ok(),
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            use nix::sys::termios::{tcsetattr, SetArg};
            let _ = tcsetattr(io::stdin(), SetArg::TCSADRAIN, saved);
        }
        // The editor's prompt (and perhaps a half-typed line) is on the last
        // line: end it, so the shell's prompt starts on a line of its own.
        let _ = writeln!(io::stdout());
    }
}

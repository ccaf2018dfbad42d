//! The handle every other thread uses to reach one connected client: its
//! outbox, its "closing" flag, and the room it is in.
//!
//! A [`Client`] is shared (`Arc<Client>`) between the client's own reader
//! thread, its writer thread, the hub (rooms and the online-users map) and
//! whoever broadcasts to it. None of them ever touches the client's socket
//! to *write*: they put lines into the **outbox**, a queue bounded in lines
//! and in bytes (see `outbox.rs`) that only the writer thread drains.
//!
//! ```text
//!  any thread ──send──▶ [ outbox: ≤ queue_lines, ≤ queue_bytes ] ──recv──▶ writer thread ──▶ socket
//! ```
//!
//! Why a send never waits: waiting on a full outbox would block the
//! *sender* (another client's thread, possibly holding a room's lock) until
//! this client reads. One student who stops reading would freeze the room.
//! So a full outbox is a verdict instead: this client is a slow consumer,
//! and it is closed with `BYE SLOW_CONSUMER`. No client ever waits for
//! another.
//!
//! The client's *own* replies are the exception ([`Client::answer`]): they
//! never make it a slow consumer. Its reader thread queues them, and it
//! waits for *its own* writer instead ([`Client::wait_for_writer`]) before
//! reading on: a client that asks faster than it reads is slowed down by
//! its own TCP window, not dropped.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::TrySendError;

use rustls::ServerConnection;

use crate::doorbell::Wake;
use crate::oneshot;
use crate::protocol::{ByeReason, Name, ServerLine};

use super::hub::Room;
use super::outbox::{self, Outbox};
use super::writer::{Framing, Pen};

/// One item of an outbox.
#[derive(Debug)]
pub enum Outgoing {
    /// A line (with its LF) shared by many recipients: a broadcast is
    /// formatted once and every member's outbox gets a reference-counted
    /// pointer to the same bytes, not a copy.
    Shared(Arc<str>),
    /// A line (with its LF) for this client only: a reply.
    Owned(String),
    /// A `DM` line (with its LF) acknowledged to its sender as delivered.
    /// It must not be lost: a writer that cannot write it hands it back
    /// when it stops (see `writer::run`), and it is stored.
    Dm(String),
    /// Nothing to send, but look again: the client is closing, or rustls
    /// has something of its own to send (an alert, a key update).
    Wake,
    /// Nothing to send: the writer signals this channel once every item
    /// queued before the marker has been written to the socket (handed to
    /// the kernel). If the writer stops first, the channel is dropped
    /// unsignalled, and its waiter hears that instead.
    Mark(oneshot::Sender<()>),
    /// Nothing to send: stored DMs whose lines were queued just before,
    /// handed over by another client's thread. Once they are written, the
    /// writer deletes them from the database; if they never are (the
    /// queue is discarded, the writer stops), dropping the claim releases
    /// them, still stored.
    Claim(crate::db::ClaimedDms),
}

/// How a client's connection ends, once decided. Set once: the first
/// decision wins (a slow consumer that then disconnects stays a slow
/// consumer in the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Send `BYE <reason>` after what is already queued (for
    /// `SLOW_CONSUMER`: instead of it), then close.
    Bye(ByeReason),
    /// Send `BYE SUSPENDED`, naming when the suspension ends (milliseconds
    /// since the epoch, [`FOREVER`](crate::db::FOREVER) until lifted),
    /// after what is already queued, then close.
    Suspended(i64),
    /// The reader is done (the peer went away or broke the protocol):
    /// flush what is queued, if the peer still takes it, and close.
    Silent,
}

/// A client whose writer thread was asleep when a broadcast queued a line
/// for it; the broadcaster holds the duty to wake it.
#[derive(Debug)]
pub struct Asleep {
    /// The client.
    client: Arc<Client>,
    /// The duty to wake its writer.
    wake: Wake,
}

impl Asleep {
    /// Once no lock is held: writes what is queued for the client without
    /// waiting, if it can (the writer sleeps on), and otherwise wakes the
    /// writer to do it (see `writer.rs`).
    pub fn write_or_wake(self) {
        let Asleep { client, wake } = self;
        if client.closing().is_none() && client.pen.try_write() {
            client.outbox.rearm(wake);
        } else {
            wake.ring();
        }
    }

    /// Once no lock is held: wakes the writer.
    pub fn wake(self) {
        self.wake.ring();
    }
}

/// The shared handle of one connection.
#[derive(Debug)]
pub struct Client {
    /// Connection number, unique for the life of the process; it tells two
    /// sessions of the same user apart, and appears in logs and thread
    /// names (`conn-42`, `conn-42-writer`).
    pub id: u64,
    /// The peer's address, for logs only (behind ngrok it is the tunnel's).
    pub peer: SocketAddr,
    /// Where lines for this client go; the pen holds the other end.
    outbox: Outbox,
    /// The writing side: the TLS session, the socket and what is being
    /// written, for the writer thread and for a broadcaster that finds it
    /// asleep (`writer.rs`).
    pen: Pen,
    /// Set once when the connection must end; read by the writer before and
    /// after each batch, and by the reader between lines.
    closing: OnceLock<Closing>,
    /// Makes "not closing? then queue this DM" one step with respect to
    /// setting `closing` (see [`Client::send_dm`]). A leaf lock: held for
    /// memory-only steps, with no other lock taken inside it, so it may be
    /// taken while a room's lock is held (a broadcast that closes a slow
    /// consumer) without any risk of deadlock.
    dm_gate: Mutex<()>,
    /// The connection's socket, used here for one thing only: `shutdown(Read)`,
    /// which wakes this client's reader thread out of a blocking `read`
    /// when someone else decides to close the connection. It is never
    /// written to from here.
    socket: Arc<TcpStream>,
    /// The user name, set once at `LOGIN` (as registered, not as typed).
    user: OnceLock<Name>,
    /// Whether the user is an admin, read at `LOGIN` (set just before the
    /// session is made, and again by a later `LOGIN` if that one was
    /// refused): a role given or taken meanwhile counts from the user's
    /// next login.
    admin: AtomicBool,
    /// The room the client is in. This mutex is the client's *membership
    /// lock*: every change of membership (join, leave, takeover, disconnect)
    /// happens while holding it, and then the room's own lock, always in
    /// that order. So "the cell says room R" and "R's member list holds this
    /// client" change together and are always equal. Only the client's own
    /// thread takes it, except a takeover or shutdown, so it is uncontended.
    pub(super) room: Mutex<Option<Arc<Room>>>,
}

impl Client {
    /// A handle for a freshly accepted connection, with an outbox of at
    /// most `queue` lines and bytes, whose lines go on the wire as
    /// `framing` says.
    pub fn new(
        id: u64,
        peer: SocketAddr,
        tls: Arc<Mutex<ServerConnection>>,
        socket: Arc<TcpStream>,
        queue: (usize, usize),
        framing: Framing,
    ) -> Self {
        let (outbox, receiver) = outbox::outbox(queue.0, queue.1);
        Client {
            id,
            peer,
            outbox,
            pen: Pen::new(tls, socket.clone(), receiver, framing),
            closing: OnceLock::new(),
            dm_gate: Mutex::new(()),
            socket,
            user: OnceLock::new(),
            admin: AtomicBool::new(false),
            room: Mutex::new(None),
        }
    }

    /// Queues a line from someone else (a room event, a broadcast) without
    /// ever blocking.
    ///
    /// Returns `false` when it was not queued: the outbox is full (the
    /// client is then closed as a slow consumer, here, in the one place that
    /// policy lives) or the writer is gone (the connection is ending).
    pub fn send(&self, item: Outgoing) -> bool {
        self.judge(self.outbox.try_send(item))
    }

    /// Like [`Client::send`], for a broadcast under a room's lock: if the
    /// writer was asleep, the client is added to `asleep`, to be written to
    /// or woken once the lock is released ([`Asleep::write_or_wake`]).
    pub fn send_quietly(self: &Arc<Self>, item: Outgoing, asleep: &mut Vec<Asleep>) -> bool {
        let sent = self.outbox.send_quietly(item).map(|wake| {
            if let Some(wake) = wake {
                asleep.push(Asleep {
                    client: self.clone(),
                    wake,
                });
            }
        });
        self.judge(sent)
    }

    /// The writing side: the writer thread's, shared with broadcasters.
    pub fn pen(&self) -> &Pen {
        &self.pen
    }

    /// The one place the slow-consumer policy lives: a send that found the
    /// outbox full closes the client. Returns whether the item was queued.
    fn judge(&self, sent: Result<(), TrySendError<Outgoing>>) -> bool {
        match sent {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.slow_consumer();
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues a line for this client if its outbox has room, and otherwise
    /// leaves it out, *without* judging the client: for lines that can wait
    /// (stored DMs handed over by another thread, which stay stored), so
    /// that they are never the reason a client is dropped. Returns whether
    /// it was queued.
    pub fn offer(&self, item: Outgoing) -> bool {
        self.outbox.try_send(item).is_ok()
    }

    /// Closes the client as a slow consumer. Not logged here: this runs
    /// under a room's lock (a broadcast), and a log line is a write to
    /// stderr, which can block; the writer thread logs it, with no lock held.
    fn slow_consumer(&self) {
        self.close(Closing::Bye(ByeReason::SlowConsumer));
    }

    /// Renders a line from someone else for this client alone and queues
    /// it, like [`Client::send`].
    pub fn reply(&self, line: &ServerLine) -> bool {
        self.send(Outgoing::Owned(format!("{line}\n")))
    }

    /// Queues a line of the client's own reply to its own command. Counted
    /// in the outbox, but never a reason to drop the client. Only the
    /// client's reader thread calls it, and that thread keeps what it
    /// queues bounded: it waits for the writer before each line it reads
    /// ([`Client::wait_for_writer`]), and a long reply goes out in pieces.
    /// Returns `false` if the writer is gone.
    pub fn answer(&self, line: &ServerLine) -> bool {
        self.answer_rendered(format!("{line}\n"))
    }

    /// Like [`Client::answer`], for a line already rendered (with its LF).
    pub fn answer_rendered(&self, line: String) -> bool {
        self.outbox.push(Outgoing::Owned(line)).is_ok()
    }

    /// Queues a `DM` line (`line` with its LF) for this client, unless the
    /// connection is closing. `true` means the sender may say `delivered`;
    /// on `false` the sender must store the DM instead.
    ///
    /// Why no DM acknowledged as delivered is ever lost:
    ///
    /// * `closing` is checked and the line queued under `dm_gate`, and
    ///   `closing` is only ever set under it ([`Client::close`]). So a DM is
    ///   queued only *before* the connection starts to close, never after:
    ///   once `closing` is set, every sender hears `false` and stores.
    /// * The writer sets `closing` itself before it stops, and only then
    ///   takes what is left in the outbox. Every DM queued before (the
    ///   gate guarantees that is all of them) is therefore either written
    ///   to the socket or handed back by the writer: those of a discarded
    ///   queue (a slow consumer), of a failed write, or left over. The
    ///   session stores them when its writer has stopped.
    pub fn send_dm(&self, line: String) -> bool {
        let sent = {
            let _gate = super::sync::lock(&self.dm_gate);
            if self.closing.get().is_some() {
                return false;
            }
            self.outbox.try_send(Outgoing::Dm(line))
        };
        // Judged once the gate is released: closing takes it too.
        self.judge(sent)
    }

    /// Waits, with no lock held, until the outbox is back under its low
    /// water mark (half of each bound): the back-pressure point of the
    /// reader, before it handles the next line. Each wait is for a marker,
    /// so it ends when the writer has written what was queued before it,
    /// or when the writer stops (its write deadline bounds that). Returns
    /// `false` if the connection is closing.
    pub fn wait_for_writer(&self) -> bool {
        while !self.outbox.below_low_water() {
            if self.closing().is_some() || self.outbox.mark().recv().is_err() {
                return false;
            }
        }
        self.closing().is_none()
    }

    /// True when at most half of each bound of the outbox is in use (see
    /// [`Client::wait_for_writer`]).
    pub fn below_low_water(&self) -> bool {
        self.outbox.below_low_water()
    }

    /// The most lines and bytes of one piece of a long reply: a quarter of
    /// the outbox, queued when it is under its low water mark.
    pub fn piece(&self) -> (usize, usize) {
        self.outbox.piece()
    }

    /// Lines waiting in the outbox now (for `/metrics`).
    pub fn queued_lines(&self) -> usize {
        self.outbox.load().0
    }

    /// Decides that the connection ends, and wakes both of its threads.
    ///
    /// Only the first call has an effect. The order matters: the flag is set
    /// *before* the writer is woken, so a writer that wakes always sees it;
    /// and a writer busy with a batch checks the flag after it.
    pub fn close(&self, how: Closing) {
        // Under the DM gate, so that no DM is queued once this is set (see
        // `send_dm`).
        let first = {
            let _gate = super::sync::lock(&self.dm_gate);
            self.closing.set(how).is_ok()
        };
        if first {
            self.outbox.wake();
            // Wakes the reader thread if it is blocked in `read` (it then
            // sees end-of-file). This does not send anything to the peer.
            let _ = self.socket.shutdown(Shutdown::Read);
        }
    }

    /// Ends the connection at the socket, without a word: a writer blocked
    /// on a peer that does not read fails at once (and hands back the DMs
    /// it could not write). For shutdown, once the connections have had
    /// their time to take their last lines.
    pub fn cut(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Asks the writer to look at the TLS state without queueing a line
    /// (the reader uses it when rustls has an alert or a key update to
    /// send). Never closes the client: a wake-up is not a line, and fits
    /// even in a full outbox.
    pub fn nudge(&self) {
        self.outbox.wake();
    }

    /// Queues a marker and returns what tells when the writer has written
    /// every item queued before it: a `()`, or a disconnection if the
    /// writer is gone (its queue is dropped with it). Like a wake-up, the
    /// marker is not a line and fits even in a full outbox.
    pub fn mark(&self) -> oneshot::Receiver<()> {
        self.outbox.mark()
    }

    /// How the connection is ending, if that is decided.
    pub fn closing(&self) -> Option<Closing> {
        self.closing.get().copied()
    }

    /// Records the user name at login. A connection logs in at most once.
    pub fn set_user(&self, name: Name) {
        let _ = self.user.set(name);
    }

    /// Records the user's role at `LOGIN`.
    pub fn set_admin(&self, admin: bool) {
        self.admin.store(admin, Ordering::Relaxed);
    }

    /// Is the logged-in user an admin? (`false` before `LOGIN`.)
    pub fn is_admin(&self) -> bool {
        self.user.get().is_some() && self.admin.load(Ordering::Relaxed)
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&Name> {
        self.user.get()
    }

    /// The user name for logs, or `-` before login.
    pub fn display_name(&self) -> &str {
        self.user.get().map_or("-", Name::as_str)
    }

    /// The room the client is in now, if any.
    pub fn current_room(&self) -> Option<Arc<Room>> {
        super::sync::lock(&self.room).clone()
    }

    /// Has the peer hung up? True once it has closed its end of the
    /// connection (a FIN, with or without a TLS `close_notify` before it),
    /// or the connection was reset. Asks the kernel without reading or
    /// waiting (a throwaway epoll set, `EPOLLRDHUP`, a zero timeout), so
    /// bytes not yet read stay for the reader. A peer that hung up gets no
    /// new session: its reader would end it as soon as it reads the end of
    /// the stream.
    pub fn peer_has_left(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
            let hung_up = EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
            let check = || -> nix::Result<bool> {
                let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
                epoll.add(&*self.socket, EpollEvent::new(EpollFlags::EPOLLRDHUP, 0))?;
                let mut events = [EpollEvent::empty()];
                let ready = epoll.wait(&mut events, EpollTimeout::ZERO)?;
                Ok(ready > 0 && events[0].events().intersects(hung_up))
            };
            check().unwrap_or_else(|e| {
                log::debug!("conn {}: cannot ask whether the peer left: {e}", self.id);
                false
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            // Elsewhere the hang-up is seen by the reader, after the login.
            false
        }
    }
}

impl Closing {
    /// The `BYE` line this ending sends, if any.
    pub fn bye(self) -> Option<ServerLine> {
        match self {
            Closing::Bye(reason) => Some(ServerLine::Bye {
                reason,
                text: bye_text(reason).into(),
            }),
            Closing::Suspended(until_ms) => Some(ServerLine::Bye {
                reason: ByeReason::Suspended,
                text: format!(
                    "An admin suspended this account {}.",
                    super::moderation::until_text(until_ms)
                ),
            }),
            Closing::Silent => None,
        }
    }
}

/// The human text of each `BYE`, in one place.
pub fn bye_text(reason: ByeReason) -> &'static str {
    match reason {
        ByeReason::Quit => "Goodbye.",
        ByeReason::Shutdown => "The server is shutting down.",
        ByeReason::LoginTimeout => "No successful LOGIN in time.",
        ByeReason::LoggedInElsewhere => "You logged in on another connection.",
        ByeReason::SlowConsumer => "You stopped reading and too many lines were waiting.",
        ByeReason::TooManyConnections => "The server is full; try again later.",
        ByeReason::Idle => "You sent nothing for too long.",
        ByeReason::Suspended => "An admin suspended this account.",
    }
}

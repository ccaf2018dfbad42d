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
//! another. The verdict is about the client, not about our threads: a
//! broadcaster that finds a member's writer asleep, or its outbox past
//! half full, writes for it if it can ([`Visit`]), so an outbox fills only
//! when the client's socket stops taking what it is sent.
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

use crate::oneshot;
use crate::protocol::{ByeReason, Name, ServerLine};

use super::hub::Room;
use super::outbox::{self, Outbox, Owed};
use super::writer::{Framing, Pen, Tried};

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

/// A client that a sender owes something once its locks (a room's, for
/// a broadcast) are released: its writer thread was asleep, or is behind
/// ([`Owed`]).
#[derive(Debug)]
pub struct Visit {
    /// The client.
    client: Arc<Client>,
    /// What it is owed.
    owed: Owed,
}

impl Visit {
    /// Once no lock is held, in a quiet room: writes what is queued for the
    /// client without waiting, if it can (the writer sleeps on), and
    /// otherwise wakes the writer to do it (see `writer.rs`).
    pub fn write_or_wake(self) {
        let Visit { client, owed } = self;
        match owed {
            Owed::Wake(wake) => {
                if client.closing().is_none() && client.pen.try_write() == Tried::Wrote {
                    client.outbox.rearm(wake);
                } else {
                    wake.ring();
                }
            }
            Owed::Help => client.help(),
        }
    }

    /// Once no lock is held, in a busy room: wakes a writer that was
    /// asleep, and helps one that is behind.
    pub fn wake(self) {
        self.client.serve(self.owed);
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

    /// Queues a line from someone else (a room event, a notice, a
    /// broadcast) without ever blocking. If the writer was asleep or is
    /// behind, the client is added to `visits`, to be served once the
    /// caller's locks are released ([`Visit`]).
    ///
    /// Returns `false` when it was not queued: the client is a slow
    /// consumer (it is then closed, here, in [`Client::judge`]) or the
    /// writer is gone (the connection is ending).
    pub fn send_quietly(self: &Arc<Self>, item: Outgoing, visits: &mut Vec<Visit>) -> bool {
        let sent = self.enqueue(item).map(|owed| {
            if let Some(owed) = owed {
                visits.push(Visit {
                    client: self.clone(),
                    owed,
                });
            }
        });
        self.judge(sent)
    }

    /// Queues a line from someone else, by the slow-consumer rule, and
    /// says what the sender owes the writer once its locks are released;
    /// `Full` means the client is a slow consumer.
    ///
    /// A full outbox is a verdict only while the client's socket refuses
    /// bytes ([`Pen::is_refusing`]). Until then the client has taken
    /// everything it was handed, and the lines wait only because every
    /// thread that could write them is off the processor: a writer, or a
    /// helper, preempted while it holds the pen, for longer than the room
    /// takes to say `--queue-lines` lines. The line is then queued past the
    /// bound (up to twice it, [`Outbox::overflow`]), and the sender writes
    /// for the client once its locks are released. A client that stops
    /// reading fills its socket, the socket refuses, and the next line that
    /// finds the outbox full makes it a slow consumer.
    fn enqueue(&self, item: Outgoing) -> Result<Option<Owed>, TrySendError<Outgoing>> {
        match self.outbox.send_quietly(item) {
            Err(TrySendError::Full(item)) if !self.pen.is_refusing() => {
                self.outbox.overflow(item).map(Some)
            }
            sent => sent,
        }
    }

    /// Pays what a sender owed the writer, once it holds no lock: wakes a
    /// writer that was asleep, helps one that is behind.
    fn serve(&self, owed: Owed) {
        match owed {
            Owed::Wake(wake) => wake.ring(),
            Owed::Help => self.help(),
        }
    }

    /// Does the work of a writer that is awake but behind, if its pen is
    /// free: a writer thread that is runnable but waiting for a processor
    /// must not let its outbox fill while the client reads everything it
    /// is sent. If the pen is taken, its holder writes the lines (the
    /// writer thread, awake, does not sleep while lines are queued); if the
    /// socket took only part, the writer thread is told to finish. If the
    /// client is not reading, its outbox still fills.
    fn help(&self) {
        if self.closing().is_none() && self.pen.try_write() == Tried::Left {
            self.outbox.wake();
        }
    }

    /// The writing side: the writer thread's, shared with broadcasters.
    pub fn pen(&self) -> &Pen {
        &self.pen
    }

    /// The one place the slow-consumer verdict is given: a line from
    /// someone else that [`Client::enqueue`] refused for a full outbox
    /// closes the client. Returns whether the item was queued.
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
            self.enqueue(Outgoing::Dm(line))
        };
        // Served and judged once the gate is released: closing takes it too.
        let sent = sent.map(|owed| {
            if let Some(owed) = owed {
                self.serve(owed);
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::path::Path;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use rustls::{ClientConnection, StreamOwned};

    /// The peer's end: a TLS stream over its socket.
    type Peer = StreamOwned<ClientConnection, TcpStream>;

    /// A client connected over real TLS on loopback with an outbox of
    /// `lines` lines, and **no writer thread**: it stands for a writer
    /// that is runnable but never gets a processor. `server_sndbuf` and
    /// `peer_rcvbuf` fix the kernel's buffers (bytes) when given.
    fn connected(
        lines: usize,
        server_sndbuf: Option<usize>,
        peer_rcvbuf: Option<usize>,
    ) -> (Arc<Client>, Peer) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let server_config = crate::tls::server_config(&dir.join("cert.pem"), &dir.join("key.pem"))
            .expect("the bundled certificate");
        let client_config = crate::tls::client_config(&dir.join("cert.pem")).expect("a CA");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let peer: JoinHandle<Peer> = thread::spawn(move || {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            if let Some(bytes) = peer_rcvbuf {
                socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
            }
            socket.connect(&addr.into()).expect("connect");
            let name = crate::tls::server_name("localhost").expect("a name");
            let conn = ClientConnection::new(client_config, name).expect("a TLS client");
            let socket = TcpStream::from(socket);
            // A test never hangs: a line that never comes fails the read.
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("a read timeout");
            let mut tls = StreamOwned::new(conn, socket);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).expect("handshake");
            }
            tls
        });
        let (socket, from) = listener.accept().expect("accept");
        if let Some(bytes) = server_sndbuf {
            socket2::SockRef::from(&socket)
                .set_send_buffer_size(bytes)
                .expect("SO_SNDBUF");
        }
        let mut conn = ServerConnection::new(server_config).expect("a TLS server");
        let deadline = Instant::now() + Duration::from_secs(10);
        crate::tls::handshake(&mut conn, &socket, deadline).expect("handshake");
        let client = Client::new(
            1,
            from,
            Arc::new(Mutex::new(conn)),
            Arc::new(socket),
            (lines, 1 << 20),
            Framing::Lines,
        );
        (Arc::new(client), peer.join().expect("the peer's handshake"))
    }

    /// Broadcasts `line` to `client` as a busy room does: queued under the
    /// (here imaginary) room's lock, its visit paid after.
    fn broadcast(client: &Arc<Client>, line: &str) -> bool {
        let mut visits = Vec::new();
        let queued = client.send_quietly(Outgoing::Shared(line.into()), &mut visits);
        for visit in visits {
            visit.wake();
        }
        queued
    }

    /// Sends 2,000 lines, `send(client, i)` each, to a client with an
    /// outbox of 16 and no writer thread at all, whose peer reads
    /// everything; asserts that none was refused, that the client was not
    /// dropped, and that all arrive, in order. The kernel's buffers hold
    /// all 2,000 lines (about 20 KB), so this does not depend on when the
    /// peer's thread reads.
    fn all_arrive_without_a_writer(send: impl Fn(&Arc<Client>, usize) -> bool) {
        let (client, peer) = connected(16, Some(1 << 20), None);
        let reader = thread::spawn(move || {
            let mut lines = BufReader::new(peer).lines();
            (0..2000).all(|i| lines.next().and_then(Result::ok) == Some(format!("line {i}")))
        });
        for i in 0..2000 {
            assert!(send(&client, i), "refused line {i}");
        }
        assert_eq!(client.closing(), None);
        // The last few lines (at most half of the outbox) wait for the
        // writer thread's turn, which this stands for.
        assert_eq!(client.pen().try_write(), Tried::Wrote, "the rest went out");
        assert!(
            reader.join().expect("the reader"),
            "lines missing or out of order"
        );
    }

    /// A client that reads everything it is sent is never a slow consumer
    /// because its writer thread does not run: the broadcasters write for
    /// a writer whose outbox is past half full. (Before, the 17th line
    /// found the outbox full and the client was dropped while the kernel's
    /// buffers were empty.)
    #[test]
    fn a_writer_that_never_runs_does_not_make_a_slow_consumer() {
        all_arrive_without_a_writer(|client, i| broadcast(client, &format!("line {i}\n")));
    }

    /// A holder of the pen that is off the processor (held here) while the
    /// client's socket takes everything: lines past the bound wait, up to
    /// twice it, and go out in order once the pen is free; past twice the
    /// bound the client is dropped all the same, so memory stays bounded.
    #[test]
    fn a_stalled_holder_of_the_pen_lets_lines_wait_up_to_twice_the_bound() {
        let (client, peer) = connected(16, Some(1 << 20), None);
        let held = client.pen().hold();
        for i in 0..32 {
            assert!(
                broadcast(&client, &format!("line {i}\n")),
                "refused line {i}"
            );
        }
        assert_eq!(client.closing(), None);
        drop(held);
        assert_eq!(client.pen().try_write(), Tried::Wrote);
        let mut lines = BufReader::new(peer).lines();
        for i in 0..32 {
            assert_eq!(lines.next().and_then(Result::ok), Some(format!("line {i}")));
        }
        let _held = client.pen().hold();
        let refused = (32..100).find(|i| !broadcast(&client, &format!("line {i}\n")));
        assert_eq!(refused, Some(64), "twice the bound, then a slow consumer");
        assert_eq!(
            client.closing(),
            Some(Closing::Bye(ByeReason::SlowConsumer))
        );
    }

    /// The same rule holds for `DM`s, which are sent outside any room.
    /// (Before, a `DM` that found the outbox full was a verdict at once.)
    #[test]
    fn dms_to_a_client_whose_writer_never_runs_all_arrive() {
        all_arrive_without_a_writer(|client, i| client.send_dm(format!("line {i}\n")));
    }

    /// A client that does not read is still a slow consumer: once the
    /// kernel's (small, here) buffers are full, the helpers cannot write,
    /// the outbox fills and the client is closed with `SLOW_CONSUMER`.
    #[test]
    fn a_client_that_does_not_read_is_still_a_slow_consumer() {
        let (client, _peer) = connected(16, Some(8 * 1024), Some(8 * 1024));
        let line = format!("{}\n", "x".repeat(1000));
        let refused = (0..10_000).position(|_| !broadcast(&client, &line));
        let refused = refused.expect("10 MB taken by a client that reads nothing");
        assert!(refused >= 16, "refused after {refused} lines");
        assert_eq!(
            client.closing(),
            Some(Closing::Bye(ByeReason::SlowConsumer))
        );
    }
}

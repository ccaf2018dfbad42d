//! The English catalog: one arm per [`Msg`] variant.
//!
//! Keep each arm a plain sentence; the layout of chat lines
//! (`[alice@sala]: text`, `*** bob joined the room. ***`) follows the
//! original course client so that both languages look alike on screen.

use super::{readable_time, two_columns, BanInfo, CertProblem, Locale, Moderation, Msg, RoomInfo};
use crate::protocol::{ByeReason, ErrCode};

/// The English text of `msg`.
pub fn text(msg: &Msg) -> String {
    match msg {
        Msg::InsecureWarning => "WARNING: --insecure: the server's certificate is NOT verified. \
             Anyone between you and the server can read and change everything, \
             your password included."
            .into(),
        Msg::HandshakePinned { version, file } => format!(
            "TLS handshake succeeded ({version}); the server's certificate is the one in {file}."
        ),
        Msg::HandshakeCa {
            version,
            file,
            name,
        } => format!(
            "TLS handshake succeeded ({version}); certificate for {name} verified with the CA in {file}."
        ),
        Msg::HandshakeSystem { version, name } => format!(
            "TLS handshake succeeded ({version}); certificate for {name} verified with the \
             system's trusted CAs."
        ),
        Msg::HandshakeInsecure { version } => {
            format!("TLS handshake succeeded ({version}), WITHOUT verifying the server.")
        }
        Msg::TrustFileUnusable { detail } => format!(
            "Cannot load the certificate to trust ({detail}). Run the client in the folder that \
             has the server's cert.pem, or use --cert-pin FILE or --ca FILE."
        ),
        Msg::SystemTrustUnusable { detail } => format!(
            "Cannot load this system's trusted CAs ({detail}). Use --ca FILE or --cert-pin FILE."
        ),
        Msg::ClientCertUnusable { detail } => format!(
            "Cannot use your client certificate ({detail}). Check the files given with --cert \
             and --key."
        ),
        Msg::PortWithHost { host, port } => format!(
            "{host}:{port} is a host and a port: give the port alone, and the host with --host \
             (e.g. client --host {host} {port})."
        ),
        Msg::BadPort { given } => format!(
            "{given:?} is not a port number (1 to 65535): give the server's port alone \
             (e.g. client 12345), and its host with --host."
        ),
        Msg::BadServerName { name } => {
            format!(
                "{name:?} is not a valid host name or IP address: check --host (and \
                 --server-name), e.g. --host 192.168.0.10 or --host 0.tcp.sa.ngrok.io."
            )
        }
        Msg::CannotResolve { host, detail } => format!(
            "Cannot find the server {host}: the name could not be resolved ({detail}). Check the \
             name given with --host (or use the server's IP address) and this computer's network."
        ),
        Msg::CannotConnect { addr, detail } => format!(
            "Cannot connect to {addr} ({detail}). Check that the server is running and that the \
             port and --host are the server's."
        ),
        Msg::CertificateNotPinned { file } => format!(
            "REFUSED: the server's certificate is not the one in {file}. This may not be the \
             right server, or someone is in the middle. Nothing was sent. Check --host and the \
             port, and ask the server's owner for its current cert.pem."
        ),
        Msg::CertificateNotTrusted {
            file,
            name,
            problem,
        } => refused(problem, name, &format!("the CA in {file}")),
        Msg::CertificateNotTrustedSystem { name, problem } => {
            refused(problem, name, "any CA this system trusts")
        }
        Msg::HandshakeFailed { detail } => format!(
            "The TLS handshake failed ({detail}). Check that the port and --host are the chat \
             server's (it speaks TLS), then try again."
        ),
        Msg::UnknownProtocolVersion { version } => format!(
            "Warning: the server speaks protocol version {version}; this client speaks version 1, \
             so some replies may not be understood: update the client."
        ),

        Msg::StartMenu => "\
--- Menu ---
1 - Register
2 - Log in
3 - Quit
Choose an option:"
            .into(),
        Msg::MainMenu { room } => {
            let mut menu = String::from(
                "\
--- Main menu ---
1 - List rooms
2 - Create a room
3 - Join a room
4 - Quit",
            );
            if let Some(room) = room {
                menu.push_str(&format!(
                    "\n5 - Leave the room {room}\n6 - Back to the chat in {room}"
                ));
            }
            menu.push_str("\nChoose an option:");
            menu
        }
        Msg::InvalidOption => "That is not one of the options: type its number.".into(),
        Msg::AskCredentials => {
            "Type your user name and password on one line (e.g. usuario1 123):".into()
        }
        Msg::CredentialsUsage => "Type a user name, a space and a password (e.g. usuario1 123), \
             or an empty line to go back:"
            .into(),
        Msg::Registered { user } => format!("Account {user} created. Now log in (option 2)."),
        Msg::LoggedIn { user } => format!("Logged in as {user}."),
        Msg::AskCreate => "Room name and kind: `name n` for a public room, \
             `name s password` for a private one (an empty line goes back):"
            .into(),
        Msg::CreateUsage => "Type `name n` (public) or `name s password` (private), \
             or an empty line to go back:"
            .into(),
        Msg::Created { room, private } => {
            let kind = if *private { "Private" } else { "Public" };
            format!("{kind} room {room} created.")
        }
        Msg::AskJoin => "Room name, and its password if it is private \
             (e.g. sala_privada senhasecreta; an empty line goes back):"
            .into(),
        Msg::RoomList { rooms } => room_list(rooms),
        Msg::EnteredRoom { room } => format!(
            "You are in {room}. Type to chat; /menu opens the menu, /leave leaves the room, \
             /help lists the commands."
        ),
        Msg::BackToChat { room } => format!("Back to the chat in {room}."),
        Msg::LeftRoom { room } => format!("You left {room}."),
        Msg::HistoryStart { count: 1 } => "--- 1 earlier message ---".into(),
        Msg::HistoryStart { count } => format!("--- {count} earlier messages ---"),
        Msg::HistoryLine { room, user, text } => format!("  [{user}@{room}]: {text}"),
        Msg::HistoryEnd => "--- end of earlier messages ---".into(),
        Msg::Help { allowed } => help(allowed),
        Msg::UnknownChatCommand { command } => {
            format!("Unknown command {command}. Type /help for the list.")
        }
        Msg::MsgUsage => "Usage: /msg <user> <text>".into(),
        Msg::ModerationUsage(command) => usage(*command),
        Msg::WhoList { users } => format!("In the room ({}): {}", users.len(), users.join(", ")),
        Msg::DmDelivered { user } => format!("Direct message delivered to {user}."),
        Msg::DmStored { user } => format!(
            "{user} is offline: the direct message is stored and will be delivered at their \
             next login."
        ),
        Msg::Goodbye => "Goodbye!".into(),

        Msg::KickDone { user } => format!("You removed {user} from the room."),
        Msg::BanDone {
            user,
            room,
            minutes,
        } => match minutes {
            Some(1) => format!("{user} is banned from {room} for 1 minute."),
            Some(minutes) => format!("{user} is banned from {room} for {minutes} minutes."),
            None => format!("{user} is banned from {room} until the ban is lifted (/unban)."),
        },
        Msg::UnbanDone { user, room } => format!("{user} may join {room} again."),
        Msg::BanList { room, bans } => ban_list(room, bans),
        Msg::RoomTopic {
            room,
            by,
            time,
            topic,
        } => format!(
            "Topic of {room}: {topic} (set by {by}, {})",
            readable_time(*time, Locale::En)
        ),
        Msg::NoTopic { room } => format!("{room} has no topic."),
        Msg::CloseDone { room } => {
            format!("The room {room} is closed: its messages, bans and topic are deleted.")
        }
        Msg::SuspendDone { user, minutes } => {
            let how_long = match minutes {
                Some(1) => "for 1 minute".to_string(),
                Some(minutes) => format!("for {minutes} minutes"),
                None => "until the suspension is lifted (/unsuspend)".to_string(),
            };
            format!("{user} is suspended {how_long}: their sessions are closed and they cannot log in.")
        }
        Msg::UnsuspendDone { user } => format!("{user} may log in again."),
        Msg::AnnounceDone { count: 1 } => "Notice sent to 1 connection.".into(),
        Msg::AnnounceDone { count } => format!("Notice sent to {count} connections."),
        Msg::NotAllowed { admin_only: false } => "Only the room's owner or an admin may do that, \
             and nobody may kick or ban themselves or an admin."
            .into(),
        Msg::NotAllowed { admin_only: true } => {
            "Only an admin may do that, and nobody may suspend themselves or an admin.".into()
        }
        Msg::NotAMember { user } => format!("{user} is not in this room."),

        Msg::Said { room, user, text } => format!("[{user}@{room}]: {text}"),
        Msg::UserJoined { user } => format!("*** {user} joined the room. ***"),
        Msg::UserLeft { user } => format!("*** {user} left the room. ***"),
        Msg::UserDisconnected { user } => format!("*** {user} disconnected. ***"),
        Msg::DirectMessage { from, text } => format!("[DM from {from}]: {text}"),
        Msg::UserKicked { user } => format!("*** {user} was removed from the room. ***"),
        Msg::YouWereKicked { room, by, reason } if reason.is_empty() => {
            format!("*** You were removed from {room} by {by}. ***")
        }
        Msg::YouWereKicked { room, by, reason } => {
            format!("*** You were removed from {room} by {by}: {reason} ***")
        }
        Msg::RoomClosed { room, by } => format!("*** The room {room} was closed by {by}. ***"),
        Msg::TopicChanged { by, topic } => format!("*** {by} set the topic: {topic} ***"),
        Msg::Notice { from, text } => format!("[NOTICE from {from}]: {text}"),

        Msg::Error(code) => error(*code).into(),
        Msg::ErrorWithText { code, text } => with_text(error(*code), text),
        Msg::UnknownError { text } => format!("The server refused that: {text}"),
        Msg::ServerBye(reason) => bye(*reason).into(),
        Msg::SuspendedBye { text } => with_text(bye(ByeReason::Suspended), text),
        Msg::UnknownBye { text } => format!("The server closed the session: {text}"),
        Msg::ClientCertificateRequired => "The server accepts only clients with a certificate: \
            run the client with --cert FILE --key FILE (your teacher gives you these files)."
            .into(),
        Msg::ClientCertificateRefused { detail } => format!(
            "The server refused your client certificate ({detail}): ask your teacher for one \
             that this server accepts."
        ),
        Msg::ConnectionLost { detail: None } => {
            "The connection to the server was lost: run the client again to reconnect.".into()
        }
        Msg::ConnectionLost {
            detail: Some(detail),
        } => format!(
            "The connection to the server was lost ({detail}): run the client again to reconnect."
        ),
        Msg::UnknownLine { line } => {
            format!("(the server sent a line this client does not understand: {line})")
        }
    }
}

/// `REFUSED: <why>. Nothing was sent. <what to do>` for a certificate
/// checked against `anchors` ("the CA in ca.pem", "any CA this system
/// trusts") for the server name `name`.
fn refused(problem: &CertProblem, name: &str, anchors: &str) -> String {
    let pin = "pin the server's own certificate instead: --cert-pin FILE, \
               FILE being the server's cert.pem";
    let (why, next) = match problem {
        CertProblem::UnknownIssuer => (
            format!(
                "the server's certificate is not signed by {anchors} (it is self-signed, \
                 or made by another CA)"
            ),
            format!("If this is the class server, {pin}."),
        ),
        CertProblem::WrongName => (
            format!("the server's certificate is not for the name {name}"),
            format!("Give a name it has with --server-name NAME, or {pin}."),
        ),
        CertProblem::Expired => (
            "the server's certificate has expired".to_string(),
            "Ask the server's owner to renew it.".to_string(),
        ),
        CertProblem::NotValidYet => (
            "the server's certificate is not valid yet".to_string(),
            "Check this computer's date and time.".to_string(),
        ),
        CertProblem::Revoked => (
            "the server's certificate was revoked by its CA".to_string(),
            "Ask the server's owner for a new one.".to_string(),
        ),
        CertProblem::Other(detail) => (
            format!("the server's certificate for {name} was refused ({detail})"),
            format!("If this is the class server, {pin}."),
        ),
    };
    format!("REFUSED: {why}. Nothing was sent. {next}")
}

/// `sentence`, then what the server said, if anything.
fn with_text(sentence: &str, text: &str) -> String {
    if text.trim().is_empty() {
        sentence.to_owned()
    } else {
        format!("{sentence} The server says: {text}")
    }
}

/// The left and right column of a moderation command's line in `/help`.
fn moderation_row(command: Moderation) -> (&'static str, &'static str) {
    match command {
        Moderation::Kick => ("/kick <user> [reason]", "put someone out of the room"),
        Moderation::Ban => (
            "/ban <user> [minutes] [reason]",
            "keep someone out of the room (without minutes: until lifted)",
        ),
        Moderation::Unban => ("/unban <user>", "lift a ban"),
        Moderation::Bans => ("/bans", "list the room's bans"),
        Moderation::SetTopic => ("/topic [text]", "show the room's topic, or set it"),
        Moderation::Close => (
            "/close [room]",
            "close a room for good, messages and all (by default the one you are in)",
        ),
        Moderation::Suspend => (
            "/suspend <user> [minutes] [reason]",
            "keep someone from logging in (without minutes: until lifted)",
        ),
        Moderation::Unsuspend => ("/unsuspend <user>", "lift a suspension"),
        Moderation::Announce => ("/announce <text>", "a notice to everybody connected"),
    }
}

/// The usage line of a moderation command typed without what it needs.
fn usage(command: Moderation) -> String {
    match command {
        Moderation::Ban | Moderation::Suspend => format!(
            "Usage: {} (minutes: 1 to 525600)",
            moderation_row(command).0
        ),
        Moderation::Close => "Usage: /close <room> (or /close alone, in the room to close)".into(),
        _ => format!("Usage: {}", moderation_row(command).0),
    }
}

/// The chat commands, with the moderation commands in `allowed`.
fn help(allowed: &[Moderation]) -> String {
    let mut rows = vec![
        ("/menu", "open the menu (you stay in the room)"),
        ("/leave", "leave the room"),
        ("/who", "who is in the room"),
        ("/msg <user> <text>", "send a direct message"),
    ];
    if !allowed.contains(&Moderation::SetTopic) {
        rows.push(("/topic", "show the room's topic"));
    }
    rows.extend(allowed.iter().map(|&command| moderation_row(command)));
    rows.push(("/help", "this help"));
    rows.push(("/quit", "quit"));
    format!(
        "Chat commands:\n{}\nAnything else is said in the room. At the main menu, a line that \
         starts with / is one of these commands.",
        two_columns(&rows)
    )
}

/// The bans of a room, one per line, or a sentence when there are none.
fn ban_list(room: &str, bans: &[BanInfo]) -> String {
    if bans.is_empty() {
        return format!("Nobody is banned from {room}.");
    }
    let mut list = format!("Bans in {room} ({}):", bans.len());
    for ban in bans {
        let until = match ban.until {
            Some(time) => format!("until {}", readable_time(time, Locale::En)),
            None => "until lifted".to_string(),
        };
        list.push_str(&format!("\n  {} {until}, by {}", ban.user, ban.by));
    }
    list
}

/// The rooms, one per line, or a hint when there are none.
fn room_list(rooms: &[RoomInfo]) -> String {
    if rooms.is_empty() {
        return "No rooms yet: create one with option 2.".into();
    }
    let mut list = String::from("Rooms:");
    for room in rooms {
        let kind = if room.private { "private" } else { "public" };
        list.push_str(&format!(
            "\n  {} ({kind}, {} online)",
            room.name, room.online
        ));
    }
    list
}

/// One sentence per error code.
fn error(code: ErrCode) -> &'static str {
    match code {
        ErrCode::BadArgs => {
            "Something is missing or extra in that command: check it and try again."
        }
        ErrCode::BadName => "Names have 1 to 32 characters: letters A-Z, digits, _, - and dots.",
        ErrCode::BadPassword => "Passwords have 1 to 128 bytes and no control characters.",
        ErrCode::UserExists => "That user name is taken: choose another, or log in if it is yours.",
        ErrCode::BadCredentials => {
            "Wrong user name or password: check both and try again, or register first."
        }
        ErrCode::AlreadyLoggedIn => "You are logged in already.",
        ErrCode::RateLimited => "Too fast: wait a moment and try again.",
        ErrCode::NotLoggedIn => "Log in first.",
        ErrCode::RoomExists => {
            "A room with that name exists already: join it, or choose another name."
        }
        ErrCode::NoSuchRoom => "There is no room with that name: list the rooms, or create it.",
        ErrCode::BadRoomPassword => {
            "Wrong or missing password: that room is private; join it with its name and its \
             password (e.g. sala_privada senhasecreta)."
        }
        ErrCode::AlreadyInRoom => "You are in that room already.",
        ErrCode::NotInRoom => "You are not in a room: join one first.",
        ErrCode::BadText => "Messages must not be blank or contain control characters.",
        ErrCode::NoSuchUser => "There is no user with that name: check how it is spelled.",
        ErrCode::UnknownCommand => "The server did not understand that command.",
        ErrCode::LineTooLong => {
            "That line is too long (4096 bytes at most): send it in shorter parts."
        }
        ErrCode::BadEncoding => "That line was not valid UTF-8: set your terminal to UTF-8.",
        ErrCode::ServerError => "The server could not do that right now; try again.",
        ErrCode::TooManyRooms => {
            "There are too many rooms, or you own as many as you may: join an existing room."
        }
        ErrCode::RegistrationClosed => {
            "This server does not take new accounts; ask the teacher for one."
        }
        ErrCode::MailboxFull => "That user has too many messages waiting; try again later.",
        ErrCode::NotAllowed => "You may not do that: it takes the room's owner or an admin.",
        ErrCode::Banned => "You are banned from that room.",
        ErrCode::NotBanned => "That user is not banned from this room.",
        ErrCode::Suspended => "Your account is suspended: you cannot log in while it lasts.",
        ErrCode::NotSuspended => "That account is not suspended.",
    }
}

/// One sentence per reason the server gives for closing.
fn bye(reason: ByeReason) -> &'static str {
    match reason {
        ByeReason::Quit => "The session is closed, as you asked.",
        ByeReason::Shutdown => "The server is shutting down: run the client again when it is back.",
        ByeReason::LoginTimeout => {
            "You did not log in in time; the server closed the connection: run the client again."
        }
        ByeReason::LoggedInElsewhere => "You logged in somewhere else; this session was closed.",
        ByeReason::SlowConsumer => {
            "The server dropped this connection: it was not reading fast enough. Run the client \
             again."
        }
        ByeReason::TooManyConnections => "The server is full; try again later.",
        ByeReason::Idle => {
            "The server closed this session: nothing was sent for too long. Run the client again."
        }
        ByeReason::Suspended => "An admin suspended your account; this session is closed.",
    }
}

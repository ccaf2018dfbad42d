//! The web client in a real browser: Debian's headless Chromium, driven over
//! the DevTools protocol, against the real server binary.
//!
//! One story, told the way a student lives it: open the page, register and
//! log in through the form, answer a private room's password prompt, join a
//! room by clicking its button, chat with a student on the line protocol in
//! both directions, see a message made of HTML shown as text, exchange
//! direct messages, lose the connection when the server restarts and find
//! oneself back in the room, create a room, leave, log out. All along, the
//! browser must report no Content-Security-Policy violation and no dialog.
//! Screenshots of the chat (desktop and phone sizes), of the login form in
//! Portuguese and of the teacher's `/status` page are saved under
//! `target/screenshots/`.
//!
//! Controls are found the way a screen reader finds them: by their role and
//! accessible name (`User name`, `Log in`, `Message`, a room's name), with
//! the browser's own accessibility tree, never by CSS class or id. Every
//! wait is for a condition, with a timeout.
//!
//! `#[ignore]`d, because it needs Chromium: CI runs it after
//! `apt-get install -y chromium`, with
//! `cargo test --test browser -- --ignored`. Without `/usr/bin/chromium` it
//! prints why and passes.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::browser::tab::element::Element;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Accessibility, Emulation, Page, DOM};
use headless_chrome::util::Wait;
use headless_chrome::{Browser, LaunchOptions, Tab};
use support::{send_signal, ServerBinary, TestClient};

/// Debian's Chromium (`apt-get install -y chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any one condition is waited for.
const WAIT: Duration = Duration::from_secs(20);
/// The token of the status page, given to the server with `--status-token`.
const STATUS_TOKEN: &str = "browser-test-status-token";
/// A message made of HTML: the page must show these characters.
const XSS: &str = "<img src=x onerror=alert(1)>";

#[test]
#[ignore = "needs Chromium: apt-get install -y chromium; cargo test --test browser -- --ignored"]
fn a_student_in_the_browser_chats_with_a_student_on_the_line_protocol() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: {CHROMIUM} is missing (apt-get install -y chromium)");
        return;
    }
    let db_dir = tempfile::tempdir().expect("temp dir");
    let db = db_dir.path().join("chat.db");
    let server = start_server(&db, "127.0.0.1:0");
    let addr = server.addr;
    let origin = format!("https://localhost:{}", addr.port());

    // bob, on the line protocol, waits in room `sala`.
    let mut bob = TestClient::connect(addr);
    bob.expect_prefix("HELLO 1 ");
    for line in [
        "REGISTER bob pw-bob",
        "LOGIN bob pw-bob",
        "CREATE cofre chave do cofre",
        "CREATE sala",
    ] {
        bob.send(line);
        bob.expect_prefix("OK ");
    }
    bob.join("sala");

    let profile = tempfile::tempdir().expect("temp dir");
    let browser = launch(profile.path());
    let tab = browser.new_tab().expect("a tab");
    let watch = watch(&tab);
    tab.navigate_to(&format!("{origin}/"))
        .and_then(|tab| tab.wait_until_navigated())
        .expect("open the web client");

    // The login form's controls carry Portuguese names in Portuguese...
    choose_language(&tab, "pt");
    for (role, name) in [
        ("textbox", "Usuário"),
        ("textbox", "Senha"),
        ("button", "Registrar"),
        ("button", "Entrar"),
    ] {
        control(&tab, role, name);
    }
    let shots = screenshot_dir();
    phone_size(&tab, true);
    save_screenshot(&tab, &shots.join("login-pt-phone.png"));
    phone_size(&tab, false);
    // ...and English ones in English.
    choose_language(&tab, "en");

    // Register, then log in, through the form.
    control(&tab, "textbox", "User name")
        .type_into("ana")
        .expect("type the user name");
    control(&tab, "textbox", "Password")
        .type_into("segredo da ana")
        .expect("type the password");
    control(&tab, "button", "Register")
        .click()
        .expect("click Register");
    wait_for(
        &tab,
        "the account created",
        &text_contains("Account ana created"),
    );
    control(&tab, "button", "Log in")
        .click()
        .expect("click Log in");
    wait_for(&tab, "the login", &text_contains("Logged in as ana."));

    // A private room asks its password before joining.
    control(&tab, "button", "cofre")
        .click()
        .expect("click the private room");
    control(&tab, "textbox", "Password of the room")
        .type_into("chave do cofre")
        .expect("type the room's password");
    control(&tab, "button", "Join").click().expect("click Join");
    wait_for(
        &tab,
        "the private room",
        &text_contains("You are in cofre."),
    );

    // The room list shows `sala`, as a button named by the room alone.
    control(&tab, "button", "sala")
        .click()
        .expect("click the room");
    bob.expect("JOINED sala ana");
    wait_for(&tab, "the joined room", &text_contains("You are in sala."));

    // The browser says something; bob reads it.
    control(&tab, "textbox", "Message")
        .type_into("olá do navegador")
        .expect("type a message");
    tab.press_key("Enter").expect("press Enter");
    bob.expect_msg("sala", "ana", "olá do navegador");

    // bob answers; the page shows his name, his text and its time.
    bob.send("SAY oi, ana!");
    let time = bob.expect_timed("MSG sala", "bob oi, ana!");
    wait_for(
        &tab,
        "bob's message",
        &message_shown("bob", "oi, ana!", &time),
    );

    // A message made of HTML is shown as those characters: no element is
    // made from it, no script runs.
    bob.send(&format!("SAY {XSS}"));
    let time = bob.expect_timed("MSG sala", &format!("bob {XSS}"));
    wait_for(
        &tab,
        "the HTML message as text",
        &message_shown("bob", XSS, &time),
    );
    assert_eq!(
        eval(&tab, "document.querySelectorAll('img').length"),
        serde_json::json!(0),
        "the message made an <img> element"
    );
    assert!(
        !watch.dialog.load(Ordering::SeqCst),
        "a script from a message ran"
    );

    // Direct messages, both ways: bob's is delivered at once; the page's
    // says it was delivered.
    bob.send("DM ana psst, ana");
    bob.expect("OK DM ana delivered");
    wait_for(&tab, "bob's DM", &text_contains("DM from bob: psst, ana"));
    control(&tab, "DisclosureTriangle", "Direct message")
        .click()
        .expect("open the direct message form");
    control(&tab, "textbox", "To (user name)")
        .type_into("bob")
        .expect("type the recipient");
    control(&tab, "textbox", "Direct message text")
        .type_into("oi, bob")
        .expect("type the DM");
    tab.press_key("Enter").expect("press Enter");
    bob.expect_timed("DM ana", "oi, bob");
    wait_for(
        &tab,
        "the DM's receipt",
        &text_contains("Direct message delivered to bob."),
    );

    // In Portuguese, the message field is `Mensagem`; a room is still
    // named by its name alone.
    choose_language(&tab, "pt");
    control(&tab, "textbox", "Mensagem");
    control(&tab, "button", "sala");
    choose_language(&tab, "en");

    // The member list came from WHO.
    wait_for(&tab, "the member list", &text_contains("In the room (2)"));

    save_screenshot(&tab, &shots.join("chat.png"));
    // On a phone, the student folds the panels away to see the chat.
    for panel in ["Direct message", "Rooms"] {
        control(&tab, "DisclosureTriangle", panel)
            .click()
            .expect("fold a panel");
    }
    phone_size(&tab, true);
    save_screenshot(&tab, &shots.join("chat-phone.png"));
    phone_size(&tab, false);
    control(&tab, "DisclosureTriangle", "Rooms")
        .click()
        .expect("unfold the rooms");

    // The teacher's status page, in a second tab, sees both students.
    let status = browser.new_tab().expect("a second tab");
    status
        .navigate_to(&format!("{origin}/status?token={STATUS_TOKEN}"))
        .and_then(|tab| tab.wait_until_navigated())
        .expect("open the status page");
    wait_for(&status, "ana on the status page", &text_contains("ana"));
    wait_for(&status, "bob on the status page", &text_contains("bob"));
    // The node, its bus and its store, and that each works.
    wait_for(&status, "the bus", &text_contains("local: working"));
    wait_for(&status, "the store", &text_contains("sqlite: working"));
    save_screenshot(&status, &shots.join("status.png"));
    status.close(false).expect("close the status tab");

    // The server stops: the page says why and that it is trying again.
    stop_server(server);
    wait_for(
        &tab,
        "the BYE reason",
        &text_contains("The server is shutting down."),
    );
    wait_for(
        &tab,
        "the lost connection",
        &text_contains("connection to the server was lost"),
    );
    // It starts again on the same port: the page comes back by itself,
    // logs in again with the password it kept in memory, and rejoins `sala`.
    let server = start_server(&db, &addr.to_string());
    wait_for(&tab, "the reconnection", &text_contains("Connected again"));
    let mut carol = server.connect();
    for line in ["REGISTER carol pw-carol", "LOGIN carol pw-carol"] {
        carol.send(line);
        carol.expect_prefix("OK ");
    }
    carol.join("sala");
    carol.send("WHO");
    let mut members = carol.lines_until(|line| line.starts_with("OK WHO"));
    members.sort();
    assert_eq!(members, ["OK WHO 2", "USER ana", "USER carol"]);
    control(&tab, "textbox", "Message")
        .type_into("voltei")
        .expect("type a message");
    tab.press_key("Enter").expect("press Enter");
    carol.expect_msg("sala", "ana", "voltei");

    // A room created in the form appears in the list; leaving and logging
    // out are seen by the room.
    control(&tab, "DisclosureTriangle", "Create a room")
        .click()
        .expect("open the create form");
    control(&tab, "textbox", "Room name")
        .type_into("nova")
        .expect("type the room's name");
    control(&tab, "button", "Create")
        .click()
        .expect("click Create");
    wait_for(
        &tab,
        "the new room",
        &text_contains("Public room nova created."),
    );
    control(&tab, "button", "nova");
    control(&tab, "button", "Leave the room")
        .click()
        .expect("click Leave the room");
    carol.expect("LEFT sala ana leave");
    control(&tab, "button", "sala").click().expect("join again");
    carol.expect("JOINED sala ana");
    control(&tab, "button", "Log out")
        .click()
        .expect("click Log out");
    carol.expect("LEFT sala ana quit");
    control(&tab, "button", "Log in");

    let refused = watch.csp.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "the page broke its Content-Security-Policy: {refused:?}"
    );
}

/// A member who owns nothing and is no admin sees no moderation control:
/// no actions button next to the others' names, no topic, bans or close
/// tools, no Announcement panel. (HELP, which the page asks quietly after
/// each JOIN, lists no moderation command to such a member.)
#[test]
#[ignore = "needs Chromium: apt-get install -y chromium; cargo test --test browser -- --ignored"]
fn a_plain_member_sees_no_moderation_controls() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: {CHROMIUM} is missing (apt-get install -y chromium)");
        return;
    }
    let db_dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(&db_dir.path().join("chat.db"), "127.0.0.1:0");
    let origin = format!("https://localhost:{}", server.addr.port());

    // bob, on the line protocol, owns `sala` and waits in it.
    let mut bob = owner_of_sala(&server, &["ana"]);

    let profile = tempfile::tempdir().expect("temp dir");
    let browser = launch(profile.path());
    let (tab, watch) = logged_in_tab(&browser, &origin, "ana");
    control(&tab, "button", "sala")
        .click()
        .expect("click the room");
    bob.expect("JOINED sala ana");
    control(&tab, "DisclosureTriangle", "In the room (2)")
        .click()
        .expect("open the member list");
    wait_for(&tab, "bob in the member list", &text_contains("bob"));
    // The page sent HELP right after OK JOIN; a message sent now is
    // answered after it (one connection's lines are answered in order), so
    // once its echo is on the page, HELP's answer has been read too.
    said_and_seen(&tab, "ana", "oi, bob");
    bob.expect_msg("sala", "ana", "oi, bob");

    for (role, name) in [
        ("button", "Actions for bob"),
        ("button", "Edit topic"),
        ("button", "Bans"),
        ("button", "Close room"),
        ("DisclosureTriangle", "Announcement"),
    ] {
        assert_eq!(
            controls_named(&tab, role, name),
            0,
            "a plain member sees the {role} {name:?}"
        );
    }
    // The same in Portuguese.
    choose_language(&tab, "pt");
    control(&tab, "textbox", "Mensagem");
    assert_eq!(controls_named(&tab, "button", "Ações para bob"), 0);
    choose_language(&tab, "en");
    watch.assert_clean();
}

/// Moderation in the browser (issue 14), for an admin and for a room's
/// owner, against a student on the line protocol. Needs the server's side
/// of moderation (KICK, BAN, UNBAN, BANS, TOPIC, CLOSE, ANNOUNCE, and HELP
/// listing them to whom may use them).
///
/// - `prof`, made an admin in the database before logging in, joins bob's
///   room `sala`, opens bob's actions menu (screenshot
///   `target/screenshots/moderation.png`), kicks him with a reason: bob gets
///   `KICKED`. prof sets the topic: bob, joining again, gets the `TOPIC`
///   line. prof bans bob for 5 minutes (bob cannot join), lifts the ban
///   from the Bans view (bob can), announces (bob gets the `NOTICE`, the
///   page shows it in its banner), and closes the room (bob gets `CLOSED`).
/// - `ana`, no admin, creates `clube` in the form and so owns it: she gets
///   bob's actions menu there and kicks him, but no Announcement panel.
#[test]
#[ignore = "needs Chromium and the server's moderation: cargo test --test browser -- --ignored"]
fn an_admin_and_an_owner_moderate_from_the_browser() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: {CHROMIUM} is missing (apt-get install -y chromium)");
        return;
    }
    let db_dir = tempfile::tempdir().expect("temp dir");
    let db = db_dir.path().join("chat.db");
    let server = start_server(&db, "127.0.0.1:0");
    let origin = format!("https://localhost:{}", server.addr.port());

    let mut bob = owner_of_sala(&server, &["prof", "ana"]);
    // Only the server's command line grants the admin role; a role is read
    // at LOGIN, so this one counts from prof's login below.
    let changed = rusqlite::Connection::open(&db)
        .and_then(|conn| {
            conn.busy_timeout(WAIT)?;
            conn.execute("UPDATE users SET admin = 1 WHERE name = ?1", ["prof"])
        })
        .expect("make prof an admin");
    assert_eq!(changed, 1, "no account prof to make an admin");

    let profile = tempfile::tempdir().expect("temp dir");
    let browser = launch(profile.path());
    let (tab, prof_watch) = logged_in_tab(&browser, &origin, "prof");
    // An admin may announce from anywhere: the panel is there before any room.
    control(&tab, "DisclosureTriangle", "Announcement");

    control(&tab, "button", "sala")
        .click()
        .expect("click the room");
    bob.expect("JOINED sala prof");
    control(&tab, "DisclosureTriangle", "In the room (2)")
        .click()
        .expect("open the member list");

    // Kick, with a reason, from bob's actions menu.
    control(&tab, "button", "Actions for bob")
        .click()
        .expect("open bob's menu");
    control(&tab, "menuitem", "Ban…");
    let kick = control(&tab, "menuitem", "Kick");
    save_screenshot(&tab, &screenshot_dir().join("moderation.png"));
    kick.click().expect("choose Kick");
    control(&tab, "textbox", "Reason (optional)")
        .type_into("please stop flooding")
        .expect("type the reason");
    tab.press_key("Enter").expect("press Enter");
    bob.expect("KICKED sala prof please stop flooding");
    wait_for(
        &tab,
        "the kick's OK",
        &text_contains("You removed bob from the room."),
    );
    wait_for(
        &tab,
        "the kick's LEFT",
        &text_contains("bob was removed from the room."),
    );

    // The topic: set in the page, shown above the messages, sent to a
    // joiner after the history.
    control(&tab, "button", "Edit topic")
        .click()
        .expect("click Edit topic");
    control(&tab, "textbox", "New topic")
        .type_into("Prova na sexta")
        .expect("type the topic");
    tab.press_key("Enter").expect("press Enter");
    wait_for(&tab, "the topic", &topic_shown("Prova na sexta"));
    bob.send("JOIN sala");
    let joined = bob.lines_until(|line| line.starts_with("OK JOIN") || line.starts_with("ERR"));
    assert!(
        joined
            .iter()
            .any(|line| line.starts_with("TOPIC sala prof ") && line.ends_with(" Prova na sexta")),
        "no TOPIC line in the JOIN: {joined:?}"
    );
    assert_eq!(joined.last().map(String::as_str), Some("OK JOIN sala"));

    // A ban of 5 minutes puts bob out and keeps him out...
    control(&tab, "button", "Actions for bob")
        .click()
        .expect("open bob's menu");
    control(&tab, "menuitem", "Ban…")
        .click()
        .expect("choose Ban…");
    control(&tab, "spinbutton", "Minutes (empty: until lifted)")
        .type_into("5")
        .expect("type the minutes");
    control(&tab, "textbox", "Reason (optional)")
        .type_into("spam")
        .expect("type the reason");
    tab.press_key("Enter").expect("press Enter");
    bob.expect("KICKED sala prof spam");
    wait_for(
        &tab,
        "the ban's OK",
        &text_contains("bob is banned from sala for 5 minutes."),
    );
    bob.send("JOIN sala");
    bob.expect_prefix("ERR BANNED ");
    // ...until it is lifted in the Bans view.
    control(&tab, "button", "Bans").click().expect("click Bans");
    control(&tab, "button", "Unban bob")
        .click()
        .expect("click Unban bob");
    wait_for(
        &tab,
        "the unban's OK",
        &text_contains("bob may join sala again."),
    );
    wait_for(
        &tab,
        "the empty ban list",
        &text_contains("Nobody is banned from this room."),
    );
    control(&tab, "button", "Done")
        .click()
        .expect("close the Bans view");
    bob.send("JOIN sala");
    let joined = bob.lines_until(|line| line.starts_with("OK JOIN") || line.starts_with("ERR"));
    assert_eq!(joined.last().map(String::as_str), Some("OK JOIN sala"));

    // An announcement reaches every connection, and stands out on the page.
    control(&tab, "DisclosureTriangle", "Announcement")
        .click()
        .expect("open the Announcement panel");
    control(&tab, "textbox", "Announcement text")
        .type_into("a aula termina em 5 minutos")
        .expect("type the announcement");
    tab.press_key("Enter").expect("press Enter");
    let notice = bob.lines_until(|line| line.starts_with("NOTICE "));
    let notice = notice.last().expect("a NOTICE line");
    assert!(
        notice.ends_with(" prof a aula termina em 5 minutos"),
        "{notice:?}"
    );
    wait_for(
        &tab,
        "the announcement's banner",
        &format!(
            "[...document.querySelectorAll('[role=status]')].some(e => e.innerText.includes({}))",
            js_string("a aula termina em 5 minutos")
        ),
    );
    wait_for(
        &tab,
        "the announcement's OK",
        &text_contains("Announcement sent to"),
    );

    // Closing the room asks first, then puts everyone out.
    control(&tab, "button", "Close room")
        .click()
        .expect("click Close room");
    control(&tab, "button", "Close the room")
        .click()
        .expect("confirm");
    bob.lines_until(|line| line == "CLOSED sala prof");
    wait_for(
        &tab,
        "the close's OK",
        &text_contains("You closed the room sala."),
    );

    // ana owns the room she creates: she may moderate it, and only it.
    let (ana_tab, ana_watch) = logged_in_tab(&browser, &origin, "ana");
    control(&ana_tab, "DisclosureTriangle", "Create a room")
        .click()
        .expect("open the create form");
    control(&ana_tab, "textbox", "Room name")
        .type_into("clube")
        .expect("type the room's name");
    control(&ana_tab, "button", "Create")
        .click()
        .expect("click Create");
    control(&ana_tab, "button", "clube")
        .click()
        .expect("join the room");
    wait_for(&ana_tab, "the room", &text_contains("You are in clube."));
    bob.join("clube");
    control(&ana_tab, "DisclosureTriangle", "In the room (2)")
        .click()
        .expect("open the member list");
    control(&ana_tab, "button", "Actions for bob")
        .click()
        .expect("open bob's menu");
    control(&ana_tab, "menuitem", "Kick")
        .click()
        .expect("choose Kick");
    control(&ana_tab, "button", "Kick")
        .click()
        .expect("kick without a reason");
    bob.lines_until(|line| line == "KICKED clube ana");
    assert_eq!(
        controls_named(&ana_tab, "DisclosureTriangle", "Announcement"),
        0,
        "a room owner who is no admin may announce"
    );

    for watch in [prof_watch, ana_watch] {
        watch.assert_clean();
    }
}

/// bob, on the line protocol: registers `others` (password `pw-<name>`)
/// and himself, logs in, creates `sala` (so he owns it) and waits in it.
fn owner_of_sala(server: &ServerBinary, others: &[&str]) -> TestClient {
    let mut bob = server.connect();
    let registrations = others
        .iter()
        .chain(&["bob"])
        .map(|name| format!("REGISTER {name} pw-{name}"));
    for line in registrations.chain(["LOGIN bob pw-bob".to_owned(), "CREATE sala".to_owned()]) {
        bob.send(&line);
        bob.expect_prefix("OK ");
    }
    bob.join("sala");
    bob
}

/// A new tab of `browser`, watched, with the web client open and `user`
/// (password `pw-<user>`) logged in.
fn logged_in_tab(browser: &Browser, origin: &str, user: &str) -> (Arc<Tab>, Arc<Watch>) {
    let tab = browser.new_tab().expect("a tab");
    let watch = watch(&tab);
    open_page(&tab, origin);
    log_in(&tab, user, &format!("pw-{user}"));
    (tab, watch)
}

/// Opens the web client in `tab`.
fn open_page(tab: &Tab, origin: &str) {
    tab.navigate_to(&format!("{origin}/"))
        .and_then(|tab| tab.wait_until_navigated())
        .expect("open the web client");
}

/// Logs in through the form, in English, and waits until the page says so.
fn log_in(tab: &Tab, user: &str, password: &str) {
    choose_language(tab, "en");
    control(tab, "textbox", "User name")
        .type_into(user)
        .expect("type the user name");
    control(tab, "textbox", "Password")
        .type_into(password)
        .expect("type the password");
    control(tab, "button", "Log in")
        .click()
        .expect("click Log in");
    wait_for(
        tab,
        "the login",
        &text_contains(&format!("Logged in as {user}.")),
    );
}

/// Says `text` in the page's room as `user` and waits for its echo.
fn said_and_seen(tab: &Tab, user: &str, text: &str) {
    control(tab, "textbox", "Message")
        .type_into(text)
        .expect("type a message");
    tab.press_key("Enter").expect("press Enter");
    wait_for(
        tab,
        "the message's echo",
        &format!(
            "[...document.querySelectorAll('[role=log] li')].some(li => \
               li.querySelector('.author')?.textContent === {} && \
               li.querySelector('.text')?.textContent === {})",
            js_string(&format!("{user}:")),
            js_string(text),
        ),
    );
}

/// A JavaScript condition: the room's topic line, above the messages, shows
/// `topic`.
fn topic_shown(topic: &str) -> String {
    format!(
        "[...document.querySelectorAll('p')].some(p => \
           p.innerText.startsWith('Topic:') && p.innerText.includes({}))",
        js_string(topic)
    )
}

/// How many controls with this role and accessible name the page shows
/// now (not waited for: to check that one is absent).
fn controls_named(tab: &Tab, role: &str, name: &str) -> usize {
    let root = tab.get_document().expect("the document").node_id;
    tab.call_method(Accessibility::QueryAXTree {
        node_id: Some(root),
        backend_node_id: None,
        object_id: None,
        accessible_name: Some(name.to_string()),
        role: Some(role.to_string()),
    })
    .expect("query the accessibility tree")
    .nodes
    .iter()
    .filter(|node| !node.ignored)
    .count()
}

/// The server binary with the web on, fast hashing and a known status
/// token, on `addr` (a restart comes back on the port the page knows).
fn start_server(db: &Path, addr: &str) -> ServerBinary {
    ServerBinary::start_at(
        db,
        addr,
        &["--web", "on", "--fast-hash", "--status-token", STATUS_TOKEN],
    )
}

/// Stops the server the way Ctrl-C does (every client gets `BYE
/// SHUTDOWN`) and waits until it has.
fn stop_server(server: ServerBinary) {
    send_signal(server.child(), "-TERM");
    support::wait_for_log(&server.log, "server stopped");
    server.wait_for_exit();
}

/// Headless Chromium with a fresh profile in `profile`, offline: nothing
/// but the test's server is ever contacted. The dev certificate is signed
/// by the tests' own CA, which Chromium does not know: hence
/// `--ignore-certificate-errors`.
fn launch(profile: &Path) -> Browser {
    let options = LaunchOptions {
        path: Some(PathBuf::from(CHROMIUM)),
        headless: true,
        sandbox: false,
        enable_gpu: false,
        ignore_certificate_errors: true,
        user_data_dir: Some(profile.to_path_buf()),
        window_size: Some((1100, 720)),
        idle_browser_timeout: Duration::from_secs(120),
        args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
        ]
        .iter()
        .map(std::ffi::OsStr::new)
        .collect(),
        ..LaunchOptions::default()
    };
    Browser::new(options).expect("start Chromium")
}

/// What the page did that it must never do, as the browser reports it.
#[derive(Default)]
struct Watch {
    /// Raised if the page ever opened an `alert` (or any dialog).
    dialog: AtomicBool,
    /// The browser's console messages about the Content-Security-Policy
    /// (an inline script or style, a request to another host, refused).
    csp: Mutex<Vec<String>>,
}

impl Watch {
    /// Asserts that the page broke no Content-Security-Policy rule and
    /// opened no dialog.
    fn assert_clean(&self) {
        let refused = self.csp.lock().unwrap().clone();
        assert!(
            refused.is_empty(),
            "the page broke its Content-Security-Policy: {refused:?}"
        );
        assert!(
            !self.dialog.load(Ordering::SeqCst),
            "the page opened a dialog"
        );
    }
}

fn watch(tab: &Tab) -> Arc<Watch> {
    let watch = Arc::new(Watch::default());
    let seen = watch.clone();
    tab.enable_log().expect("enable the console log");
    tab.add_event_listener(Arc::new(move |event: &Event| match event {
        Event::PageJavascriptDialogOpening(_) => seen.dialog.store(true, Ordering::SeqCst),
        Event::LogEntryAdded(added)
            if added.params.entry.text.contains("Content Security Policy") =>
        {
            seen.csp
                .lock()
                .unwrap()
                .push(added.params.entry.text.clone());
        }
        _ => {}
    }))
    .expect("listen to the page");
    watch
}

/// The control with this role and accessible name, as the browser's
/// accessibility tree has it (hidden controls are not in it), waited for.
fn control<'a>(tab: &'a Tab, role: &str, name: &str) -> Element<'a> {
    let found = Wait::with_timeout(WAIT).until(|| {
        let root = tab.get_document().ok()?.node_id;
        let nodes = tab
            .call_method(Accessibility::QueryAXTree {
                node_id: Some(root),
                backend_node_id: None,
                object_id: None,
                accessible_name: Some(name.to_string()),
                role: Some(role.to_string()),
            })
            .ok()?
            .nodes;
        let backend = nodes
            .iter()
            .filter(|node| !node.ignored)
            .find_map(|node| node.backend_dom_node_id)?;
        let pushed = tab
            .call_method(DOM::PushNodesByBackendIdsToFrontend {
                backend_node_ids: vec![backend],
            })
            .ok()?;
        Element::new(tab, *pushed.node_ids.first()?).ok()
    });
    found.unwrap_or_else(|_| panic!("no {role} named {name:?} within {WAIT:?}"))
}

/// Picks a language in the page's language menu.
fn choose_language(tab: &Tab, lang: &str) {
    eval(
        tab,
        &format!(
            "(() => {{ const menu = document.getElementById('language'); \
             menu.value = {}; menu.dispatchEvent(new Event('change')); return true; }})()",
            js_string(lang)
        ),
    );
}

/// A JavaScript condition: the page's visible text contains `text`.
fn text_contains(text: &str) -> String {
    format!("document.body.innerText.includes({})", js_string(text))
}

/// A JavaScript condition: the message list has an entry by `user` with
/// exactly `text`, stamped with `time`.
fn message_shown(user: &str, text: &str, time: &str) -> String {
    format!(
        "[...document.querySelectorAll('[role=log] li')].some(li => \
           li.querySelector('.author')?.textContent === {} && \
           li.querySelector('.text')?.textContent === {} && \
           li.querySelector('time')?.dateTime === {})",
        js_string(&format!("{user}:")),
        js_string(text),
        js_string(time),
    )
}

/// Waits until the JavaScript `condition` is true in `tab`.
fn wait_for(tab: &Tab, what: &str, condition: &str) {
    let met = Wait::with_timeout(WAIT).until(|| {
        tab.evaluate(condition, false)
            .ok()?
            .value
            .filter(|value| value == &serde_json::Value::Bool(true))
    });
    assert!(
        met.is_ok(),
        "{what}: `{condition}` still false after {WAIT:?}; the page says:\n{}",
        eval(tab, "document.body.innerText")
    );
}

/// The value of a JavaScript expression in `tab`.
fn eval(tab: &Tab, expression: &str) -> serde_json::Value {
    tab.evaluate(expression, false)
        .expect("evaluate")
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// `text` as a JavaScript string literal (JSON's string syntax is valid
/// JavaScript).
fn js_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// A phone-sized viewport (390 × 844, touch), or back to the window's own.
fn phone_size(tab: &Tab, phone: bool) {
    if phone {
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width: 390,
            height: 844,
            device_scale_factor: 1.0,
            mobile: true,
            scale: None,
            screen_width: None,
            screen_height: None,
            position_x: None,
            position_y: None,
            dont_set_visible_size: None,
            screen_orientation: None,
            viewport: None,
            display_feature: None,
            device_posture: None,
        })
        .expect("phone-sized viewport");
    } else {
        tab.call_method(Emulation::ClearDeviceMetricsOverride(None))
            .expect("back to the window's size");
    }
}

/// `target/screenshots/`, created if needed.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// A PNG of what `tab` shows now.
fn save_screenshot(tab: &Tab, path: &Path) {
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    std::fs::write(path, png).expect("write the screenshot");
    println!("saved {}", path.display());
}

//! The web side of the port, over real TLS against the real server: ALPN
//! routing, every route's status and headers, the token rules, the limits
//! of a request head and of keep-alive, and protocol v1 over WebSocket
//! with a line-protocol client in the same room.
//!
//! A browser is played by a rustls client that offers ALPN `h2` and
//! `http/1.1`, as browsers do; WebSocket by tungstenite's client over that
//! TLS stream. Timeouts are made small through the config, never waited
//! out with sleeps: a test waits for what proves the event (a response,
//! a closed socket), with a deadline.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use support::{
    error_line, pki, run_to_exit, wait_for_log, ServerBinary, TestClient, TestServer, WAIT,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

/// The status token the test servers use.
const TOKEN: &str = "test-status-token-0123456789";

/// A TLS stream to the server.
type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A client config trusting the test CA that offers `alpn`.
fn tls_offering(alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let base = chat::tls::client_config(&pki().ca).expect("client config");
    let mut config = (*base).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects like a browser (ALPN `h2`, `http/1.1`) and finishes the handshake.
fn browser(addr: SocketAddr) -> Tls {
    connect(addr, &[b"h2", b"http/1.1"]).expect("handshake")
}

/// Connects offering `alpn` and completes the handshake.
fn connect(addr: SocketAddr, alpn: &[&[u8]]) -> std::io::Result<Tls> {
    let socket = TcpStream::connect(addr).expect("connect");
    socket.set_read_timeout(Some(WAIT)).expect("timeout");
    socket.set_write_timeout(Some(WAIT)).expect("timeout");
    let name = "localhost".try_into().expect("name");
    let conn = ClientConnection::new(tls_offering(alpn), name).expect("client");
    let mut tls = StreamOwned::new(conn, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// A server with the test token and `adjust` applied.
fn server(adjust: impl FnOnce(&mut chat::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.status_token = Some(TOKEN.into());
        adjust(c);
    })
}

/// One HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The first header `name` (any case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET path` with `headers` on `tls`, and reads the response.
fn get(tls: &mut Tls, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes()).expect("send");
    read_reply(tls)
}

/// Reads one response (head, then `Content-Length` bytes).
fn read_reply(tls: &mut Tls) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = parsed.parse(&buf).expect("an HTTP response") {
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let status = parsed.code.expect("a status");
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().expect("a length"));
            let mut body = buf[len..].to_vec();
            while body.len() < length {
                let n = tls.read(&mut chunk).expect("body");
                assert!(n > 0, "closed in the body");
                body.extend_from_slice(&chunk[..n]);
            }
            return Reply {
                status,
                headers,
                body,
            };
        }
        let n = tls.read(&mut chunk).expect("a response");
        assert!(n > 0, "closed before a response; got {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the server closes `tls` (EOF or reset), at most `limit`;
/// returns how long it took.
fn closed_within(tls: &mut Tls, limit: Duration) -> Duration {
    let started = Instant::now();
    tls.sock.set_read_timeout(Some(limit)).expect("timeout");
    let mut chunk = [0u8; 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("not closed within {limit:?}")
            }
            Err(_) => return started.elapsed(),
        }
    }
}

/// Every response carries the security headers.
fn assert_security_headers(reply: &Reply) {
    assert_eq!(
        reply.header("Content-Security-Policy"),
        Some("default-src 'self'")
    );
    assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(reply.header("Referrer-Policy"), Some("no-referrer"));
}

/// A browser negotiates `http/1.1`; a client without ALPN (the terminal
/// client) still gets `HELLO` first; one offering only `h2` is refused in
/// the handshake; with `--web off` no ALPN is offered and a browser's
/// connection is a v1 client.
#[test]
fn alpn_routes_browsers_to_http_and_everyone_else_to_v1() {
    let on = server(|_| {});
    let tls = browser(on.addr);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut v1 = TestClient::connect(on.addr);
    assert!(v1.line().starts_with("HELLO 1 chat-server/"));
    assert!(
        connect(on.addr, &[b"h2"]).is_err(),
        "no protocol in common: refused"
    );

    let off = server(|c| c.web = false);
    let mut tls = browser(off.addr);
    assert_eq!(tls.conn.alpn_protocol(), None, "--web off offers no ALPN");
    let mut hello = [0u8; 8];
    tls.read_exact(&mut hello).expect("HELLO");
    assert_eq!(&hello, b"HELLO 1 ");
}

/// The web client's files, on one kept-alive connection, with their types
/// and the security headers; no file-system path is served.
#[test]
fn the_assets_are_served_with_their_types_and_headers() {
    let s = server(|_| {});
    let mut tls = browser(s.addr);
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/i18n.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/status.js", "text/javascript"),
    ] {
        let reply = get(&mut tls, path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply
                .header("Content-Type")
                .is_some_and(|t| t.starts_with(kind)),
            "{path}: {:?}",
            reply.header("Content-Type")
        );
        assert!(!reply.body.is_empty(), "{path}");
        assert_eq!(reply.header("Connection"), None, "{path}: kept alive");
        assert_security_headers(&reply);
    }
    let index = get(&mut tls, "/", &[]).text();
    assert!(index.contains("<script type=\"module\" src=\"/app.js\">"));
    for path in [
        "/index.html",
        "/../Cargo.toml",
        "/web/app.js",
        "/%2e%2e/key.pem",
    ] {
        let reply = get(&mut tls, path, &[]);
        assert_eq!(reply.status, 404, "{path}");
        assert_security_headers(&reply);
    }
}

/// Without the token: 401 and no data. `?token=` works and sets the
/// cookie (HttpOnly, Secure, SameSite=Strict); the cookie works; a bearer
/// token works; a wrong one does not. Never cached.
#[test]
fn the_status_pages_need_the_token() {
    let s = server(|_| {});
    let mut tls = browser(s.addr);
    for path in ["/status", "/status.json", "/metrics"] {
        let reply = get(&mut tls, path, &[]);
        assert_eq!(reply.status, 401, "{path}");
        assert!(!reply.text().contains("uptime"), "{path}: no data");
        assert_eq!(reply.header("Cache-Control"), Some("no-store"));
        assert_security_headers(&reply);
        let wrong = get(&mut tls, path, &[("Authorization", "Bearer nope")]);
        assert_eq!(wrong.status, 401, "{path}, wrong token");
    }
    let reply = get(&mut tls, &format!("/status?token={TOKEN}"), &[]);
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("/status.js"));
    assert_eq!(reply.header("Cache-Control"), Some("no-store"));
    let cookie = reply.header("Set-Cookie").expect("a cookie").to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().expect("name=value");
    let reply = get(&mut tls, "/status.json", &[("Cookie", pair)]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Cache-Control"), Some("no-store"));
    let data: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(data["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["limits"]["max_line"], 4096);
    assert!(data["public_address"].is_null() || data["public_address"].is_string());
    let bearer = format!("Bearer {TOKEN}");
    let reply = get(&mut tls, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Cache-Control"), Some("no-store"));
}

/// The status data follows the class: users, their rooms, the rooms'
/// members and messages of the last minute, connections by kind.
#[test]
fn status_json_shows_who_is_where() {
    let s = server(|_| {});
    let mut ana = s.user_in("ana", "lobby");
    ana.send("SAY hello");
    ana.expect_prefix("MSG lobby ");
    let _bob = s.user("bob");
    let mut tls = browser(s.addr);
    let bearer = format!("Bearer {TOKEN}");
    let reply = get(&mut tls, "/status.json", &[("Authorization", &bearer)]);
    let data: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        data["users"],
        serde_json::json!([{ "name": "ana", "room": "lobby" }, { "name": "bob", "room": null }])
    );
    let lobby = data["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["name"] == "lobby")
        .expect("lobby")
        .clone();
    assert_eq!(lobby["members"], 1);
    assert_eq!(lobby["messages_last_minute"], 1);
    assert_eq!(data["connections"]["terminal"], 2);
    assert_eq!(data["connections"]["http"], 1, "this request's own");
    // A server alone: the in-process bus and its SQLite file, both working.
    let node = &data["node"];
    assert!(
        node["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{node}"
    );
    assert_eq!(node["bus"]["kind"], "local");
    assert_eq!(node["bus"]["ok"], true);
    assert_eq!(node["store"]["engine"], "sqlite");
    assert_eq!(node["store"]["ok"], true);
    assert!(
        node["store"]["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("sqlite:") && t.ends_with("chat.db")),
        "{node}"
    );
}

/// 404, 405, 431 (a head over 8 KiB), 400 (not HTTP; a bad upgrade) and
/// 403 (an upgrade from another site's page).
#[test]
fn errors_have_their_statuses() {
    let s = server(|_| {});
    let mut tls = browser(s.addr);
    assert_eq!(get(&mut tls, "/nothing-here", &[]).status, 404);

    tls.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        .expect("send");
    let reply = read_reply(&mut tls);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("Allow"), Some("GET"));
    assert_security_headers(&reply);

    let mut tls = browser(s.addr);
    let big = "a".repeat(9 * 1024);
    let reply = get(&mut tls, "/", &[("X-Big", &big)]);
    assert_eq!(reply.status, 431);
    assert_security_headers(&reply);

    // A much larger head, sent whole before reading: the 431 still
    // arrives (the server reads what follows instead of resetting).
    let mut tls = browser(s.addr);
    let huge = format!(
        "GET / HTTP/1.1\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(256 * 1024)
    );
    tls.write_all(huge.as_bytes()).expect("send");
    assert_eq!(read_reply(&mut tls).status, 431);

    let mut tls = browser(s.addr);
    tls.write_all(b"HELLO THERE\r\n\r\n").expect("send");
    assert_eq!(read_reply(&mut tls).status, 400);

    let mut tls = browser(s.addr);
    assert_eq!(get(&mut tls, "/ws", &[]).status, 400, "no upgrade headers");

    let port = s.addr.port().to_string();
    for (origin, status) in [
        ("https://evil.example".to_string(), 403),
        (format!("http://localhost:{port}"), 403),
    ] {
        let mut tls = browser(s.addr);
        let host = format!("localhost:{port}");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).expect("send");
        assert_eq!(read_reply(&mut tls).status, status, "{origin}");
    }
}

/// A head dribbled one byte at a time is cut at its deadline (1 s here),
/// not kept alive by each byte.
#[test]
fn a_dribbled_head_is_cut_at_its_deadline() {
    let s = server(|c| c.http_head_timeout = Duration::from_secs(1));
    let mut tls = browser(s.addr);
    let started = Instant::now();
    tls.write_all(b"GET / HTTP/1.1\r\n").expect("send");
    // One header byte every 100 ms, for longer than the deadline.
    let mut cut = false;
    for _ in 0..60 {
        if tls.write_all(b"X").and_then(|()| tls.flush()).is_err() {
            cut = true;
            break;
        }
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        match tls.read(&mut byte) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(_) => panic!("an answer to half a head"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    let took = started.elapsed();
    assert!(cut, "still open after {took:?} of dribbling");
    assert!(took >= Duration::from_millis(900), "cut early: {took:?}");
    assert!(took < Duration::from_secs(4), "cut late: {took:?}");
}

/// A kept-alive connection with no next request is closed after the idle
/// timeout (1 s here).
#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let s = server(|c| c.http_idle_timeout = Duration::from_secs(1));
    let mut tls = browser(s.addr);
    assert_eq!(get(&mut tls, "/", &[]).status, 200);
    let took = closed_within(&mut tls, WAIT);
    assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    assert!(took < Duration::from_secs(4), "closed late: {took:?}");
}

/// HTTP connections count toward `--max-connections`: with one place
/// taken by a browser, a line client is told `BYE TOO_MANY_CONNECTIONS`.
#[test]
fn http_connections_count_toward_the_limit() {
    let s = server(|c| c.max_connections = 1);
    let mut tls = browser(s.addr);
    assert_eq!(get(&mut tls, "/", &[]).status, 200);
    let mut v1 = TestClient::connect(s.addr);
    assert_eq!(v1.expect_closed(), vec![v1_bye()]);
}

/// The `BYE` a full server sends.
fn v1_bye() -> String {
    format!(
        "BYE TOO_MANY_CONNECTIONS {}",
        chat::server::bye_text(chat::protocol::ByeReason::TooManyConnections)
    )
}

/// A WebSocket client over TLS with ALPN `http/1.1`, upgraded with this
/// server's own origin, that has read `HELLO`.
fn websocket(addr: SocketAddr) -> tungstenite::WebSocket<Tls> {
    use tungstenite::client::IntoClientRequest;
    let tls = browser(addr);
    let port = addr.port();
    let mut request = format!("wss://localhost:{port}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Origin",
        format!("https://localhost:{port}").parse().expect("header"),
    );
    let (mut ws, response) = tungstenite::client::client(request, tls).expect("upgrade");
    assert_eq!(response.status(), 101);
    let hello = text(&mut ws);
    assert!(hello.starts_with("HELLO 1 chat-server/"), "{hello}");
    ws
}

/// The next text message.
fn text(ws: &mut tungstenite::WebSocket<Tls>) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Sends one line as one text message.
fn send(ws: &mut tungstenite::WebSocket<Tls>, line: &str) {
    ws.send(Message::text(line)).expect("send");
}

/// A WebSocket client and a line-protocol client chat in the same room,
/// both ways, and see the room's messages in one order.
#[test]
fn a_websocket_client_chats_with_a_line_client() {
    let s = server(|_| {});
    let mut ana = s.user_in("ana", "lobby");
    let mut ws = websocket(s.addr);
    for (line, answer) in [
        ("REGISTER web pw", "OK REGISTER web"),
        ("LOGIN web pw", "OK LOGIN web"),
    ] {
        send(&mut ws, line);
        assert_eq!(text(&mut ws), answer);
    }
    send(&mut ws, "JOIN lobby");
    let mut joined = Vec::new();
    loop {
        let line = text(&mut ws);
        let done = line.starts_with("OK JOIN");
        joined.push(line);
        if done {
            break;
        }
    }
    ana.expect("JOINED lobby web");
    ana.send("SAY one");
    send(&mut ws, "SAY two");
    ana.send("SAY three");
    let mut seen_by_ana = Vec::new();
    let mut seen_by_web = Vec::new();
    for _ in 0..3 {
        seen_by_ana.push(ana.expect_prefix("MSG lobby "));
        seen_by_web.push(text(&mut ws));
    }
    let words = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.rsplit(' ').next().expect("a word").to_string())
            .collect()
    };
    assert_eq!(words(&seen_by_ana), words(&seen_by_web), "one order");
    let mut said = words(&seen_by_web);
    said.sort();
    assert_eq!(said, ["one", "three", "two"]);
    // A ping is answered with a pong, and the session goes on.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("ping");
    match ws.read().expect("pong") {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // A LF inside a message never makes two commands of it.
    send(&mut ws, "SAY x\nQUIT");
    let refused = text(&mut ws);
    assert!(refused.starts_with("ERR BAD_TEXT "), "{refused}");
    // QUIT: the BYE line, then a close frame carrying its reason.
    send(&mut ws, "QUIT");
    assert!(text(&mut ws).starts_with("BYE QUIT"));
    match ws.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "QUIT");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    ana.expect("LEFT lobby web quit");
}

/// A message over `--max-line` is refused exactly like a long line, and
/// the connection lives on.
#[test]
fn a_websocket_message_over_max_line_is_refused_like_a_long_line() {
    let s = server(|c| c.max_line = 100);
    let mut ws = websocket(s.addr);
    send(&mut ws, &format!("PING {}", "x".repeat(200)));
    let refused = text(&mut ws);
    assert!(refused.starts_with("ERR LINE_TOO_LONG "), "{refused}");
    send(&mut ws, "PING still-here");
    assert_eq!(text(&mut ws), "PONG still-here");
    let mut v1 = TestClient::connect(s.addr);
    v1.line();
    v1.send(&format!("PING {}", "x".repeat(200)));
    assert_eq!(v1.line(), refused, "the same refusal as a long line");
}

/// `/metrics` parses back: every sample line is `name{labels} value`, the
/// connection gauges count each kind, and the counters move.
#[test]
fn metrics_parse_back() {
    let s = server(|_| {});
    let mut ana = s.user_in("ana", "lobby");
    ana.send("SAY counted");
    ana.expect_prefix("MSG lobby ");
    let _ws = websocket(s.addr);
    let mut tls = browser(s.addr);
    let bearer = format!("Bearer {TOKEN}");
    let reply = get(&mut tls, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(reply.status, 200);
    let text = reply.text();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        samples.insert(name.to_string(), value);
    }
    assert!(text.ends_with("# EOF\n"));
    let get = |name: &str| {
        *samples
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {text}"))
    };
    assert_eq!(get("chat_connections{kind=\"terminal\"}"), 1.0);
    assert_eq!(get("chat_connections{kind=\"web\"}"), 1.0);
    assert_eq!(get("chat_connections{kind=\"http\"}"), 1.0);
    assert_eq!(get("chat_users_online"), 1.0);
    assert_eq!(get("chat_logins_ok_total"), 1.0);
    assert_eq!(get("chat_messages_said_total"), 1.0);
    assert_eq!(get("chat_deliveries_total"), 1.0);
    assert!(get("chat_rooms") >= 1.0);
    assert_eq!(get("chat_bus_up"), 1.0);
    assert_eq!(get("chat_store_up"), 1.0);
    assert_eq!(get("chat_bus_events_dropped"), 0.0);
    assert!(samples.keys().any(|k| k.starts_with("chat_node{")
        && k.contains("bus=\"local\"")
        && k.contains("store=\"sqlite\"")));
    assert!(samples
        .keys()
        .any(|k| k.starts_with("chat_db_commit_seconds_bucket")));
}

/// The server binary logs the status page's whole address, with a fresh
/// random token, right after `listening on`; that token opens the page.
/// A bad `--status-token` or `--http-idle-timeout` is one clear line and
/// a failure status.
#[test]
fn the_binary_logs_the_status_address_and_checks_its_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerBinary::start(&dir.path().join("chat.db"), &["--fast-hash"]);
    let line = wait_for_log(&server.log, "status page: ");
    let url = line
        .split("status page: ")
        .nth(1)
        .expect("an address")
        .trim();
    let prefix = format!("https://localhost:{}/status?token=", server.addr.port());
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert_eq!(token.len(), 32, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    let mut tls = browser(server.addr);
    assert_eq!(
        get(&mut tls, &format!("/status.json?token={token}"), &[]).status,
        200
    );
    assert_eq!(
        get(&mut tls, "/status.json?token=0123456789abcdef", &[]).status,
        401
    );

    for (options, expected) in [
        (
            ["--status-token", "short"],
            "--status-token must be at least 16",
        ),
        (
            ["--http-idle-timeout", "16"],
            "--http-idle-timeout must be at most 15",
        ),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.args(options)
            .arg("--db")
            .arg(dir.path().join("other.db"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let out = run_to_exit(cmd);
        let line = error_line(&out);
        assert!(line.contains(expected), "{line}");
    }
}

/// A certificate reload (SIGHUP) keeps the ALPN offer: after it, a browser
/// still negotiates `http/1.1` and a client without ALPN still gets `HELLO`.
#[test]
fn a_certificate_reload_keeps_alpn() {
    let files = chat::tls::TlsFiles::new(&pki().cert, &pki().key);
    let tls = chat::server::ServerTls::load(files).expect("load");
    let server = TestServer::start_tls(tls.clone());
    assert_eq!(
        browser(server.addr).conn.alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    tls.reload().expect("reload");
    assert_eq!(
        browser(server.addr).conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "after the reload"
    );
    let mut v1 = TestClient::connect(server.addr);
    assert!(v1.line().starts_with("HELLO 1 chat-server/"));
}

/// A close frame from the browser ends the session: the room hears the
/// user leave, and the server answers the close.
#[test]
fn a_close_frame_from_the_browser_ends_the_session() {
    let s = server(|_| {});
    let mut ana = s.user_in("ana", "lobby");
    let mut ws = websocket(s.addr);
    for line in ["REGISTER web pw", "LOGIN web pw"] {
        send(&mut ws, line);
        assert!(text(&mut ws).starts_with("OK "));
    }
    send(&mut ws, "JOIN lobby");
    while !text(&mut ws).starts_with("OK JOIN") {}
    ana.expect("JOINED lobby web");
    ws.close(None).expect("close");
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("expected the close handshake to complete, got {e}"),
        }
    }
    ana.expect("LEFT lobby web quit");
}

/// A WebSocket that has not logged in counts toward
/// `--max-unauthenticated`: with the one place taken by a line client, an
/// upgrade gets 503.
#[test]
fn an_upgrade_needs_a_place_among_the_unauthenticated() {
    let s = server(|c| c.max_unauthenticated = 1);
    let mut v1 = TestClient::connect(s.addr);
    assert!(v1.line().starts_with("HELLO "), "holds the one place");
    let port = s.addr.port();
    let mut tls = browser(s.addr);
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).expect("send");
    assert_eq!(read_reply(&mut tls).status, 503);
    // Once the line client logs in, its place is free for a browser.
    v1.send("REGISTER ana pw");
    v1.expect("OK REGISTER ana");
    v1.send("LOGIN ana pw");
    v1.expect("OK LOGIN ana");
    let _ws = websocket(s.addr);
}

/// The login timeout applies to a WebSocket client from its upgrade, and
/// ends it as it ends a terminal client: the `BYE` line, then a close
/// frame carrying the reason.
#[test]
fn a_websocket_that_does_not_log_in_gets_bye_login_timeout() {
    let s = server(|c| c.login_timeout = Duration::from_secs(1));
    let started = Instant::now();
    let mut ws = websocket(s.addr);
    let bye = text(&mut ws);
    assert!(bye.starts_with("BYE LOGIN_TIMEOUT "), "{bye}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.reason.as_str(), "LOGIN_TIMEOUT"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

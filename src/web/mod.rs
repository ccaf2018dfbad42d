//! The web side of the port: HTTP/1.1 and WebSocket for browsers, on the
//! connection's own thread, with blocking I/O like everything else.
//!
//! A connection arrives here when its TLS handshake negotiated ALPN
//! `http/1.1` (`tls::ALPN_HTTP`, see `server::connection`). Its
//! `conn-N-http` thread then reads requests one at a time and answers
//! them (`serve`):
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/app.js`, `/i18n.js`, `/style.css` | the web client ([`assets`]) |
//! | `GET /ws` | the upgrade to WebSocket: the connection becomes a chat client ([`ws`]) |
//! | `GET /status`, `/status.js` | the teacher's live page |
//! | `GET /status.json` | its data ([`status`]) |
//! | `GET /metrics` | Prometheus text exposition ([`metrics`]) |
//!
//! `/status`, `/status.json` and `/metrics` need the token ([`token`]).
//! Anything else is 404; another method than `GET` on a route, 405; a
//! head over 8 KiB, 431; a bad upgrade, 400; an upgrade from another
//! site's page, 403 ([`http`] has the limits of time and size).
//!
//! After `101 Switching Protocols` this same thread becomes the reader of
//! an ordinary chat session (`server::connection::websocket`): same
//! commands, same limits, same reader and writer code; only the framing
//! differs.

pub mod assets;
pub mod http;
pub mod metrics;
pub mod status;
pub mod token;
pub mod ws;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::error::{Error, Result};
use crate::server::{connection, Slot, State};

use http::{Conn, ReadError, Request, Response};
use metrics::{Gauges, Kind};
use token::{Shown, Token};

/// How long writing one response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the web side keeps for the life of the server.
pub struct Site {
    /// The token of the teacher's pages.
    pub token: Token,
    /// The ngrok tunnel's address, cached.
    pub ngrok: status::Ngrok,
    /// The port the server listens on.
    port: u16,
}

impl Site {
    /// The web side of a server listening on port `port`: makes the token
    /// (or takes `--status-token`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if no random token can be made.
    pub fn new(port: u16, given: Option<&str>) -> Result<Site> {
        let token = Token::new(given).map_err(Error::Config)?;
        Ok(Site {
            token,
            ngrok: status::Ngrok::new(port),
            port,
        })
    }

    /// Logs the status page's whole address, token included, once, right
    /// after the server's `listening on` line.
    pub fn announce(&self) {
        // The one log line that shows the token, on purpose: it is how the
        // teacher gets it (as Jupyter prints its link). Nothing else ever
        // logs it, nor any token a request brings.
        log::info!(
            "status page: https://localhost:{}/status?token={}",
            self.port,
            self.token.reveal()
        );
    }
}

/// What one request leads to.
enum Next {
    /// Answered; read the next request.
    KeepGoing,
    /// Answered; close the connection.
    Close,
    /// Upgraded to WebSocket: what the peer sent behind its request.
    Upgrade(Vec<u8>, crate::server::admission::NotLoggedIn),
}

/// How an HTTP connection's loop of requests ends.
enum End {
    /// The peer closed, went quiet, or broke the connection: close.
    Quietly,
    /// A response that ends the connection was sent; the peer may still
    /// be sending, so close lingering (see `http::Conn::close`).
    AfterResponse,
    /// Upgraded to WebSocket: what the peer sent behind its request, and
    /// its place among the connections not logged in.
    Upgraded(Vec<u8>, crate::server::admission::NotLoggedIn),
}

/// Runs on the `conn-N-http` thread: serves requests until the connection
/// ends or upgrades to WebSocket. `over_limit`: the server was full when
/// it arrived, every request gets 503.
pub(crate) fn serve(
    state: Arc<State>,
    mut tls: ServerConnection,
    socket: Arc<TcpStream>,
    (id, peer): (u64, SocketAddr),
    slot: Slot,
    over_limit: bool,
) {
    let watched = state.watch_http(id, &socket);
    let counted = state.metrics.connection(Kind::Http);
    let mut conn = Conn {
        tls: &mut tls,
        socket: &socket,
        pending: Vec::new(),
    };
    let head_timeout = state.config.http_head_timeout;
    let end = loop {
        let idle = Instant::now() + state.config.http_idle_timeout;
        let request = match conn.read_head(idle, head_timeout) {
            Ok(request) => request,
            Err(ReadError::Done) => break End::Quietly,
            Err(ReadError::TimedOut) => {
                log::info!(
                    "conn {id} ({peer}): HTTP request head not in within {head_timeout:?}; cut"
                );
                break End::Quietly;
            }
            Err(ReadError::TooLarge) => {
                respond(
                    &state,
                    &mut conn,
                    "other",
                    &Response::text(431, "Request head too large.\n"),
                    false,
                );
                break End::AfterResponse;
            }
            Err(ReadError::Malformed(e)) => {
                log::info!("conn {id} ({peer}): bad HTTP request: {e}");
                respond(
                    &state,
                    &mut conn,
                    "other",
                    &Response::text(400, "Bad request.\n"),
                    false,
                );
                break End::AfterResponse;
            }
            Err(ReadError::Failed(e)) => {
                log::debug!("conn {id} ({peer}): HTTP connection ended: {e}");
                break End::Quietly;
            }
        };
        match answer(&state, &mut conn, &request, over_limit, id) {
            Next::KeepGoing => {}
            Next::Close => break End::AfterResponse,
            Next::Upgrade(already, not_logged_in) => break End::Upgraded(already, not_logged_in),
        }
    };
    match end {
        End::Quietly => conn.close(Duration::from_secs(2), false),
        End::AfterResponse => conn.close(Duration::from_secs(2), true),
        End::Upgraded(already, not_logged_in) => {
            // From here it is a chat client: counted and found by shutdown
            // as one (`connection::session`).
            drop(counted);
            drop(watched);
            log::info!("conn {id} ({peer}): WebSocket open");
            connection::websocket(
                state,
                tls,
                socket,
                (id, peer),
                (slot, not_logged_in),
                already,
            );
        }
    }
}

/// Answers one request.
fn answer(
    state: &Arc<State>,
    conn: &mut Conn<'_>,
    request: &Request,
    over_limit: bool,
    id: u64,
) -> Next {
    let keep_alive = request.keep_alive() && !request.has_body();
    let known = request.path == "/ws"
        || request.path == "/status.json"
        || request.path == "/metrics"
        || assets::find(&request.path).is_some();
    let route = route_label(&request.path);
    if !known {
        return respond(
            state,
            conn,
            route,
            &Response::text(404, "Not found.\n"),
            keep_alive,
        );
    }
    if request.method != "GET" {
        let response = Response::text(405, "Only GET here.\n").header("Allow", "GET");
        return respond(state, conn, route, &response, false);
    }
    if over_limit || state.shutdown.is_triggered() {
        let response = Response::text(503, "The server is full or stopping; try again later.\n");
        return respond(state, conn, route, &response, false);
    }
    if request.path == "/ws" {
        return upgrade(state, conn, request, id);
    }
    if let Some(asset) = assets::find(&request.path) {
        if !asset.needs_token {
            let response = Response::new(200)
                .header("Content-Type", asset.content_type)
                .header("Cache-Control", "no-cache")
                .body(asset.body.as_bytes().to_vec());
            return respond(state, conn, route, &response, keep_alive);
        }
    }
    // The teacher's pages: the token first, and never cached.
    let Some(site) = state.site.as_ref() else {
        return respond(
            state,
            conn,
            route,
            &Response::text(404, "Not found.\n"),
            keep_alive,
        );
    };
    let Some(shown) = site.token.check(request) else {
        let response = Response::text(
            401,
            "This page needs the status token: open the address the server printed at start.\n",
        )
        .header("WWW-Authenticate", "Bearer")
        .header("Cache-Control", "no-store");
        return respond(state, conn, route, &response, keep_alive);
    };
    let mut response = match request.path.as_str() {
        "/status.json" => {
            let data = status::snapshot(state, site.ngrok.public_address());
            Response::new(200)
                .header("Content-Type", "application/json")
                .body(data.to_string().into_bytes())
        }
        "/metrics" => {
            let gauges = Gauges {
                handshaking: state.handshaking_now(),
                users_online: state.hub.users_online().len(),
                rooms: state.hub.list_rooms().len(),
                outbox_max: state.hub.outbox_depth_max(),
                node: state.hub.bus().node().to_owned(),
                bus: state.hub.bus().health(),
                store: state.db.health(),
            };
            Response::new(200)
                .header(
                    "Content-Type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(state.metrics.exposition(&gauges).into_bytes())
        }
        _ => {
            let asset = assets::find(&request.path).expect("a known asset");
            Response::new(200)
                .header("Content-Type", asset.content_type)
                .body(asset.body.as_bytes().to_vec())
        }
    }
    .header("Cache-Control", "no-store");
    if shown == Shown::Query {
        response = response.header("Set-Cookie", site.token.set_cookie());
    }
    respond(state, conn, route, &response, keep_alive)
}

/// `GET /ws`: checks the upgrade, takes a place among the connections not
/// logged in, and answers 101.
fn upgrade(state: &Arc<State>, conn: &mut Conn<'_>, request: &Request, id: u64) -> Next {
    let response = match ws::accept(request) {
        Ok(response) => response,
        Err(ws::Refusal::BadUpgrade(why)) => {
            let response = Response::text(400, &format!("Bad WebSocket upgrade: {why}.\n"));
            return respond(state, conn, "/ws", &response, false);
        }
        Err(ws::Refusal::ForeignOrigin) => {
            let response = Response::text(403, "WebSocket only from this server's own page.\n");
            return respond(state, conn, "/ws", &response, false);
        }
    };
    let Some(not_logged_in) = state.unauthenticated.admit(id) else {
        let response = Response::text(503, "Too many connections are not logged in.\n");
        return respond(state, conn, "/ws", &response, false);
    };
    match respond(state, conn, "/ws", &response, true) {
        Next::KeepGoing => Next::Upgrade(std::mem::take(&mut conn.pending), not_logged_in),
        other => other,
    }
}

/// Writes `response`, counts it, and says what comes next.
fn respond(
    state: &State,
    conn: &mut Conn<'_>,
    route: &'static str,
    response: &Response,
    keep_alive: bool,
) -> Next {
    state.metrics.http_response(route, response.status);
    match conn.send(&response.to_bytes(keep_alive), WRITE_TIMEOUT) {
        Ok(()) if keep_alive => Next::KeepGoing,
        Ok(()) => Next::Close,
        Err(e) => {
            log::debug!("HTTP response not written: {e}");
            Next::Close
        }
    }
}

/// The route's name in `/metrics`: a known path, or `other` (so that
/// random paths cannot make the label set grow without bound).
fn route_label(path: &str) -> &'static str {
    match path {
        "/ws" => "/ws",
        "/status.json" => "/status.json",
        "/metrics" => "/metrics",
        _ => assets::find(path).map_or("other", |a| a.path),
    }
}

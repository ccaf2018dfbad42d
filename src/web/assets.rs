//! The files a browser loads, compiled into the binary.
//!
//! A fixed table maps each path to its bytes (`include_str!`, read when the
//! server is built): nothing is ever looked up on the file system at run
//! time, so no request path (`/../key.pem`, `/%2e%2e/`) can reach a file
//! that is not in this table. No CDN, no build step: the server works with
//! the machine offline.

/// One file the server sends.
#[derive(Debug)]
pub struct Asset {
    /// The request path.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
    /// Whether it is behind the status token (`/status`).
    pub needs_token: bool,
}

/// `Content-Type` of HTML.
const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of JavaScript.
const JS: &str = "text/javascript; charset=utf-8";
/// `Content-Type` of CSS.
const CSS: &str = "text/css; charset=utf-8";

/// Every file, by path.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        body: include_str!("../../web/index.html"),
        needs_token: false,
    },
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_str!("../../web/app.js"),
        needs_token: false,
    },
    Asset {
        path: "/i18n.js",
        content_type: JS,
        body: include_str!("../../web/i18n.js"),
        needs_token: false,
    },
    Asset {
        path: "/style.css",
        content_type: CSS,
        body: include_str!("../../web/style.css"),
        needs_token: false,
    },
    Asset {
        path: "/status",
        content_type: HTML,
        body: include_str!("../../web/status.html"),
        needs_token: true,
    },
    Asset {
        path: "/status.js",
        content_type: JS,
        body: include_str!("../../web/status.js"),
        needs_token: false,
    },
];

/// The file at `path`, if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

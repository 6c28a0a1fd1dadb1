//! Browser clients and DNS rebinding: a request that carries an `Origin` must come from an
//! origin the route allows (403 otherwise); allowed origins get CORS headers, and their
//! preflights are answered here, without a token.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderName, HeaderValue, Method};
use pingora::http::RequestHeader;

const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, MCP-Protocol-Version, \
    Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID";
const EXPOSE_HEADERS: &str = "WWW-Authenticate, Mcp-Session-Id";
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";

/// What the request's `Origin` means for it.
pub enum Verdict {
    /// No `Origin`: not a browser's cross-origin request.
    NoOrigin,
    /// Allowed: echo this origin in the response.
    Allowed(HeaderValue),
    Forbidden,
}

pub fn check(origins: &[String], req: &RequestHeader) -> Verdict {
    let Some(origin) = req.headers.get(ORIGIN) else {
        return Verdict::NoOrigin;
    };
    let allowed = origins
        .iter()
        .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()));
    if allowed {
        Verdict::Allowed(origin.clone())
    } else {
        Verdict::Forbidden
    }
}

pub fn is_preflight(req: &RequestHeader) -> bool {
    req.method == Method::OPTIONS && req.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// Headers for any response to an allowed origin.
pub fn response_headers(origin: &HeaderValue) -> [(HeaderName, HeaderValue); 3] {
    [
        (ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
        (
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        ),
        (VARY, HeaderValue::from_static("Origin")),
    ]
}

/// Extra headers of a preflight answer.
pub fn preflight_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        ),
        (
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        ),
        (ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
    ]
}

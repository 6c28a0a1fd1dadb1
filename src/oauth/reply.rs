//! The answers of the authorization server's endpoints, as plain response values: the
//! endpoints build them, the gateway writes them. Every one is `no-store` (except the
//! public metadata) and `nosniff`.

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::response::Builder;
use http::{HeaderValue, Response, StatusCode};

use super::consent;

pub type Reply = Response<Bytes>;

fn base(status: u16) -> Builder {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CACHE_CONTROL, "no-store")
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
}

/// Token, registration, revocation and introspection answers: clients call these from
/// browsers too, so any origin may read them (they carry no cookie-based credential).
fn open(status: u16) -> Builder {
    crate::cors::preflight_headers()
        .into_iter()
        .fold(base(status), |b, (name, value)| b.header(name, value))
        .header(ACCESS_CONTROL_ALLOW_ORIGIN, "*")
}

fn finish(builder: Builder, body: Bytes) -> Reply {
    builder
        .body(body)
        .unwrap_or_else(|_| page(500, consent::error_page("The answer could not be made.")))
}

/// A JSON answer.
pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
    finish(
        open(status).header(CONTENT_TYPE, "application/json"),
        body.into(),
    )
}

/// An OAuth error (RFC 6749 §5.2) as JSON.
pub fn error(status: u16, code: &str, description: &str) -> Reply {
    let body = serde_json::json!({ "error": code, "error_description": description });
    json(status, body.to_string())
}

/// An answer without a body (a revocation's 200, a preflight's 204).
pub fn empty(status: u16) -> Reply {
    finish(open(status), Bytes::new())
}

/// The public, cacheable metadata document.
pub fn document(body: Bytes) -> Reply {
    let builder = Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "public, max-age=3600")
        .header(ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff");
    finish(builder, body)
}

/// A `302` to `location` (an OAuth redirect), setting `cookies`. A location no header can
/// carry gets an error page instead.
pub fn redirect(location: &str, cookies: &[String]) -> Reply {
    let Ok(location) = HeaderValue::from_str(location) else {
        return page(400, consent::error_page("The redirect URI cannot be used."));
    };
    let builder = cookies
        .iter()
        .fold(base(302).header(LOCATION, location), |b, c| {
            b.header(SET_COOKIE, c.as_str())
        });
    finish(builder, Bytes::new())
}

/// An HTML page a user reads (consent, key, errors): never framed, no scripts. `cookie` is
/// a `Set-Cookie` value.
pub fn page(status: u16, html: String) -> Reply {
    page_with_cookie(status, html, None)
}

pub fn page_with_cookie(status: u16, html: String, cookie: Option<&str>) -> Reply {
    let mut builder = base(status)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(X_FRAME_OPTIONS, "DENY")
        .header(
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'",
        )
        .header(REFERRER_POLICY, "no-referrer");
    if let Some(cookie) = cookie {
        builder = builder.header(SET_COOKIE, cookie);
    }
    finish(builder, Bytes::from(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_no_header_can_carry_is_an_error_page() {
        let r = redirect("https://app.example/cb?x=\nSet-Cookie: a=b", &[]);
        assert_eq!(r.status(), 400);
        assert!(r.headers().get(LOCATION).is_none());
        let r = redirect("https://app.example/cb", &["a=b; HttpOnly".into()]);
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()[SET_COOKIE], "a=b; HttpOnly");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    }
}

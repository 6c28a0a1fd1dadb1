//! Responses the gateway writes itself, from a filter, instead of proxying.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// An OAuth-style error body, `{"error":"…","error_description":"…"}`, rendered at compile
/// time so that answering a flood of bad requests formats and allocates nothing. The
/// arguments are literals without characters that JSON would need escaped.
macro_rules! error_json {
    ($error:literal, $description:literal) => {
        concat!(
            r#"{"error":""#,
            $error,
            r#"","error_description":""#,
            $description,
            r#""}"#
        )
    };
}

/// Writes a whole JSON response. Returns `Ok(true)`, the value `request_filter` returns
/// when it has answered the request itself.
pub async fn json(session: &mut Session, status: u16, body: Bytes) -> Result<bool> {
    send(session, status, body, &[]).await
}

/// Writes a whole JSON response with `extra` headers (challenges, CORS, rate limits).
/// An empty body is sent without a content type (a 204 preflight answer).
pub async fn send(
    session: &mut Session,
    status: u16,
    body: Bytes,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<bool> {
    let mut header = ResponseHeader::build(status, Some(5 + extra.len()))?;
    if !body.is_empty() {
        header.insert_header("Content-Type", "application/json")?;
        header.insert_header("X-Content-Type-Options", "nosniff")?;
    }
    header.insert_header("Content-Length", body.len())?;
    header.insert_header("Cache-Control", "no-store")?;
    for (name, value) in extra {
        header.append_header(name.clone(), value.clone())?;
    }
    session
        .write_response_header(Box::new(header), body.is_empty())
        .await?;
    if !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(true)
}

/// Writes a public, cacheable JSON document that any origin may read (discovery metadata).
pub async fn document(session: &mut Session, body: Bytes) -> Result<bool> {
    let mut header = ResponseHeader::build(200, Some(5))?;
    header.insert_header("Content-Type", "application/json")?;
    header.insert_header("X-Content-Type-Options", "nosniff")?;
    header.insert_header("Content-Length", body.len())?;
    header.insert_header("Cache-Control", "public, max-age=3600")?;
    header.insert_header("Access-Control-Allow-Origin", "*")?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await?;
    Ok(true)
}

/// A `302` to `location` (an OAuth redirect); never cached.
pub async fn redirect(session: &mut Session, location: &str) -> Result<bool> {
    redirect_with_cookies(session, location, &[]).await
}

/// A `302` that also sets cookies (`Set-Cookie` values).
pub async fn redirect_with_cookies(
    session: &mut Session,
    location: &str,
    cookies: &[&str],
) -> Result<bool> {
    let mut header = ResponseHeader::build(302, Some(4 + cookies.len()))?;
    header.insert_header("Location", location)?;
    for cookie in cookies {
        header.append_header("Set-Cookie", *cookie)?;
    }
    header.insert_header("Content-Length", 0)?;
    header.insert_header("Cache-Control", "no-store")?;
    session
        .write_response_header(Box::new(header), true)
        .await?;
    Ok(true)
}

/// An HTML page the gateway shows a user (consent, errors): never framed, never cached,
/// no scripts. `cookie` is a `Set-Cookie` value.
pub async fn html(
    session: &mut Session,
    status: u16,
    page: String,
    cookie: Option<&str>,
) -> Result<bool> {
    let mut header = ResponseHeader::build(status, Some(9))?;
    header.insert_header("Content-Type", "text/html; charset=utf-8")?;
    header.insert_header("X-Content-Type-Options", "nosniff")?;
    header.insert_header("Content-Length", page.len())?;
    header.insert_header("Cache-Control", "no-store")?;
    header.insert_header("X-Frame-Options", "DENY")?;
    header.insert_header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'",
    )?;
    header.insert_header("Referrer-Policy", "no-referrer")?;
    if let Some(cookie) = cookie {
        header.insert_header("Set-Cookie", cookie)?;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session
        .write_response_body(Some(Bytes::from(page)), true)
        .await?;
    Ok(true)
}

/// The request body, up to `limit` bytes; `None` if it is longer.
pub async fn read_body(session: &mut Session, limit: usize) -> Result<Option<Bytes>> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// `400 invalid_request` with a description of what is wrong with the request's target or
/// headers (a fixed text: nothing the client sent is echoed).
pub async fn invalid_request(session: &mut Session, why: &'static str) -> Result<bool> {
    let body = serde_json::json!({"error": "invalid_request", "error_description": why});
    json(session, 400, Bytes::from(body.to_string())).await
}

/// Writes an error response, unless a response has already begun (then nothing can be said).
pub async fn error(session: &mut Session, status: u16, body: &'static str) -> Result<bool> {
    if session.response_written().is_some() {
        return Ok(true);
    }
    json(session, status, Bytes::from_static(body.as_bytes())).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_json_is_valid_json() {
        let v: serde_json::Value =
            serde_json::from_str(error_json!("not_found", "no route")).unwrap();
        assert_eq!(v["error"], "not_found");
        assert_eq!(v["error_description"], "no route");
    }
}

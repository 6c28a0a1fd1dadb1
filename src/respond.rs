//! Responses the gateway writes itself, from a filter, instead of proxying.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

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

/// Writes a whole JSON response with `extra` headers (challenges, CORS, rate limits).
/// An empty body is sent without a content type (a 204 preflight answer). Returns
/// `Ok(true)`, the value `request_filter` returns when it has answered the request itself.
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
    write(session, header, body).await
}

/// Writes a response value (an OAuth endpoint's answer, a discovery document).
pub async fn reply(session: &mut Session, reply: http::Response<Bytes>) -> Result<bool> {
    let (parts, body) = reply.into_parts();
    let mut header = ResponseHeader::build(parts.status, Some(parts.headers.len() + 1))?;
    for (name, value) in &parts.headers {
        header.append_header(name.clone(), value.clone())?;
    }
    header.insert_header("Content-Length", body.len())?;
    write(session, header, body).await
}

async fn write(session: &mut Session, header: ResponseHeader, body: Bytes) -> Result<bool> {
    session
        .write_response_header(Box::new(header), body.is_empty())
        .await?;
    if !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
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

/// Writes an error response, unless a response has already begun (then nothing can be said).
pub async fn error(session: &mut Session, status: u16, body: &'static str) -> Result<bool> {
    if session.response_written().is_some() {
        return Ok(true);
    }
    send(session, status, Bytes::from_static(body.as_bytes()), &[]).await
}

/// `400 invalid_request` with a description of what is wrong with the request's target or
/// headers (a fixed text: nothing the client sent is echoed).
pub async fn invalid_request(session: &mut Session, why: &'static str) -> Result<bool> {
    let body = serde_json::json!({"error": "invalid_request", "error_description": why});
    send(session, 400, Bytes::from(body.to_string()), &[]).await
}

/// What a failed request becomes: status, OAuth-style error body, and the upstream-error kind.
pub struct Failure {
    pub status: u16,
    pub body: &'static str,
    pub upstream_kind: Option<&'static str>,
}

pub fn classify(e: &Error) -> Failure {
    use ErrorType::*;
    let fail = |status, body, upstream_kind| Failure {
        status,
        body,
        upstream_kind,
    };
    let unreachable = error_json!("bad_gateway", "the upstream is unreachable");
    let tls = error_json!("bad_gateway", "the TLS handshake with the upstream failed");
    let protocol = error_json!(
        "bad_gateway",
        "the upstream sent an invalid response or closed the connection"
    );
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) => fail(
            *code,
            error_json!("http_error", "the request could not be served"),
            None,
        ),
        (ErrorSource::Upstream, ConnectTimedout | TLSHandshakeTimedout) => fail(
            504,
            error_json!(
                "gateway_timeout",
                "the upstream did not accept the connection in time"
            ),
            Some("timeout"),
        ),
        (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => fail(
            504,
            error_json!("gateway_timeout", "the upstream did not answer in time"),
            Some("timeout"),
        ),
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | SocketError | BindError,
        ) => fail(502, unreachable, Some("connect")),
        (
            ErrorSource::Upstream,
            TLSHandshakeFailure | InvalidCert | HandshakeError | TLSWantX509Lookup,
        ) => fail(502, tls, Some("tls")),
        (ErrorSource::Upstream, _) => fail(502, protocol, Some("protocol")),
        // The client is gone or stalled: nobody to answer.
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed)
        | (ErrorSource::Downstream, ReadTimedout | WriteTimedout) => fail(0, "", None),
        (ErrorSource::Downstream, _) => fail(
            400,
            error_json!("invalid_request", "the request is malformed"),
            None,
        ),
        _ => fail(
            500,
            error_json!("server_error", "the gateway failed to serve the request"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_is_valid_json() {
        let v: serde_json::Value =
            serde_json::from_str(error_json!("not_found", "no route")).unwrap();
        assert_eq!(v["error"], "not_found");
        assert_eq!(v["error_description"], "no route");
    }

    #[test]
    fn classifies_failures() {
        let e = Error::new(ErrorType::ConnectRefused).into_up();
        assert_eq!(classify(&e).status, 502);
        let e = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(classify(&e).status, 504);
        let e = Error::new(ErrorType::ConnectionClosed).into_down();
        assert_eq!(classify(&e).status, 0);
    }
}

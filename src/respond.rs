//! Responses the gateway writes itself, from a filter, instead of proxying.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// An OAuth-style error body: `{"error": "...", "error_description": "..."}`.
pub fn error_body(error: &str, description: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "error": error, "error_description": description }).to_string())
}

/// Writes a whole JSON response. Returns `Ok(true)`, the value `request_filter` returns
/// when it has answered the request itself.
pub async fn json(session: &mut Session, status: u16, body: Bytes) -> Result<bool> {
    let mut header = ResponseHeader::build(status, Some(4))?;
    header.insert_header("Content-Type", "application/json")?;
    header.insert_header("Content-Length", body.len())?;
    header.insert_header("Cache-Control", "no-store")?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await?;
    Ok(true)
}

/// Writes an error response, unless a response has already begun (then nothing can be said).
pub async fn error(
    session: &mut Session,
    status: u16,
    error: &str,
    description: &str,
) -> Result<bool> {
    if session.response_written().is_some() {
        return Ok(true);
    }
    json(session, status, error_body(error, description)).await
}

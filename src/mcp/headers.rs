//! The request headers of MCP 2026-07-28 (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`)
//! against the body they mirror. An upstream or another hop may route or decide on the
//! headers while the gateway decides on the body; the two must say the same thing, or the
//! request is refused (400, JSON-RPC error -32020 `HeaderMismatch`) before the upstream
//! sees it. On older versions the headers are not required, but a header that is there
//! must still agree.

use std::borrow::Cow;

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::message::{Kind, Message};

/// The first revision that mirrors the method and name into headers.
pub const FIRST_MIRRORING_VERSION: &str = "2026-07-28";

/// The names, made once (a `&str` name is parsed on every lookup).
const VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD: HeaderName = HeaderName::from_static("mcp-method");
const NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The JSON-RPC error code of a header that disagrees with the body.
pub const HEADER_MISMATCH: i32 = -32020;

/// Whether `version` (a `YYYY-MM-DD` revision) is one whose requests mirror their method and
/// name into headers.
pub fn mirrors(version: &str) -> bool {
    let b = version.as_bytes();
    let is_date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    is_date && version >= FIRST_MIRRORING_VERSION
}

/// The request's protocol version, if its header is there and readable.
pub fn version(headers: &HeaderMap) -> Option<&str> {
    headers.get(VERSION).and_then(|v| v.to_str().ok())
}

/// Checks the headers against the message; the error is the -32020 message.
pub fn check(headers: &HeaderMap, message: &Message) -> Result<(), String> {
    let version = version(headers);
    let modern = version.is_some_and(mirrors);
    if let (true, Some(header), Some(body)) = (modern, version, &message.protocol_version) {
        if header != body {
            return Err(mismatch("MCP-Protocol-Version", header, body));
        }
    }
    let is_request = message.id.is_some();
    compare(
        headers,
        METHOD,
        &message.method,
        modern && is_request,
        false,
    )?;
    if Kind::of_call(&message.method).is_some() {
        let name = message.name.as_deref().unwrap_or_default();
        compare(headers, NAME, name, modern, true)?;
    }
    Ok(())
}

/// `name`'s value against the body's; `encoded`: the value may use the Base64 form.
fn compare(
    headers: &HeaderMap,
    name: HeaderName,
    body: &str,
    required: bool,
    encoded: bool,
) -> Result<(), String> {
    let display = if name == METHOD {
        "Mcp-Method"
    } else {
        "Mcp-Name"
    };
    let mut values = headers.get_all(&name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(&name) {
            true => Err(format!(
                "Header mismatch: {display} is given more than once"
            )),
            false if required => Err(format!("Header mismatch: {display} header is required")),
            false => Ok(()),
        };
    };
    let Some(decoded) = decode(value, encoded) else {
        return Err(format!(
            "Header mismatch: {display} header value is not a valid value"
        ));
    };
    if decoded != body {
        return Err(mismatch(display, &decoded, body));
    }
    Ok(())
}

fn mismatch(header: &str, got: &str, body: &str) -> String {
    format!("Header mismatch: {header} header value '{got}' does not match body value '{body}'")
}

/// A header value as the body would say it: without surrounding spaces and tabs (RFC 9110
/// §5.5), and, when `encoded` allows it, the `=?base64?…?=` form decoded. `None` for bytes a
/// plain value may not have (outside visible ASCII, space and tab) or a bad encoding.
pub fn decode(value: &HeaderValue, encoded: bool) -> Option<Cow<'_, str>> {
    let raw = value.as_bytes();
    let start = raw
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    let trimmed = &raw[start..end];
    if !trimmed
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
    {
        return None;
    }
    let text = std::str::from_utf8(trimmed).ok()?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
        .filter(|_| encoded)
    {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::message::{parse, Body};

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn check_body(h: &HeaderMap, body: &str) -> Result<(), String> {
        let Ok(Body::Message(m)) = parse(body.as_bytes()) else {
            panic!("{body}")
        };
        check(h, &m)
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

    #[test]
    fn versions() {
        assert!(mirrors("2026-07-28"));
        assert!(mirrors("2027-01-01"));
        assert!(!mirrors("2025-11-25"));
        assert!(!mirrors("2026-7-28"));
        assert!(!mirrors("9999"));
    }

    #[test]
    fn agreeing_headers_pass() {
        let v: &[u8] = b"2026-07-28";
        let h = headers(&[
            ("mcp-protocol-version", v),
            ("mcp-method", b"tools/call"),
            ("mcp-name", b"  get_weather\t"),
        ]);
        assert_eq!(check_body(&h, CALL), Ok(()));
        let h = headers(&[
            ("mcp-protocol-version", v),
            ("mcp-method", b"tools/call"),
            ("mcp-name", b"=?base64?Z2V0X3dlYXRoZXI=?="),
        ]);
        assert_eq!(check_body(&h, CALL), Ok(()));
        // Older versions need none of them.
        let h = headers(&[("mcp-protocol-version", b"2025-11-25")]);
        assert_eq!(check_body(&h, CALL), Ok(()));
    }

    #[test]
    fn disagreeing_or_missing_headers_are_refused() {
        let v: &[u8] = b"2026-07-28";
        for (pairs, why) in [
            (
                vec![("mcp-method", &b"tools/call"[..])],
                "Mcp-Name header is required",
            ),
            (
                vec![("mcp-name", b"get_weather")],
                "Mcp-Method header is required",
            ),
            (
                vec![("mcp-method", b"tools/call"), ("mcp-name", b"delete_all")],
                "value 'delete_all' does not match body value 'get_weather'",
            ),
            (
                vec![("mcp-method", b"tools/list"), ("mcp-name", b"get_weather")],
                "Mcp-Method header value 'tools/list'",
            ),
            (
                vec![
                    ("mcp-method", b"tools/call"),
                    ("mcp-name", b"=?base64?%%?="),
                ],
                "not a valid value",
            ),
            (
                vec![
                    ("mcp-method", b"tools/call"),
                    ("mcp-name", b"get_weather\xff"),
                ],
                "not a valid value",
            ),
            (
                vec![
                    ("mcp-method", b"tools/call"),
                    ("mcp-name", b"get_weather"),
                    ("mcp-name", b"get_weather"),
                ],
                "more than once",
            ),
        ] {
            let mut all = vec![("mcp-protocol-version", v)];
            all.extend(pairs);
            let got = check_body(&headers(&all), CALL).unwrap_err();
            assert!(got.contains(why), "{got}");
        }
        let h = headers(&[
            ("mcp-protocol-version", b"2027-01-01"),
            ("mcp-method", b"tools/call"),
            ("mcp-name", b"get_weather"),
        ]);
        let got = check_body(&h, CALL).unwrap_err();
        assert!(
            got.contains("MCP-Protocol-Version header value '2027-01-01'"),
            "{got}"
        );
        // An older client's stray header still has to agree.
        let h = headers(&[("mcp-name", b"other")]);
        assert!(check_body(&h, CALL).is_err());
        // The encoded form is for names only.
        let h = headers(&[("mcp-method", b"=?base64?dG9vbHMvY2FsbA==?=")]);
        assert!(check_body(&h, CALL).is_err());
    }

    #[test]
    fn a_sentinel_lookalike_name_must_itself_be_encoded() {
        // A tool really named `=?base64?eA==?=` arrives encoded; its plain form decodes to `x`.
        let body = r#"{"id":1,"method":"tools/call","params":{"name":"=?base64?eA==?="}}"#;
        let h = headers(&[("mcp-name", b"=?base64?eA==?=")]);
        assert!(check_body(&h, body).is_err());
        let h = headers(&[("mcp-name", b"=?base64?PT9iYXNlNjQ/ZUE9PT89?=")]);
        assert_eq!(check_body(&h, body), Ok(()));
    }
}

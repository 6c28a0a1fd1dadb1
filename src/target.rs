//! The request target as the gateway routes it: one canonical path and one host.
//!
//! Routes are matched on prefixes, and an upstream may decode a path differently from the
//! way it was matched: `/api/%61dmin` is `/api/admin` to most web frameworks, so a request
//! matched by an open `/api` route would reach a protected `/api/admin` without a token.
//! Every path is therefore brought to one form before routing (RFC 3986 §6.2.2), and the
//! upstream is sent exactly that form:
//!
//! - percent-encoded unreserved characters are decoded (`%61` → `a`), other
//!   percent-encodings are written in upper case (`%3b` → `%3B`), and characters a path
//!   may not carry raw (`"`, `{`, non-ASCII, …) are percent-encoded;
//! - repeated slashes are merged (`//x` → `/x`);
//! - what could still mean two things is refused: dot segments (also encoded), encoded
//!   `/`, `\` and `%` (a second decoding would change the path), raw `\`, `;` path
//!   parameters (raw or encoded), control characters, and any target that is not a path
//!   (`*`, `x/y`).
//!
//! A target that is not UTF-8, or neither a path nor an `http(s)` absolute-form URL, is
//! refused; an absolute-form target is sent upstream as the path it was routed on.
//!
//! The host is the target's authority if it has one (RFC 9112 §3.2.2; Pingora has already
//! refused a `Host` that differs from it), else the single `Host` header, lower-cased,
//! without port or trailing dot; a request without a host where HTTP/1.1 requires one, or
//! with something that cannot be a host, is refused.

use std::borrow::Cow;

use http::header::HOST;
use http::Version;
use pingora::http::RequestHeader;
use pingora::protocols::http::authority::{
    is_http_family_scheme, raw_target_authority, RawTargetAuthority,
};

/// Why a request target was refused; the message is safe to send back.
pub type Refusal = &'static str;

/// The path to route `req` on and send upstream: borrowed when the client's target is
/// already canonical and in origin form, owned when the upstream must be sent another.
pub fn path(req: &RequestHeader) -> Result<Cow<'_, str>, Refusal> {
    if !req.raw_path_is_utf8() {
        return Err("the request target is not UTF-8");
    }
    if req.raw_path().first() == Some(&b'/') {
        return canonical_path(req.uri.path());
    }
    match raw_target_authority(req.raw_path()) {
        RawTargetAuthority::Absolute { scheme, .. } if is_http_family_scheme(scheme) => {
            canonical_path(req.uri.path()).map(|p| Cow::Owned(p.into_owned()))
        }
        _ => Err("the request target is not a path"),
    }
}

/// The canonical form of `path` (without the query); borrows when it already is.
pub fn canonical_path(path: &str) -> Result<Cow<'_, str>, Refusal> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err("the request target is not a path");
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?))
                    .ok_or("the path has a malformed percent-encoding")?;
                if is_unreserved(decoded) {
                    out.push(decoded as char);
                } else if matches!(decoded, b'/' | b'\\' | b'%' | b';') || is_control(decoded) {
                    return Err(
                        "the path has an encoded separator, percent sign or control character",
                    );
                } else {
                    push_encoded(&mut out, decoded);
                }
                i += 3;
                continue;
            }
            b'/' if out.ends_with('/') => {}
            b'\\' | b';' => return Err("the path has a backslash or a `;` parameter"),
            _ if is_control(b) => return Err("the path has a control character"),
            _ if is_path_char(b) => out.push(b as char),
            _ => push_encoded(&mut out, b),
        }
        i += 1;
    }
    if has_dot_segment(&out) {
        return Err("the path has dot segments");
    }
    Ok(Cow::Owned(out))
}

/// Whether the path needs no change: the common case, checked without allocating.
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes
        .iter()
        .all(|&b| is_path_char(b) && b != b'%' && b != b';')
        && !bytes.windows(2).any(|w| w == b"//")
        && !has_dot_segment(path)
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn push_encoded(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}

/// RFC 3986 §2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What a path segment may carry unencoded (RFC 3986 §3.3: pchar and `/`), plus `%`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'/' | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The host the request is for, normalised as routes are written (lower case, no port, no
/// trailing dot); `None` for an HTTP/1.0 request that names none.
pub fn host(req: &RequestHeader) -> Result<Option<Cow<'_, str>>, Refusal> {
    let authority = match req.uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => raw_target_authority(req.raw_path())
            .authority()
            .map(|a| std::str::from_utf8(a).map_err(|_| "the request target is not UTF-8"))
            .transpose()?,
    };
    if let Some(authority) = authority {
        if authority.contains('@') {
            return Err("the request target carries user information");
        }
        return normal_host(authority).map(Some);
    }
    let mut hosts = req.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err("the request has more than one Host header"),
        (Some(value), None) => {
            let value = value
                .to_str()
                .map_err(|_| "the Host header is not a host")?;
            normal_host(value).map(Some)
        }
        (None, _) if req.version == Version::HTTP_11 => Err("the request has no Host header"),
        (None, _) => Ok(None),
    }
}

/// `host[:port]` lower-cased, without the port and one trailing dot; refuses what cannot
/// be a host name or address literal.
fn normal_host(value: &str) -> Result<Cow<'_, str>, Refusal> {
    const BAD: Refusal = "the Host header is not a host";
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let end = rest.find(']').ok_or(BAD)?;
        let literal = &value[..end + 2];
        if literal[1..literal.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return Err(BAD);
        }
        (literal, value[end + 2..].strip_prefix(':'))
    } else {
        match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        }
    };
    if let Some(port) = port {
        if !port.is_empty() && (port.len() > 5 || port.parse::<u16>().is_err()) {
            return Err(BAD);
        }
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    // Labels are not empty: `a..b.`, `.a` are no names (and `a..` is not `a.` is not `a`).
    let valid = !name.is_empty()
        && (name.starts_with('[')
            || (name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                && !name.split('.').any(str::is_empty)));
    if !valid {
        return Err(BAD);
    }
    Ok(if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form_for_every_spelling_of_a_path() {
        for (raw, canonical) in [
            ("/mcp/x", "/mcp/x"),
            ("/", "/"),
            ("/api/%61dmin/x", "/api/admin/x"),
            ("/api/%41DMIN", "/api/ADMIN"),
            ("/a%7eb%2Dc", "/a~b-c"),
            ("//api//admin/", "/api/admin/"),
            ("/a%3fb", "/a%3Fb"),
            ("/a%c3%a9", "/a%C3%A9"),
            ("/é", "/%C3%A9"),
            ("/a\"b{c}", "/a%22b%7Bc%7D"),
            ("/mcp/a.b/c..d", "/mcp/a.b/c..d"),
        ] {
            assert_eq!(canonical_path(raw).unwrap(), canonical, "{raw}");
            // Canonical is a fixed point: the upstream cannot read it a second way.
            assert_eq!(canonical_path(canonical).unwrap(), canonical, "{canonical}");
        }
        assert!(matches!(
            canonical_path("/mcp/x").unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn refuses_what_could_be_read_two_ways() {
        for bad in [
            "*",
            "",
            "x/y",
            "/open/../private",
            "/a/./b",
            "/a/..",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a%2Fb",
            "/a\\b",
            "/a%5cb",
            "/a%255cb",
            "/api%2561dmin",
            "/api;x/admin",
            "/api%3bx/admin",
            "/api%3Bx",
            "/a%00b",
            "/a%0d%0ab",
            "/a%zz",
            "/a%4",
            "/a\u{7f}",
        ] {
            assert!(canonical_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_paths_and_http_urls_are_targets() {
        let routed =
            |target: &str| path(&request(target, Version::HTTP_11, &["h"])).map(|p| p.into_owned());
        assert_eq!(routed("/mcp/%78").unwrap(), "/mcp/x");
        assert_eq!(routed("http://h/mcp/x?q").unwrap(), "/mcp/x");
        assert_eq!(routed("HTTPS://h").unwrap(), "/");
        for bad in ["*", "x", "h:80", "ftp://h/x", "mailto:x@y"] {
            assert!(routed(bad).is_err(), "{bad:?}");
        }
        let mut req = request("/x", Version::HTTP_11, &["h"]);
        req.set_raw_path(b"/caf\xe9").unwrap();
        assert!(path(&req).is_err());
        // An absolute-form target is always rewritten: the upstream gets the path.
        let req = request("http://h/mcp", Version::HTTP_11, &["h"]);
        assert!(matches!(path(&req).unwrap(), Cow::Owned(_)));
    }

    fn request(target: &str, version: Version, hosts: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        req.set_version(version);
        for h in hosts {
            req.append_header(HOST, *h).unwrap();
        }
        req
    }

    #[test]
    fn hosts_are_normalised_as_routes_are_written() {
        let host_of =
            |h: &str| host(&request("/x", Version::HTTP_11, &[h])).map(|h| h.unwrap().into_owned());
        assert_eq!(host_of("Secure.Example").unwrap(), "secure.example");
        assert_eq!(host_of("secure.example.").unwrap(), "secure.example");
        assert_eq!(host_of("secure.example.:80").unwrap(), "secure.example");
        assert_eq!(host_of("[::1]:8080").unwrap(), "[::1]");
        assert_eq!(host_of("127.0.0.1:8080").unwrap(), "127.0.0.1");
        for bad in [
            "a.example,b.example",
            "a.example b",
            "",
            "é.example",
            "a.example:http",
            "a.example:99999",
            "secure..:60",
            ".secure.example",
            "a..b",
            "[nothex]",
            "a/b",
        ] {
            assert!(host_of(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_absolute_form_names_the_host_and_http11_needs_one() {
        let req = request("http://Secure.Example./x", Version::HTTP_11, &[]);
        assert_eq!(host(&req).unwrap().unwrap(), "secure.example");
        let req = request("http://secure.example./x", Version::HTTP_11, &[]);
        assert_eq!(host(&req).unwrap().unwrap(), "secure.example");
        let req = request("http://u@secure.example/x", Version::HTTP_11, &[]);
        assert!(host(&req).is_err());
        assert!(host(&request("/x", Version::HTTP_11, &[])).is_err());
        assert!(host(&request("/x", Version::HTTP_11, &["a", "b"])).is_err());
        assert_eq!(host(&request("/x", Version::HTTP_10, &[])).unwrap(), None);
    }
}

//! Entry points for the fuzzers in `fuzz/` (cargo-fuzz, libFuzzer) and for the seed-corpus
//! test: one function per parser that faces the network or an operator. Each takes arbitrary
//! bytes, must never panic or hang, and asserts the properties its parser promises (a
//! canonical path is a fixed point, a sealed value opens only as what it was sealed as, …):
//! a failed assertion is a finding like a crash.

use std::path::Path;
use std::sync::LazyLock;

use http::header::{AUTHORIZATION, COOKIE, HOST};
use pingora::http::RequestHeader;

use crate::auth::jwk::KeySet;
use crate::auth::jwt;
use crate::auth::principal::Principal;
use crate::config::Config;
use crate::mcp::headers;
use crate::mcp::lists::ListReply;
use crate::mcp::message::Kind;
use crate::mcp::Policy;
use crate::oauth::clients::registered_client;
use crate::oauth::params::{basic_credentials, cookie_value, Params};
use crate::oauth::seal::{Purpose, Sealer, MAX_PLAINTEXT};
use crate::routing::Router;
use crate::target;

/// A JWT: parsing, then verification against a fixed key set, the type check and the claim
/// checks. Random bytes almost never carry a valid signature; the parser and the checks
/// before it are what this reaches.
pub fn jwt(data: &[u8]) {
    static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        KeySet::parse(jwks).expect("the fixed key set parses").0
    });
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = jwt::parse(token) else {
        return;
    };
    let Some(key) = KEYS.find(parsed.kid.as_deref()) else {
        return;
    };
    if let Ok(claims) = parsed.verify(key) {
        let types = ["at+jwt".to_string(), "jwt".to_string()];
        let _ = parsed.check_type(&claims, &types);
        let principal = Principal::from_claims(claims, false);
        let _ = jwt::check_claims(&principal, "https://issuer.test", &[], 1_000_000, 60);
    }
}

/// A JWK set, as an IdP's `jwks_uri` serves it.
pub fn jwks(data: &[u8]) {
    if let Ok((set, _)) = KeySet::parse(data) {
        assert!(!set.keys.is_empty(), "a parsed key set has a key");
        for (i, key) in set.keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                assert!(
                    !set.keys[..i].iter().any(|k| k.kid.as_ref() == Some(kid)),
                    "a kid twice"
                );
            }
        }
    }
}

/// A request path: the canonical form routes and is what the upstream gets, so it must be a
/// fixed point, carry nothing an upstream could decode into another path, and route the
/// same as itself.
pub fn path(data: &[u8]) {
    static ROUTER: LazyLock<Router> = LazyLock::new(|| {
        let yaml = "listen: 127.0.0.1:1\nroutes:\n\
            - { prefix: /, upstream: http://127.0.0.1:2, auth: none }\n\
            - { prefix: /api, upstream: http://127.0.0.1:2, auth: none }\n\
            - { prefix: /api/admin, upstream: http://127.0.0.1:2, auth: none }\n";
        Router::new(
            &Config::from_yaml(yaml, Path::new("."), &|_| None)
                .unwrap()
                .routes,
        )
    });
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(canonical) = target::canonical_path(raw) else {
        return;
    };
    assert_eq!(
        target::canonical_path(&canonical).as_deref(),
        Ok(&*canonical),
        "canonical form is a fixed point"
    );
    let bytes = canonical.as_bytes();
    assert_eq!(bytes[0], b'/');
    assert!(!canonical.contains("//"), "merged slashes");
    assert!(
        !canonical.split('/').any(|s| s == "." || s == ".."),
        "no dot segments"
    );
    assert!(
        !canonical.contains(['\\', ';']),
        "no backslash or parameters"
    );
    for (i, b) in bytes.iter().enumerate() {
        assert!(b.is_ascii_graphic(), "only printable ASCII");
        if *b == b'%' {
            let hex = &canonical[i + 1..i + 3];
            let decoded = u8::from_str_radix(hex, 16).expect("two hex digits");
            assert_eq!(hex, hex.to_ascii_uppercase(), "upper-case escapes");
            assert!(
                !(decoded.is_ascii_alphanumeric()
                    || matches!(
                        decoded,
                        b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b'%' | b';'
                    )),
                "an escape an upstream could decode into a routing character: {hex}"
            );
        }
    }
    let routed = ROUTER.lookup(None, &canonical).map(|m| m.route);
    assert!(routed.is_some(), "the root route catches every path");
}

/// A `Host` header value: the normalised host is lower case, without port or trailing dot.
pub fn host(data: &[u8]) {
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    if req.insert_header(HOST, data).is_err() {
        return;
    }
    if let Ok(Some(host)) = target::host(&req) {
        assert!(!host.is_empty());
        assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "lower case");
        assert!(!host.ends_with('.'), "no trailing dot");
        assert!(host.starts_with('[') || !host.contains(':'), "no port");
    }
}

/// Forms and queries (`/token`, `/authorize`), cookies and HTTP Basic credentials.
pub fn form(data: &[u8]) {
    let params = Params::parse(data);
    for name in ["grant_type", "code", "client_id", "redirect_uri", "state"] {
        if let Some(value) = params.get(name) {
            assert!(!value.is_empty(), "an empty value is no value");
        }
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        headers.insert(COOKIE, value.clone());
        headers.insert(AUTHORIZATION, value);
        let _ = cookie_value(&headers, "mcpgate-consent");
        let _ = basic_credentials(&headers);
    }
}

/// A sealed value: opening arbitrary text never panics, and what is sealed (up to the longest
/// plaintext the gateway opens) opens as its own purpose only, to the same bytes.
pub fn sealed(data: &[u8]) {
    static SEALER: LazyLock<Sealer> = LazyLock::new(|| Sealer::new(&[7; 32], &[[9; 32]]));
    const PURPOSES: [Purpose; 8] = [
        Purpose::Client,
        Purpose::State,
        Purpose::Consent,
        Purpose::Code,
        Purpose::Refresh,
        Purpose::Approvals,
        Purpose::Access,
        Purpose::Answer,
    ];
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let purpose = PURPOSES[usize::from(selector) % PURPOSES.len()];
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = SEALER.open_bytes(purpose, text);
    }
    if rest.len() > MAX_PLAINTEXT {
        return;
    }
    let sealed = SEALER.seal_bytes(purpose, rest);
    assert_eq!(SEALER.open_bytes(purpose, &sealed).as_deref(), Some(rest));
    for other in PURPOSES.iter().filter(|p| **p != purpose) {
        assert!(
            SEALER.open_bytes(*other, &sealed).is_none(),
            "purpose bound"
        );
    }
}

/// A client ID metadata document fetched from `https://client.test/doc`.
pub fn client_document(data: &[u8]) {
    if let Ok(doc) = crate::oauth::cimd::check("https://client.test/doc", data) {
        assert!(!doc.redirect_uris.is_empty());
    }
}

/// A dynamic registration request body (RFC 7591).
pub fn registration(data: &[u8]) {
    let Ok(meta) = crate::json::object_with_unique_names(data) else {
        return;
    };
    if let Ok(client) = registered_client("/mcp", &meta) {
        assert!(client.redirect_uris().iter().all(|u| !u.is_empty()));
    }
}

/// A configuration file: loads or names what is wrong, never panics. Files it names are
/// looked up relative to a directory that does not exist.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_yaml(text, Path::new("/nonexistent"), &|_| None) {
        assert!(!e.to_string().is_empty());
    }
}

/// A posted MCP request: the first byte picks the protocol version header, the bytes up to
/// the first newline are the `Mcp-Name` header, the rest is the body. The policy (rules with
/// globs) judges it without panicking; a request it lets through names, in its header, what
/// its body names.
pub fn mcp_request(data: &[u8]) {
    static POLICY: LazyLock<Policy> = LazyLock::new(|| {
        let yaml = "listen: 127.0.0.1:1\nroutes:\n\
            - prefix: /\n  upstream: http://127.0.0.1:2\n  auth: none\n  mcp:\n    tools:\n      \
            default: deny\n      rules: [ { name: [\"echo\", \"*_?st*\"], allow: true } ]\n";
        let config = Config::from_yaml(yaml, Path::new("."), &|_| None).unwrap();
        let route = &config.routes[0];
        Policy::compile(route.mcp.as_ref().unwrap(), route, "http://x/prm", "mcp").unwrap()
    });
    let Some((&version, rest)) = data.split_first() else {
        return;
    };
    let (name, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut headers = http::HeaderMap::new();
    let version = ["2026-07-28", "2025-11-25"].get(usize::from(version % 3));
    if let Some(v) = version {
        headers.insert("mcp-protocol-version", http::HeaderValue::from_static(v));
    }
    if let Some(value) = name.and_then(|n| http::HeaderValue::from_bytes(n).ok()) {
        headers.insert("mcp-name", value);
    }
    let (inspected, refusal) = POLICY.judge(&headers, body, None);
    if let (Some(inspected), None) = (inspected, refusal) {
        if let (Some(name), Some(header)) = (&inspected.name, headers.get("mcp-name")) {
            assert_eq!(
                headers::decode(header, true).as_deref(),
                Some(name.as_str()),
                "a call let through names in its header what its body names"
            );
        }
    }
}

/// A list reply passing the filter that keeps everything: split into two chunks at a point
/// the first byte picks, it comes out as it went in (an event stream: up to its last
/// complete event), except that entries without a string name are dropped (nothing can
/// judge them: the filter fails closed); what came out then passes a second time unchanged.
pub fn mcp_list(data: &[u8]) {
    let Some((&split, reply)) = data.split_first() else {
        return;
    };
    let at = usize::from(split) * reply.len() / 256;
    for stream in [false, true] {
        let once = filter_all(reply, at, stream);
        let unchanged = match stream {
            true => reply.starts_with(&once),
            false => once == reply,
        };
        if !unchanged {
            let twice = filter_all(&once, once.len(), stream);
            assert_eq!(twice, once, "a filtered list passes again as it is");
        }
    }
}

/// `reply` through a tools-list filter that keeps every name, in two chunks split at `at`.
fn filter_all(reply: &[u8], at: usize, stream: bool) -> Vec<u8> {
    let mut list = ListReply::new(Kind::Tool, serde_json::json!(1), false);
    list.stream = stream;
    let mut out = Vec::new();
    let (a, b) = reply.split_at(at);
    for (chunk, end) in [(a, false), (b, true)] {
        let chunk = bytes::Bytes::copy_from_slice(chunk);
        out.extend(list.filter(Some(chunk), end, &|_| true).unwrap_or_default());
    }
    out
}

/// A fuzz target: arbitrary bytes in, a panic out if a property breaks.
pub type Target = fn(&[u8]);

/// Every entry point by name, for the corpus test and `fuzz/`.
pub const TARGETS: [(&str, Target); 11] = [
    ("jwt", jwt),
    ("jwks", jwks),
    ("path", path),
    ("host", host),
    ("form", form),
    ("sealed", sealed),
    ("client_document", client_document),
    ("registration", registration),
    ("config", config),
    ("mcp_request", mcp_request),
    ("mcp_list", mcp_list),
];

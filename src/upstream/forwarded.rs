//! Who the client is, as the upstream is told: `X-Forwarded-For` and `Forwarded`.
//!
//! Whatever a client sends under these names is its own claim. At the edge (`replace`, the
//! default) the gateway drops them, with `X-Real-IP` and `X-Forwarded-Host`/`-Proto`, and
//! sends `X-Forwarded-For: <the client's address>`: an upstream that logs or limits by
//! address sees the real one. Behind a load balancer that sets them (`append`), the chain
//! is kept and the address the gateway saw is added to it.

use http::header::FORWARDED;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::*;

use crate::config::ForwardedPolicy;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const CLAIMS: [HeaderName; 4] = [
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    FORWARDED,
];

/// Sets the forwarding headers of `req` for a client at `peer` (none: a Unix socket).
pub fn apply(
    req: &mut RequestHeader,
    policy: ForwardedPolicy,
    peer: Option<std::net::IpAddr>,
) -> Result<()> {
    let peer = peer.map(|ip| ip.to_string());
    match policy {
        ForwardedPolicy::Replace => {
            for name in &CLAIMS {
                req.remove_header(name);
            }
            req.remove_header(&X_FORWARDED_FOR);
            if let Some(peer) = peer {
                req.insert_header(X_FORWARDED_FOR, peer)?;
            }
        }
        ForwardedPolicy::Append => {
            let Some(peer) = peer else { return Ok(()) };
            let chain = joined(req, &X_FORWARDED_FOR, &peer);
            req.insert_header(X_FORWARDED_FOR, chain)?;
            if req.headers.contains_key(FORWARDED) {
                let node = if peer.contains(':') {
                    format!("for=\"[{peer}]\"")
                } else {
                    format!("for={peer}")
                };
                let chain = joined(req, &FORWARDED, &node);
                req.insert_header(FORWARDED, chain)?;
            }
        }
    }
    Ok(())
}

/// Every value sent under `name`, in order, then `last`, comma-separated.
fn joined(req: &RequestHeader, name: &HeaderName, last: &str) -> HeaderValue {
    let mut chain = String::new();
    for value in req.headers.get_all(name) {
        if let Ok(v) = value.to_str() {
            chain.push_str(v);
            chain.push_str(", ");
        }
    }
    chain.push_str(last);
    HeaderValue::try_from(chain).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        req
    }

    fn values(req: &RequestHeader, name: &str) -> Vec<String> {
        req.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn at_the_edge_the_client_says_nothing_about_itself() {
        let mut req = request(&[
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-For", "10.0.0.2"),
            ("Forwarded", "for=10.0.0.3"),
            ("X-Real-IP", "10.0.0.4"),
            ("X-Forwarded-Host", "admin.internal"),
        ]);
        apply(
            &mut req,
            ForwardedPolicy::Replace,
            Some("203.0.113.9".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(values(&req, "x-forwarded-for"), ["203.0.113.9"]);
        for gone in ["forwarded", "x-real-ip", "x-forwarded-host"] {
            assert!(values(&req, gone).is_empty(), "{gone}");
        }
    }

    #[test]
    fn behind_a_proxy_the_chain_grows() {
        let mut req = request(&[
            ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-For", "198.51.100.2"),
            ("Forwarded", "for=198.51.100.1"),
        ]);
        apply(
            &mut req,
            ForwardedPolicy::Append,
            Some("2001:db8::1".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            values(&req, "x-forwarded-for"),
            ["198.51.100.1, 198.51.100.2, 2001:db8::1"]
        );
        assert_eq!(
            values(&req, "forwarded"),
            ["for=198.51.100.1, for=\"[2001:db8::1]\""]
        );
        let mut req = request(&[]);
        apply(
            &mut req,
            ForwardedPolicy::Append,
            Some("192.0.2.7".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(values(&req, "x-forwarded-for"), ["192.0.2.7"]);
        assert!(values(&req, "forwarded").is_empty());
    }
}

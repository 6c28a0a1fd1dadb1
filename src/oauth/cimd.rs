//! Client ID metadata documents: a `client_id` that is an https URL names a JSON document
//! the client publishes there (its name and redirect URIs). The gateway fetches it with care
//! (https only, no redirects, a size cap, a timeout, and no private, loopback or link-local
//! address unless allowed: a client must not make the gateway probe its own network) and
//! caches it for a while.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::cache::{digest, SlotCache};

const MAX_DOCUMENT: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document (or a failure) is reused.
const TTL: u64 = 300;
const FAILURE_TTL: u64 = 30;
const CACHED: usize = 4096;

/// What a client's document says, once checked.
pub struct ClientDocument {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
}

pub struct Fetcher {
    allow_private: bool,
    /// CAs trusted besides the webpki roots (for internal deployments and tests).
    extra_roots: Vec<reqwest::Certificate>,
    cache: SlotCache<Result<Arc<ClientDocument>, String>>,
}

/// Whether `client_id` is a client ID metadata document URL (rather than a sealed id).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

impl Fetcher {
    pub fn new(allow_private: bool, extra_roots: Vec<reqwest::Certificate>) -> Fetcher {
        Fetcher {
            allow_private,
            extra_roots,
            cache: SlotCache::new(CACHED),
        }
    }

    /// The document at `url`, from the cache or fetched now. `now` is unix seconds.
    pub async fn get(&self, url: &str, now: u64) -> Result<Arc<ClientDocument>, String> {
        let key = digest(url.as_bytes());
        if let Some(hit) = self.cache.get(&key, now) {
            return hit.value.clone();
        }
        let result = self.fetch(url).await.map(Arc::new);
        let ttl = if result.is_ok() { TTL } else { FAILURE_TTL };
        self.cache.insert(key, now + ttl, now, result.clone());
        result
    }

    async fn fetch(&self, raw: &str) -> Result<ClientDocument, String> {
        let url = url::Url::parse(raw).map_err(|_| "the client_id is not a URL".to_string())?;
        if url.scheme() != "https"
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.path() == "/"
        {
            return Err("the client_id must be an https URL with a path".into());
        }
        let host = url.host_str().ok_or("the client_id URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        // Every address must be public, and the fetch goes only to those checked addresses:
        // a second lookup cannot steer it elsewhere (DNS rebinding).
        if let Some(bad) = addrs
            .iter()
            .find(|a| !self.allow_private && !is_public(a.ip()))
        {
            return Err(format!(
                "{host} resolves to a non-public address {}",
                bad.ip()
            ));
        }
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        let mut client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(host, &addrs);
        for root in &self.extra_roots {
            client = client.add_root_certificate(root.clone());
        }
        let client = client.build().map_err(|e| e.to_string())?;
        let mut response = client
            .get(url.clone())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching the client document failed: {e}"))?;
        if response.status() != 200 {
            return Err(format!(
                "the client document answered {}",
                response.status()
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err("the client document is too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        check(raw, &body)
    }
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
}

/// The document must name itself and list redirect URIs; its clients are public (`none`).
pub(crate) fn check(url: &str, body: &[u8]) -> Result<ClientDocument, String> {
    let doc = crate::json::object_with_unique_names(body)
        .and_then(|object| serde_json::from_value::<Document>(serde_json::Value::Object(object)))
        .map_err(|e| format!("not a client document: {e}"))?;
    if doc.client_id != url {
        return Err("the document's client_id is not its own URL".into());
    }
    if doc.redirect_uris.is_empty() {
        return Err("the document lists no redirect_uris".into());
    }
    if doc
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err("only public clients (token_endpoint_auth_method none) are supported".into());
    }
    Ok(ClientDocument {
        name: doc.client_name,
        redirect_uris: doc.redirect_uris,
    })
}

/// Not loopback, private, link-local, shared (CGNAT), unspecified, multicast or reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80) // link local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_document_must_name_itself() {
        let url = "https://app.example/client.json";
        let ok = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["https://app.example/cb"]}"#;
        assert_eq!(
            check(url, ok).unwrap().redirect_uris,
            ["https://app.example/cb"]
        );
        let other = br#"{"client_id":"https://evil.example/c.json","redirect_uris":["https://evil.example/cb"]}"#;
        assert!(check(url, other).is_err());
        let no_uris = br#"{"client_id":"https://app.example/client.json"}"#;
        assert!(check(url, no_uris).is_err());
    }
}

//! Passthrough routes: the user types the upstream's key into the gateway's page (which is
//! also the consent). Optionally the key is tried on the upstream first (a probe), so that a
//! wrong key is said at once and not as a failing MCP session later. The key then travels
//! sealed, in the code and in the tokens (see `issued`).

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Request};
use log::warn;
use serde_json::Map;
use tokio::sync::Semaphore;

use crate::auth::is_token68;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::token_client::http_client;
use crate::config::{Passthrough, Placement, RateLimit};
use crate::oauth::consent::KeyField;
use crate::oauth::params::Params;
use crate::oauth::records::{AuthRequest, Client};
use crate::oauth::reply::Reply;
use crate::oauth::server::SignIn;
use crate::oauth::server::{AuthServer, ClientIp};
use crate::upstream::credential::UpstreamCredential;

/// Keys longer than this are refused (a key is sealed into every token).
const MAX_KEY: usize = 4096;
/// A probe gets this long to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Probes one client address may cause per minute: the page must not become a way to try
/// guessed keys on the service from the gateway's address (or get it throttled there).
const PROBES_PER_MINUTE: u32 = 10;
/// Probes in flight at once, across all routes.
const PROBES_IN_FLIGHT: usize = 16;

pub struct KeySignIn {
    settings: Passthrough,
    placement: Placement,
}

impl KeySignIn {
    pub fn new(settings: &Passthrough, placement: &Placement) -> KeySignIn {
        KeySignIn {
            settings: settings.clone(),
            placement: placement.clone(),
        }
    }

    /// The page with the key field; `error` says why the last key was not taken.
    fn key_page(
        &self,
        server: &AuthServer,
        client: &Client,
        q: &AuthRequest,
        error: Option<&str>,
    ) -> Reply {
        let field = KeyField {
            prompt: &self.settings.prompt,
            help: self.settings.help.as_deref(),
            error,
        };
        server.form_page(client, q, Some(field))
    }

    /// Why `key` is not taken, if it is not.
    async fn problem(&self, server: &AuthServer, key: &str, from: &str) -> Option<String> {
        if key.is_empty() || key.len() > MAX_KEY || HeaderValue::from_str(key).is_err() {
            return Some(
                "That is not a key: it is empty, too long, or has characters no key has.".into(),
            );
        }
        if self.settings.raw && !is_token68(key) {
            // The key itself is the access token: it must be one a client can send.
            return Some("This key has characters an access token cannot carry.".into());
        }
        let probe = self.settings.probe.as_deref()?;
        match try_key(probe, &self.placement, key, from).await {
            Probe::Accepted => None,
            Probe::Refused(status) => Some(format!(
                "The key was refused by the service (status {status}). Check it and try again."
            )),
            Probe::Busy => Some(
                "Too many keys were tried from here just now. Wait a minute and try again.".into(),
            ),
            Probe::Unknown(e) => {
                warn!("route {}: key probe failed: {e}", server.route);
                Some("The key could not be checked: the service did not answer as expected. Try again shortly.".into())
            }
        }
    }
}

#[async_trait]
impl SignIn for KeySignIn {
    fn page(&self, server: &AuthServer, client: &Client, q: &AuthRequest) -> Reply {
        self.key_page(server, client, q, None)
    }

    /// The page asks for a secret every time: never skipped.
    fn remembers_consent(&self) -> bool {
        false
    }

    /// The key form's answer: the key (tried on the upstream when a probe is set) goes into
    /// the client's one-time code.
    async fn approved(
        &self,
        server: &AuthServer,
        q: AuthRequest,
        form: &Params,
        req: &Request<Bytes>,
        _cookies: Vec<String>,
    ) -> Reply {
        let key = form.get("key").map(str::trim).unwrap_or_default();
        let from = req
            .extensions()
            .get::<ClientIp>()
            .map(|ip| ip.0.to_string())
            .unwrap_or_default();
        if let Some(problem) = self.problem(server, key, &from).await {
            let Some(client) = server.client(&q.client_id).await else {
                return server.error_page("This client is not registered here.");
            };
            return self.key_page(server, &client, &q, Some(&problem));
        }
        let mut tokens = Map::new();
        tokens.insert("key".into(), key.into());
        server.code_to_client(&q, tokens, &[])
    }
}

/// What the upstream said of a key.
enum Probe {
    Accepted,
    Refused(u16),
    /// No usable answer: the key is not taken (it may be right; the user can retry).
    Unknown(String),
    /// Not tried: too many probes from this address, or at once.
    Busy,
}

/// GET `probe` with the key placed as the upstream will get it: 2xx takes the key, 401 and
/// 403 refuse it, anything else says nothing about it.
async fn try_key(probe: &str, placement: &Placement, key: &str, from: &str) -> Probe {
    static LIMIT: OnceLock<RateLimiter> = OnceLock::new();
    static IN_FLIGHT: Semaphore = Semaphore::const_new(PROBES_IN_FLIGHT);
    let limit = LIMIT.get_or_init(|| {
        RateLimiter::new(RateLimit {
            limit: PROBES_PER_MINUTE,
            window: Duration::from_secs(60),
            burst: PROBES_PER_MINUTE,
        })
    });
    let Ok(_slot) = IN_FLIGHT.try_acquire() else {
        return Probe::Busy;
    };
    if !limit.check(from).allowed {
        return Probe::Busy;
    }
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        http_client(PROBE_TIMEOUT, None, None).expect("a client with default TLS builds")
    });
    let request = match UpstreamCredential::placed(placement, key) {
        Some(UpstreamCredential::Header(name, value)) => client.get(probe).header(name, value),
        Some(UpstreamCredential::Query(param, value)) => {
            let Ok(mut url) = url::Url::parse(probe) else {
                return Probe::Unknown("the probe URL does not parse".into());
            };
            // As the upstream gets it: in place of a parameter of that name.
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| *k != param)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(&param, &value);
            client.get(url)
        }
        None => return Probe::Unknown("the key cannot be placed in a header".into()),
    };
    match request.send().await {
        Ok(r) if r.status().is_success() => Probe::Accepted,
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Probe::Refused(r.status().as_u16()),
        Ok(r) => Probe::Unknown(format!("status {}", r.status())),
        // Without the URL: with a query placement it carries the key.
        Err(e) => Probe::Unknown(e.without_url().to_string()),
    }
}

//! Passthrough: the route's authorize step is a page that asks the user for the upstream's
//! key. Optionally the key is tried on the upstream first (a probe), so that a wrong key is
//! said at once and not as a failing MCP session later. The key then travels sealed, in the
//! code and in the tokens (see `issued`).

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderValue;
use log::warn;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::Map;

use super::consent::{self, KeyField};
use super::facade::{AuthRequest, Behind, Broker, Params};
use tokio::sync::Semaphore;

use crate::auth::is_token68;
use crate::auth::rate_limit::RateLimiter;
use crate::config::{Placement, RateLimit, Strategy};
use crate::respond;

/// Keys longer than this are refused (a key is sealed into every token).
const MAX_KEY: usize = 4096;
/// A probe gets this long to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Probes one client address may cause per minute: the page must not become a way to try
/// guessed keys on the service from the gateway's address (or get it throttled there).
const PROBES_PER_MINUTE: u32 = 10;
/// Probes in flight at once, across all routes.
const PROBES_IN_FLIGHT: usize = 16;

/// What the upstream said of a key.
enum Probe {
    Accepted,
    Refused(u16),
    /// No usable answer: the key is not taken (it may be right; the user can retry).
    Unknown(String),
    /// Not tried: too many probes from this address, or at once.
    Busy,
}

impl Broker<'_> {
    /// The consent page with the key field; `error` says why the last key was not taken.
    pub(super) async fn key_page(
        &self,
        session: &mut Session,
        client_name: Option<&str>,
        request: AuthRequest,
        error: Option<&str>,
    ) -> Result<bool> {
        let Behind::Issued { auth, .. } = &self.behind else {
            return self.error_page(session, "This route takes no key.").await;
        };
        let Strategy::Passthrough(settings) = &auth.strategy else {
            return self.error_page(session, "This route takes no key.").await;
        };
        let (consent, csrf) = self.seal_consent(&request);
        let page = consent::page(&consent::Details {
            client_name,
            redirect_uri: &request.redirect_uri,
            scope: request.scope.as_deref(),
            resource: &self.facade.issuer,
            action: &format!("{}/authorize", self.facade.endpoint_base),
            consent: &consent,
            key: Some(KeyField {
                prompt: &settings.prompt,
                help: settings.help.as_deref(),
                error,
            }),
        });
        respond::html(session, 200, page, Some(&self.consent_cookie(&csrf))).await
    }

    /// The key form's answer, already checked for consent and CSRF: the key (tried on the
    /// upstream when a probe is set) goes into the client's one-time code.
    pub(super) async fn accept_key(
        &self,
        session: &mut Session,
        q: AuthRequest,
        form: &Params,
    ) -> Result<bool> {
        let Behind::Issued { auth, .. } = &self.behind else {
            return self.error_page(session, "This route takes no key.").await;
        };
        let Strategy::Passthrough(settings) = &auth.strategy else {
            return self.error_page(session, "This route takes no key.").await;
        };
        let key = form.get("key").map(str::trim).unwrap_or_default();
        let problem = if key.is_empty()
            || key.len() > MAX_KEY
            || HeaderValue::from_str(key).is_err()
        {
            Some("That is not a key: it is empty, too long, or has characters no key has.".into())
        } else if settings.raw && !is_token68(key) {
            // The key itself is the access token: it must be one a client can send.
            Some("This key has characters an access token cannot carry.".into())
        } else if let Some(probe) = &settings.probe {
            let client = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            match try_key(probe, &auth.placement, key, &client).await {
                Probe::Accepted => None,
                Probe::Refused(status) => Some(format!(
                    "The key was refused by the service (status {status}). Check it and try again."
                )),
                Probe::Busy => Some(
                    "Too many keys were tried from here just now. Wait a minute and try again."
                        .into(),
                ),
                Probe::Unknown(e) => {
                    warn!("route {}: key probe failed: {e}", self.facade.route);
                    Some("The key could not be checked: the service did not answer as expected. Try again shortly.".into())
                }
            }
        } else {
            None
        };
        if let Some(problem) = problem {
            let client = self.client(&q.client_id).await;
            let name = client.as_ref().and_then(|c| c.n.as_deref());
            return self.key_page(session, name, q, Some(&problem)).await;
        }
        let mut tokens = Map::new();
        tokens.insert("key".into(), key.into());
        let code = self.seal_code(&q, tokens);
        let to = self.client_redirect(&q.redirect_uri, &[("code", &code)], q.state.as_deref());
        respond::redirect(session, &to).await
    }
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
        reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with default TLS builds")
    });
    let request = match placement {
        Placement::Header {
            name,
            before,
            after,
        } => client
            .get(probe)
            .header(name.clone(), format!("{before}{key}{after}")),
        Placement::Query(param) => {
            let Ok(mut url) = url::Url::parse(probe) else {
                return Probe::Unknown("the probe URL does not parse".into());
            };
            url.query_pairs_mut().append_pair(param, key);
            client.get(url)
        }
    };
    match request.send().await {
        Ok(r) if r.status().is_success() => Probe::Accepted,
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Probe::Refused(r.status().as_u16()),
        Ok(r) => Probe::Unknown(format!("status {}", r.status())),
        // Without the URL: with a query placement it carries the key.
        Err(e) => Probe::Unknown(e.without_url().to_string()),
    }
}

//! One identity provider at run time: its endpoints (configured or discovered, see
//! `discovery`), its key set behind an `ArcSwap` (read without locks) and its schedule, the
//! verified-token cache, and introspection (`introspection`). Everything that waits on the
//! network happens in the background, or once on a cache miss, single-flight.

mod discovery;
mod introspection;

pub use discovery::discovery_urls;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use log::{info, warn};
use serde_json::{Map, Value};

use super::cache::{digest, Key as CacheKey, SlotCache};
use super::jwk::KeySet;
use super::jwt::{self, MAX_TOKEN_LEN};
use super::principal::Principal;
pub use super::token_client::IdpError;
use super::token_client::{get_document, http_client, TokenClient};
use super::Reject;
use crate::config::{ConfigError, JwksSource, ProviderConfig, TokenExchange, TokenMode};
use crate::metrics;

/// Bounds on a key set's `Cache-Control: max-age`.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(60);
const MAX_KEY_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Retry delay after a failed refresh (never longer than the normal period).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// A cached verification lives at most this long, so that a key withdrawn at the IdP stops
/// being honoured soon even for long-lived tokens.
const MAX_VERIFIED_TTL: u64 = 300;
/// Introspection calls to one provider at once.
const MAX_INTROSPECTIONS_IN_FLIGHT: usize = 64;
/// Inactive introspection answers remembered per provider.
const INACTIVE_ANSWERS: usize = 4096;

#[derive(Debug, Default)]
struct Endpoints {
    jwks_uri: Option<String>,
    introspection: Option<String>,
    token: Option<String>,
    authorization: Option<String>,
    revocation: Option<String>,
    /// The IdP says it puts `iss` in authorization responses (RFC 9207): one without it
    /// is then refused.
    sends_iss: bool,
    /// The descriptive part of the IdP's metadata document, for the gateway's own.
    described: Arc<Map<String, Value>>,
}

/// The IdP endpoints the gateway calls with its own client credentials.
#[derive(Debug, Clone, Copy)]
pub enum IdpEndpoint {
    Token,
    Introspection,
    Revocation,
}

pub struct Provider {
    pub name: String,
    pub config: ProviderConfig,
    keys: ArcSwap<KeySet>,
    endpoints: ArcSwap<Endpoints>,
    /// The first refresh succeeded (or nothing needed fetching).
    loaded: AtomicBool,
    /// Bumped by every successful refresh: a waiter on the refresh lock sees whether the
    /// refresh it waited for already happened.
    generation: AtomicU64,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Woken when any refresh ends.
    refreshed: tokio::sync::Notify,
    /// A refresh caused by an unknown `kid` is running.
    kid_refresh: AtomicBool,
    /// Unix ms of the last refresh an unknown `kid` caused; 0 for never.
    last_kid_refresh: AtomicU64,
    /// Unix ms at which the background refresh is due.
    next_refresh: AtomicU64,
    verified: Option<SlotCache<Arc<Principal>>>,
    /// Active introspection answers.
    introspected: SlotCache<Arc<Principal>>,
    /// Inactive ones, apart, so that a flood of made-up tokens cannot push out live entries.
    inactive: SlotCache<()>,
    /// Introspection calls in flight are bounded: made-up tokens cannot open unbounded
    /// requests to the IdP (beyond the bound they get 503).
    introspection_slots: tokio::sync::Semaphore,
    client: TokenClient,
}

impl Provider {
    /// Builds the provider without network I/O; a JWKS file is read here.
    pub fn new(name: &str, config: ProviderConfig, at: &str) -> Result<Provider, ConfigError> {
        let http = http_client(
            config.timeout,
            config.ca_file.as_deref(),
            config.client_cert.as_ref(),
        )
        .map_err(|e| ConfigError::new(at, e))?;
        let client = TokenClient::new(
            http,
            config.client_id.as_deref().unwrap_or_default(),
            config.client_secret.clone(),
            config.client_auth,
        );
        let (keys, loaded) = match &config.jwks {
            JwksSource::File(path) => {
                let key = format!("{at}.jwks_file");
                let text = std::fs::read(path)
                    .map_err(|e| ConfigError::new(&key, format!("cannot read: {e}")))?;
                let (set, skipped) = KeySet::parse(&text).map_err(|e| ConfigError::new(&key, e))?;
                for s in skipped {
                    warn!("provider {name}: {} skipped {s}", path.display());
                }
                (set, !config.needs_discovery())
            }
            _ => (
                KeySet::default(),
                !config.needs_discovery() && !config.wants_jwks_fetch(),
            ),
        };
        let endpoints = Endpoints {
            jwks_uri: match &config.jwks {
                JwksSource::Uri(u) => Some(u.clone()),
                _ => None,
            },
            introspection: config.introspection_endpoint.clone(),
            token: config.token_endpoint.clone(),
            authorization: config.authorization_endpoint.clone(),
            revocation: None,
            sends_iss: false,
            described: Arc::default(),
        };
        Ok(Provider {
            name: name.to_string(),
            keys: ArcSwap::from_pointee(keys),
            endpoints: ArcSwap::from_pointee(endpoints),
            loaded: AtomicBool::new(loaded),
            generation: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshed: tokio::sync::Notify::new(),
            kid_refresh: AtomicBool::new(false),
            last_kid_refresh: AtomicU64::new(0),
            next_refresh: AtomicU64::new(0),
            verified: (config.token_cache > 0).then(|| SlotCache::new(config.token_cache)),
            introspected: SlotCache::new(config.token_cache.max(1024)),
            inactive: SlotCache::new(INACTIVE_ANSWERS),
            introspection_slots: tokio::sync::Semaphore::new(MAX_INTROSPECTIONS_IN_FLIGHT),
            client,
            config,
        })
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Checks `token` and says whom it speaks for. `now` is unix seconds.
    pub async fn authenticate(&self, token: &str, now: u64) -> Result<Arc<Principal>, Reject> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Reject::TooLarge);
        }
        let key = digest(token.as_bytes());
        match self.config.tokens {
            TokenMode::Jwt => self.verify_jwt(token, key, now).await,
            TokenMode::Introspection => self.introspect(token, key, now).await,
            TokenMode::JwtThenIntrospection if jwt::looks_like_jwt(token) => {
                self.verify_jwt(token, key, now).await
            }
            TokenMode::JwtThenIntrospection => self.introspect(token, key, now).await,
        }
    }

    async fn verify_jwt(
        &self,
        token: &str,
        key: CacheKey,
        now: u64,
    ) -> Result<Arc<Principal>, Reject> {
        if let Some(hit) = self.verified.as_ref().and_then(|c| c.get(&key, now)) {
            return Ok(hit.value.clone());
        }
        let parsed = jwt::parse(token)?;
        let kid = parsed.kid.as_deref();
        // Read before the keys: a refresh that lands after the lookup is then noticed.
        let seen = self.generation.load(Ordering::Acquire);
        // The guard is dropped before any `.await`.
        let found = self.keys.load().find(kid).map(|k| parsed.verify(k));
        let claims = match found {
            Some(result) => result?,
            None => {
                self.refresh_for_unknown_kid(seen).await?;
                let keys = self.keys.load();
                parsed.verify(keys.find(kid).ok_or(Reject::UnknownKey)?)?
            }
        };
        parsed.check_type(&claims, &self.config.token_types)?;
        let principal = Principal::from_claims(claims, self.config.trust_unverified_email);
        let c = &self.config;
        jwt::check_claims(
            &principal,
            &c.issuer,
            &c.required_claims,
            now,
            c.leeway.as_secs(),
        )?;
        let principal = Arc::new(principal);
        if let Some(cache) = &self.verified {
            let until = principal
                .expires_at
                .unwrap_or(u64::MAX)
                .min(now + MAX_VERIFIED_TTL);
            if until > now {
                cache.insert(key, until, now, principal.clone());
            }
        }
        Ok(principal)
    }

    /// A token names a key we do not have (`seen`: the key-set generation it looked in).
    /// One request claims a refresh, at most once per `jwks_cooldown`, so that a key rotated
    /// at the IdP works at once and a flood of made-up `kid`s costs the IdP one request per
    /// cooldown. Requests that arrive while that refresh runs wait for it (bounded); others
    /// are answered at once, without queueing.
    async fn refresh_for_unknown_kid(&self, seen: u64) -> Result<(), Reject> {
        let refreshed = self.refreshed.notified();
        tokio::pin!(refreshed);
        refreshed.as_mut().enable();
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        let unknown = || {
            if self.is_loaded() {
                Reject::UnknownKey
            } else {
                Reject::KeysUnavailable
            }
        };
        let now = unix_ms();
        let last = self.last_kid_refresh.load(Ordering::Relaxed);
        let cooled =
            last == 0 || now.saturating_sub(last) >= self.config.jwks_cooldown.as_millis() as u64;
        let wait = self.config.timeout * 4; // discovery (up to 3 documents), then the keys
        if cooled
            && self
                .kid_refresh
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.last_kid_refresh.store(now, Ordering::Relaxed);
            let result = match tokio::time::timeout(wait, self.refresh_lock.lock()).await {
                // A scheduled refresh may have just brought the key.
                Ok(_flight) if self.generation.load(Ordering::Acquire) != seen => Ok(()),
                Ok(_flight) => self.refresh_locked("unknown kid").await,
                Err(_) => Err(()),
            };
            self.kid_refresh.store(false, Ordering::Release);
            return result.map_err(|_| unknown());
        }
        if self.kid_refresh.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(wait, refreshed).await;
        }
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        Err(unknown())
    }

    /// The background schedule: refreshes when due. Skips if a refresh is running.
    pub async fn refresh_if_due(&self) {
        if unix_ms() < self.next_refresh.load(Ordering::Relaxed) {
            return;
        }
        let Ok(_flight) = self.refresh_lock.try_lock() else {
            return;
        };
        let _ = self.refresh_locked("scheduled").await;
    }

    /// Fetches metadata and keys as configured. Call with `refresh_lock` held. On failure the
    /// previous keys stay in use.
    async fn refresh_locked(&self, why: &str) -> Result<(), ()> {
        let started = unix_ms();
        let outcome = self.fetch().await;
        let result = self.record_refresh(why, started, outcome);
        self.refreshed.notify_waiters();
        result
    }

    fn record_refresh(
        &self,
        why: &str,
        started: u64,
        outcome: Result<Option<Duration>, String>,
    ) -> Result<(), ()> {
        match outcome {
            Ok(max_age) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                if !self.loaded.swap(true, Ordering::AcqRel) {
                    info!("provider {}: ready", self.name);
                }
                let period = max_age
                    .map(|a| a.clamp(MIN_KEY_REFRESH, MAX_KEY_REFRESH))
                    .unwrap_or(self.config.jwks_refresh);
                self.next_refresh
                    .store(started + period.as_millis() as u64, Ordering::Relaxed);
                metrics::PROVIDER_REFRESHES
                    .with_label_values(&[&self.name, "ok"])
                    .inc();
                Ok(())
            }
            Err(e) => {
                warn!(
                    "provider {}: {why} refresh failed, keeping the previous keys: {e}",
                    self.name
                );
                let retry = RETRY_AFTER_FAILURE.min(self.config.jwks_refresh);
                self.next_refresh
                    .store(started + retry.as_millis() as u64, Ordering::Relaxed);
                metrics::PROVIDER_REFRESHES
                    .with_label_values(&[&self.name, "error"])
                    .inc();
                Err(())
            }
        }
    }

    /// Discovery (when needed), then the key set (when fetched). Returns the key set's
    /// `max-age`.
    async fn fetch(&self) -> Result<Option<Duration>, String> {
        if self.config.needs_discovery() {
            let meta = self.discover().await?;
            let c = &self.config;
            let jwks_uri = match &c.jwks {
                JwksSource::Uri(u) => Some(u.clone()),
                _ => meta.jwks_uri,
            };
            self.endpoints.store(Arc::new(Endpoints {
                jwks_uri,
                introspection: c
                    .introspection_endpoint
                    .clone()
                    .or(meta.introspection_endpoint),
                token: c.token_endpoint.clone().or(meta.token_endpoint),
                authorization: c
                    .authorization_endpoint
                    .clone()
                    .or(meta.authorization_endpoint),
                revocation: meta.revocation_endpoint,
                sends_iss: meta.authorization_response_iss_parameter_supported,
                described: Arc::new(meta.described),
            }));
        }
        if !self.config.wants_jwks_fetch() {
            return Ok(None);
        }
        let uri = self
            .endpoints
            .load()
            .jwks_uri
            .clone()
            .ok_or("the provider's metadata has no jwks_uri")?;
        let (body, max_age) = get_document(self.client.http(), &uri).await?;
        let (set, skipped) = KeySet::parse(&body).map_err(|e| format!("{uri}: {e}"))?;
        for s in skipped {
            warn!("provider {}: {uri}: skipped {s}", self.name);
        }
        self.keys.store(Arc::new(set));
        Ok(max_age)
    }

    /// RFC 8693: trades the client's token for one meant for the upstream. Returns the new
    /// token and its lifetime in seconds.
    pub async fn exchange(
        &self,
        subject_token: &str,
        params: &TokenExchange,
    ) -> Result<(String, Option<u64>), String> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ];
        for (name, value) in [
            ("audience", &params.audience),
            ("resource", &params.resource),
            ("scope", &params.scope),
        ] {
            if let Some(v) = value {
                form.push((name, v));
            }
        }
        let answer = self.token_grant(&form).await.map_err(|e| e.to_string())?;
        let token = answer
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or("the answer has no access_token")?;
        Ok((
            token.to_string(),
            answer.get("expires_in").and_then(|v| v.as_u64()),
        ))
    }

    /// The IdP's authorization endpoint, once known.
    /// The descriptive fields of the IdP's discovered metadata (empty without discovery).
    /// The same `Arc` until the next discovery: callers may cache what they derive from it.
    pub fn described(&self) -> Arc<Map<String, Value>> {
        self.endpoints.load().described.clone()
    }

    /// Whether the IdP's metadata promises `iss` in its authorization responses.
    pub fn sends_iss(&self) -> bool {
        self.endpoints.load().sends_iss
    }

    pub fn authorization_endpoint(&self) -> Option<String> {
        self.endpoints.load().authorization.clone()
    }

    /// A grant at the IdP's token endpoint with the gateway's own client credentials
    /// (authorization code, refresh token). Returns the IdP's JSON answer.
    pub async fn token_grant(&self, form: &[(&str, &str)]) -> Result<Map<String, Value>, IdpError> {
        self.call(IdpEndpoint::Token, form).await
    }

    /// A form POST to one of the IdP's endpoints with the gateway's client credentials.
    pub async fn call(
        &self,
        which: IdpEndpoint,
        form: &[(&str, &str)],
    ) -> Result<Map<String, Value>, IdpError> {
        let endpoint = {
            let endpoints = self.endpoints.load();
            match which {
                IdpEndpoint::Token => endpoints.token.clone(),
                IdpEndpoint::Introspection => endpoints.introspection.clone(),
                IdpEndpoint::Revocation => endpoints.revocation.clone(),
            }
        };
        let endpoint = endpoint
            .ok_or_else(|| IdpError::Failed(format!("the provider has no {which:?} endpoint")))?;
        self.client.post(&endpoint, form).await
    }
}

impl ProviderConfig {
    /// The key set comes over HTTP (not from a file, and JWTs are used at all).
    fn wants_jwks_fetch(&self) -> bool {
        self.tokens != TokenMode::Introspection && !matches!(self.jwks, JwksSource::File(_))
    }
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

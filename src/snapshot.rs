//! The compiled runtime state: everything a request needs, behind one `Arc`, swapped whole
//! on reload. A request loads it once and keeps it to the end, so a reload never changes
//! the rules under a request or stream that is already running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::HeaderValue;
use log::{info, warn};

use crate::auth::provider::Provider;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::Guard;
use crate::config::{Auth, Config, ConfigError, Route, SealKeys};
use crate::metrics;
use crate::oauth::cimd;
use crate::oauth::facade::{Facade, UsedCodes};
use crate::oauth::issued::{IssuedGuard, Revocations};
use crate::oauth::metadata;
use crate::oauth::seal::Sealer;
use crate::oauth::service::Service;
use crate::routing::Router;
use crate::upstream::credential::{Exchanger, IdentityNames};
use crate::upstream::peer::UpstreamPeer;
use crate::upstream::spawn::{SpawnKey, SpawnState, Supervisor};

pub struct Snapshot {
    pub config: Config,
    pub router: Router,
    /// Indexed like `config.routes`.
    pub routes: Vec<CompiledRoute>,
    /// By name; shared with the next snapshot when their settings do not change.
    pub providers: BTreeMap<String, Arc<Provider>>,
    pub sealer: Arc<Sealer>,
    /// Codes redeemed, kept across reloads.
    pub used_codes: Arc<UsedCodes>,
    /// Client ID metadata documents, fetched and cached.
    pub client_documents: cimd::Fetcher,
    /// Downstream OAuth services of chained routes, by name.
    pub services: BTreeMap<String, Service>,
    /// Grants of issued tokens revoked on this process, kept across reloads.
    pub revocations: Arc<Revocations>,
    /// Identity headers no client may send through any route.
    pub identity_names: IdentityNames,
}

pub struct CompiledRoute {
    pub peer: UpstreamPeer,
    /// The `Host` header sent upstream, built once.
    pub host_header: HeaderValue,
    pub spawned: Option<(SpawnKey, Arc<SpawnState>)>,
    /// The bearer check (`auth` with a provider).
    pub guard: Option<Guard>,
    /// The check of the gateway's own tokens (passthrough and chained routes).
    pub issued: Option<IssuedGuard>,
    pub exchanger: Option<Arc<Exchanger>>,
    /// The route's protected resource metadata document (RFC 9728), when it is protected.
    pub resource_metadata: Option<Bytes>,
    /// The gateway's authorization server for the route (`oauth: broker`).
    pub facade: Option<Facade>,
}

impl Snapshot {
    /// Compiles a validated config. Fails on what only shows at build time (DNS, CA files,
    /// JWKS files). Providers, rate-limit state and exchanged tokens whose settings did not
    /// change are taken over from `previous`, so a reload loses no keys and resets no limit.
    pub fn build(
        config: Config,
        supervisor: &Supervisor,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigError> {
        let mut providers = BTreeMap::new();
        for (name, settings) in &config.providers {
            let kept = previous
                .and_then(|p| p.providers.get(name))
                .filter(|p| p.config == *settings);
            let provider = match kept {
                Some(p) => p.clone(),
                None => Arc::new(Provider::new(
                    name,
                    settings.clone(),
                    &format!("providers.{name}"),
                )?),
            };
            providers.insert(name.clone(), provider);
        }
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let at = format!("routes[{i}]");
                let old = previous.and_then(|p| p.find_route(&route.name));
                compile(route, &at, supervisor, &config.public_url, &providers, old)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sealer = match (&config.seal_keys, previous) {
            (keys, Some(p)) if keys == &p.config.seal_keys => p.sealer.clone(),
            (keys, _) => {
                let seals = config.providers.values().any(|p| p.brokers)
                    || config
                        .routes
                        .iter()
                        .any(|r| matches!(r.auth, Auth::Issued(_)));
                Arc::new(sealer(keys, seals))
            }
        };
        let services = config
            .oauth_services
            .iter()
            .map(|(name, settings)| Ok((name.clone(), Service::new(name, settings.clone())?)))
            .collect::<Result<_, ConfigError>>()?;
        let documents = &config.client_metadata_documents;
        let roots = match &documents.ca_file {
            Some(path) => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                })
                .map_err(|e| ConfigError::new("client_metadata_documents.ca_file", e))?,
            None => Vec::new(),
        };
        Ok(Snapshot {
            client_documents: cimd::Fetcher::new(documents.allow_private_addresses, roots),
            router: Router::new(&config.routes),
            identity_names: IdentityNames::new(&config.routes),
            used_codes: previous.map(|p| p.used_codes.clone()).unwrap_or_default(),
            revocations: previous.map(|p| p.revocations.clone()).unwrap_or_default(),
            services,
            sealer,
            config,
            routes,
            providers,
        })
    }

    /// The route a discovery document at `path` (a route path, `/` for the root) is about:
    /// the root belongs to `default_route` when one is set.
    pub fn discovery_route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        match (path, self.config.default_route) {
            ("/", Some(index)) => Some(index),
            _ => self.router.lookup(host, path).map(|found| found.route),
        }
    }

    fn find_route(&self, name: &str) -> Option<(&Route, &CompiledRoute)> {
        let i = self.config.routes.iter().position(|r| r.name == name)?;
        Some(self.route(i))
    }

    pub fn route(&self, index: usize) -> (&Route, &CompiledRoute) {
        (&self.config.routes[index], &self.routes[index])
    }

    /// Every spawned upstream this snapshot routes to, once each.
    pub fn spawn_keys(&self) -> Vec<SpawnKey> {
        let mut keys: Vec<SpawnKey> = Vec::new();
        for (key, _) in self.routes.iter().filter_map(|r| r.spawned.as_ref()) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// Resolves every upstream given by host name (after a load, then periodically).
    pub async fn refresh_dns(&self) {
        for (route, compiled) in self.config.routes.iter().zip(&self.routes) {
            if compiled.peer.is_dns() {
                if let Err(e) = compiled.peer.resolve().await {
                    warn!(
                        "route {}: cannot resolve `{}`: {e}",
                        route.name, route.upstream.host
                    );
                }
            }
        }
    }

    /// Ready to serve: every spawned upstream listens and every provider has its keys.
    pub fn is_ready(&self) -> bool {
        self.routes
            .iter()
            .filter_map(|r| r.spawned.as_ref())
            .all(|(_, state)| state.is_ready())
            && self.providers.values().all(|p| p.is_loaded())
    }
}

fn compile(
    route: &Route,
    at: &str,
    supervisor: &Supervisor,
    public_url: &str,
    providers: &BTreeMap<String, Arc<Provider>>,
    old: Option<(&Route, &CompiledRoute)>,
) -> Result<CompiledRoute, ConfigError> {
    let peer = UpstreamPeer::new(route, at)?;
    let host_header = HeaderValue::from_str(&route.upstream.authority).map_err(|_| {
        ConfigError::new(format!("{at}.upstream"), "host is not a valid Host header")
    })?;
    let spawned = match &route.spawn {
        Some(spawn) => {
            // Loopback only (checked by validation), so this asks no DNS server.
            let addr = peer.resolve_blocking().map_err(|e| {
                ConfigError::new(format!("{at}.upstream"), format!("cannot resolve: {e}"))
            })?;
            let key = SpawnKey::new(addr, spawn);
            let state = supervisor.state_for(&key);
            Some((key, state))
        }
        None => None,
    };
    let limiter = rate_limiter(route, old);
    let metadata = format!(
        "{public_url}/.well-known/oauth-protected-resource{}",
        if route.prefix == "/" {
            ""
        } else {
            &route.prefix
        }
    );
    let (guard, issued) = match &route.auth {
        Auth::None => (None, None),
        Auth::Issued(auth) => {
            let issued = IssuedGuard::new(&route.name, auth, &metadata, limiter)
                .map_err(|_| ConfigError::new(format!("{at}.prefix"), "cannot be in a header"))?;
            (None, Some(issued))
        }
        Auth::Bearer(bearer) => {
            let provider = providers[&bearer.provider].clone();
            let needs_subject = limiter.is_some() || route.upstream_auth.identity.is_some();
            let guard =
                Guard::new(bearer, &metadata, provider, limiter, needs_subject).map_err(|_| {
                    ConfigError::new(
                        format!("{at}.auth.scopes"),
                        "a scope has characters a WWW-Authenticate header cannot carry",
                    )
                })?;
            (Some(guard), None)
        }
    };
    let exchanger = route.upstream_auth.token_exchange.as_ref().map(|te| {
        // Exchanged tokens stay valid only while the route and its provider are unchanged.
        let same_provider = |c: &CompiledRoute| match (&c.guard, &guard) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a.provider, &b.provider),
            _ => false,
        };
        old.filter(|(r, c)| {
            r.upstream_auth.token_exchange.as_ref() == Some(te)
                && r.auth == route.auth
                && same_provider(c)
        })
        .and_then(|(_, c)| c.exchanger.clone())
        .unwrap_or_default()
    });
    let facade = Facade::for_route(public_url, route);
    let resource_metadata = match (&route.auth, &guard, &facade) {
        (Auth::Bearer(bearer), Some(guard), None) => Some(metadata::resource_document(
            public_url,
            route,
            &bearer.scopes,
            &guard.provider.config.issuer,
        )),
        (Auth::Bearer(bearer), _, Some(facade)) => Some(metadata::resource_document(
            public_url,
            route,
            &bearer.scopes,
            &facade.issuer,
        )),
        (Auth::Issued(_), _, Some(facade)) => Some(metadata::resource_document(
            public_url,
            route,
            &[],
            &facade.issuer,
        )),
        _ => None,
    };
    Ok(CompiledRoute {
        peer,
        host_header,
        spawned,
        guard,
        issued,
        exchanger,
        resource_metadata,
        facade,
    })
}

/// The route's rate limiter: the previous snapshot's (with its state) when the limit did
/// not change, else a new one.
fn rate_limiter(route: &Route, old: Option<(&Route, &CompiledRoute)>) -> Option<Arc<RateLimiter>> {
    let limit = route.auth.rate_limit()?;
    let kept = old.and_then(|(r, c)| {
        let limiter = match (&c.guard, &c.issued) {
            (Some(g), _) => g.rate_limiter.as_ref(),
            (_, Some(i)) => i.rate_limiter.as_ref(),
            _ => None,
        };
        limiter
            .filter(|_| r.auth.rate_limit() == Some(limit))
            .cloned()
    });
    Some(kept.unwrap_or_else(|| Arc::new(RateLimiter::new(limit.clone()))))
}

/// The sealer for `keys`; without a configured key, one random key for the whole process
/// (so that reloads keep it), with a warning: flows then do not survive a restart or span
/// replicas.
fn sealer(keys: &SealKeys, seals: bool) -> Sealer {
    static PROCESS_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let current = keys.current.unwrap_or_else(|| {
        if seals {
            warn!("no seal_key configured: using a random key; sealed codes, registrations and tokens do not survive a restart or work across replicas");
        }
        *PROCESS_KEY.get_or_init(Sealer::random_key)
    });
    Sealer::new(&current, &keys.previous)
}

/// The live snapshot, the file it came from, and the spawned processes it needs.
pub struct GatewayState {
    current: ArcSwap<Snapshot>,
    config_path: PathBuf,
    pub supervisor: Supervisor,
}

impl GatewayState {
    pub fn load(config_path: &Path) -> Result<GatewayState, ConfigError> {
        let supervisor = Supervisor::default();
        let snapshot = Snapshot::build(Config::load(config_path)?, &supervisor, None)?;
        Ok(GatewayState {
            current: ArcSwap::from_pointee(snapshot),
            config_path: config_path.to_path_buf(),
            supervisor,
        })
    }

    /// The snapshot to serve one request with. Owned, so it may be held across `.await`.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Read per request so that a reload can turn the access log on or off.
    pub fn access_log(&self) -> bool {
        self.current.load().config.access_log
    }

    /// Re-reads the file and swaps in a new snapshot; on any error nothing changes.
    /// Blocking (file reads): call from a blocking-capable context.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let old = self.current.load_full();
        let result = Config::load(&self.config_path)
            .and_then(|config| Snapshot::build(config, &self.supervisor, Some(&old)));
        let new = match result {
            Ok(new) => new,
            Err(e) => {
                metrics::RELOADS.with_label_values(&["error"]).inc();
                warn!(
                    "reload of {} failed, still serving the previous configuration: {e}",
                    self.config_path.display()
                );
                return Err(e);
            }
        };
        for change in restart_only_changes(&old.config, &new.config) {
            warn!("reload: `{change}` changed; that takes a restart or upgrade (-u) to apply");
        }
        self.supervisor.sync(&new.spawn_keys());
        info!(
            "reloaded {}: {} routes",
            self.config_path.display(),
            new.config.routes.len()
        );
        self.current.store(Arc::new(new));
        metrics::RELOADS.with_label_values(&["ok"]).inc();
        Ok(())
    }
}

/// Settings bound to listeners and the process, which a reload cannot change.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.listen != new.listen {
        changed.push("listen");
    }
    if old.tls != new.tls {
        changed.push("tls");
    }
    if old.metrics != new.metrics {
        changed.push("metrics");
    }
    if old.server != new.server {
        changed.push("server");
    }
    changed
}

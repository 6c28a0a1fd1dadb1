//! The compiled runtime state: everything a request needs, behind one `Arc`, swapped whole
//! on reload. A request loads it once and keeps it to the end, so a reload never changes
//! the rules under a request or stream that is already running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use log::warn;

use crate::auth::provider::Provider;
use crate::config::{Config, ConfigError, SealKeys};
use crate::metrics;
use crate::oauth::cimd;
use crate::oauth::seal::Sealer;
use crate::oauth::server::Shared;
use crate::oauth::service::Service;
use crate::route::{CompiledRoute, Context};
use crate::routing::Router;
use crate::state::State;
use crate::upstream::credential::IdentityNames;
use crate::upstream::spawn::{SpawnKey, Supervisor};

pub struct Snapshot {
    /// The validated configuration; its routes live on in `routes`.
    pub config: Config,
    pub router: Router,
    pub routes: Vec<CompiledRoute>,
    /// By name; shared with the next snapshot when their settings do not change.
    pub providers: BTreeMap<String, Arc<Provider>>,
    /// The seal key, the state and client documents, for every authorization server.
    pub shared: Shared,
    /// Identity headers no client may send through any route.
    pub identity_names: IdentityNames,
}

impl Snapshot {
    /// Compiles a validated config. Fails on what only shows at build time (DNS, CA files,
    /// JWKS files). Providers, rate-limit state and exchanged tokens whose settings did not
    /// change are taken over from `previous`, so a reload loses no keys and resets no limit.
    pub fn build(
        mut config: Config,
        supervisor: &Supervisor,
        state: &Arc<State>,
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
        let sealer = match (&config.seal_keys, previous) {
            (keys, Some(p)) if keys == &p.config.seal_keys => p.shared.sealer.clone(),
            (keys, _) => Arc::new(sealer(keys)),
        };
        let services = config
            .oauth_services
            .iter()
            .map(|(name, settings)| {
                Ok((
                    name.clone(),
                    Arc::new(Service::new(name, settings.clone())?),
                ))
            })
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
        let shared = Shared {
            sealer,
            state: state.clone(),
            documents: Arc::new(cimd::Fetcher::new(documents.allow_private_addresses, roots)),
            refresh_grace: config.refresh_grace,
        };
        let router = Router::new(&config.routes);
        let identity_names = IdentityNames::new(&config.routes);
        let cx = Context {
            supervisor,
            public_url: &config.public_url,
            providers: &providers,
            services: &services,
            shared: &shared,
        };
        let routes = std::mem::take(&mut config.routes)
            .into_iter()
            .enumerate()
            .map(|(i, route)| {
                let old = previous.and_then(|p| p.find_route(&route.name));
                CompiledRoute::compile(route, &format!("routes[{i}]"), &cx, old)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            router,
            identity_names,
            shared,
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

    fn find_route(&self, name: &str) -> Option<&CompiledRoute> {
        self.routes.iter().find(|r| r.spec.name == name)
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
        for route in &self.routes {
            if route.peer.is_dns() {
                if let Err(e) = route.peer.resolve().await {
                    let (name, host) = (&route.spec.name, &route.spec.upstream.host);
                    warn!("route {name}: cannot resolve `{host}`: {e}");
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

    /// Spawned upstreams whose command fails, for `/readyz`: route name and reason.
    pub fn failing_upstreams(&self) -> Vec<serde_json::Value> {
        let spawned = self
            .routes
            .iter()
            .filter_map(|r| Some((r, &r.spawned.as_ref()?.1)));
        spawned
            .filter_map(|(route, state)| {
                let reason = state.failure()?;
                Some(serde_json::json!({"route": route.spec.name, "reason": reason.as_str()}))
            })
            .collect()
    }
}

/// The sealer for `keys`; without a configured key, one random key for the whole process
/// (so that reloads keep it): flows then do not survive a restart or span replicas, which
/// the start says (`banner`).
fn sealer(keys: &SealKeys) -> Sealer {
    static PROCESS_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let current = keys
        .current
        .unwrap_or_else(|| *PROCESS_KEY.get_or_init(Sealer::random_key));
    Sealer::new(&current, &keys.previous)
}

/// The live snapshot, the file it came from, and the spawned processes it needs.
pub struct GatewayState {
    current: ArcSwap<Snapshot>,
    config_path: PathBuf,
    pub supervisor: Supervisor,
    /// What must be remembered: made at start from `state`, kept across reloads.
    pub state: Arc<State>,
}

impl GatewayState {
    pub fn load(config_path: &Path) -> Result<GatewayState, ConfigError> {
        let supervisor = Supervisor::default();
        let config = Config::load(config_path)?;
        let state = Arc::new(State::new(&config.state)?);
        let snapshot = Snapshot::build(config, &supervisor, &state, None)?;
        Ok(GatewayState {
            current: ArcSwap::from_pointee(snapshot),
            config_path: config_path.to_path_buf(),
            supervisor,
            state,
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

    /// What identifies the config file's current content without reading it: its
    /// modification time, size and inode (through symlinks, as a Kubernetes ConfigMap
    /// mount swaps them). `None` if it cannot be read.
    pub fn config_fingerprint(&self) -> Option<(std::time::SystemTime, u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.config_path).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    }

    /// Re-reads the file and swaps in a new snapshot; on any error nothing changes.
    /// Blocking (file reads): call from a blocking-capable context.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let old = self.current.load_full();
        let result = Config::load(&self.config_path)
            .and_then(|config| Snapshot::build(config, &self.supervisor, &self.state, Some(&old)));
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
        crate::banner::reloaded(&new, &self.config_path);
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
    // `watch_config` is read where it is used, and applies at once.
    let mut old_server = old.server.clone();
    old_server.watch_config = new.server.watch_config;
    if old_server != new.server {
        changed.push("server");
    }
    if old.state != new.state {
        changed.push("state");
    }
    if old.audit_log != new.audit_log {
        changed.push("audit_log");
    }
    changed
}

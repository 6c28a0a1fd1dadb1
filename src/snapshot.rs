//! The compiled runtime state: everything a request needs, behind one `Arc`, swapped whole
//! on reload. A request loads it once and keeps it to the end, so a reload never changes
//! the rules under a request or stream that is already running.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderValue;
use log::{info, warn};

use crate::config::{Config, ConfigError, Route};
use crate::metrics;
use crate::routing::Router;
use crate::upstream::peer::UpstreamPeer;
use crate::upstream::spawn::{SpawnKey, SpawnState, Supervisor};

pub struct Snapshot {
    pub config: Config,
    pub router: Router,
    /// Indexed like `config.routes`.
    pub routes: Vec<CompiledRoute>,
}

pub struct CompiledRoute {
    pub peer: UpstreamPeer,
    /// The `Host` header sent upstream, built once.
    pub host_header: HeaderValue,
    pub spawned: Option<(SpawnKey, Arc<SpawnState>)>,
}

impl Snapshot {
    /// Compiles a validated config. Fails on what only shows at build time (DNS, CA files).
    pub fn build(config: Config, supervisor: &Supervisor) -> Result<Snapshot, ConfigError> {
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, route)| compile(route, &format!("routes[{i}]"), supervisor))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            router: Router::new(&config.routes),
            config,
            routes,
        })
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

    /// Ready to serve: every spawned upstream listens.
    pub fn is_ready(&self) -> bool {
        self.routes
            .iter()
            .filter_map(|r| r.spawned.as_ref())
            .all(|(_, state)| state.is_ready())
    }
}

fn compile(route: &Route, at: &str, supervisor: &Supervisor) -> Result<CompiledRoute, ConfigError> {
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
    Ok(CompiledRoute {
        peer,
        host_header,
        spawned,
    })
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
        let snapshot = Snapshot::build(Config::load(config_path)?, &supervisor)?;
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
        let result = Config::load(&self.config_path)
            .and_then(|config| Snapshot::build(config, &self.supervisor));
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
        let old = self.current.load();
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

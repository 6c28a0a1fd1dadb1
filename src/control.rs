//! The background service that keeps the running state in step with the config file:
//! starts spawned upstreams, reloads on SIGHUP and when the file changes, refreshes
//! providers' keys on schedule, follows the shared state, and stops spawned upstreams on
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use log::{error, info};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

use crate::snapshot::GatewayState;

/// How often upstream host names are resolved again.
const DNS_REFRESH: Duration = Duration::from_secs(30);
/// How often providers are asked whether their scheduled refresh is due.
const PROVIDER_TICK: Duration = Duration::from_secs(1);
/// How often the config file is looked at (`server.watch_config`).
const WATCH_TICK: Duration = Duration::from_secs(1);

pub struct ControlService {
    pub state: Arc<GatewayState>,
}

#[async_trait]
impl BackgroundService for ControlService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Registered here, in a service, because the server may fork when it daemonizes.
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                error!("cannot listen for SIGHUP, reload is disabled: {e}");
                None
            }
        };
        self.state
            .supervisor
            .sync(&self.state.snapshot().spawn_keys());
        // Revocations made on other replicas, into this one's view (nothing to do in memory).
        let state = self.state.state.clone();
        tokio::spawn(async move { state.follow().await });
        let mut dns = tokio::time::interval(DNS_REFRESH);
        let mut providers = tokio::time::interval(PROVIDER_TICK);
        let mut watch = tokio::time::interval(WATCH_TICK);
        let mut seen = self.state.config_fingerprint();
        loop {
            tokio::select! {
                Some(()) = async { hangups.as_mut()?.recv().await } => {
                    seen = self.state.config_fingerprint();
                    self.reload().await;
                }
                // A file that changed (a ConfigMap updated in place) is reloaded like SIGHUP.
                _ = watch.tick(), if self.state.snapshot().config.server.watch_config => {
                    let now = self.state.config_fingerprint();
                    if now.is_some() && now != seen {
                        seen = now;
                        info!("the config file changed; reloading it");
                        self.reload().await;
                    }
                }
                // The first tick is immediate: upstream names resolve before most traffic.
                _ = dns.tick() => self.state.snapshot().refresh_dns().await,
                // Each provider refreshes in its own task: a slow IdP delays no other.
                _ = providers.tick() => {
                    for provider in self.state.snapshot().providers.values() {
                        let provider = provider.clone();
                        tokio::spawn(async move { provider.refresh_if_due().await });
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        self.state.supervisor.stop_all().await;
    }
}

impl ControlService {
    /// Reloads the file, off the runtime's workers (file reads block). The outcome is logged
    /// and counted by `reload` itself.
    async fn reload(&self) {
        let state = self.state.clone();
        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || state.reload()).await {
            self.state.snapshot().refresh_dns().await;
        }
    }
}

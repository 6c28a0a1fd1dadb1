//! Builds the Pingora server and its services from a loaded state.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::ListenerConfig;
use pingora::prelude::*;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::config::{Config, ConfigError, TlsConfig};
use crate::connections::ConnectionGuard;
use crate::control::ControlService;
use crate::gateway::Gateway;
use crate::metrics;
use crate::snapshot::GatewayState;

/// How the process was asked to start.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    /// Take the listening sockets over from a running instance (graceful upgrade).
    pub upgrade: bool,
    pub daemon: bool,
}

/// Loads and checks everything a start needs, without binding anything: what `-t` runs.
pub fn check(config_path: &Path) -> Result<GatewayState, ConfigError> {
    let state = GatewayState::load(config_path)?;
    if let Some(tls) = &state.snapshot().config.tls {
        check_tls_files(tls)?;
    }
    Ok(state)
}

/// Builds the server; `run_forever` on the result serves until a shutdown signal.
pub fn build(state: GatewayState, opts: &StartOptions) -> Result<Server, ConfigError> {
    let config: Config = state.snapshot().config.clone();
    let conf = ServerConf {
        daemon: opts.daemon,
        pid_file: config.server.pid_file.clone(),
        upgrade_sock: config.server.upgrade_sock.clone(),
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        ..proxy_conf(config.server.threads)
    };
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Opt::default()
    };
    if let Some(path) = &config.audit_log {
        crate::logging::audit_to(path, !opts.daemon).map_err(|e| {
            ConfigError::new("audit_log", format!("cannot open {}: {e}", path.display()))
        })?;
    }
    if !opts.upgrade {
        let metrics = config.metrics.iter().map(|addr| ("metrics", addr));
        for (key, addr) in config
            .listen
            .iter()
            .map(|addr| ("listen", addr))
            .chain(metrics)
        {
            ensure_free(key, *addr)?;
        }
    }
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    metrics::init();

    let state = Arc::new(state);
    let gateway = Gateway {
        state: state.clone(),
    };
    let mut app = pingora::proxy::http_proxy(&server.configuration, gateway);
    // HTTP/2 carries its own idle limit; HTTP/1 connections get theirs from the guard.
    let mut options = HttpServerOptions::default();
    options.h2_idle_timeout = Some(config.connections.keepalive_timeout);
    app.server_options = Some(options);
    let guard = ConnectionGuard::new(app, state.clone(), open_files_limit());
    let mut proxy = Service::new("mcpgate".to_string(), guard);
    for addr in &config.listen {
        let addr = addr.to_string();
        match &config.tls {
            Some(tls) => {
                let mut settings = TlsSettings::intermediate(
                    &tls.cert.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .map_err(|e| ConfigError::new("tls", e.to_string()))?;
                settings.enable_h2();
                proxy.add_tls_with_settings(&addr, None, settings);
            }
            None => proxy.add_listener(plain_listener(&addr)),
        }
    }
    server.add_service(proxy);
    if let Some(addr) = config.metrics {
        let mut service = pingora_prometheus::prometheus_http_service();
        service.add_tcp(&addr.to_string());
        server.add_service(service);
    }
    server.add_service(background_service("control", ControlService { state }));
    Ok(server)
}

/// Pingora's runtime settings for the proxy, shared with the load test's bare-Pingora
/// baseline (`examples/bare_proxy.rs`). Work stealing is off: each thread runs its own
/// runtime and keeps the connections it accepted, which served about 20 % more requests
/// per second on one core than Pingora's default (`examples/bare_proxy.rs` under wrk, three
/// alternating rounds: 15.7/16.0/18.0k against 12.2/13.4/14.9k).
pub fn proxy_conf(threads: usize) -> ServerConf {
    ServerConf {
        threads,
        work_stealing: false,
        ..ServerConf::default()
    }
}

/// A plain-TCP listener without Pingora's 64 KiB read buffer per connection. Pingora reads
/// request heads and bodies into buffers of its own, so that one only added a copy and
/// about 8 KiB of resident memory per open stream; requests per second were the same
/// without it. TLS listeners keep it (rustls reads records in small pieces).
pub fn plain_listener(addr: &str) -> ListenerConfig {
    ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::default().read(0))
}

/// How long a start waits for an address that is in use to be freed (a previous instance
/// still exiting) before it gives up.
const ADDRESS_IN_USE_WAIT: Duration = Duration::from_secs(3);

/// Fails, naming the address, when another process listens on it. Pingora itself would
/// retry forever while the rest of the gateway (spawned upstreams among it) starts a second
/// copy; only `-u` takes a running instance's sockets over.
fn ensure_free(key: &str, addr: SocketAddr) -> Result<(), ConfigError> {
    let deadline = Instant::now() + ADDRESS_IN_USE_WAIT;
    loop {
        // std sets SO_REUSEADDR as Pingora does: connections in TIME_WAIT do not count.
        match std::net::TcpListener::bind(addr) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{addr} is in use by another process (another mcpgate? `mcpgate -u` \
                         takes a running instance's sockets over)"
                    ),
                ))
            }
            Err(e) => {
                return Err(ConfigError::new(
                    key,
                    format!("cannot listen on {addr}: {e}"),
                ))
            }
        }
    }
}

/// Pingora's TLS setup panics on unreadable files; check them first for a clear message.
fn check_tls_files(tls: &TlsConfig) -> Result<(), ConfigError> {
    let cert = std::fs::read(&tls.cert).map_err(|e| {
        ConfigError::new(
            "tls.cert",
            format!("cannot read {}: {e}", tls.cert.display()),
        )
    })?;
    let certs = rustls_pemfile::certs(&mut cert.as_slice()).collect::<Result<Vec<_>, _>>();
    if !matches!(certs, Ok(c) if !c.is_empty()) {
        return Err(ConfigError::new(
            "tls.cert",
            format!("{} holds no PEM certificate", tls.cert.display()),
        ));
    }
    let key = std::fs::read(&tls.key).map_err(|e| {
        ConfigError::new("tls.key", format!("cannot read {}: {e}", tls.key.display()))
    })?;
    if !matches!(
        rustls_pemfile::private_key(&mut key.as_slice()),
        Ok(Some(_))
    ) {
        return Err(ConfigError::new(
            "tls.key",
            format!("{} holds no PEM private key", tls.key.display()),
        ));
    }
    Ok(())
}

/// Every open stream holds two descriptors (client and upstream): take all the process may
/// have, as nginx does with `worker_rlimit_nofile`, instead of the shell's soft 1,024.
pub fn raise_open_files_limit() {
    let mut limit = open_files_rlimit();
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the one `rlimit` passed, which outlives the call.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
}

/// The descriptors this process may open now (the soft limit).
fn open_files_limit() -> usize {
    usize::try_from(open_files_rlimit().rlim_cur).unwrap_or(usize::MAX)
}

fn open_files_rlimit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: getrlimit writes the one `rlimit` passed, which outlives the call.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit
}

//! A route's upstream peer, built once per snapshot, so that the request path only clones
//! it: timeouts, SNI and CA certificates are settled at load time.
//!
//! An upstream given by IP address is ready at once. A host name is resolved off the
//! request path (by the control service, right after a load and then periodically) so
//! that a config loads without DNS and an address change is picked up without a reload;
//! a request that finds it not yet resolved resolves it itself.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::WrappedX509;

use crate::config::{ConfigError, Route};

pub struct UpstreamPeer {
    /// Everything but the address.
    template: HttpPeer,
    host: String,
    port: u16,
    resolved: ArcSwapOption<HttpPeer>,
}

impl UpstreamPeer {
    pub fn new(route: &Route, at: &str) -> Result<UpstreamPeer, ConfigError> {
        let up = &route.upstream;
        let placeholder = SocketAddr::from(([0, 0, 0, 0], up.port));
        let mut template = HttpPeer::new(placeholder, up.tls, up.sni.clone());
        let opts = &mut template.options;
        opts.connection_timeout = Some(route.timeouts.connect);
        opts.total_connection_timeout = Some(route.timeouts.connect);
        opts.idle_timeout = Some(route.timeouts.idle);
        // No read or write timeout unless configured: SSE and streamable HTTP responses may
        // be silent for minutes and must not be cut.
        opts.read_timeout = route.timeouts.read;
        if let Some(ca) = &up.ca_file {
            opts.ca = Some(Arc::from(load_cas(ca, at)?.into_boxed_slice()));
        }
        let peer = UpstreamPeer {
            template,
            host: up.host.clone(),
            port: up.port,
            resolved: ArcSwapOption::empty(),
        };
        if let Ok(ip) = up.host.parse::<IpAddr>() {
            peer.set_address(SocketAddr::new(ip, up.port));
        }
        Ok(peer)
    }

    /// The peer to connect to, if its address is known. Lock-free.
    pub fn current(&self) -> Option<Arc<HttpPeer>> {
        self.resolved.load_full()
    }

    /// Whether the address comes from DNS (and so wants refreshing).
    pub fn is_dns(&self) -> bool {
        self.host.parse::<IpAddr>().is_err()
    }

    /// Resolves the host name now and keeps the first address.
    pub async fn resolve(&self) -> std::io::Result<Arc<HttpPeer>> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{} has no address", self.host)))?;
        Ok(self.set_address(addr))
    }

    /// Resolves synchronously; for loopback names, where it cannot wait on the network.
    pub fn resolve_blocking(&self) -> std::io::Result<SocketAddr> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{} has no address", self.host)))?;
        self.set_address(addr);
        Ok(addr)
    }

    fn set_address(&self, addr: SocketAddr) -> Arc<HttpPeer> {
        if let Some(current) = self.resolved.load_full() {
            if current._address == addr.into() {
                return current; // unchanged: keep the same peer
            }
        }
        let mut peer = self.template.clone();
        peer._address = addr.into();
        let peer = Arc::new(peer);
        self.resolved.store(Some(peer.clone()));
        peer
    }
}

fn load_cas(path: &std::path::Path, at: &str) -> Result<Vec<WrappedX509>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(at, format!("cannot read {}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(at, format!("{}: not a PEM file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            at,
            format!("{}: holds no certificate", path.display()),
        ));
    }
    certs
        .into_iter()
        .map(|der| {
            // pingora's `parse_x509` panics on a malformed certificate: check first.
            if x509_parser::parse_x509_certificate(&der).is_err() {
                return Err(ConfigError::new(
                    at,
                    format!(
                        "{}: holds a certificate that does not parse",
                        path.display()
                    ),
                ));
            }
            Ok(WrappedX509::new(
                der.to_vec(),
                pingora::utils::tls::parse_x509,
            ))
        })
        .collect()
}

//! One pre-built `HttpPeer` per route, made when a snapshot is built, so that the request
//! path only clones it: DNS, CA files and timeouts are settled at load time.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::WrappedX509;

use crate::config::{ConfigError, Route};

/// Resolves the upstream's address. Done once per snapshot: a DNS change is picked up on
/// the next reload.
pub fn resolve(route: &Route, at: &str) -> Result<SocketAddr, ConfigError> {
    let up = &route.upstream;
    (up.host.as_str(), up.port)
        .to_socket_addrs()
        .map_err(|e| ConfigError::new(at, format!("cannot resolve `{}`: {e}", up.host)))?
        .next()
        .ok_or_else(|| ConfigError::new(at, format!("`{}` resolves to no address", up.host)))
}

pub fn build(route: &Route, addr: SocketAddr, at: &str) -> Result<HttpPeer, ConfigError> {
    let up = &route.upstream;
    let mut peer = HttpPeer::new(addr, up.tls, up.sni.clone());
    let opts = &mut peer.options;
    opts.connection_timeout = Some(route.timeouts.connect);
    opts.total_connection_timeout = Some(route.timeouts.connect);
    opts.idle_timeout = Some(route.timeouts.idle);
    // No read or write timeout unless configured: SSE and streamable HTTP responses may be
    // silent for minutes and must not be cut.
    opts.read_timeout = route.timeouts.read;
    if let Some(ca) = &up.ca_file {
        opts.ca = Some(Arc::from(load_cas(ca, at)?.into_boxed_slice()));
    }
    Ok(peer)
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

//! The load test's floor for mcpgate: Pingora as a bare HTTP/1 reverse proxy, with the
//! gateway's runtime and listener settings but no routing, auth, metrics or header rewriting.
//! What mcpgate costs on top of Pingora is the gap between this and its `auth: none` route.
//!
//! Usage: `bare_proxy <listen addr> <upstream addr> [threads]`, e.g.
//! `bare_proxy 127.0.0.1:18085 127.0.0.1:18081` (one thread, as the load test's gateway).

use async_trait::async_trait;
use mcpgate::server::{plain_listener, proxy_conf};
use pingora::prelude::*;

struct Bare {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(Ok(upstream))) = (args.next(), args.next().map(|a| a.parse())) else {
        eprintln!(
            "usage: bare_proxy <listen addr> <upstream addr, e.g. 127.0.0.1:18081> [threads]"
        );
        std::process::exit(2);
    };
    let Ok(threads) = args.next().map_or(Ok(1), |t| t.parse::<usize>()) else {
        eprintln!("bare_proxy: the thread count must be a number");
        std::process::exit(2);
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), proxy_conf(threads));
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    proxy.add_listener(plain_listener(&listen));
    server.add_service(proxy);
    server.run_forever();
}

//! File model → runtime model. Every check names the key path it failed on.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::fields::{duration, existing_file};
use super::file::{
    Command, ConnectionsFile, FileConfig, OneOrMany, RouteFile, ServerFile, SpawnFile,
};
use super::{
    parse_duration, Auth, ClientDocuments, Config, ConfigError, ConnectionLimits, ForwardedPolicy,
    ProviderConfig, Route, ServerSettings, ServiceConfig, Spawn, Timeouts, TlsConfig, Upstream,
};
use super::{validate_auth, validate_mcp, validate_providers};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn validate(file: FileConfig, base: &Path) -> Result<Config, ConfigError> {
    let listen = match file.listen {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(list) => list,
    };
    if listen.is_empty() {
        return Err(ConfigError::new("listen", "needs at least one address"));
    }
    let listen = listen
        .iter()
        .enumerate()
        .map(|(i, a)| socket_addr(a, &format!("listen[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;

    let tls = file
        .tls
        .map(|t| {
            Ok::<_, ConfigError>(TlsConfig {
                cert: existing_file(base, &t.cert, "tls.cert")?,
                key: existing_file(base, &t.key, "tls.key")?,
            })
        })
        .transpose()?;

    let public_url = match file.public_url {
        Some(u) => public_url(&u)?,
        None => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}", listen[0])
        }
    };
    let metrics = file
        .metrics
        .map(|m| socket_addr(&m, "metrics"))
        .transpose()?;
    let server = server_settings(file.server)?;
    let connections = connection_limits(file.connections)?;
    let state = validate_providers::state(file.state)?;
    let refresh_grace = duration(
        file.refresh_grace.as_deref(),
        Duration::from_secs(30),
        "refresh_grace",
    )?;
    let forwarded = match file.forwarded.as_deref() {
        None | Some("replace") => ForwardedPolicy::Replace,
        Some("append") => ForwardedPolicy::Append,
        Some(other) => {
            return Err(ConfigError::new(
                "forwarded",
                format!("`{other}` is not `replace` (at the edge) or `append` (behind a proxy)"),
            ))
        }
    };
    let seal_keys = validate_providers::seal_keys(file.seal_key, file.seal_keys_previous)?;
    let mut providers = validate_providers::providers(file.providers, base)?;
    let oauth_services = validate_providers::services(file.oauth_services, base)?;

    if file.routes.is_empty() {
        return Err(ConfigError::new("routes", "needs at least one route"));
    }
    let mut seen: HashMap<(Option<String>, String), usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut spawned: HashMap<(String, u16), (usize, Vec<String>)> = HashMap::new();
    let mut routes = Vec::with_capacity(file.routes.len());
    let own_origins = own_origins(&public_url, &listen, tls.is_some());
    for (i, raw) in file.routes.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        let mut route = route(raw, &at, base, &public_url, &mut providers, &oauth_services)?;
        for origin in &own_origins {
            if !route.cors_origins.contains(origin) {
                route.cors_origins.push(origin.clone());
            }
        }
        let key = (route.host.clone(), route.prefix.clone());
        if let Some(first) = seen.insert(key, i) {
            return Err(ConfigError::new(
                format!("{at}.prefix"),
                format!("`{}` is already routed by routes[{first}]", route.prefix),
            ));
        }
        if let Some(first) = names.insert(route.name.clone(), i) {
            // Names label metrics, and registrations, codes and tokens are bound to them.
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("`{}` is already the name of routes[{first}]", route.name),
            ));
        }
        if let Some(spawn) = &route.spawn {
            let addr = (route.upstream.host.clone(), route.upstream.port);
            match spawned.get(&addr) {
                Some((first, argv)) if *argv != spawn.argv => {
                    return Err(ConfigError::new(
                        format!("{at}.spawn.command"),
                        format!("routes[{first}] spawns another command on the same port"),
                    ))
                }
                Some(_) => {}
                None => {
                    spawned.insert(addr, (i, spawn.argv.clone()));
                }
            }
        }
        routes.push(route);
    }

    let default_route = file
        .default_route
        .map(|name| {
            routes
                .iter()
                .position(|r| r.name == name && !matches!(r.auth, Auth::None))
                .ok_or_else(|| {
                    ConfigError::new(
                        "default_route",
                        format!("no protected route is named `{name}`"),
                    )
                })
        })
        .transpose()?;
    let client_metadata_documents = ClientDocuments {
        allow_private_addresses: file.client_metadata_documents.allow_private_addresses,
        ca_file: file
            .client_metadata_documents
            .ca_file
            .map(|f| existing_file(base, &f, "client_metadata_documents.ca_file"))
            .transpose()?,
    };
    let local_hosts = local_hosts(&public_url, &listen, &routes);
    Ok(Config {
        local_hosts,
        client_metadata_documents,
        default_route,
        listen,
        public_url,
        tls,
        metrics,
        access_log: file.access_log.unwrap_or(true),
        audit_log: file.audit_log.map(|p| base.join(p)),
        server,
        connections,
        forwarded,
        state,
        refresh_grace,
        seal_keys,
        providers,
        oauth_services,
        routes,
    })
}

/// The gateway's own origins, which every route allows whatever its `cors` says: a page
/// on the gateway's origin is not a foreign site. The public URL's, and each loopback
/// listener's under its address and `localhost`.
fn own_origins(public_url: &str, listen: &[SocketAddr], tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let public = Url::parse(public_url).map(|u| u.origin().ascii_serialization());
    let loopback = listen.iter().filter(|a| a.ip().is_loopback());
    let local = loopback.flat_map(|a| {
        [
            format!("{scheme}://{a}"),
            format!("{scheme}://localhost:{}", a.port()),
        ]
    });
    let mut origins: Vec<String> = public.into_iter().chain(local).collect();
    origins.dedup();
    origins
}

/// With every listener on loopback, the host names a request may carry: the loopback
/// names, the public URL's host and the routes' hosts. A browser page on another name that
/// resolves to 127.0.0.1 (DNS rebinding) then reaches nothing, as the MCP spec asks of
/// local servers; the upstream, which is told the gateway's host, could no longer tell.
fn local_hosts(public_url: &str, listen: &[SocketAddr], routes: &[Route]) -> Option<Vec<String>> {
    if !listen.iter().all(|a| a.ip().is_loopback()) {
        return None;
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
    let public = Url::parse(public_url).ok();
    let public = public
        .as_ref()
        .and_then(Url::host_str)
        .map(str::to_ascii_lowercase);
    let listeners = listen.iter().map(|a| match a {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    });
    let named = routes.iter().filter_map(|r| r.host.clone());
    for host in public.into_iter().chain(listeners).chain(named) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Some(hosts)
}

fn socket_addr(s: &str, at: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::new(at, format!("`{s}` is not an address like 127.0.0.1:8080")))
}

fn public_url(s: &str) -> Result<String, ConfigError> {
    let url =
        Url::parse(s).map_err(|e| ConfigError::new("public_url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            "public_url",
            "must be an http(s) URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "public_url",
            "must not have a query or fragment",
        ));
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn server_settings(s: ServerFile) -> Result<ServerSettings, ConfigError> {
    let threads = s.threads.unwrap_or(1);
    if threads == 0 {
        return Err(ConfigError::new("server.threads", "must be at least 1"));
    }
    Ok(ServerSettings {
        threads,
        grace_period: duration(
            s.grace_period.as_deref(),
            Duration::from_secs(5),
            "server.grace_period",
        )?,
        graceful_shutdown_timeout: duration(
            s.graceful_shutdown_timeout.as_deref(),
            Duration::from_secs(10),
            "server.graceful_shutdown_timeout",
        )?,
        pid_file: s.pid_file.unwrap_or_else(|| "/tmp/mcpgate.pid".into()),
        upgrade_sock: s
            .upgrade_sock
            .unwrap_or_else(|| "/tmp/mcpgate_upgrade.sock".into()),
        watch_config: s.watch_config.unwrap_or(true),
    })
}

fn connection_limits(c: ConnectionsFile) -> Result<ConnectionLimits, ConfigError> {
    if c.max == Some(0) {
        return Err(ConfigError::new("connections.max", "must be at least 1"));
    }
    let nonzero = |value: Option<&str>, default: u64, at: &str| {
        let d = duration(value, Duration::from_secs(default), at)?;
        if d.is_zero() {
            return Err(ConfigError::new(at, "must be longer than zero"));
        }
        Ok(d)
    };
    Ok(ConnectionLimits {
        max: c.max,
        per_address: c.per_address.unwrap_or(1024),
        header_timeout: nonzero(
            c.header_timeout.as_deref(),
            10,
            "connections.header_timeout",
        )?,
        keepalive_timeout: nonzero(
            c.keepalive_timeout.as_deref(),
            60,
            "connections.keepalive_timeout",
        )?,
    })
}

fn route(
    raw: RouteFile,
    at: &str,
    base: &Path,
    public_url: &str,
    providers: &mut BTreeMap<String, ProviderConfig>,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<Route, ConfigError> {
    let prefix = prefix(&raw.prefix, &format!("{at}.prefix"))?;
    let host = raw
        .host
        .map(|h| {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || h.contains(['/', ':', ' ']) {
                Err(ConfigError::new(
                    format!("{at}.host"),
                    format!("`{h}` is not a host name (no scheme, port or path)"),
                ))
            } else {
                Ok(h)
            }
        })
        .transpose()?;
    let mut upstream = upstream(&raw.upstream, &format!("{at}.upstream"))?;
    if let Some(sni) = raw.sni {
        upstream.sni = sni;
    }
    if let Some(ca) = raw.ca_file {
        if !upstream.tls {
            return Err(ConfigError::new(
                format!("{at}.ca_file"),
                "only applies to an https upstream",
            ));
        }
        upstream.ca_file = Some(existing_file(base, &ca, &format!("{at}.ca_file"))?);
    }
    let timeouts = Timeouts {
        connect: duration(
            raw.connect_timeout.as_deref(),
            DEFAULT_CONNECT_TIMEOUT,
            &format!("{at}.connect_timeout"),
        )?,
        idle: duration(
            raw.idle_timeout.as_deref(),
            DEFAULT_IDLE_TIMEOUT,
            &format!("{at}.idle_timeout"),
        )?,
        read: raw
            .read_timeout
            .as_deref()
            .map(|s| {
                parse_duration(s).map_err(|e| ConfigError::new(format!("{at}.read_timeout"), e))
            })
            .transpose()?,
    };
    let resource = match prefix.as_str() {
        "/" => public_url.to_string(),
        p => format!("{public_url}{p}"),
    };
    let auth = validate_auth::auth(
        raw.auth,
        &format!("{at}.auth"),
        &resource,
        providers,
        services,
    )?;
    let upstream_auth = validate_auth::upstream_auth(
        raw.upstream_auth,
        &auth,
        &format!("{at}.upstream_auth"),
        providers,
    )?;
    let cors_origins = validate_auth::cors(raw.cors, &format!("{at}.cors"))?;
    let mcp = raw
        .mcp
        .map(|m| validate_mcp::mcp(m, &auth, &format!("{at}.mcp")))
        .transpose()?;
    let spawn = raw
        .spawn
        .map(|s| spawn(s, &upstream, &format!("{at}.spawn"), base))
        .transpose()?;
    let name = raw.name.unwrap_or_else(|| match &host {
        Some(h) => format!("{h}{prefix}"),
        None => prefix.clone(),
    });
    let display_name = raw
        .display_name
        .map(|d| {
            let d = d.trim().to_string();
            if d.is_empty() || d.chars().count() > 80 || d.chars().any(char::is_control) {
                Err(ConfigError::new(
                    format!("{at}.display_name"),
                    "must be 1 to 80 printable characters",
                ))
            } else {
                Ok(d)
            }
        })
        .transpose()?;
    Ok(Route {
        name,
        display_name,
        host,
        prefix,
        upstream,
        strip_prefix: raw.strip_prefix.unwrap_or(true),
        timeouts,
        auth,
        upstream_auth,
        cors_origins,
        spawn,
        mcp,
    })
}

/// Normalises a route prefix: must start with `/`; a trailing `/` is dropped so that
/// `/mcp` and `/mcp/` name the same route.
fn prefix(p: &str, at: &str) -> Result<String, ConfigError> {
    if !p.starts_with('/') {
        return Err(ConfigError::new(at, format!("`{p}` must start with /")));
    }
    if p.contains(['?', '#', ' ']) || p.contains("//") {
        return Err(ConfigError::new(
            at,
            format!("`{p}` must be a plain path (no query, fragment, spaces or //)"),
        ));
    }
    let trimmed = p.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

fn upstream(s: &str, at: &str) -> Result<Upstream, ConfigError> {
    let url = Url::parse(s).map_err(|e| ConfigError::new(at, format!("not a URL: {e}")))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(ConfigError::new(
                at,
                format!("scheme `{other}` is not supported (use http or https)"),
            ))
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(ConfigError::new(at, "the URL has no host")),
    };
    let credentials = !url.username().is_empty() || url.password().is_some();
    if url.query().is_some() || url.fragment().is_some() || credentials {
        return Err(ConfigError::new(
            at,
            "must not carry a query, fragment or credentials (use a header for credentials)",
        ));
    }
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
        None => url.host_str().unwrap_or(&host).to_string(),
    };
    Ok(Upstream {
        url: s.to_string(),
        tls,
        sni: host.clone(),
        host,
        port,
        base_path: url.path().trim_end_matches('/').to_string(),
        authority,
        ca_file: None,
    })
}

fn spawn(s: SpawnFile, upstream: &Upstream, at: &str, base: &Path) -> Result<Spawn, ConfigError> {
    let argv = match s.command {
        Command::Shell(cmd) if !cmd.trim().is_empty() => vec!["sh".into(), "-c".into(), cmd],
        Command::Argv(argv) if !argv.is_empty() && !argv[0].is_empty() => argv,
        _ => return Err(ConfigError::new(format!("{at}.command"), "is empty")),
    };
    if upstream.tls {
        return Err(ConfigError::new(
            at,
            "a spawned upstream is reached over plain http on loopback",
        ));
    }
    let loopback = upstream.host == "localhost"
        || upstream
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(ConfigError::new(
            at,
            format!(
                "the upstream of a spawned command must be on loopback, not `{}`",
                upstream.host
            ),
        ));
    }
    let cwd = s
        .cwd
        .map(|c| {
            let p = base.join(c);
            if p.is_dir() {
                Ok(p)
            } else {
                Err(ConfigError::new(
                    format!("{at}.cwd"),
                    format!("no such directory: {}", p.display()),
                ))
            }
        })
        .transpose()?;
    Ok(Spawn {
        argv,
        env: s.env,
        cwd,
        ready_timeout: duration(
            s.ready_timeout.as_deref(),
            DEFAULT_READY_TIMEOUT,
            &format!("{at}.ready_timeout"),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    fn load(yaml: &str) -> Result<Config, String> {
        Config::from_yaml(yaml, Path::new("."), &|n| {
            (n == "PORT").then(|| "9001".into())
        })
        .map_err(|e| e.to_string())
    }

    const OK: &str = "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /mcp/a/\n    upstream: http://127.0.0.1:${PORT}/mcp/\n    auth: none\n";

    #[test]
    fn loads_a_minimal_file() {
        let c = load(OK).unwrap();
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        let r = &c.routes[0];
        assert_eq!(r.prefix, "/mcp/a");
        assert_eq!(r.name, "/mcp/a");
        assert_eq!(r.upstream.port, 9001);
        assert_eq!(r.upstream.base_path, "/mcp");
        assert_eq!(r.upstream.authority, "127.0.0.1:9001");
        assert_eq!(r.timeouts.read, None);
    }

    #[test]
    fn errors_name_the_key_path() {
        let cases = [
            (
                OK.replace("http://", "ftp://"),
                "routes[0].upstream: scheme `ftp` is not supported",
            ),
            (
                OK.replace("http://127.0.0.1:${PORT}/mcp/", "not a url"),
                "routes[0].upstream: not a URL",
            ),
            (
                OK.replace("    auth: none\n", ""),
                "routes[0]: missing field `auth`",
            ),
            (
                OK.replace("auth: none", "auth: maybe"),
                "routes[0].auth: unknown variant `maybe`",
            ),
            (
                OK.replace("auth: none", "auth: none\n    colour: red"),
                "routes[0].colour: unknown field `colour`, expected one of",
            ),
            (
                OK.replace("/mcp/a/", "mcp"),
                "routes[0].prefix: `mcp` must start with /",
            ),
            (
                OK.replace("${PORT}", "${NOPE}"),
                "routes[0].upstream: environment variable NOPE is not set",
            ),
            (
                OK.replace("auth: none", "auth: none\n    connect_timeout: \"5\""),
                "routes[0].connect_timeout: `5` has no unit",
            ),
            (
                OK.replace("127.0.0.1:8080", "nowhere"),
                "listen[0]: `nowhere` is not an address",
            ),
            (
                format!("{OK}  - prefix: /mcp/a\n    upstream: http://h\n    auth: none\n"),
                "routes[1].prefix: `/mcp/a` is already routed by routes[0]",
            ),
            (
                format!("{OK}    name: x\n  - prefix: /b\n    upstream: http://h\n    auth: none\n    name: x\n"),
                "routes[1].name: `x` is already the name of routes[0]",
            ),
            ("listen: [\n".to_string(), "line "),
        ];
        for (yaml, want) in cases {
            let err = load(&yaml).unwrap_err();
            assert!(err.starts_with(want), "want `{want}`, got `{err}`");
        }
    }

    #[test]
    fn an_upstream_url_with_credentials_is_refused_even_a_password_alone() {
        // Upstream URLs are logged at start: a password in one would be too.
        for url in ["http://user:pw@127.0.0.1:1/", "http://:pw@127.0.0.1:1/"] {
            let yaml = OK.replace("http://127.0.0.1:${PORT}/mcp/", url);
            let err = load(&yaml).unwrap_err();
            assert!(err.contains("routes[0].upstream: must not carry"), "{err}");
        }
    }

    #[test]
    fn spawned_upstreams_must_be_loopback() {
        let yaml =
            OK.replace("127.0.0.1:${PORT}", "example.com") + "    spawn: { command: \"true\" }\n";
        assert!(load(&yaml).unwrap_err().contains("must be on loopback"));
        let yaml =
            OK.to_string() + "    spawn: { command: [node, server.js], env: { PORT: \"9001\" } }\n";
        assert_eq!(
            load(&yaml).unwrap().routes[0].spawn.as_ref().unwrap().argv,
            ["node", "server.js"]
        );
    }
}

//! The host + longest-path-prefix table.
//!
//! A lookup walks the request path's own `/` boundaries from the longest down and probes a
//! hash map at each, so its cost depends on the path's depth, not on how many routes exist,
//! and it allocates nothing.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::Route;

#[derive(Debug, Default)]
pub struct Router {
    by_host: HashMap<String, PrefixTable>,
    any_host: PrefixTable,
}

#[derive(Debug, Default)]
struct PrefixTable {
    prefixes: HashMap<String, usize>,
    root: Option<usize>,
}

/// A matched route and what is left of the path after its prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct Match<'a> {
    pub route: usize,
    pub rest: &'a str,
}

impl PrefixTable {
    fn insert(&mut self, prefix: &str, index: usize) {
        if prefix == "/" {
            self.root = Some(index);
        } else {
            self.prefixes.insert(prefix.to_string(), index);
        }
    }

    fn lookup<'a>(&self, path: &'a str) -> Option<Match<'a>> {
        let mut candidate = path;
        loop {
            if let Some(&route) = self.prefixes.get(candidate) {
                return Some(Match {
                    route,
                    rest: &path[candidate.len()..],
                });
            }
            match candidate.rfind('/') {
                Some(i) if i > 0 => candidate = &candidate[..i],
                _ => break,
            }
        }
        self.root.map(|route| Match { route, rest: path })
    }
}

impl Router {
    /// Routes are indexed by their position in `routes`.
    pub fn new(routes: &[Route]) -> Router {
        let mut router = Router::default();
        for (i, r) in routes.iter().enumerate() {
            match &r.host {
                Some(h) => router
                    .by_host
                    .entry(h.clone())
                    .or_default()
                    .insert(&r.prefix, i),
                None => router.any_host.insert(&r.prefix, i),
            }
        }
        router
    }

    /// `host` as the client sent it (any case, maybe with a port); `path` without the query.
    /// Host-specific routes win over any-host routes.
    pub fn lookup<'a>(&self, host: Option<&str>, path: &'a str) -> Option<Match<'a>> {
        if !self.by_host.is_empty() {
            if let Some(table) = host.and_then(|h| self.by_host.get(normalize_host(h).as_ref())) {
                if let Some(m) = table.lookup(path) {
                    return Some(m);
                }
            }
        }
        self.any_host.lookup(path)
    }
}

/// Lower-case, without the port; borrows unless the client sent upper case.
fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        match host.split_once(':') {
            Some((h, port)) if !port.contains(':') => h,
            _ => host,
        }
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Whether `path` is free of dot segments (`/./`, `/../`), backslashes and encoded dots or
/// separators. Routing matches prefixes on the raw path; an upstream that normalises
/// `/open/../private` would otherwise serve a protected path through an open route.
pub fn is_plain_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let encoded = bytes.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'e') | (b'2', b'f') | (b'5', b'c')
            )
    });
    !encoded && !path.contains('\\') && !path.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_paths_an_upstream_could_normalise_elsewhere() {
        for bad in [
            "/open/../private",
            "/a/./b",
            "/a/..",
            "/a/%2e%2E/b",
            "/a%2Fb",
            "/a\\b",
            "/a%5cb",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
        for good in ["/", "/mcp", "/mcp/a.b/c..d", "/mcp/%41"] {
            assert!(is_plain_path(good), "{good}");
        }
    }

    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn router(routes: &[(&str, Option<&str>)]) -> Router {
        let mut yaml = String::from("listen: 127.0.0.1:1\nroutes:\n");
        for (prefix, host) in routes {
            yaml.push_str(&format!(
                "  - prefix: {prefix}\n    upstream: http://127.0.0.1:2\n    auth: none\n"
            ));
            if let Some(h) = host {
                yaml.push_str(&format!("    host: {h}\n"));
            }
        }
        Router::new(
            &Config::from_yaml(&yaml, Path::new("."), &|_| None)
                .unwrap()
                .routes,
        )
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let r = router(&[("/mcp", None), ("/mcp/a", None), ("/mcp/a/b", None)]);
        let m = |p| r.lookup(None, p).map(|m| (m.route, m.rest));
        assert_eq!(m("/mcp/a/b/c"), Some((2, "/c")));
        assert_eq!(m("/mcp/a/bc"), Some((1, "/bc")));
        assert_eq!(m("/mcp/a"), Some((1, "")));
        assert_eq!(m("/mcp/a/"), Some((1, "/")));
        assert_eq!(m("/mcpx"), None);
        assert_eq!(m("/"), None);
    }

    #[test]
    fn root_catches_the_rest_and_hosts_win() {
        let r = router(&[("/", None), ("/mcp", Some("a.example")), ("/mcp", None)]);
        assert_eq!(r.lookup(Some("A.Example:443"), "/mcp/x").unwrap().route, 1);
        assert_eq!(r.lookup(Some("b.example"), "/mcp/x").unwrap().route, 2);
        assert_eq!(
            r.lookup(Some("a.example"), "/other").unwrap(),
            Match {
                route: 0,
                rest: "/other"
            }
        );
    }

    #[test]
    fn host_normalization() {
        assert_eq!(normalize_host("Example.COM:8080"), "example.com");
        assert_eq!(normalize_host("example.com"), "example.com");
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
    }

    #[test]
    fn a_thousand_routes() {
        let prefixes: Vec<String> = (0..1000).map(|i| format!("/t{i}/mcp")).collect();
        let r = router(
            &prefixes
                .iter()
                .map(|p| (p.as_str(), None))
                .collect::<Vec<_>>(),
        );
        for (i, p) in prefixes.iter().enumerate() {
            assert_eq!(r.lookup(None, &format!("{p}/x")).unwrap().route, i);
        }
    }
}

//! The host + longest-path-prefix table.
//!
//! A lookup walks the request path's own `/` boundaries from the longest down and probes a
//! hash map at each, so its cost depends on the path's depth, not on how many routes exist,
//! and it allocates nothing.

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

    /// `host` as [`crate::target::host`] normalised it (lower case, no port); `path` in its
    /// canonical form, without the query. Host-specific routes win over any-host routes.
    pub fn lookup<'a>(&self, host: Option<&str>, path: &'a str) -> Option<Match<'a>> {
        if !self.by_host.is_empty() {
            if let Some(table) = host.and_then(|h| self.by_host.get(h)) {
                if let Some(m) = table.lookup(path) {
                    return Some(m);
                }
            }
        }
        self.any_host.lookup(path)
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(r.lookup(Some("a.example"), "/mcp/x").unwrap().route, 1);
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

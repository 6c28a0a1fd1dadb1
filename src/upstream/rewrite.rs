//! How a route turns the request's target into the upstream's: its prefix stripped (unless
//! `strip_prefix: false`) and the upstream's base path put in front, planned once per
//! snapshot.

use http::Uri;
use pingora::prelude::*;
use pingora::ErrorType;

use crate::config::Route;

pub struct Rewrite {
    /// Bytes of the request path to drop: the prefix, or nothing.
    strip: usize,
    /// What the rest is appended to; empty for the upstream's root.
    base: String,
}

impl Rewrite {
    pub fn new(route: &Route) -> Rewrite {
        Rewrite {
            strip: if route.strip_prefix && route.prefix != "/" {
                route.prefix.len()
            } else {
                0
            },
            base: route.upstream.base_path.clone(),
        }
    }

    /// The upstream's URI for a request to `uri` routed on `canonical` (when the client's
    /// path was not canonical, or not in origin form); the query as sent. `None`: `uri`
    /// unchanged.
    pub fn uri(&self, canonical: Option<&str>, uri: &Uri) -> Result<Option<Uri>> {
        let path = canonical.unwrap_or(uri.path());
        if self.base.is_empty() && self.strip == 0 && canonical.is_none() {
            return Ok(None);
        }
        let rest = path.get(self.strip..).unwrap_or("");
        let query = uri.query();
        let mut target =
            String::with_capacity(self.base.len() + rest.len() + query.map_or(0, |q| q.len() + 2));
        target.push_str(&self.base);
        target.push_str(rest);
        if target.is_empty() {
            target.push('/');
        }
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        Uri::try_from(target).map(Some).or_err(
            ErrorType::InvalidHTTPHeader,
            "rewritten upstream path is not a valid URI",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn rewrite(prefix: &str, upstream: &str, strip: bool) -> Rewrite {
        let yaml = format!(
            "listen: 127.0.0.1:1\nroutes:\n  - prefix: {prefix}\n    upstream: {upstream}\n    strip_prefix: {strip}\n    auth: none\n"
        );
        let route = Config::from_yaml(&yaml, Path::new("."), &|_| None)
            .unwrap()
            .routes
            .remove(0);
        Rewrite::new(&route)
    }

    fn apply(r: &Rewrite, canonical: Option<&str>, uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        r.uri(canonical, &uri)
            .unwrap()
            .map_or(uri.to_string(), |u| u.to_string())
    }

    #[test]
    fn rewrites_paths() {
        let r = rewrite("/mcp/a", "http://127.0.0.1:2/mcp", true);
        assert_eq!(apply(&r, None, "/mcp/a"), "/mcp");
        assert_eq!(apply(&r, None, "/mcp/a/x?y=1"), "/mcp/x?y=1");
        assert_eq!(apply(&r, Some("/mcp/a/x"), "/mcp/%61/x?y=1"), "/mcp/x?y=1");
        let r = rewrite("/mcp/a", "http://127.0.0.1:2", true);
        assert_eq!(apply(&r, None, "/mcp/a"), "/");
        assert_eq!(apply(&r, None, "/mcp/a?q"), "/?q");
        let r = rewrite("/mcp/a", "http://127.0.0.1:2", false);
        assert_eq!(apply(&r, None, "/mcp/a/x?q"), "/mcp/a/x?q");
        assert_eq!(apply(&r, Some("/mcp/a/x"), "//mcp/a/x?q"), "/mcp/a/x?q");
        let r = rewrite("/", "http://127.0.0.1:2/base", true);
        assert_eq!(apply(&r, None, "/x"), "/base/x");
    }
}

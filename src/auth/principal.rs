//! Who a verified token speaks for: its claims, with the few the gateway reads on every
//! request (subject, scopes, audiences, expiry) pulled out once, when the token is verified.

use serde_json::{Map, Value};

pub struct Principal {
    pub subject: String,
    /// From `scope` (space-separated) or `scp` (array or string, as Entra and Okta write it).
    pub scopes: Vec<String>,
    /// `aud`, a string or an array.
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    claims: Map<String, Value>,
}

impl Principal {
    pub fn from_claims(claims: Map<String, Value>) -> Principal {
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut scopes = strings(claims.get("scope"));
        if scopes.is_empty() {
            scopes = strings(claims.get("scp"));
        }
        let audiences = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            other => strings(other),
        };
        Principal {
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            scopes,
            audiences,
            expires_at: claims.get("exp").and_then(Value::as_u64),
            claims,
        }
    }

    /// A claim by path: `email`, or `realm_access.roles` for a nested one.
    pub fn claim(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut value = self.claims.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }

    pub fn email(&self) -> Option<&str> {
        self.claim("email").and_then(Value::as_str)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the claim at `path` is `value` or, for an array claim, contains it.
    pub fn claim_has(&self, path: &str, value: &Value) -> bool {
        match self.claim(path) {
            Some(Value::Array(items)) if !value.is_array() => items.contains(value),
            Some(v) => v == value,
            None => false,
        }
    }

    /// The strings at `path` (one string, or an array of them).
    pub fn claim_strings<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a str> + 'a {
        let value = self.claim(path);
        let one = value.and_then(Value::as_str);
        let many = value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        one.into_iter().chain(many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Principal {
        Principal::from_claims(v.as_object().unwrap().clone())
    }

    #[test]
    fn reads_the_usual_claim_shapes() {
        let a = p(json!({"sub":"u1","scope":"a b","aud":"x","exp":5,
            "realm_access":{"roles":["admin","dev"]},"groups":"g1"}));
        assert_eq!((a.subject.as_str(), a.expires_at), ("u1", Some(5)));
        assert_eq!(a.scopes, ["a", "b"]);
        assert_eq!(a.audiences, ["x"]);
        assert!(a.has_scope("b") && !a.has_scope("c"));
        assert_eq!(
            a.claim_strings("realm_access.roles").collect::<Vec<_>>(),
            ["admin", "dev"]
        );
        assert_eq!(a.claim_strings("groups").collect::<Vec<_>>(), ["g1"]);
        assert!(a.claim_has("realm_access.roles", &json!("dev")));
        let b = p(json!({"scp":["r","w"],"aud":["x","y"]}));
        assert_eq!(b.scopes, ["r", "w"]);
        assert_eq!(b.audiences, ["x", "y"]);
        assert_eq!(b.subject, "");
    }
}

//! What the authorization server reads of a request besides its path: query and form
//! parameters, cookies, and HTTP Basic client credentials.

use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

/// Query or form parameters; a repeated parameter makes the request invalid (RFC 6749 §3.1).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The value of `name`: `None` when it is absent, empty or repeated.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (Some((_, v)), None) if !v.is_empty() => Some(v),
            _ => None,
        }
    }
}

/// The value of the cookie `name`.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// `client_id` and `client_secret` from HTTP Basic (form-encoded first, RFC 6749 §2.3.1).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_repeats() {
        let p = Params::parse(b"a=1&b=2&b=3&c=");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), None);
    }

    #[test]
    fn cookies_and_basic_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; mcpgate-consent=xyz".parse().unwrap());
        assert_eq!(cookie_value(&headers, "mcpgate-consent"), Some("xyz"));
        assert_eq!(cookie_value(&headers, "mcpgate"), None);
        // "id%3A1:s%20ecret", form-encoded before joining.
        let basic = base64::engine::general_purpose::STANDARD.encode("id%3A1:s%20ecret");
        headers.insert(AUTHORIZATION, format!("Basic {basic}").parse().unwrap());
        assert_eq!(
            basic_credentials(&headers),
            Some(("id:1".to_string(), "s ecret".to_string()))
        );
    }
}

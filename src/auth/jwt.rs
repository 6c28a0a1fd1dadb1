//! Compact JWS parsing and claim checks (RFC 7515, 7519, and the RFC 8725 best practices).
//! The header is read first and only to find the key; the signature is checked with that
//! key's own algorithm before a byte of the payload is trusted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::jwk::{Alg, Key};
use super::principal::Principal;
use super::Reject;

/// Longer tokens are refused before any decoding: no IdP issues them, and parsing one
/// would cost work an attacker controls.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A token split and its header decoded; the signature is not yet checked.
pub struct Parsed<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The JOSE `typ` header, as sent.
    typ: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    // Keys the token names or carries itself: never trusted, and a token that has them is
    // refused, as is one that demands extensions we do not implement (`crit`).
    jku: Option<IgnoredAny>,
    x5u: Option<IgnoredAny>,
    jwk: Option<IgnoredAny>,
    x5c: Option<IgnoredAny>,
    crit: Option<IgnoredAny>,
}

/// Whether `token` has the shape of a JWS (three base64url parts), to choose between local
/// verification and introspection. Opaque tokens rarely contain two dots.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

pub fn parse(token: &str) -> Result<Parsed<'_>, Reject> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Reject::TooLarge);
    }
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed);
    };
    if signature.contains('.') {
        return Err(Reject::Malformed);
    }
    let header_json = b64(header)?;
    let h: Header = serde_json::from_slice(&header_json).map_err(|_| Reject::Malformed)?;
    if h.jku.is_some() || h.x5u.is_some() || h.jwk.is_some() || h.x5c.is_some() {
        return Err(Reject::KeyInHeader);
    }
    if h.crit.is_some() {
        return Err(Reject::UnsupportedHeader);
    }
    let alg = Alg::from_name(&h.alg).ok_or(Reject::UnsupportedAlg)?;
    Ok(Parsed {
        alg,
        kid: h.kid,
        typ: h.typ,
        signing_input: &token[..header.len() + 1 + payload.len()],
        payload,
        signature,
    })
}

impl Parsed<'_> {
    /// Checks the signature with `key` (whose algorithm must be the header's), then decodes
    /// the claims.
    pub fn verify(&self, key: &Key) -> Result<serde_json::Map<String, serde_json::Value>, Reject> {
        if key.alg != self.alg {
            return Err(Reject::AlgMismatch);
        }
        let sig = b64(self.signature)?;
        if !key.verify(self.signing_input.as_bytes(), &sig) {
            return Err(Reject::BadSignature);
        }
        let payload = b64(self.payload)?;
        crate::json::object_with_unique_names(&payload).map_err(|_| Reject::Malformed)
    }

    /// RFC 8725 §3.11 and RFC 9068 §4: the token must be an access token of a type the
    /// provider issues (`accepted`, lower case, without `application/`; `jwt` also admits a
    /// token without `typ`), and not an ID token: unless it is typed `at+jwt`, a token with
    /// an ID token's hashes (`at_hash`, `c_hash`, `s_hash`) or Keycloak's `"typ": "ID"`
    /// claim is refused, so that an ID token whose audience happens to be the route's (the
    /// gateway's own client id, with some IdPs) cannot be used as an access token.
    pub fn check_type(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        accepted: &[String],
    ) -> Result<(), Reject> {
        let typ = self.typ.as_deref().unwrap_or("jwt");
        if !accepted.iter().any(|a| is_media_type(typ, a)) {
            return Err(Reject::WrongTokenType);
        }
        let id_token = ["at_hash", "c_hash", "s_hash"]
            .iter()
            .any(|c| claims.contains_key(*c))
            || claims.get("typ").and_then(|t| t.as_str()) == Some("ID");
        if id_token && !is_media_type(typ, "at+jwt") {
            return Err(Reject::WrongTokenType);
        }
        Ok(())
    }
}

/// RFC 7515 §4.1.9: `typ` is compared without case, and `application/` may be left out.
fn is_media_type(typ: &str, name: &str) -> bool {
    let short = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    short.eq_ignore_ascii_case(name)
}

fn b64(part: &str) -> Result<Vec<u8>, Reject> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Reject::Malformed)
}

/// The checks every verified JWT passes before it is believed: issuer, `aud`, `exp` and
/// the configured required claims,
/// and the time window with `leeway` seconds of clock skew either way.
pub fn check_claims(
    p: &Principal,
    issuer: &str,
    required: &[String],
    now: u64,
    leeway: u64,
) -> Result<(), Reject> {
    if p.claim("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(Reject::WrongIssuer);
    }
    p.check_subject()?;
    // `exp` is always required: a token that never expires is a standing credential.
    let missing = |c: &str| p.claim(c).is_none();
    if missing("aud") || missing("exp") || required.iter().any(|c| missing(c)) {
        return Err(Reject::MissingClaim);
    }
    let time = |name: &str| match p.claim(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(Reject::Malformed),
    };
    if time("exp")?.is_some_and(|exp| now >= exp.saturating_add(leeway)) {
        return Err(Reject::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Reject::NotYetValid);
    }
    if time("iat")?.is_some_and(|iat| iat > now + leeway) {
        return Err(Reject::IssuedInFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode("{}")
        )
    }

    #[test]
    fn refuses_dangerous_headers_before_looking_for_a_key() {
        let cases = [
            (r#"{"alg":"none"}"#, Reject::UnsupportedAlg),
            (r#"{"alg":"HS256"}"#, Reject::UnsupportedAlg),
            (
                r#"{"alg":"RS256","jku":"https://evil"}"#,
                Reject::KeyInHeader,
            ),
            (
                r#"{"alg":"RS256","x5u":"https://evil"}"#,
                Reject::KeyInHeader,
            ),
            (r#"{"alg":"ES256","jwk":{"kty":"EC"}}"#, Reject::KeyInHeader),
            (
                r#"{"alg":"RS256","crit":["b64"]}"#,
                Reject::UnsupportedHeader,
            ),
            (r#"{"kid":"k"}"#, Reject::Malformed),
            ("not json", Reject::Malformed),
        ];
        for (header, want) in cases {
            assert_eq!(parse(&token(header)).err(), Some(want), "{header}");
        }
        let t = token(r#"{"alg":"EdDSA","kid":"k1"}"#);
        let ok = parse(&t).unwrap();
        assert_eq!((ok.alg, ok.kid.as_deref()), (Alg::EdDSA, Some("k1")));
    }

    fn signed(
        header: &str,
        claims: &str,
    ) -> (Parsed<'static>, serde_json::Map<String, serde_json::Value>) {
        let token = Box::leak(token(header).into_boxed_str());
        let claims = serde_json::from_str(claims).unwrap();
        (parse(token).unwrap(), claims)
    }

    #[test]
    fn access_tokens_of_an_accepted_type_pass_and_id_tokens_do_not() {
        let default = ["at+jwt".to_string(), "jwt".to_string()];
        let strict = ["at+jwt".to_string()];
        let access = r#"{"sub":"a","scope":"x"}"#;
        let id = r#"{"sub":"a","at_hash":"x","nonce":"n"}"#;
        for (header, claims, accepted, ok) in [
            (
                r#"{"alg":"RS256","typ":"at+jwt"}"#,
                access,
                &default[..],
                true,
            ),
            (
                r#"{"alg":"RS256","typ":"application/AT+JWT"}"#,
                access,
                &strict[..],
                true,
            ),
            (r#"{"alg":"RS256","typ":"JWT"}"#, access, &default[..], true),
            (r#"{"alg":"RS256"}"#, access, &default[..], true),
            (r#"{"alg":"RS256","typ":"JWT"}"#, access, &strict[..], false),
            (r#"{"alg":"RS256"}"#, access, &strict[..], false),
            (
                r#"{"alg":"RS256","typ":"id_token+jwt"}"#,
                access,
                &default[..],
                false,
            ),
            (r#"{"alg":"RS256","typ":"JWT"}"#, id, &default[..], false),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"sub":"a","typ":"ID"}"#,
                &default[..],
                false,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"sub":"a","typ":"Bearer","nonce":"n"}"#,
                &default[..],
                true,
            ),
            (r#"{"alg":"RS256","typ":"at+jwt"}"#, id, &default[..], true),
        ] {
            let (parsed, claims) = signed(header, claims);
            assert_eq!(
                parsed.check_type(&claims, accepted).is_ok(),
                ok,
                "{header} {claims:?} {accepted:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(parse("a.b").err(), Some(Reject::Malformed));
        assert_eq!(parse("a.b.c.d").err(), Some(Reject::Malformed));
        assert_eq!(parse("!!.??.**").err(), Some(Reject::Malformed));
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(parse(&long).err(), Some(Reject::TooLarge));
        assert!(looks_like_jwt("a.b.c") && !looks_like_jwt("opaque-token"));
    }

    #[test]
    fn checks_issuer_and_time_window() {
        let p =
            |v: serde_json::Value| Principal::from_claims(v.as_object().unwrap().clone(), false);
        let req = ["exp".to_string()];
        let ok = serde_json::json!({"iss":"i","aud":"a","sub":"s","exp":1000,"nbf":900,"iat":900});
        assert_eq!(check_claims(&p(ok.clone()), "i", &req, 950, 0), Ok(()));
        assert_eq!(
            check_claims(&p(ok.clone()), "j", &req, 950, 0),
            Err(Reject::WrongIssuer)
        );
        assert_eq!(
            check_claims(&p(ok.clone()), "i", &req, 1000, 0),
            Err(Reject::Expired)
        );
        assert_eq!(check_claims(&p(ok.clone()), "i", &req, 1059, 60), Ok(()));
        assert_eq!(
            check_claims(&p(ok.clone()), "i", &req, 800, 0),
            Err(Reject::NotYetValid)
        );
        let no_exp = serde_json::json!({"iss":"i","aud":"a"});
        assert_eq!(
            check_claims(&p(no_exp), "i", &[], 0, 0),
            Err(Reject::MissingClaim)
        );
        let no_aud = serde_json::json!({"iss":"i","exp":1000});
        assert_eq!(
            check_claims(&p(no_aud), "i", &req, 0, 0),
            Err(Reject::MissingClaim)
        );
        let bad_exp = serde_json::json!({"iss":"i","aud":"a","exp":"soon"});
        assert_eq!(
            check_claims(&p(bad_exp), "i", &req, 0, 0),
            Err(Reject::Malformed)
        );
    }
}

//! JSON Web Key sets (RFC 7517) turned into verification keys, each bound to exactly one
//! algorithm: the token's header may only confirm that algorithm, never choose another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;

/// The signature algorithms a key may be bound to. No `none`, no HMAC: a shared secret has
/// no place in a public key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// Every algorithm a key may be bound to.
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// The verifier of a key given as raw bytes (EC point, Ed25519 key).
    fn raw_verifier(self) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match self {
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::EdDSA => &signature::ED25519,
            _ => return None,
        })
    }

    fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

/// A public key, its `kid`, and the one algorithm it verifies.
#[derive(Debug)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Alg,
    material: Material,
}

#[derive(Debug)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// EC point (uncompressed `04 || x || y`) or the 32 bytes of an Ed25519 key.
    Raw(Vec<u8>),
}

impl Key {
    /// Whether `sig` is this key's signature of `message` (with the key's own algorithm).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match (
            &self.material,
            self.alg.rsa_params(),
            self.alg.raw_verifier(),
        ) {
            (Material::Rsa { n, e }, Some(params), _) => RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok(),
            (Material::Raw(bytes), _, Some(alg)) => UnparsedPublicKey::new(alg, bytes)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// The keys of one provider, as last fetched.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// The key a token's header names. A token without `kid` is only accepted when the set
    /// holds a single key.
    pub fn find(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// Parses a JWKS document. Keys that cannot verify signatures here (encryption keys,
    /// symmetric keys, unknown curves) are skipped, with the reason, so that one odd key at
    /// the IdP does not take the others down. Fails if no usable key remains.
    pub fn parse(json: &[u8]) -> Result<(KeySet, Vec<String>), String> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(json).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for (i, raw) in doc.keys.into_iter().enumerate() {
            match serde_json::from_value::<Jwk>(raw)
                .map_err(|e| e.to_string())
                .and_then(key)
            {
                Ok(Some(k)) => set.keys.push(k),
                Ok(None) => {}
                Err(e) => skipped.push(format!("keys[{i}]: {e}")),
            }
        }
        for (i, k) in set.keys.iter().enumerate() {
            if let Some(kid) = &k.kid {
                if set.keys[..i]
                    .iter()
                    .any(|other| other.kid.as_ref() == Some(kid))
                {
                    // Which one a token means would be a guess; the set is not used.
                    return Err(format!("two signing keys have the kid `{kid}`"));
                }
            }
        }
        if set.keys.is_empty() {
            return Err(match skipped.first() {
                Some(first) => format!("no usable signing key ({first})"),
                None => "no signing key".into(),
            });
        }
        Ok((set, skipped))
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// `Ok(None)`: a key meant for encryption, not ours to use.
fn key(jwk: Jwk) -> Result<Option<Key>, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let b64 = |v: Option<String>, name: &str| {
        let v = v.ok_or_else(|| format!("missing `{name}`"))?;
        URL_SAFE_NO_PAD
            .decode(v.trim_end_matches('='))
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    let named = jwk
        .alg
        .as_deref()
        .map(|a| Alg::from_name(a).ok_or_else(|| format!("algorithm `{a}` is not supported")))
        .transpose()?;
    let (alg, material) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            // An RSA key that names no algorithm verifies RS256 only, the common default.
            let alg = named.unwrap_or(Alg::RS256);
            if alg.rsa_params().is_none() {
                return Err("an RSA key with a non-RSA algorithm".into());
            }
            // Some IdPs pad with zero bytes, which ring refuses: strip them.
            let unpadded = |v: Vec<u8>| v.into_iter().skip_while(|&b| b == 0).collect::<Vec<u8>>();
            let n = unpadded(b64(jwk.n, "n")?);
            let e = unpadded(b64(jwk.e, "e")?);
            if !(256..=1024).contains(&n.len()) {
                return Err(format!(
                    "an RSA key of {} bits (2048 to 8192 are accepted)",
                    n.len() * 8
                ));
            }
            (alg, Material::Rsa { n, e })
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let alg = if crv == "P-256" {
                Alg::ES256
            } else {
                Alg::ES384
            };
            if named.is_some_and(|n| n != alg) {
                return Err(format!("curve {crv} does not go with the named algorithm"));
            }
            let (x, y) = (b64(jwk.x, "x")?, b64(jwk.y, "y")?);
            let len = if crv == "P-256" { 32 } else { 48 };
            if x.len() != len || y.len() != len {
                return Err(format!("coordinates of the wrong length for {crv}"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (alg, Material::Raw(point))
        }
        ("OKP", Some("Ed25519")) => {
            if named.is_some_and(|n| n != Alg::EdDSA) {
                return Err("an Ed25519 key with another algorithm".into());
            }
            let x = b64(jwk.x, "x")?;
            if x.len() != 32 {
                return Err("an Ed25519 key is 32 bytes".into());
            }
            (Alg::EdDSA, Material::Raw(x))
        }
        (kty, crv) => {
            return Err(format!(
                "key type `{kty}`{} is not supported",
                crv.map(|c| format!(" ({c})")).unwrap_or_default()
            ))
        }
    };
    Ok(Some(Key {
        kid: jwk.kid,
        alg,
        material,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_what_it_cannot_use_and_keeps_the_rest() {
        let doc = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB","kid":"enc"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let (set, skipped) = KeySet::parse(doc).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].alg, Alg::EdDSA);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(set.find(Some("ed")).is_some());
        assert!(
            set.find(None).is_some(),
            "a lone key serves tokens without kid"
        );
        assert!(set.find(Some("hmac")).is_none());
    }

    #[test]
    fn refuses_a_set_with_two_signing_keys_of_one_kid() {
        let ed = r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let doc = format!(r#"{{"keys":[{ed},{ed}]}}"#);
        let err = KeySet::parse(doc.as_bytes()).unwrap_err();
        assert!(err.contains("`k`"), "{err}");
        // An encryption key may share its signing twin's kid: it is skipped, not used.
        let enc = r#"{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB","kid":"k"}"#;
        let doc = format!(r#"{{"keys":[{ed},{enc}]}}"#);
        assert!(KeySet::parse(doc.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_a_set_without_signing_keys() {
        assert!(KeySet::parse(br#"{"keys":[]}"#).is_err());
        assert!(KeySet::parse(b"not json").is_err());
        let err = KeySet::parse(br#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#)
            .unwrap_err();
        assert!(err.contains("P-521"), "{err}");
    }
}

//! PKCE (RFC 7636, S256 only) and the random values the authorization server makes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::seal::Sealer;

/// 32 random bytes, base64url: verifiers, CSRF tokens, grant ids.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(Sealer::random_key())
}

/// The S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// §4.1: 43 to 128 unreserved characters.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// §4.2: an S256 challenge is the base64url of a SHA-256 digest, 43 characters.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `verifier` is well formed and hashes to `challenge`, compared in constant time.
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    is_verifier(verifier) && same(s256(verifier).as_bytes(), challenge.as_bytes())
}

/// Equal bytes, compared in constant time (secrets, CSRF tokens).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_unpadded_base64url_of_sha256() {
        // Computed independently with Python's hashlib and base64.
        let verifier = "dBjftJeZ4CKP-1qQI6u9FaMb9tBNgyIgSvAmxDeM7HOKDmCRmqj6OqrLLmC9E";
        assert_eq!(
            s256(verifier),
            "Q-9GsQ2CvvRVExheMO-o1-LYD3PltBaTDwEIibbNPZo"
        );
        assert!(verifies(verifier, &s256(verifier)));
        assert!(!verifies(verifier, &s256("another")));
    }

    #[test]
    fn values_have_their_rfc_shapes() {
        let verifier = "dBjftJeZ4CKP-1qQI6u9FaMb9tBNgyIgSvAmxDeM7HOKDmCRmqj6OqrLLmC9E";
        assert!(is_verifier(verifier));
        assert!(is_verifier(&"a~._-".repeat(10)[..43]));
        assert!(!is_verifier("x"));
        assert!(!is_verifier(&"a".repeat(42)));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+/", "a".repeat(43))));
        assert!(is_s256_challenge(&s256(verifier)));
        assert!(!is_s256_challenge(&"a".repeat(44)));
        assert!(!is_s256_challenge(&format!("{}=", "a".repeat(42))));
        assert!(!is_s256_challenge(&format!("{}.", "a".repeat(42))));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}

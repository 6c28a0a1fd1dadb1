//! Sealed values (AES-256-GCM): what the gateway hands out instead of keeping state —
//! client registrations, `state`, consent tokens, one-time codes. A sealed value is
//! `base64url(key id ‖ nonce ‖ ciphertext ‖ tag)`; its purpose is bound as associated data,
//! so a value sealed as one thing (a client id) never opens as another (a code).
//!
//! One key seals; older keys still open, so rotating the key logs nobody out. The same key on
//! every replica lets any replica finish a flow another began.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes of the key id: the start of the key's SHA-256, so that opening picks the right key
/// without trying each.
const KEY_ID_LEN: usize = 4;
/// Sealed values longer than this are refused before decoding. Codes carry the IdP's token
/// answer (with an ID token and a refresh token, several KiB at some IdPs), so the bound is
/// well above what the gateway seals: every plaintext up to [`MAX_PLAINTEXT`] opens again.
const MAX_SEALED: usize = 64 * 1024;
/// The longest plaintext whose sealed form is within [`MAX_SEALED`] (base64 of the key id,
/// nonce, ciphertext and tag).
pub const MAX_PLAINTEXT: usize = MAX_SEALED / 4 * 3 - KEY_ID_LEN - NONCE_LEN - 16;

/// What a sealed value is for; bound into the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Client,
    State,
    Consent,
    Code,
    Refresh,
    Approvals,
    /// An access token the gateway issues (passthrough and chained routes).
    Access,
    /// A token answer kept in the state for a retried refresh.
    Answer,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Client => b"mcpgate client v1",
            Purpose::State => b"mcpgate state v1",
            Purpose::Consent => b"mcpgate consent v1",
            Purpose::Code => b"mcpgate code v1",
            Purpose::Refresh => b"mcpgate refresh v1",
            Purpose::Approvals => b"mcpgate approvals v1",
            Purpose::Access => b"mcpgate access v1",
            Purpose::Answer => b"mcpgate answer v1",
        }
    }
}

pub struct Sealer {
    /// The first key seals; all open.
    keys: Vec<SealKey>,
    rng: SystemRandom,
}

struct SealKey {
    id: [u8; KEY_ID_LEN],
    aead: LessSafeKey,
    /// For deterministic nonces and derived secrets, kept apart from the AEAD key.
    mac: hmac::Key,
}

impl Sealer {
    /// `current` seals; `previous` only open. Each key is 32 bytes.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Sealer {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|k| {
                let digest = ring::digest::digest(&ring::digest::SHA256, k);
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
                let key = UnboundKey::new(&AES_256_GCM, k).expect("a 32-byte key");
                let mac_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k), b"mcpgate mac v1");
                SealKey {
                    id,
                    aead: LessSafeKey::new(key),
                    mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_ref()),
                }
            })
            .collect();
        Sealer {
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// A fresh random key, for a process that was given none.
    pub fn random_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random source works");
        key
    }

    pub fn seal_bytes(&self, purpose: Purpose, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system's random source works");
        self.seal_with_nonce(purpose, plaintext, nonce)
    }

    /// Seals so that the same plaintext always gives the same value (the nonce is a MAC of
    /// it): a client that registers twice alike gets the same `client_id`. Only for values
    /// that may be linked when equal.
    pub fn seal_deterministic<T: Serialize>(&self, purpose: Purpose, value: &T) -> String {
        let json = serde_json::to_vec(value).expect("sealed types serialize");
        let mut ctx = hmac::Context::with_key(&self.keys[0].mac);
        ctx.update(purpose.label());
        ctx.update(&json);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&ctx.sign().as_ref()[..NONCE_LEN]);
        self.seal_with_nonce(purpose, &json, nonce)
    }

    fn seal_with_nonce(
        &self,
        purpose: Purpose,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> String {
        let SealKey { id, aead: key, .. } = &self.keys[0];
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.label()),
            &mut body,
        )
        .expect("sealing cannot fail for in-memory sizes");
        out.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, if `sealed` was sealed for `purpose` by one of our keys and is intact.
    pub fn open_bytes(&self, purpose: Purpose, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return None;
        }
        let (id, rest) = raw.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = self.keys.iter().find(|k| k.id == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = ciphertext.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(purpose.label()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }

    /// A secret derived from `data` (a client's secret from its `client_id`): nothing to
    /// store, and any replica with the key can check it.
    pub fn derive_secret(&self, data: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.keys[0].mac, data.as_bytes()))
    }

    /// Whether `secret` was derived from `data` with any of our keys (constant time).
    pub fn check_secret(&self, data: &str, secret: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(secret) else {
            return false;
        };
        self.keys
            .iter()
            .any(|k| hmac::verify(&k.mac, data.as_bytes(), &tag).is_ok())
    }

    pub fn seal<T: Serialize>(&self, purpose: Purpose, value: &T) -> String {
        let json = serde_json::to_vec(value).expect("sealed types serialize");
        self.seal_bytes(purpose, &json)
    }

    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, sealed: &str) -> Option<T> {
        serde_json::from_slice(&self.open_bytes(purpose, sealed)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let sealer = Sealer::new(&[1; 32], &[]);
        let sealed = sealer.seal_bytes(Purpose::Code, b"grant");
        assert_eq!(sealer.open_bytes(Purpose::Code, &sealed).unwrap(), b"grant");
        assert!(
            sealer.open_bytes(Purpose::Client, &sealed).is_none(),
            "other purpose"
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert!(
            sealer.open_bytes(Purpose::Code, &tampered).is_none(),
            "changed byte"
        );
        assert!(Sealer::new(&[2; 32], &[])
            .open_bytes(Purpose::Code, &sealed)
            .is_none());
        assert!(sealer.open_bytes(Purpose::Code, "not sealed!").is_none());
        assert!(sealer.open_bytes(Purpose::Code, "").is_none());
        // The longest plaintext the gateway opens again, and one byte more.
        let largest = vec![7u8; MAX_PLAINTEXT];
        let sealed_largest = sealer.seal_bytes(Purpose::Code, &largest);
        assert_eq!(
            sealer.open_bytes(Purpose::Code, &sealed_largest),
            Some(largest)
        );
        let too_large = sealer.seal_bytes(Purpose::Code, &vec![7u8; MAX_PLAINTEXT + 3]);
        assert!(sealer.open_bytes(Purpose::Code, &too_large).is_none());
        assert_ne!(
            sealed,
            sealer.seal_bytes(Purpose::Code, b"grant"),
            "fresh nonce"
        );
    }

    #[test]
    fn deterministic_seals_and_derived_secrets() {
        let sealer = Sealer::new(&[1; 32], &[]);
        let a = sealer.seal_deterministic(Purpose::Client, &["x"]);
        assert_eq!(a, sealer.seal_deterministic(Purpose::Client, &["x"]));
        assert_ne!(a, sealer.seal_deterministic(Purpose::Client, &["y"]));
        assert_eq!(
            sealer.open::<Vec<String>>(Purpose::Client, &a),
            Some(vec!["x".into()])
        );
        let secret = sealer.derive_secret(&a);
        assert!(sealer.check_secret(&a, &secret));
        assert!(!sealer.check_secret(&a, "AAAA"));
        let rotated = Sealer::new(&[2; 32], &[[1; 32]]);
        assert!(rotated.check_secret(&a, &secret), "old secrets still check");
    }

    #[test]
    fn a_rotated_key_still_opens_old_values() {
        let old = Sealer::new(&[1; 32], &[]);
        let sealed = old.seal(Purpose::State, &("a", 1));
        let rotated = Sealer::new(&[9; 32], &[[1; 32]]);
        assert_eq!(
            rotated.open::<(String, u32)>(Purpose::State, &sealed),
            Some(("a".into(), 1))
        );
        let new = rotated.seal(Purpose::State, &("b", 2));
        assert!(old.open::<(String, u32)>(Purpose::State, &new).is_none());
    }
}

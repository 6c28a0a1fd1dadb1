//! A bounded, lock-free cache keyed by a 32-byte digest: a fixed array of sets of slots,
//! each slot an `ArcSwapOption`. Reading loads a few atomics and allocates nothing; writing
//! replaces a whole entry. Size never grows: a new entry takes the set's slot with the same
//! key, else an empty or expired one, else the one expiring first. Two writers racing for
//! one slot may lose an entry, which a cache may do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// Slots per set: enough that a hot entry is rarely pushed out by a collision.
const WAYS: usize = 4;

pub type Key = [u8; 32];

/// The SHA-256 of `data`: the cache key of a token (never the token itself).
pub fn digest(data: &[u8]) -> Key {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut key = [0u8; 32];
    key.copy_from_slice(d.as_ref());
    key
}

/// Lower-case hex of `bytes`: digests in state keys and log lines are text.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

pub struct Entry<V> {
    key: Key,
    /// In the caller's clock; the entry is gone at and after this instant.
    expires: AtomicU64,
    pub value: V,
}

impl<V> Entry<V> {
    pub fn expires(&self) -> u64 {
        self.expires.load(Ordering::Relaxed)
    }

    /// Moves the expiry later (rate buckets keep theirs in step with their state); racing
    /// updates keep the latest.
    pub fn extend_expiry(&self, at: u64) {
        self.expires.fetch_max(at, Ordering::Relaxed);
    }
}

pub struct SlotCache<V> {
    slots: Box<[ArcSwapOption<Entry<V>>]>,
    sets_mask: usize,
}

impl<V> SlotCache<V> {
    /// Room for at least `capacity` entries (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        SlotCache {
            slots: (0..sets * WAYS).map(|_| ArcSwapOption::empty()).collect(),
            sets_mask: sets - 1,
        }
    }

    fn set(&self, key: &Key) -> &[ArcSwapOption<Entry<V>>] {
        // The key is a cryptographic digest: any 8 of its bytes are uniformly spread.
        let h = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
        let start = (h as usize & self.sets_mask) * WAYS;
        &self.slots[start..start + WAYS]
    }

    /// The live entry for `key`, if any.
    pub fn get(&self, key: &Key, now: u64) -> Option<Arc<Entry<V>>> {
        self.set(key).iter().find_map(|slot| {
            let guard = slot.load();
            match &*guard {
                Some(e) if e.key == *key && e.expires() > now => Some(Arc::clone(e)),
                _ => None,
            }
        })
    }

    /// Stores `value` until `expires`, in place of the entry that expires soonest if its set
    /// is full; returns the stored entry.
    pub fn insert(&self, key: Key, expires: u64, now: u64, value: V) -> Arc<Entry<V>> {
        let set = self.set(&key);
        let slot = Self::free_slot(set, &key, now).unwrap_or_else(|| {
            let soonest = set
                .iter()
                .enumerate()
                .min_by_key(|(_, slot)| slot.load().as_ref().map_or(0, |e| e.expires()));
            soonest.map_or(0, |(i, _)| i)
        });
        let entry = Self::entry(key, expires, value);
        set[slot].store(Some(entry.clone()));
        entry
    }

    /// Stores `value` until `expires` only if that pushes out no live entry (for what must
    /// not be forgotten, like revocations). `false`: the set is full.
    pub fn insert_if_room(&self, key: Key, expires: u64, now: u64, value: V) -> bool {
        let set = self.set(&key);
        let Some(slot) = Self::free_slot(set, &key, now) else {
            return false;
        };
        set[slot].store(Some(Self::entry(key, expires, value)));
        true
    }

    /// An empty slot, an expired one, or the one that holds `key`.
    fn free_slot(set: &[ArcSwapOption<Entry<V>>], key: &Key, now: u64) -> Option<usize> {
        set.iter().position(|slot| match &*slot.load() {
            None => true,
            Some(e) => e.key == *key || e.expires() <= now,
        })
    }

    fn entry(key: Key, expires: u64, value: V) -> Arc<Entry<V>> {
        Arc::new(Entry {
            key,
            expires: AtomicU64::new(expires),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }

    impl<V> SlotCache<V> {
        fn capacity(&self) -> usize {
            self.slots.len()
        }

        fn live(&self, now: u64) -> usize {
            self.slots
                .iter()
                .filter(|s| s.load().as_ref().is_some_and(|e| e.expires() > now))
                .count()
        }
    }

    #[test]
    fn finds_what_it_stored_until_it_expires() {
        let cache = SlotCache::new(16);
        let k = digest(b"token");
        assert!(cache.get(&k, 0).is_none());
        cache.insert(k, 100, 0, "v");
        assert_eq!(cache.get(&k, 99).unwrap().value, "v");
        assert!(cache.get(&k, 100).is_none());
        assert!(cache.get(&digest(b"other"), 0).is_none());
    }

    #[test]
    fn never_grows_past_its_capacity() {
        let cache = SlotCache::new(64);
        for i in 0..10_000u32 {
            cache.insert(digest(&i.to_le_bytes()), 1_000, 0, i);
        }
        assert_eq!(cache.capacity(), 64);
        assert_eq!(cache.live(0), 64);
        // The newest entry is always there.
        let last = digest(&9_999u32.to_le_bytes());
        assert_eq!(cache.get(&last, 0).unwrap().value, 9_999);
    }

    #[test]
    fn what_must_not_be_forgotten_waits_for_room() {
        // One set of four: the fifth live entry finds no room until one expires.
        let cache = SlotCache::new(4);
        for i in 0..4u32 {
            assert!(cache.insert_if_room(digest(&i.to_le_bytes()), 100 + i as u64, 0, ()));
        }
        let fifth = digest(b"fifth");
        assert!(!cache.insert_if_room(fifth, 200, 0, ()));
        assert!((0..4u32).all(|i| cache.get(&digest(&i.to_le_bytes()), 0).is_some()));
        assert!(
            cache.insert_if_room(fifth, 200, 100, ()),
            "an expired slot is room"
        );
        assert!(cache.get(&fifth, 100).is_some());
    }

    #[test]
    fn an_update_replaces_the_same_key() {
        let cache = SlotCache::new(4);
        let k = digest(b"a");
        cache.insert(k, 10, 0, 1);
        cache.insert(k, 10, 0, 2);
        assert_eq!(cache.live(0), 1);
        assert_eq!(cache.get(&k, 0).unwrap().value, 2);
    }
}

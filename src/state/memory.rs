//! The process's own store: claims in a sharded, bounded table, each claim an insert under
//! its shard's lock (so two threads can never both claim a key); nothing leaves the process.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Claim, Store, StoreError};
use crate::auth::cache::SlotCache;

const SHARDS: usize = 16;
/// Live claims one shard holds; expired ones make room first.
const CLAIMS_PER_SHARD: usize = 8_192;

/// Claims of one shard: the value and until when it holds.
type Claims = HashMap<String, (Vec<u8>, Instant)>;

pub struct MemoryStore {
    hasher: RandomState,
    shards: Box<[Mutex<Claims>]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl MemoryStore {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Claims> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        // A poisoned shard only means another thread panicked between two map updates.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some((held, until)) = shard.get(key) {
            if *until > now {
                return Ok(Claim::Taken(held.clone()));
            }
        }
        if shard.len() >= CLAIMS_PER_SHARD {
            shard.retain(|_, (_, until)| *until > now);
            if shard.len() >= CLAIMS_PER_SHARD {
                return Err(StoreError("too many live claims on this process".into()));
            }
        }
        shard.insert(key.to_string(), (value.to_vec(), now + ttl));
        Ok(Claim::Claimed)
    }

    async fn settle(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if let Some((held, _)) = self.shard(key).get_mut(key) {
            *held = value.to_vec();
        }
        Ok(())
    }

    /// Revocations stay in this process's view: nothing to publish.
    async fn publish_revocation(&self, _key: &str, _until: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn follow(&self, _view: Arc<SlotCache<()>>) {}

    fn reachable(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_key_is_claimed_once_however_many_race_for_it() {
        let store = Arc::new(MemoryStore::default());
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .claim(
                            "code:abc",
                            format!("{i}").as_bytes(),
                            Duration::from_secs(60),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut claimed = 0;
        for t in tasks {
            if t.await.unwrap() == Claim::Claimed {
                claimed += 1;
            }
        }
        assert_eq!(claimed, 1);
        store.settle("code:abc", b"done").await.unwrap();
        let again = store.claim("code:abc", b"x", Duration::from_secs(60)).await;
        assert_eq!(again.unwrap(), Claim::Taken(b"done".to_vec()));
    }

    #[tokio::test]
    async fn an_expired_claim_is_free_again() {
        let store = MemoryStore::default();
        let short = Duration::from_millis(10);
        assert_eq!(store.claim("k", b"1", short).await.unwrap(), Claim::Claimed);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.claim("k", b"2", short).await.unwrap(), Claim::Claimed);
    }
}

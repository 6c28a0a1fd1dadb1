//! What must be remembered, across threads and, with Redis, across replicas: one-time
//! claims (codes, sign-in states, refresh tokens), revoked grants, and rate-limit buckets.
//!
//! One interface ([`State`]) over two stores: the process's memory (the default: nothing to
//! set up, atomic across threads) and Redis (or Valkey), shared by every replica. The hot
//! path never waits on the network for a revocation: each replica keeps a local view of
//! revoked grants, updated at once by its own revocations and, from Redis, within a second
//! by everyone else's. Rate limits on a route that has one take from a shared bucket (one
//! round trip), and fall back to the replica's own limiter while Redis cannot be reached.

mod memory;
mod redis_store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use log::warn;

use crate::auth::cache::{digest, SlotCache};
use crate::auth::rate_limit::{Decision, RateLimiter};
use crate::config::{ConfigError, RateLimit, StateConfig};
use crate::metrics;

pub use memory::MemoryStore;
pub use redis_store::RedisStore;

/// Revoked grants one replica keeps in view.
const REVOKED_GRANTS: usize = 65_536;

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: this caller has it now.
    Claimed,
    /// Someone claimed it before; what they stored (or settled) with it.
    Taken(Vec<u8>),
}

/// The store cannot answer now (unreachable, timed out, full): the caller must not act as
/// if the answer were yes or no.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store's side of the interface.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records `key` with `value` for `ttl`, unless it is there already (atomic).
    async fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<Claim, StoreError>;

    /// Replaces the value of a claimed key, keeping its expiry.
    async fn settle(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Makes a revocation of `key` until `until` (unix seconds) known to other replicas.
    async fn publish_revocation(&self, key: &str, until: u64) -> Result<(), StoreError>;

    /// Whether rate limits are kept here for every replica ([`Store::take`]); otherwise each
    /// route's own limiter decides.
    fn shares_limits(&self) -> bool {
        false
    }

    /// GCRA: takes one request from `bucket` under `limit` (asked only of a store that
    /// shares limits).
    async fn take(&self, _bucket: &str, _limit: &RateLimit) -> Result<Decision, StoreError> {
        Err(StoreError("this store keeps no shared buckets".into()))
    }

    /// Keeps `view` in step with revocations made elsewhere, until the process ends.
    async fn follow(&self, view: Arc<SlotCache<()>>);

    /// Whether the store answered lately.
    fn reachable(&self) -> bool;

    /// What the store is, for `/readyz` and the startup line.
    fn name(&self) -> &'static str;
}

/// The gateway's state: a store and the local view of revoked grants.
pub struct State {
    store: Box<dyn Store>,
    revoked: Arc<SlotCache<()>>,
}

impl State {
    pub fn new(config: &StateConfig) -> Result<State, ConfigError> {
        let store: Box<dyn Store> = match config {
            StateConfig::Memory => Box::new(MemoryStore::default()),
            StateConfig::Redis(redis) => Box::new(RedisStore::new(redis)?),
        };
        Ok(State {
            store,
            revoked: Arc::new(SlotCache::new(REVOKED_GRANTS)),
        })
    }

    /// Claims `key` once (see [`Claim`]); timed and counted.
    pub async fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<Claim, StoreError> {
        measured("claim", self.store.claim(key, value, ttl)).await
    }

    pub async fn settle(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        measured("settle", self.store.settle(key, value)).await
    }

    /// Revokes grant `key` until `until`: at once here, and (with Redis) everywhere within a
    /// second. An error means the revocation may not hold: the caller must say it failed.
    pub async fn revoke(&self, key: &str, until: u64, now: u64) -> Result<(), StoreError> {
        measured("revoke", self.store.publish_revocation(key, until)).await?;
        if !self.revoked.insert_if_room(view_key(key), until, now, ()) {
            return Err(StoreError("the revocation view is full".into()));
        }
        Ok(())
    }

    /// Whether `key` is revoked, from the local view: never waits.
    pub fn is_revoked(&self, key: &str, now: u64) -> bool {
        self.revoked.get(&view_key(key), now).is_some()
    }

    /// A request of `subject` under `limiter`: from the shared bucket with Redis (the
    /// replica's own limiter while Redis cannot answer), else the replica's own.
    pub async fn take(&self, limiter: &RateLimiter, bucket: &str, subject: &str) -> Decision {
        if !self.store.shares_limits() {
            return limiter.check(subject);
        }
        let key = format!("{bucket}:{subject}");
        match measured("take", self.store.take(&key, &limiter.config)).await {
            Ok(decision) => decision,
            Err(e) => {
                metrics::STATE_FALLBACKS
                    .with_label_values(&["rate_limit"])
                    .inc();
                warn_once(&format!("rate limits fall back to each replica's own: {e}"));
                limiter.check(subject)
            }
        }
    }

    /// Follows revocations made elsewhere; runs until the process ends.
    pub async fn follow(&self) {
        self.store.follow(self.revoked.clone()).await
    }

    pub fn reachable(&self) -> bool {
        self.store.reachable()
    }

    pub fn name(&self) -> &'static str {
        self.store.name()
    }
}

/// The local view's key of a revocation.
fn view_key(key: &str) -> [u8; 32] {
    digest(key.as_bytes())
}

/// Runs a store operation, counting it by result and timing it.
async fn measured<T>(
    op: &'static str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = operation.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::STATE_OPERATIONS
        .with_label_values(&[op, outcome])
        .inc();
    metrics::STATE_LATENCY
        .with_label_values(&[op])
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Logs `message` at most once a minute: an outage would otherwise write a line a request.
fn warn_once(message: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::auth::unix_now();
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        warn!("state: {message}");
    }
}

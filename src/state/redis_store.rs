//! The shared store: Redis (or Valkey), `redis://` or `rediss://`. Every key is under the
//! configured prefix and expires: claims with their lifetime, revoked grants when their last
//! token would have, rate-limit buckets when full again; the revocation stream is capped.
//!
//! - a claim is one `SET … NX GET PX` (atomic: exactly one caller gets `nil`);
//! - a revocation is a key and an entry in a stream that every replica follows with a
//!   blocking `XREAD` (so it takes effect everywhere within about a second, without a round
//!   trip per request), re-reading from where it was after a reconnect;
//! - a rate limit is GCRA in a script, on Redis's clock (replicas' clocks may differ).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use log::{info, warn};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client, Script};
use tokio::sync::OnceCell;

use super::{view_key, Claim, Store, StoreError};
use crate::auth::cache::SlotCache;
use crate::auth::rate_limit::Decision;
use crate::auth::unix_now;
use crate::config::{ConfigError, RateLimit, RedisConfig};

/// Entries the revocation stream keeps (about; Redis trims in whole blocks).
const STREAM_ENTRIES: usize = 100_000;

/// GCRA on Redis's clock, in microseconds: returns {allowed, wait}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
local ahead = next - now
if ahead > tolerance then return {0, ahead - tolerance} end
redis.call('SET', KEYS[1], next, 'PX', math.floor(ahead / 1000) + 1)
return {1, ahead}
";

pub struct RedisStore {
    client: Client,
    prefix: String,
    timeout: Duration,
    /// One multiplexed connection for every operation, made on first use and remade after
    /// failures by the manager.
    manager: OnceCell<ConnectionManager>,
    reachable: AtomicBool,
    gcra: Script,
}

impl RedisStore {
    pub fn new(config: &RedisConfig) -> Result<RedisStore, ConfigError> {
        let client = Client::open(config.url.0.as_str())
            .map_err(|e| ConfigError::new("state.redis.url", e.to_string()))?;
        Ok(RedisStore {
            client,
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            manager: OnceCell::new(),
            reachable: AtomicBool::new(true),
            gcra: Script::new(GCRA),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    fn stream(&self) -> String {
        self.key("revocations")
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let made = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                let connect = ConnectionManager::new_with_config(self.client.clone(), config);
                match tokio::time::timeout(self.timeout * 2, connect).await {
                    Ok(result) => result.map_err(|e| StoreError(e.to_string())),
                    Err(_) => Err(StoreError("connecting to redis timed out".into())),
                }
            })
            .await;
        self.outcome(made.cloned())
    }

    /// Remembers whether Redis answered, for `/readyz`.
    fn outcome<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.reachable.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        let result = cmd
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(e.to_string()));
        self.outcome(result)
    }

    /// Reads the revocation stream from `from` into `view`: blocks up to a second for new
    /// entries. Returns the last entry's id.
    async fn read_revocations(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        from: String,
        view: &SlotCache<()>,
    ) -> Result<String, StoreError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(self.stream())
            .arg(&from)
            .query_async(connection)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        let now = unix_now();
        let mut last = from;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            if let (Some(key), Some(until)) = (entry.get::<String>("k"), entry.get::<u64>("u")) {
                if until > now && !view.insert_if_room(view_key(&key), until, now, ()) {
                    warn!("state: the revocation view is full; a revocation from elsewhere is not held here");
                }
            }
            last = entry.id;
        }
        Ok(last)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<Claim, StoreError> {
        let previous: Option<Vec<u8>> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64),
            )
            .await?;
        Ok(previous.map_or(Claim::Claimed, Claim::Taken))
    }

    async fn settle(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.query::<Option<String>>(
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("XX")
                .arg("KEEPTTL"),
        )
        .await
        .map(|_| ())
    }

    async fn publish_revocation(&self, key: &str, until: u64) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let result = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key(&format!("revoked:{key}")))
            .arg(until)
            .arg("EXAT")
            .arg(until.max(unix_now() + 1))
            .ignore()
            .cmd("XADD")
            .arg(self.stream())
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_ENTRIES)
            .arg("*")
            .arg("k")
            .arg(key)
            .arg("u")
            .arg(until)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| StoreError(e.to_string()));
        self.outcome(result)
    }

    fn shares_limits(&self) -> bool {
        true
    }

    async fn take(&self, bucket: &str, limit: &RateLimit) -> Result<Decision, StoreError> {
        let interval = (limit.window.as_micros() / u128::from(limit.limit)).max(1) as u64;
        let tolerance = interval.saturating_mul(u64::from(limit.burst));
        let mut connection = self.connection().await?;
        let result = self
            .gcra
            .key(self.key(&format!("rate:{bucket}")))
            .arg(interval)
            .arg(tolerance)
            .invoke_async::<(u8, u64)>(&mut connection)
            .await
            .map_err(|e| StoreError(e.to_string()));
        let (allowed, micros) = self.outcome(result)?;
        let allowed = allowed == 1;
        Ok(Decision {
            allowed,
            limit: limit.limit,
            remaining: if allowed {
                ((tolerance - micros.min(tolerance)) / interval) as u32
            } else {
                0
            },
            wait: Duration::from_micros(micros),
        })
    }

    /// Follows the revocation stream on a connection of its own (a blocking read would hold
    /// up everything else on the shared one), from its start, then from where it was.
    async fn follow(&self, view: Arc<SlotCache<()>>) {
        let mut from = "0".to_string();
        let mut up = true;
        loop {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout + Duration::from_secs(2)));
            let connected = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await;
            let mut connection = match connected {
                Ok(c) => c,
                Err(e) => {
                    if std::mem::replace(&mut up, false) {
                        warn!("state: redis unreachable ({e}); revocations from elsewhere wait for it");
                    }
                    self.reachable.store(false, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match self
                    .read_revocations(&mut connection, from.clone(), &view)
                    .await
                {
                    Ok(last) => {
                        from = last;
                        self.reachable.store(true, Ordering::Relaxed);
                        if !std::mem::replace(&mut up, true) {
                            info!("state: redis reachable again");
                        }
                    }
                    Err(e) => {
                        if std::mem::replace(&mut up, false) {
                            warn!("state: reading revocations failed ({e}); reconnecting");
                        }
                        self.reachable.store(false, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }

    fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

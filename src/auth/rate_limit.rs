//! Per-subject rate limits: GCRA (a token bucket kept as one "theoretical arrival time"
//! per subject) in a bounded lock-free table. A check is a digest, a table lookup and one
//! compare-and-swap. Idle subjects hold a full bucket, which is the same as no entry, so
//! their slots are the first to be reused: memory stays at the table's fixed size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use http::header::RETRY_AFTER;
use http::{HeaderName, HeaderValue};

use super::cache::{digest, SlotCache};
use crate::config::RateLimit;

/// Subjects tracked at once per route; beyond that the least recently limited give way.
const SUBJECTS: usize = 65_536;

pub struct RateLimiter {
    pub config: RateLimit,
    /// Nanoseconds between requests at the sustained rate.
    interval: u64,
    /// How far ahead of now a subject's arrival time may run: the burst.
    tolerance: u64,
    buckets: SlotCache<AtomicU64>,
}

/// The outcome of one check, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per window (what `RateLimit-Limit` says).
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again (allowed) or the next request may pass (denied).
    pub wait: Duration,
}

impl Decision {
    /// `RateLimit-Limit`/`-Remaining`/`-Reset` (the IETF draft's names), and on a refusal
    /// `Retry-After`, in whole seconds rounded up.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let wait = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        let mut h = vec![
            (
                HeaderName::from_static("ratelimit-limit"),
                HeaderValue::from(self.limit),
            ),
            (
                HeaderName::from_static("ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("ratelimit-reset"),
                HeaderValue::from(wait),
            ),
        ];
        if !self.allowed {
            h.push((RETRY_AFTER, HeaderValue::from(wait)));
        }
        h
    }
}

impl RateLimiter {
    pub fn new(config: RateLimit) -> RateLimiter {
        let interval = (config.window.as_nanos() / u128::from(config.limit)).max(1) as u64;
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(config.burst)),
            buckets: SlotCache::new(SUBJECTS),
            config,
        }
    }

    pub fn check(&self, subject: &str) -> Decision {
        self.check_at(subject, now())
    }

    fn check_at(&self, subject: &str, now: u64) -> Decision {
        let key = digest(subject.as_bytes());
        let bucket = match self.buckets.get(&key, now) {
            Some(b) => b,
            None => self.buckets.insert(key, now + 1, now, AtomicU64::new(now)),
        };
        let mut seen = bucket.value.load(Ordering::Acquire);
        loop {
            let next = seen.max(now).saturating_add(self.interval);
            let ahead = next - now;
            if ahead > self.tolerance {
                return Decision {
                    allowed: false,
                    limit: self.config.limit,
                    remaining: 0,
                    wait: Duration::from_nanos(ahead - self.tolerance),
                };
            }
            match bucket.value.compare_exchange_weak(
                seen,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    bucket.extend_expiry(next);
                    return Decision {
                        allowed: true,
                        limit: self.config.limit,
                        remaining: ((self.tolerance - ahead) / self.interval) as u32,
                        wait: Duration::from_nanos(ahead),
                    };
                }
                Err(actual) => seen = actual,
            }
        }
    }
}

/// Nanoseconds on a monotonic clock private to this process (never 0).
fn now() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_nanos() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            limit,
            window: Duration::from_secs(60),
            burst,
        })
    }

    #[test]
    fn allows_the_burst_then_the_sustained_rate() {
        let l = limiter(60, 3); // one a second, three at once
        let t = 1_000_000_000_000;
        let got: Vec<bool> = (0..4).map(|_| l.check_at("alice", t).allowed).collect();
        assert_eq!(got, [true, true, true, false]);
        let denied = l.check_at("alice", t);
        assert_eq!(denied.wait, Duration::from_secs(1));
        // Another subject has its own bucket.
        assert!(l.check_at("bob", t).allowed);
        // A second later one more passes.
        assert!(l.check_at("alice", t + 1_000_000_000).allowed);
        assert!(!l.check_at("alice", t + 1_000_000_000).allowed);
    }

    #[test]
    fn reports_what_remains() {
        let l = limiter(600, 600);
        let d = l.check_at("s", 5);
        assert!(d.allowed);
        assert_eq!(d.remaining, 599);
        assert_eq!(d.wait, Duration::from_millis(100));
    }
}

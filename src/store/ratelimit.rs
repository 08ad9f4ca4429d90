//! Counting requests against fixed windows: the policy a key's requests
//! must fit in, the [`RateLimiter`] trait its counters live behind, the
//! in-process [`MemoryRateLimiter`] and the one [`decide`] every backend
//! reports through (the Redis one is [`super::redis_limiter`]). Which
//! surface gets which policy is the core's business, not the store's.
//!
//! A policy is a set of fixed windows (e.g. 10 requests per 1 s and 150
//! per 60 s); a request passes only if every window has room, and then
//! counts in all of them.
//!
//! Windows are anchored at the first request that finds them empty or
//! expired, not at wall-clock boundaries: a burst that starts at 0.9 s thus
//! cannot get 10 requests in before 1.0 s and 10 more after it. This is the
//! same shape as a Redis counter with an expiry set on its first increment,
//! so a shared limiter can follow the same rule.
//!
//! Hand-written rather than taken from a crate: `governor` (the well-kept
//! choice) implements GCRA, a smoothed rate that does not answer "how many
//! of the 150 are left in this minute", which the `X-RateLimit-*` headers
//! must report.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::StoreError;

/// At most `limit` requests per `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub length: Duration,
}

/// The windows a key's requests must fit in; `windows` is never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatePolicy {
    pub windows: Vec<Window>,
}

/// What the limiter decided for one request, with what the
/// `X-RateLimit-*` headers report: the window closest to its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds (rounded up) until that window starts afresh.
    pub reset_secs: u64,
    /// When refused: seconds (rounded up) until every full window has room.
    pub retry_after_secs: u64,
}

/// Counts requests per key against a policy.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    async fn check(&self, key: &str, policy: &RatePolicy) -> Result<Decision, StoreError>;
}

#[derive(Debug, Clone, Copy)]
struct WindowState {
    started: Instant,
    count: u64,
}

/// Keys not seen for this long are forgotten.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// The limiter of one process: counters in memory.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    counters: Mutex<HashMap<String, Vec<WindowState>>>,
}

/// Whole seconds, rounded up, at least 1: what `Retry-After` may say.
pub fn ceil_secs(duration: Duration) -> u64 {
    let millis = duration.as_millis();
    u64::try_from(millis.div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl MemoryRateLimiter {
    /// The decision at `now` (a parameter so tests need not sleep).
    pub fn check_at(&self, key: &str, policy: &RatePolicy, now: Instant) -> Decision {
        let mut counters = match self.counters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if counters.len() > PRUNE_ABOVE_KEYS {
            let longest = policy
                .windows
                .iter()
                .map(|window| window.length)
                .max()
                .unwrap_or_default();
            counters.retain(|_, states| {
                states
                    .iter()
                    .any(|state| now.duration_since(state.started) < longest)
            });
        }
        let states = counters.entry(key.to_owned()).or_insert_with(|| {
            vec![
                WindowState {
                    started: now,
                    count: 0
                };
                policy.windows.len()
            ]
        });
        states.resize(
            policy.windows.len(),
            WindowState {
                started: now,
                count: 0,
            },
        );
        for (state, window) in states.iter_mut().zip(&policy.windows) {
            if now.duration_since(state.started) >= window.length {
                *state = WindowState {
                    started: now,
                    count: 0,
                };
            }
        }
        let resets: Vec<Duration> = states
            .iter()
            .zip(&policy.windows)
            .map(|(state, window)| (state.started + window.length).saturating_duration_since(now))
            .collect();
        let allowed = states
            .iter()
            .zip(&policy.windows)
            .all(|(state, window)| state.count < window.limit);
        if allowed {
            for state in states.iter_mut() {
                state.count += 1;
            }
        }
        let counts: Vec<u64> = states.iter().map(|state| state.count).collect();
        decide(policy, allowed, &counts, &resets)
    }
}

/// The decision, given whether the request was admitted, each window's
/// count after it and the time until each window resets. Every limiter
/// backend ends here, so all report the same way.
pub fn decide(policy: &RatePolicy, allowed: bool, counts: &[u64], resets: &[Duration]) -> Decision {
    let remaining = |index: usize| {
        policy.windows[index]
            .limit
            .saturating_sub(counts.get(index).copied().unwrap_or(0))
    };
    let reset = |index: usize| resets.get(index).copied().map_or(1, ceil_secs);
    // Report the window with the fewest requests left.
    let tightest = (0..policy.windows.len())
        .min_by_key(|&index| remaining(index))
        .unwrap_or(0);
    let retry_after_secs = if allowed {
        0
    } else {
        (0..policy.windows.len())
            .filter(|&index| remaining(index) == 0)
            .map(reset)
            .max()
            .unwrap_or(1)
    };
    Decision {
        allowed,
        limit: policy
            .windows
            .get(tightest)
            .map_or(0, |window| window.limit),
        remaining: if policy.windows.is_empty() {
            0
        } else {
            remaining(tightest)
        },
        reset_secs: reset(tightest),
        retry_after_secs,
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, policy: &RatePolicy) -> Result<Decision, StoreError> {
        Ok(self.check_at(key, policy, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 per second and 150 per minute (Hood's documented limits).
    fn burst_and_steady() -> RatePolicy {
        RatePolicy {
            windows: vec![
                Window {
                    limit: 10,
                    length: Duration::from_secs(1),
                },
                Window {
                    limit: 150,
                    length: Duration::from_secs(60),
                },
            ],
        }
    }

    #[test]
    fn the_burst_window_lets_ten_through_then_refuses_until_it_resets() {
        let limiter = MemoryRateLimiter::default();
        let policy = burst_and_steady();
        let start = Instant::now();
        let decisions: Vec<Decision> = (0..15)
            .map(|step| limiter.check_at("w", &policy, start + Duration::from_millis(step * 10)))
            .collect();
        assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 10);
        assert_eq!(decisions[0].remaining, 9);
        assert_eq!(decisions[9].remaining, 0);
        assert_eq!(decisions[10].retry_after_secs, 1);
        assert_eq!(decisions[10].limit, 10);
        // A new second: room again; the minute window keeps counting.
        let later = limiter.check_at("w", &policy, start + Duration::from_millis(1_200));
        assert!(later.allowed);
        // Another key is counted apart.
        assert!(limiter.check_at("other", &policy, start).allowed);
    }

    #[test]
    fn the_steady_window_refuses_with_the_time_left_in_it() {
        let limiter = MemoryRateLimiter::default();
        let policy = burst_and_steady();
        let start = Instant::now();
        let mut allowed = 0;
        for second in 0..20u64 {
            for _ in 0..10 {
                let at = start + Duration::from_secs(second);
                if limiter.check_at("w", &policy, at).allowed {
                    allowed += 1;
                }
            }
        }
        assert_eq!(allowed, 150);
        let refused = limiter.check_at("w", &policy, start + Duration::from_secs(20));
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 40);
        assert_eq!((refused.limit, refused.remaining), (150, 0));
    }
}

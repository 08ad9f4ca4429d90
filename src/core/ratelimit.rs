//! Rate limits: one limiter for every surface, each surface with its own
//! policy. A policy is a set of fixed windows (Hood's default: 10 requests
//! per 1 s and 150 per 60 s, per workspace); a request passes only if every
//! window has room, and then counts in all of them.
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
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::error::DomainError;

/// At most `limit` requests per `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub length: Duration,
}

/// The windows a surface's requests must fit in; `windows` is never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatePolicy {
    pub windows: Vec<Window>,
}

impl RatePolicy {
    /// Hood's documented limits: burst 10/s, steady 150/min.
    pub fn hood_default() -> Self {
        Self {
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
}

/// A policy as written on the command line: `off`, or comma-separated
/// `LIMIT/LENGTH` with LENGTH like `1s`, `500ms`, `60s` or `1m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySetting(pub Option<RatePolicy>);

impl FromStr for PolicySetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text.is_empty() {
            return Ok(PolicySetting(None));
        }
        let windows = text
            .split(',')
            .map(parse_window)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicySetting(Some(RatePolicy { windows })))
    }
}

impl fmt::Display for PolicySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("off"),
            Some(policy) => {
                let parts: Vec<String> = policy
                    .windows
                    .iter()
                    .map(|window| format!("{}/{}ms", window.limit, window.length.as_millis()))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

fn parse_window(text: &str) -> Result<Window, String> {
    let invalid = || format!("'{text}' is not LIMIT/LENGTH such as 10/1s or 150/1m");
    let (limit, length) = text.trim().split_once('/').ok_or_else(invalid)?;
    let limit: u64 = limit.trim().parse().map_err(|_| invalid())?;
    let length = length.trim();
    let (number, unit) = length
        .find(|c: char| !c.is_ascii_digit())
        .map(|at| length.split_at(at))
        .ok_or_else(invalid)?;
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let length = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(invalid()),
    };
    if limit == 0 || length.is_zero() {
        return Err(format!("'{text}': limit and length must be above zero"));
    }
    Ok(Window { limit, length })
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
    async fn check(&self, key: &str, policy: &RatePolicy) -> Result<Decision, DomainError>;
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
    async fn check(&self, key: &str, policy: &RatePolicy) -> Result<Decision, DomainError> {
        Ok(self.check_at(key, policy, Instant::now()))
    }
}

/// Each surface's policy; a surface without one is not limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub by_surface: HashMap<&'static str, RatePolicy>,
}

impl RateLimits {
    pub fn policy(&self, surface: &str) -> Option<&RatePolicy> {
        self.by_surface.get(surface)
    }

    pub fn set(&mut self, surface: &'static str, setting: PolicySetting) {
        match setting.0 {
            Some(policy) => {
                self.by_surface.insert(surface, policy);
            }
            None => {
                self.by_surface.remove(surface);
            }
        }
    }
}

impl Default for RateLimits {
    /// Hood's documented limits; the other surfaces are not limited.
    fn default() -> Self {
        Self {
            by_surface: HashMap::from([("hood", RatePolicy::hood_default())]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_reject_nonsense() {
        assert_eq!("off".parse::<PolicySetting>(), Ok(PolicySetting(None)));
        assert_eq!(
            "10/1s,150/1m".parse::<PolicySetting>(),
            Ok(PolicySetting(Some(RatePolicy::hood_default())))
        );
        assert!("10".parse::<PolicySetting>().is_err());
        assert!("0/1s".parse::<PolicySetting>().is_err());
        assert!("5/1y".parse::<PolicySetting>().is_err());
    }

    #[test]
    fn the_burst_window_lets_ten_through_then_refuses_until_it_resets() {
        let limiter = MemoryRateLimiter::default();
        let policy = RatePolicy::hood_default();
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
        let policy = RatePolicy::hood_default();
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

//! Rate limits: which surface gets which policy, as configured. The
//! counting itself (windows, decisions, the in-process and Redis counters)
//! belongs to the store ([`crate::store::ratelimit`]); the [`Limiter`] here
//! puts the two together, keys counters by surface and workspace, and
//! reports a counter failure as a [`DomainError`]. Each surface states its
//! own default policy; nothing here names a surface.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::DomainError;
use crate::store::WorkspaceId;
pub use crate::store::ratelimit::{Decision, RateLimiter, RatePolicy, Window};

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
                    .map(|window| format!("{}/{}", window.limit, length_text(window.length)))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

/// A window length in the largest unit that divides it evenly (`1s`,
/// `1m`, `90s`, `1500ms`), as [`parse_window`] reads it back.
fn length_text(length: Duration) -> String {
    let millis = length.as_millis();
    let units = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    units
        .iter()
        .find(|(size, _)| millis > 0 && millis.is_multiple_of(*size))
        .map_or_else(
            || format!("{millis}ms"),
            |(size, unit)| format!("{}{unit}", millis / size),
        )
}

fn parse_window(text: &str) -> Result<Window, String> {
    let invalid = || format!("'{text}' is not LIMIT/LENGTH such as 10/1s or 150/1m");
    let (limit, length) = text.trim().split_once('/').ok_or_else(invalid)?;
    let limit: u64 = limit.trim().parse().map_err(|_| invalid())?;
    let length = parse_duration(length).map_err(|_| invalid())?;
    if limit == 0 || length.is_zero() {
        return Err(format!("'{text}': limit and length must be above zero"));
    }
    Ok(Window { limit, length })
}

/// A length of time as written in settings: a whole number and a unit,
/// `ms`, `s`, `m` or `h` (`500ms`, `60s`, `24h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("'{text}' is not a time such as 500ms, 60s, 30m or 24h");
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|at| text.split_at(at))
        .ok_or_else(invalid)?;
    let number: u64 = number.parse().map_err(|_| invalid())?;
    Ok(match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(invalid()),
    })
}

/// Each surface's policy; a surface without one is not limited (the
/// default limits none; each surface states its own default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// Each surface's policy over one set of counters: what a request passes
/// once its caller's workspace is known.
#[derive(Clone)]
pub struct Limiter {
    limits: Arc<RateLimits>,
    counters: Arc<dyn RateLimiter>,
    /// Requests refused so far, per limited surface (for `/metrics`); the
    /// map is fixed at construction, so counting takes no lock.
    rejections: Arc<HashMap<&'static str, AtomicU64>>,
}

impl Limiter {
    pub fn new(limits: RateLimits, counters: Arc<dyn RateLimiter>) -> Self {
        let rejections = limits
            .by_surface
            .keys()
            .map(|surface| (*surface, AtomicU64::new(0)))
            .collect();
        Self {
            limits: Arc::new(limits),
            counters,
            rejections: Arc::new(rejections),
        }
    }

    /// Counts one request of `workspace` on `surface` and says whether it
    /// may pass; `None` when the surface is not limited.
    pub async fn check(
        &self,
        surface: &str,
        workspace: &WorkspaceId,
    ) -> Result<Option<Decision>, DomainError> {
        let Some(policy) = self.limits.policy(surface) else {
            return Ok(None);
        };
        let key = format!("{surface}:{workspace}");
        let decision = self.counters.check(&key, policy).await?;
        if !decision.allowed
            && let Some(refused) = self.rejections.get(surface)
        {
            refused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(decision))
    }

    /// Requests refused so far, per limited surface (surfaces without a
    /// limit are left out: they refuse none), by surface name.
    pub fn rejections(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<_> = self
            .rejections
            .iter()
            .map(|(surface, refused)| (*surface, refused.load(Ordering::Relaxed)))
            .collect();
        counts.sort_unstable();
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(windows: &[(u64, u64)]) -> RatePolicy {
        RatePolicy {
            windows: windows
                .iter()
                .map(|&(limit, millis)| Window {
                    limit,
                    length: Duration::from_millis(millis),
                })
                .collect(),
        }
    }

    #[test]
    fn settings_parse_and_reject_nonsense() {
        assert_eq!("off".parse::<PolicySetting>(), Ok(PolicySetting(None)));
        assert_eq!(
            "10/1s,150/1m".parse::<PolicySetting>(),
            Ok(PolicySetting(Some(policy(&[(10, 1_000), (150, 60_000)]))))
        );
        assert!("10".parse::<PolicySetting>().is_err());
        assert!("0/1s".parse::<PolicySetting>().is_err());
        assert!("5/1y".parse::<PolicySetting>().is_err());
    }

    #[test]
    fn settings_print_in_the_largest_whole_unit_and_read_back() {
        let setting = PolicySetting(Some(policy(&[
            (10, 1_000),
            (150, 60_000),
            (5, 1_500),
            (7, 7_200_000),
            (2, 90_000),
        ])));
        let text = setting.to_string();
        assert_eq!(text, "10/1s,150/1m,5/1500ms,7/2h,2/90s");
        assert_eq!(text.parse::<PolicySetting>(), Ok(setting));
        assert_eq!(PolicySetting(None).to_string(), "off");
    }

    #[tokio::test]
    async fn the_limiter_counts_per_surface_and_workspace() {
        let mut limits = RateLimits::default();
        limits.set("hood", PolicySetting(Some(policy(&[(1, 60_000)]))));
        let limiter = Limiter::new(
            limits,
            Arc::new(crate::store::ratelimit::MemoryRateLimiter::default()),
        );
        let acme = WorkspaceId::new("acme");
        let first = limiter.check("hood", &acme).await;
        assert!(matches!(first, Ok(Some(decision)) if decision.allowed));
        let second = limiter.check("hood", &acme).await;
        assert!(matches!(second, Ok(Some(decision)) if !decision.allowed));
        let other = limiter.check("hood", &WorkspaceId::new("other")).await;
        assert!(matches!(other, Ok(Some(decision)) if decision.allowed));
        assert!(matches!(limiter.check("lance", &acme).await, Ok(None)));
    }
}

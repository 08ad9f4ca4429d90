//! The rate limiter shared by every instance: counters in Redis, so that
//! two instances together still admit exactly a workspace's limit.
//!
//! One Lua script checks every window of a policy and, only if all have
//! room, increments them, setting a window's expiry on its first increment.
//! Redis runs scripts atomically, so instances never race between check and
//! increment, and the windows are anchored exactly as in the in-process
//! limiter ([`super::ratelimit`]).
//!
//! If Redis cannot be reached the request is let through and a warning is
//! logged: a rate limiter outage should not take customer records offline.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StoreError;
use super::ratelimit::{Decision, RateLimiter, RatePolicy, decide};

const CHECK_AND_COUNT: &str = r"
local n = #KEYS
local counts = {}
local ttls = {}
local fresh = {}
local allowed = 1
for i = 1, n do
  local length = tonumber(ARGV[n + i])
  local ttl = redis.call('PTTL', KEYS[i])
  local count = 0
  fresh[i] = ttl <= 0
  if fresh[i] then
    ttl = length
  else
    count = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  counts[i] = count
  ttls[i] = ttl
  if count >= tonumber(ARGV[i]) then allowed = 0 end
end
if allowed == 1 then
  for i = 1, n do
    if fresh[i] then
      redis.call('SET', KEYS[i], 0, 'PX', ARGV[n + i])
    end
    counts[i] = redis.call('INCR', KEYS[i])
  end
end
local result = {allowed}
for i = 1, n do result[#result + 1] = counts[i] end
for i = 1, n do result[#result + 1] = ttls[i] end
return result
";

/// Counters in one Redis.
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    script: redis::Script,
}

impl RedisRateLimiter {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`).
    pub async fn connect(url: &str) -> Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|error| format!("invalid Redis URL: {error}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|error| format!("cannot reach Redis: {error}"))?;
        Ok(Self {
            connection,
            script: redis::Script::new(CHECK_AND_COUNT),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, policy: &RatePolicy) -> Result<Decision, StoreError> {
        let windows = policy.windows.len();
        let mut invocation = self.script.prepare_invoke();
        for window in &policy.windows {
            invocation.key(format!(
                "clientele:rl:{key}:{}:{}",
                window.limit,
                window.length.as_millis()
            ));
        }
        for window in &policy.windows {
            invocation.arg(window.limit);
        }
        for window in &policy.windows {
            invocation.arg(u64::try_from(window.length.as_millis()).unwrap_or(u64::MAX));
        }
        let mut connection = self.connection.clone();
        let reply: Result<Vec<i64>, _> = invocation.invoke_async(&mut connection).await;
        match reply {
            Ok(values) if values.len() == 1 + 2 * windows => {
                let allowed = values[0] == 1;
                let counts: Vec<u64> = values[1..=windows]
                    .iter()
                    .map(|count| u64::try_from(*count).unwrap_or(0))
                    .collect();
                let resets: Vec<Duration> = values[1 + windows..]
                    .iter()
                    .map(|ttl| Duration::from_millis(u64::try_from(*ttl).unwrap_or(0)))
                    .collect();
                Ok(decide(policy, allowed, &counts, &resets))
            }
            Ok(values) => {
                tracing::warn!(
                    ?values,
                    "unexpected rate-limit reply from Redis; request let through"
                );
                Ok(open_decision(policy))
            }
            Err(error) => {
                tracing::warn!(%error, "Redis unreachable; request let through without rate limiting");
                Ok(open_decision(policy))
            }
        }
    }
}

/// What to report when the counters cannot be read.
fn open_decision(policy: &RatePolicy) -> Decision {
    let counts = vec![0; policy.windows.len()];
    let resets: Vec<Duration> = policy.windows.iter().map(|window| window.length).collect();
    decide(policy, true, &counts, &resets)
}

//! Idempotency keys (the IETF httpapi draft's `Idempotency-Key`, as Stripe
//! uses it): a client that retries a write with the same key gets the first
//! attempt's response again, and nothing is written twice. The response is
//! kept in the write's own transaction (see [`super::records::Keeper`]), so
//! a crash can never leave a write without its key or a key without its
//! write; while the first attempt runs, the key is claimed, and a second
//! attempt gets [`DomainError::IdempotencyKeyInUse`]. A key sent again with
//! another request is [`DomainError::IdempotencyKeyReused`]. Only writes
//! that succeed are kept: a request that failed changed nothing and may be
//! retried under its key. Keys expire after a configured time.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::auth::Principal;
use super::error::DomainError;
use crate::store::{Claim, Kept, SharedStore};
pub use crate::store::{IdempotencyKey, KeptResponse};

/// How long a kept response answers retries, unless configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 255;
/// Keys deleted per purge statement, so a purge never holds the writer long.
const PURGE_BATCH: u32 = 1_000;

/// The keys of one store.
#[derive(Clone)]
pub struct Idempotency {
    store: SharedStore,
    ttl: Duration,
    /// How long a claim stands before a retry may take it over (its request
    /// can run no longer than the request timeout).
    lease: Duration,
}

/// What a request under a key does.
pub enum Begin {
    /// Nobody used the key: run, and keep the response with the write.
    Run(Run),
    /// The key answered this same request before: send that again.
    Replay(KeptResponse),
}

/// A claimed key, released when dropped unless its response was kept.
pub struct Run {
    key: IdempotencyKey,
    fingerprint: String,
    store: SharedStore,
    /// Whether the answer waits for the release (not once the response is
    /// kept: a retry then finds the kept response, whatever the claim).
    answer_waits: bool,
}

impl Idempotency {
    pub fn new(store: SharedStore, ttl: Duration, lease: Duration) -> Self {
        Self { store, ttl, lease }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key of `principal`'s request (keys are per caller: per API key,
    /// or per user for JWTs), or why it is not one.
    pub fn key_of(principal: &Principal, key: &str) -> Result<IdempotencyKey, String> {
        let length = key.chars().count();
        if length == 0 || length > MAX_KEY_CHARS {
            return Err(format!(
                "Idempotency-Key must have 1 to {MAX_KEY_CHARS} characters; this one has {length}"
            ));
        }
        // Visible ASCII and inner spaces, as the document states: a tab or
        // a control character is some other program's mistake.
        let visible = |c: char| ('!'..='~').contains(&c);
        let allowed = key.chars().all(|c| c == ' ' || visible(c))
            && key.starts_with(visible)
            && key.ends_with(visible);
        if !allowed {
            return Err(
                "Idempotency-Key must be visible ASCII characters (spaces only between them)"
                    .to_owned(),
            );
        }
        Ok(IdempotencyKey {
            workspace: principal.workspace.clone(),
            caller: match &principal.key_id {
                Some(key_id) => format!("key:{key_id}"),
                None => format!("user:{}", principal.user_id),
            },
            key: key.to_owned(),
        })
    }

    /// The fingerprint of a request: its method, path and body.
    pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
        let mut hash = Sha256::new();
        for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
            hash.update(part);
        }
        hex::encode(hash.finalize())
    }

    /// Claims `key` for a request with `fingerprint`, or says what the key
    /// already holds.
    pub async fn begin(
        &self,
        key: IdempotencyKey,
        fingerprint: String,
    ) -> Result<Begin, DomainError> {
        let now = Utc::now();
        let since = now - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let stale_before =
            now - chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX);
        match self
            .store
            .idempotency_claim(&key, &fingerprint, since, stale_before)
            .await?
        {
            Claim::Claimed => Ok(Begin::Run(Run {
                key,
                fingerprint,
                store: self.store.clone(),
                answer_waits: true,
            })),
            Claim::Taken(Kept {
                fingerprint: first, ..
            }) if first != fingerprint => Err(DomainError::IdempotencyKeyReused),
            Claim::Taken(Kept {
                response: Some(response),
                ..
            }) => Ok(Begin::Replay(response)),
            Claim::Taken(Kept { response: None, .. }) => Err(DomainError::IdempotencyKeyInUse),
        }
    }

    /// Deletes the keys that expired, a batch at a time; how many.
    pub async fn purge_expired(&self) -> Result<u64, DomainError> {
        let before =
            Utc::now() - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let mut purged = 0;
        loop {
            let deleted = self.store.idempotency_purge(before, PURGE_BATCH).await?;
            purged += deleted;
            if deleted < u64::from(PURGE_BATCH) {
                return Ok(purged);
            }
            // Let the writes waiting behind this batch go first.
            tokio::task::yield_now().await;
        }
    }

    /// Purges expired keys every `every`, until the process ends. Errors are
    /// logged and the next round tries again: a late purge only keeps keys
    /// longer, which lookups already ignore once expired.
    pub async fn purge_forever(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
                Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
            }
        }
    }
}

impl Run {
    /// Ends a claim whose response was kept with the write: its release is
    /// housekeeping, and the answer need not wait for it.
    pub fn kept(mut self) {
        self.answer_waits = false;
    }

    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

tokio::task_local! {
    /// Releases of claims started while handling the current request.
    static RELEASES: std::cell::RefCell<Vec<tokio::task::JoinHandle<()>>>;
}

/// Runs a request's handling, then waits for the claims it gave up to be
/// released, so that its answer is sent only once the key is free again: a
/// client that retries at once, after a failed write, must not find the
/// key still held. (A request that is cancelled does not wait.)
pub async fn releasing_claims<T>(handling: impl std::future::Future<Output = T>) -> T {
    RELEASES
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let answer = handling.await;
            let releases = RELEASES.with(|releases| std::mem::take(&mut *releases.borrow_mut()));
            for release in releases {
                let _ = release.await;
            }
            answer
        })
        .await
}

impl Drop for Run {
    /// The claim ends with its request: either the response was kept (and
    /// the claim is moot) or nothing was written and a retry may run. The
    /// release starts here; inside [`releasing_claims`] the answer waits
    /// for it.
    fn drop(&mut self) {
        let (store, key) = (self.store.clone(), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let release = runtime.spawn(async move {
                if let Err(error) = store.idempotency_release(&key).await {
                    tracing::warn!(%error, "releasing an idempotency key failed");
                }
            });
            // Outside a request (no scope) the release just runs on.
            if self.answer_waits {
                let _ = RELEASES.try_with(|releases| releases.borrow_mut().push(release));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::{Role, WorkspaceId};

    fn caller(key_id: Option<&str>) -> Principal {
        Principal {
            workspace: WorkspaceId::new("w"),
            user_id: "u".into(),
            role: Role::Member,
            key_id: key_id.map(str::to_owned),
            request_id: String::new(),
            client_request_id: None,
        }
    }

    #[test]
    fn keys_are_per_caller_and_bounded() {
        let by_key = Idempotency::key_of(&caller(Some("key_1")), "k").expect("a key");
        let by_user = Idempotency::key_of(&caller(None), "k").expect("a key");
        assert_ne!(by_key, by_user);
        assert!(Idempotency::key_of(&caller(None), &"x".repeat(255)).is_ok());
        assert!(Idempotency::key_of(&caller(None), &"x".repeat(256)).is_err());
        assert!(Idempotency::key_of(&caller(None), "").is_err());
        assert!(Idempotency::key_of(&caller(None), "a b").is_ok());
        assert!(Idempotency::key_of(&caller(None), "a\tb").is_err());
        assert!(Idempotency::key_of(&caller(None), " a").is_err());
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        let base = Idempotency::fingerprint("PATCH", "/a", b"{}");
        assert_eq!(base, Idempotency::fingerprint("PATCH", "/a", b"{}"));
        assert_ne!(base, Idempotency::fingerprint("POST", "/a", b"{}"));
        assert_ne!(base, Idempotency::fingerprint("PATCH", "/b", b"{}"));
        assert_ne!(base, Idempotency::fingerprint("PATCH", "/a", b"{ }"));
    }
}

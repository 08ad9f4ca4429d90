//! What the store keeps for an idempotency key: the types shared by the
//! SQLite and PostgreSQL implementations of the key methods of
//! [`super::Store`] and [`super::WriteTx`]. The rules (who may reuse a key,
//! what a retry gets) are the core's; a response is kept here as opaque
//! bytes, never read as a wire format.

use chrono::{DateTime, Utc};

use super::WorkspaceId;

/// A key as one caller sent it: keys of different callers never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub workspace: WorkspaceId,
    /// The API key's id, or the JWT's user.
    pub caller: String,
    pub key: String,
}

/// A response kept to be replayed: status, the headers that matter, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The fingerprint of the request that first used the key.
    pub fingerprint: String,
    pub started_at: DateTime<Utc>,
    /// `None` while that request runs.
    pub response: Option<KeptResponse>,
}

/// The outcome of claiming a key for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's until it completes or releases it.
    Claimed,
    /// Another request holds the key (or already answered under it).
    Taken(Kept),
}

/// Headers as stored: a JSON array of `[name, value]` pairs.
pub(super) fn headers_to_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn headers_from_json(text: &str) -> Result<Vec<(String, String)>, super::StoreError> {
    serde_json::from_str(text)
        .map_err(|error| super::StoreError::Other(format!("stored response headers: {error}")))
}

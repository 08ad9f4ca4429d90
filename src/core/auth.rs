//! Who is calling: workspaces, principals and their roles, API keys (shown
//! once, stored as SHA-256 hashes) and JWTs verified with a configured key.
//! Nothing here knows how a token travels over HTTP.

use std::sync::Arc;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::DomainError;
/// The tenant every record belongs to; defined by the store, which requires
/// one on every query.
pub use crate::store::WorkspaceId;
use crate::store::{ApiKeyRecord, SharedStore, StoreError, StoredRole};

/// What a caller may do inside its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees and changes the records that list it among their users.
    Member,
    /// Sees and changes every record of the workspace.
    Admin,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub workspace: WorkspaceId,
    /// A Clerk-style user id such as `user_abc123`.
    pub user_id: String,
    pub role: Role,
    /// The API key used, when the caller used one (not for JWTs).
    pub key_id: Option<String>,
    /// The request this caller made, for the audit trail: the server's id
    /// of it, never one the caller chose (set by the HTTP layer; empty
    /// elsewhere).
    pub request_id: String,
    /// The id the caller gave the request itself (its `X-Request-Id`),
    /// recorded beside [`Principal::request_id`] for tracing: it is the
    /// caller's word, so it identifies nothing on its own.
    pub client_request_id: Option<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A new API key: the token is shown to its owner once and never stored.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub token: String,
}

const TOKEN_PREFIX: &str = "clt_";
/// Workspace names and user ids: printable, no spaces, bounded.
const MAX_NAME_CHARS: usize = 128;

/// The SHA-256 of a token, hex encoded. API keys carry 256 random bits, so
/// a fast hash is enough: there is nothing to brute-force that a slow hash
/// would protect, and a lookup by hash compares no secret in user space.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a workspace name or user id given on the command line.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("{what} must have 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} must not contain spaces or control characters"
        ));
    }
    Ok(())
}

/// Creates a key for `user_id` in `workspace` (creating the workspace if it
/// is new) and returns it with its one-time token.
pub async fn issue_api_key(
    store: &SharedStore,
    workspace: &WorkspaceId,
    user_id: &str,
    role: Role,
) -> Result<IssuedKey, StoreError> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let mut id_bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut id_bytes);
    let record = ApiKeyRecord {
        id: format!("key_{}", hex::encode(id_bytes)),
        workspace: workspace.clone(),
        user_id: user_id.to_owned(),
        role: match role {
            Role::Member => StoredRole::Member,
            Role::Admin => StoredRole::Admin,
        },
        token_hash: hash_token(&token),
        token_prefix: token.chars().take(TOKEN_PREFIX.len() + 6).collect(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.ensure_workspace(workspace).await?;
    store.insert_api_key(&record).await?;
    Ok(IssuedKey { record, token })
}

/// How JWTs are verified, and which claims carry the workspace and role.
#[derive(Clone)]
pub struct JwtSettings {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
    /// Claim (dotted path, e.g. `o.id`) holding the workspace id.
    pub workspace_claim: String,
    /// Claim (dotted path) holding the role.
    pub role_claim: String,
    /// Role claim values that make the caller an admin.
    pub admin_roles: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl JwtSettings {
    /// Builds the decoding key: for HS256 `key` is the shared secret; for
    /// RS256 and ES256 it is a PEM public key.
    pub fn decoding_key(algorithm: Algorithm, key: &[u8]) -> Result<DecodingKey, String> {
        match algorithm {
            Algorithm::HS256 => Ok(DecodingKey::from_secret(key)),
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key)
                .map_err(|error| format!("invalid RSA public key: {error}")),
            Algorithm::ES256 => DecodingKey::from_ec_pem(key)
                .map_err(|error| format!("invalid EC public key: {error}")),
            other => Err(format!("unsupported JWT algorithm {other:?}")),
        }
    }
}

/// How long a looked-up API key is trusted without asking the database
/// again: a revocation takes effect within this time. Every request reading
/// the key table was the largest cost of a GET.
pub const DEFAULT_KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Cached keys at most; the cache is emptied when full (keys are few).
const KEY_CACHE_ENTRIES: usize = 10_000;

type KeyCache =
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ApiKeyRecord)>>;

impl Authenticator {
    async fn find_key(&self, token_hash: &str) -> Result<Option<ApiKeyRecord>, DomainError> {
        if !self.key_cache_ttl.is_zero()
            && let Ok(cache) = self.keys.lock()
            && let Some((read_at, key)) = cache.get(token_hash)
            && read_at.elapsed() < self.key_cache_ttl
        {
            return Ok(Some(key.clone()));
        }
        let key = self.store.find_api_key(token_hash).await?;
        if !self.key_cache_ttl.is_zero()
            && let Ok(mut cache) = self.keys.lock()
        {
            match &key {
                Some(found) if found.revoked_at.is_none() => {
                    if cache.len() >= KEY_CACHE_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(
                        token_hash.to_owned(),
                        (std::time::Instant::now(), found.clone()),
                    );
                }
                _ => {
                    cache.remove(token_hash);
                }
            }
        }
        Ok(key)
    }
}

/// Turns a bearer token into a [`Principal`], or says why it cannot.
#[derive(Clone)]
pub struct Authenticator {
    store: SharedStore,
    jwt: Option<Arc<JwtSettings>>,
    key_cache_ttl: std::time::Duration,
    /// Active keys by token hash, with when they were read. Only keys that
    /// exist are cached, so garbage tokens cannot fill it.
    keys: Arc<KeyCache>,
}

impl Authenticator {
    pub fn new(store: SharedStore, jwt: Option<JwtSettings>) -> Self {
        Self::with_key_cache(store, jwt, DEFAULT_KEY_CACHE_TTL)
    }

    /// Like [`Authenticator::new`]; `key_cache_ttl` zero turns the cache off.
    pub fn with_key_cache(
        store: SharedStore,
        jwt: Option<JwtSettings>,
        key_cache_ttl: std::time::Duration,
    ) -> Self {
        Self {
            store,
            jwt: jwt.map(Arc::new),
            key_cache_ttl,
            keys: Arc::default(),
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, DomainError> {
        if token.is_empty() {
            return Err(DomainError::Unauthenticated("Missing bearer token".into()));
        }
        if let Some(jwt) = &self.jwt
            && looks_like_jwt(token)
        {
            return verify_jwt(jwt, token);
        }
        let key = self.find_key(&hash_token(token)).await?;
        match key {
            Some(key) if key.revoked_at.is_none() => Ok(Principal {
                workspace: key.workspace,
                user_id: key.user_id,
                role: match key.role {
                    StoredRole::Member => Role::Member,
                    StoredRole::Admin => Role::Admin,
                },
                key_id: Some(key.id),
                request_id: String::new(),
                client_request_id: None,
            }),
            Some(_) => Err(DomainError::Unauthenticated(
                "API key has been revoked".into(),
            )),
            None => Err(DomainError::Unauthenticated("Invalid API key".into())),
        }
    }
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

fn claim<'a>(claims: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(claims, |value, segment| value.get(segment))
}

fn verify_jwt(settings: &JwtSettings, token: &str) -> Result<Principal, DomainError> {
    let mut validation = Validation::new(settings.algorithm);
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &settings.issuer {
        Some(issuer) => validation.set_issuer(&[issuer]),
        None => validation.iss = None,
    }
    match &settings.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    let data = jsonwebtoken::decode::<Value>(token, &settings.key, &validation)
        .map_err(|error| DomainError::Unauthenticated(format!("Invalid token: {error}")))?;
    let claims = data.claims;
    let user_id = claim(&claims, "sub")
        .and_then(Value::as_str)
        .filter(|sub| check_name("sub", sub).is_ok())
        .ok_or_else(|| DomainError::Unauthenticated("Token has no valid 'sub' claim".into()))?;
    let workspace = claim(&claims, &settings.workspace_claim)
        .and_then(Value::as_str)
        .filter(|workspace| check_name("workspace", workspace).is_ok())
        .ok_or_else(|| {
            DomainError::Unauthenticated(format!(
                "Token has no valid '{}' claim naming a workspace",
                settings.workspace_claim
            ))
        })?;
    let is_admin = claim(&claims, &settings.role_claim)
        .and_then(Value::as_str)
        .is_some_and(|role| settings.admin_roles.iter().any(|admin| admin == role));
    Ok(Principal {
        workspace: WorkspaceId::new(workspace),
        user_id: user_id.to_owned(),
        role: if is_admin { Role::Admin } else { Role::Member },
        key_id: None,
        request_id: String::new(),
        client_request_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn settings() -> JwtSettings {
        JwtSettings {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(b"secret"),
            workspace_claim: "o.id".into(),
            role_claim: "o.rol".into(),
            admin_roles: vec!["admin".into()],
            issuer: None,
            audience: None,
        }
    }

    fn sign(claims: Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap_or_default()
    }

    #[test]
    fn jwt_claims_give_user_workspace_and_role() {
        let exp = Utc::now().timestamp() + 60;
        let token = sign(json!({"sub": "user_1", "exp": exp, "o": {"id": "acme", "rol": "admin"}}));
        let principal = verify_jwt(&settings(), &token).expect("valid token");
        assert_eq!(principal.user_id, "user_1");
        assert_eq!(principal.workspace.as_str(), "acme");
        assert_eq!(principal.role, Role::Admin);
    }

    #[test]
    fn jwt_without_workspace_or_expired_is_refused() {
        let exp = Utc::now().timestamp() + 60;
        let no_workspace = sign(json!({"sub": "user_1", "exp": exp}));
        assert!(matches!(
            verify_jwt(&settings(), &no_workspace),
            Err(DomainError::Unauthenticated(_))
        ));
        let expired = sign(json!({"sub": "u", "exp": 1_000, "o": {"id": "acme"}}));
        assert!(matches!(
            verify_jwt(&settings(), &expired),
            Err(DomainError::Unauthenticated(_))
        ));
    }

    #[test]
    fn names_must_be_printable_and_bounded() {
        assert!(check_name("workspace", "default").is_ok());
        assert!(check_name("workspace", "").is_err());
        assert!(check_name("workspace", "a b").is_err());
        assert!(check_name("workspace", &"x".repeat(129)).is_err());
    }
}

//! Who is calling: workspaces, principals and their roles, API keys (shown
//! once, stored as SHA-256 hashes) and JWTs verified with a configured key.
//! Nothing here knows how a token travels over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
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

/// Seconds of clock difference between a token's issuer and this server
/// forgiven on `exp`, `nbf` and `iat`: enough for NTP-synchronised clocks,
/// far less than the library's 60 s, which kept expired tokens working for
/// a minute.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 5;
/// Longest `exp − iat` accepted by default: a day, the longest access-token
/// lifetime common identity providers issue by default (Clerk's session
/// tokens live a minute, Auth0's access tokens a day). A stolen token should
/// not work for months because its issuer was careless.
pub const DEFAULT_JWT_MAX_LIFETIME_SECS: u64 = 86_400;

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
    /// Clock skew forgiven on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Longest accepted `exp − iat`, in seconds; `None`: no maximum. With a
    /// maximum, `iat` is required: a token without it could not be bounded.
    pub max_lifetime_secs: Option<u64>,
}

/// Shortest HS256 secret accepted: RFC 7518 §3.2 requires a key at least as
/// long as the hash output (256 bits), and a shorter one can be guessed
/// offline from any token it signed.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

impl JwtSettings {
    /// Builds the decoding key: for HS256 `key` is the shared secret; for
    /// RS256 and ES256 it is a PEM public key. A key that could never
    /// verify a token is refused here, at start, rather than making every
    /// token's signature "not verify".
    pub fn decoding_key(algorithm: Algorithm, key: &[u8]) -> Result<DecodingKey, String> {
        match algorithm {
            Algorithm::HS256 if key.len() < MIN_HS256_SECRET_BYTES => Err(format!(
                "an HS256 secret must have at least {MIN_HS256_SECRET_BYTES} bytes (RFC 7518 \
                 section 3.2); this one has {}",
                key.len()
            )),
            Algorithm::HS256 => Ok(DecodingKey::from_secret(key)),
            // The library also loads an RSA private key as a "public" one;
            // only a key it can read as a public key will ever verify.
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key)
                .ok()
                .filter(|decoding| Jwk::from_decoding_key(decoding, Some(algorithm)).is_ok())
                .ok_or_else(|| {
                    "not an RSA public key in PEM form (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY)"
                        .to_owned()
                }),
            // The library also loads a P-384 key, which cannot verify ES256;
            // building a verifier (with an empty signature) reads the key.
            Algorithm::ES256 => DecodingKey::from_ec_pem(key)
                .ok()
                .filter(|decoding| {
                    jsonwebtoken::crypto::verify("", b"", decoding, Algorithm::ES256).is_ok()
                })
                .ok_or_else(|| "not a P-256 public key in PEM form (BEGIN PUBLIC KEY)".to_owned()),
            other => Err(format!(
                "JWT algorithm {} is not supported; use HS256, RS256 or ES256",
                jwa_name(other)
            )),
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
            self.cache_counts.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(key.clone()));
        }
        self.cache_counts.misses.fetch_add(1, Ordering::Relaxed);
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
    /// How often the cache answered, for `/metrics`.
    cache_counts: Arc<KeyCacheCounts>,
}

/// API key lookups answered by the cache (`hits`) and by the database
/// (`misses`: not cached, expired, or the cache is off). JWTs are not
/// looked up and count as neither.
#[derive(Debug, Default)]
pub struct KeyCacheCounts {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
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
            cache_counts: Arc::default(),
        }
    }

    /// API key lookups answered by the cache and by the database so far:
    /// `(hits, misses)`.
    pub fn key_cache_counts(&self) -> (u64, u64) {
        (
            self.cache_counts.hits.load(Ordering::Relaxed),
            self.cache_counts.misses.load(Ordering::Relaxed),
        )
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

fn unauthenticated(message: impl Into<String>) -> DomainError {
    DomainError::Unauthenticated(message.into())
}

fn verify_jwt(settings: &JwtSettings, token: &str) -> Result<Principal, DomainError> {
    verify_jwt_at(settings, token, Utc::now().timestamp())
}

/// [`verify_jwt`] at a given time (seconds since 1970), so tests can place
/// a token exactly at the edges of its validity.
fn verify_jwt_at(settings: &JwtSettings, token: &str, now: i64) -> Result<Principal, DomainError> {
    check_header(settings, token)?;
    let claims = verify_signature(settings, token)?;
    check_times(settings, &claims, now)?;
    principal_from_claims(settings, &claims)
}

const MALFORMED: &str = "Token is malformed";

/// How the JWA registry spells an algorithm, as a token's `alg` names it.
fn jwa_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // The enum is non-exhaustive; the name only appears in messages.
        _ => "the configured algorithm",
    }
}

/// The token's header, read by us before any cryptography: its `alg` must
/// be the configured one, so `none` and an HS256 token "signed" with our
/// public key never reach a verifier, and it must list no `crit`
/// extension: this server implements none, and RFC 7515 §4.1.11 says a
/// token with a critical extension the recipient does not understand is
/// invalid (the library ignores `crit`).
fn check_header(settings: &JwtSettings, token: &str) -> Result<(), DomainError> {
    let header = token
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| unauthenticated(MALFORMED))?;
    let accepted = jwa_name(settings.algorithm);
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| unauthenticated("Token header names no algorithm ('alg')"))?;
    if alg != accepted {
        // The token's own name is repeated only when it is a plain word, so
        // a message never carries arbitrary text from the token.
        let named =
            if !alg.is_empty() && alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                format!("{alg} ")
            } else {
                String::new()
            };
        return Err(unauthenticated(format!(
            "Token algorithm {named}is not accepted; this server accepts {accepted}"
        )));
    }
    if header.get("crit").is_some() {
        return Err(unauthenticated(
            "Token header lists critical extensions ('crit'); this server supports none",
        ));
    }
    Ok(())
}

/// What the library's error says about the token, in our words: its own
/// messages name enum variants, list algorithms and give base64 offsets.
fn describe(settings: &JwtSettings, error: &jsonwebtoken::errors::Error) -> DomainError {
    match error.kind() {
        ErrorKind::InvalidSignature => unauthenticated("Token signature does not verify"),
        ErrorKind::InvalidIssuer => unauthenticated("Token issuer is not accepted"),
        ErrorKind::InvalidAudience => unauthenticated("Token audience is not accepted"),
        // Only `iss` and `aud` are required through the library, so the name
        // is one of ours; it is also reported for a value of the wrong type.
        ErrorKind::MissingRequiredClaim(name) => {
            unauthenticated(format!("Token has no valid '{name}' claim"))
        }
        // check_header refuses other algorithms first; kept for safety.
        ErrorKind::InvalidAlgorithm => unauthenticated(format!(
            "Token algorithm is not accepted; this server accepts {}",
            jwa_name(settings.algorithm)
        )),
        // Our key, not the token, is at fault: a 500, detail in the log.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::MissingAlgorithm => {
            DomainError::Internal(format!("the configured JWT key cannot verify: {error}"))
        }
        _ => unauthenticated(MALFORMED),
    }
}

/// Checks the signature (and `iss`, `aud` when configured) with the
/// library and returns the claims. The time claims are left to
/// [`check_times`]: one clock, one set of rules, and messages in our words.
fn verify_signature(settings: &JwtSettings, token: &str) -> Result<Value, DomainError> {
    let mut validation = Validation::new(settings.algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // exp and sub are required by our own checks; iss and aud by the
    // library when configured, since it compares them only when present: a
    // token leaving its issuer out would otherwise pass an issuer check.
    validation.required_spec_claims.clear();
    match &settings.issuer {
        Some(issuer) => {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        None => validation.iss = None,
    }
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    let claims = jsonwebtoken::decode::<Value>(token, &settings.key, &validation)
        .map_err(|error| describe(settings, &error))?
        .claims;
    if !claims.is_object() {
        return Err(unauthenticated(MALFORMED));
    }
    Ok(claims)
}

/// A NumericDate claim (seconds since 1970; RFC 7519 allows fractions), if
/// present.
fn numeric_date(claims: &Value, name: &str) -> Result<Option<f64>, DomainError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| {
            unauthenticated(format!(
                "Token claim '{name}' must be a number of seconds since 1970"
            ))
        }),
    }
}

/// `exp` (required), `nbf` and `iat`, each with the configured leeway, and
/// the lifetime `exp − iat` against the configured maximum. RFC 7519: a
/// token is invalid on or after `exp`, and before `nbf`.
fn check_times(settings: &JwtSettings, claims: &Value, now: i64) -> Result<(), DomainError> {
    let now = now as f64;
    let leeway = settings.leeway_secs as f64;
    let exp =
        numeric_date(claims, "exp")?.ok_or_else(|| unauthenticated("Token has no 'exp' claim"))?;
    if now >= exp + leeway {
        return Err(unauthenticated("Token has expired"));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now + leeway < nbf
    {
        return Err(unauthenticated("Token is not valid yet"));
    }
    let iat = numeric_date(claims, "iat")?;
    // An issue time in the future would let a token dodge the lifetime
    // bound (iat just before a far exp), and no honest issuer writes one.
    if let Some(iat) = iat
        && iat > now + leeway
    {
        return Err(unauthenticated("Token was issued in the future ('iat')"));
    }
    if let Some(max) = settings.max_lifetime_secs {
        // Without `iat` the lifetime is unknown; accepting such tokens
        // would let any issuer skip the bound by leaving the claim out.
        let iat = iat.ok_or_else(|| {
            unauthenticated(format!(
                "Token has no 'iat' claim; this server requires one to limit token lifetime to {max} s"
            ))
        })?;
        if exp - iat > max as f64 {
            return Err(unauthenticated(format!("Token lifetime exceeds {max} s")));
        }
    }
    Ok(())
}

fn principal_from_claims(settings: &JwtSettings, claims: &Value) -> Result<Principal, DomainError> {
    let user_id = claim(claims, "sub")
        .and_then(Value::as_str)
        .filter(|sub| check_name("sub", sub).is_ok())
        .ok_or_else(|| DomainError::Unauthenticated("Token has no valid 'sub' claim".into()))?;
    let workspace = claim(claims, &settings.workspace_claim)
        .and_then(Value::as_str)
        .filter(|workspace| check_name("workspace", workspace).is_ok())
        .ok_or_else(|| {
            DomainError::Unauthenticated(format!(
                "Token has no valid '{}' claim naming a workspace",
                settings.workspace_claim
            ))
        })?;
    let is_admin = claim(claims, &settings.role_claim)
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

    /// A fixed "now" (2026-01-01T00:00:00Z), so tokens sit exactly at the
    /// edges of their validity.
    const NOW: i64 = 1_767_225_600;

    fn settings() -> JwtSettings {
        JwtSettings {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(b"secret"),
            workspace_claim: "o.id".into(),
            role_claim: "o.rol".into(),
            admin_roles: vec!["admin".into()],
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            max_lifetime_secs: Some(DEFAULT_JWT_MAX_LIFETIME_SECS),
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

    /// Claims of a valid token issued at `NOW` for an hour, with `extra`
    /// merged in (a `null` in `extra` removes the claim).
    fn claims_with(extra: Value) -> Value {
        let mut claims =
            json!({"sub": "user_1", "iat": NOW, "exp": NOW + 3600, "o": {"id": "acme"}});
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            for (name, value) in extra {
                if value.is_null() {
                    claims.remove(name);
                } else {
                    claims.insert(name.clone(), value.clone());
                }
            }
        }
        claims
    }

    fn refusal(settings: &JwtSettings, claims: Value) -> String {
        refusal_of(settings, &sign(claims))
    }

    /// The 401 message for `token`, checked to carry none of the library's
    /// own words (enum variant names, algorithm lists, base64 or JSON
    /// positions).
    fn refusal_of(settings: &JwtSettings, token: &str) -> String {
        let message = match verify_jwt_at(settings, token, NOW) {
            Err(DomainError::Unauthenticated(message)) => message,
            other => panic!("expected a 401, got {other:?}"),
        };
        for internal in [
            "Signature",
            "Algorithm",
            "Base64",
            "JSON",
            "column",
            "offset",
            "Invalid token",
            "[",
        ] {
            assert!(
                !message.contains(internal),
                "{message:?} contains {internal:?}"
            );
        }
        message
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `header.payload` signed with the test secret, whatever they hold.
    fn sign_raw(header: &str, payload: &str) -> String {
        signed_message(&format!("{}.{}", b64(header), b64(payload)))
    }

    /// `message` (the token's first two parts, as sent) with a valid
    /// signature appended.
    fn signed_message(message: &str) -> String {
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(b"secret"),
            Algorithm::HS256,
        )
        .unwrap_or_default();
        format!("{message}.{signature}")
    }

    #[test]
    fn jwt_claims_give_user_workspace_and_role() {
        let token = sign(claims_with(json!({"o": {"id": "acme", "rol": "admin"}})));
        let principal = verify_jwt_at(&settings(), &token, NOW).expect("valid token");
        assert_eq!(principal.user_id, "user_1");
        assert_eq!(principal.workspace.as_str(), "acme");
        assert_eq!(principal.role, Role::Admin);
    }

    #[test]
    fn jwt_without_workspace_is_refused() {
        assert_eq!(
            refusal(&settings(), claims_with(json!({"o": null}))),
            "Token has no valid 'o.id' claim naming a workspace"
        );
    }

    #[test]
    fn jwt_expiry_is_checked_with_the_leeway_only() {
        let settings = settings();
        // Within the 5 s leeway: accepted; at it or beyond: expired.
        assert!(verify_jwt_at(&settings, &sign(claims_with(json!({"exp": NOW - 4}))), NOW).is_ok());
        for exp in [NOW - 5, NOW - 6, NOW - 59, 1_000] {
            assert_eq!(
                refusal(&settings, claims_with(json!({"exp": exp}))),
                "Token has expired",
                "exp {exp}"
            );
        }
        let strict = JwtSettings {
            leeway_secs: 0,
            ..self::settings()
        };
        assert_eq!(
            refusal(&strict, claims_with(json!({"exp": NOW}))),
            "Token has expired",
            "RFC 7519: invalid on or after exp"
        );
        assert_eq!(
            refusal(&settings, claims_with(json!({"exp": null}))),
            "Token has no 'exp' claim"
        );
        assert_eq!(
            refusal(&settings, claims_with(json!({"exp": "tomorrow"}))),
            "Token claim 'exp' must be a number of seconds since 1970"
        );
    }

    #[test]
    fn jwt_not_before_is_checked_with_the_leeway() {
        let settings = settings();
        for nbf in [NOW - 3600, NOW, NOW + 5] {
            let token = sign(claims_with(json!({"nbf": nbf})));
            assert!(verify_jwt_at(&settings, &token, NOW).is_ok(), "nbf {nbf}");
        }
        for nbf in [NOW + 6, NOW + 3600] {
            assert_eq!(
                refusal(&settings, claims_with(json!({"nbf": nbf}))),
                "Token is not valid yet",
                "nbf {nbf}"
            );
        }
        assert_eq!(
            refusal(&settings, claims_with(json!({"nbf": "soon"}))),
            "Token claim 'nbf' must be a number of seconds since 1970"
        );
    }

    #[test]
    fn jwt_lifetime_is_bounded_and_needs_iat() {
        let settings = JwtSettings {
            max_lifetime_secs: Some(600),
            ..settings()
        };
        let exactly = sign(claims_with(json!({"exp": NOW + 600})));
        assert!(verify_jwt_at(&settings, &exactly, NOW).is_ok());
        assert_eq!(
            refusal(&settings, claims_with(json!({"exp": NOW + 601}))),
            "Token lifetime exceeds 600 s"
        );
        // Issued long ago, short-lived, still valid: the bound is exp − iat.
        let old = sign(claims_with(json!({"iat": NOW - 500, "exp": NOW + 100})));
        assert!(verify_jwt_at(&settings, &old, NOW).is_ok());
        assert_eq!(
            refusal(&settings, claims_with(json!({"iat": null}))),
            "Token has no 'iat' claim; this server requires one to limit token lifetime to 600 s"
        );
        // An iat in the future cannot shorten the apparent lifetime.
        assert_eq!(
            refusal(
                &settings,
                claims_with(json!({"iat": NOW + 1_000_000, "exp": NOW + 1_000_100}))
            ),
            "Token was issued in the future ('iat')"
        );
        assert!(
            verify_jwt_at(
                &settings,
                &sign(claims_with(json!({"iat": NOW + 5, "exp": NOW + 605}))),
                NOW
            )
            .is_ok(),
            "within the leeway"
        );
        // Fractional NumericDates are allowed (RFC 7519).
        let fractional = sign(claims_with(
            json!({"iat": NOW as f64 + 0.5, "exp": NOW as f64 + 600.5}),
        ));
        assert!(verify_jwt_at(&settings, &fractional, NOW).is_ok());
    }

    #[test]
    fn without_a_maximum_iat_is_optional_and_lifetime_unbounded() {
        let settings = JwtSettings {
            max_lifetime_secs: None,
            ..settings()
        };
        let forever = sign(claims_with(
            json!({"iat": null, "exp": NOW + 10 * 365 * 86_400}),
        ));
        assert!(verify_jwt_at(&settings, &forever, NOW).is_ok());
    }

    #[test]
    fn only_the_configured_algorithm_is_accepted() {
        let settings = settings();
        let claims = claims_with(json!({})).to_string();
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
        assert_eq!(
            refusal_of(&settings, &unsigned),
            "Token algorithm none is not accepted; this server accepts HS256"
        );
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims_with(json!({})),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap_or_default();
        assert_eq!(
            refusal_of(&settings, &hs512),
            "Token algorithm HS512 is not accepted; this server accepts HS256"
        );
        // Text from the token is not echoed unless it is a plain name.
        let odd = sign_raw(r#"{"alg":"<b>HS256</b>"}"#, &claims);
        assert_eq!(
            refusal_of(&settings, &odd),
            "Token algorithm is not accepted; this server accepts HS256"
        );
        for header in [r#"{"typ":"JWT"}"#, r#"{"alg":256}"#] {
            assert_eq!(
                refusal_of(&settings, &sign_raw(header, &claims)),
                "Token header names no algorithm ('alg')",
                "{header}"
            );
        }
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let settings = settings();
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["https://example.com/ext".into()]);
        header.extras.insert("https://example.com/ext", true);
        let token = encode(
            &header,
            &claims_with(json!({})),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap_or_default();
        let expected = "Token header lists critical extensions ('crit'); this server supports none";
        assert_eq!(refusal_of(&settings, &token), expected);
        // An empty or ill-typed list is no better (RFC 7515 forbids both).
        let claims = claims_with(json!({})).to_string();
        for header in [
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"b64"}"#,
        ] {
            assert_eq!(
                refusal_of(&settings, &sign_raw(header, &claims)),
                expected,
                "{header}"
            );
        }
    }

    #[test]
    fn library_failures_are_told_in_our_words() {
        let settings = settings();
        let claims = claims_with(json!({}));
        let good = sign(claims.clone());
        assert!(verify_jwt_at(&settings, &good, NOW).is_ok());

        let other_secret = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap_or_default();
        let (header, rest) = good.split_once('.').unwrap_or_default();
        let (_, signature) = rest.split_once('.').unwrap_or_default();
        let forged = claims_with(json!({"o": {"id": "acme", "rol": "admin"}})).to_string();
        let tampered = format!("{header}.{}.{signature}", b64(forged));
        for token in [&other_secret, &tampered] {
            assert_eq!(
                refusal_of(&settings, token),
                "Token signature does not verify"
            );
        }

        let header_json = r#"{"alg":"HS256","typ":"JWT"}"#;
        let malformed = [
            format!("{header}.{}.{signature}!", b64(claims.to_string())),
            format!("eyJ!!.{}.{signature}", b64(claims.to_string())),
            format!(
                "{}.{}.{signature}",
                b64("not json"),
                b64(claims.to_string())
            ),
            sign_raw(header_json, "not json"),
            sign_raw(header_json, "[1, 2]"),
            signed_message(&format!("{}.%%%", b64(header_json))),
        ];
        for token in &malformed {
            assert_eq!(
                refusal_of(&settings, token),
                "Token is malformed",
                "{token}"
            );
        }

        let with_issuer = JwtSettings {
            issuer: Some("https://issuer.example".into()),
            ..self::settings()
        };
        assert_eq!(
            refusal(
                &with_issuer,
                claims_with(json!({"iss": "https://evil.example"}))
            ),
            "Token issuer is not accepted"
        );
        let with_audience = JwtSettings {
            audience: Some("clientele".into()),
            ..self::settings()
        };
        assert_eq!(
            refusal(&with_audience, claims_with(json!({"aud": "elsewhere"}))),
            "Token audience is not accepted"
        );
    }

    #[test]
    fn a_configured_issuer_or_audience_must_be_present() {
        let strict = JwtSettings {
            issuer: Some("https://issuer.example".into()),
            audience: Some("clientele".into()),
            ..settings()
        };
        let both = json!({"iss": "https://issuer.example", "aud": "clientele"});
        assert!(verify_jwt_at(&strict, &sign(claims_with(both)), NOW).is_ok());
        let cases = [
            (
                json!({"aud": "clientele"}),
                "Token has no valid 'iss' claim",
            ),
            (
                json!({"iss": 7, "aud": "clientele"}),
                "Token has no valid 'iss' claim",
            ),
            (
                json!({"iss": "https://issuer.example"}),
                "Token has no valid 'aud' claim",
            ),
        ];
        for (extra, message) in cases {
            assert_eq!(refusal(&strict, claims_with(extra)), message);
        }
    }

    #[test]
    fn keys_that_could_never_verify_are_refused_at_start() {
        let rs256_public = include_bytes!("../../tests/fixtures/jwt/rs256-public.pem");
        let rs256_private = include_bytes!("../../tests/fixtures/jwt/rs256-TEST-ONLY-private.pem");
        let es256_public = include_bytes!("../../tests/fixtures/jwt/es256-public.pem");
        let es256_private = include_bytes!("../../tests/fixtures/jwt/es256-TEST-ONLY-private.pem");
        let es384_public = include_bytes!("../../tests/fixtures/jwt/es384-public.pem");
        assert!(JwtSettings::decoding_key(Algorithm::RS256, rs256_public).is_ok());
        assert!(JwtSettings::decoding_key(Algorithm::ES256, es256_public).is_ok());
        assert!(JwtSettings::decoding_key(Algorithm::HS256, &[7; 32]).is_ok());
        let rsa = "not an RSA public key in PEM form (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY)";
        let ec = "not a P-256 public key in PEM form (BEGIN PUBLIC KEY)";
        let refused: [(Algorithm, &[u8], &str); 7] = [
            (Algorithm::RS256, rs256_private, rsa),
            (Algorithm::RS256, es256_public, rsa),
            (Algorithm::RS256, b"secret", rsa),
            (Algorithm::ES256, es256_private, ec),
            (Algorithm::ES256, es384_public, ec),
            (Algorithm::ES256, rs256_public, ec),
            (
                Algorithm::HS256,
                &[7; 31],
                "an HS256 secret must have at least 32 bytes (RFC 7518 section 3.2); this one has 31",
            ),
        ];
        for (algorithm, key, message) in refused {
            assert_eq!(
                JwtSettings::decoding_key(algorithm, key).err().as_deref(),
                Some(message),
                "{}",
                jwa_name(algorithm)
            );
        }
        assert_eq!(
            JwtSettings::decoding_key(Algorithm::HS384, &[7; 48])
                .err()
                .as_deref(),
            Some("JWT algorithm HS384 is not supported; use HS256, RS256 or ES256")
        );
    }

    #[test]
    fn names_must_be_printable_and_bounded() {
        assert!(check_name("workspace", "default").is_ok());
        assert!(check_name("workspace", "").is_err());
        assert!(check_name("workspace", "a b").is_err());
        assert!(check_name("workspace", &"x".repeat(129)).is_err());
    }
}

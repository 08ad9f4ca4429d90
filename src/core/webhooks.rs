//! Webhook subscriptions and what a delivery means: who may manage them,
//! what a valid subscription is (a URL that does not reach inside the
//! network, event type patterns), secrets (made here, shown once, sealed
//! at rest), the Standard Webhooks signature, the retry schedule, and the
//! fan-out of committed events to subscriptions. Sending over HTTP is the
//! [`Sender`]'s job (in `crate::delivery`); this module decides.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use serde_json::Value;
use sha2::Sha256;

use super::auth::Principal;
use super::error::{DomainError, FieldPath, RecordKind};
use super::events::{Event, TypePattern, parse_sequence, read_page, require_admin, wanted_by};
use super::input::{Expected, Reader};
use crate::store::events::{
    AttemptRecord, DeliveryOutcome, LeasedDelivery, StoredAttempt, StoredWebhook,
};
pub use crate::store::events::{DeliveryCounts, FinishedDelivery};
use crate::store::{SharedStore, WorkspaceId};

/// The delivery thread runs at the priority of the store's background work.
pub use crate::store::{BACKGROUND_NICENESS, lower_thread_priority};

/// The retry schedule when none is configured: the delay before each
/// attempt (the first is immediate), as the issue and Svix use.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// How long a rotated-out secret still signs, unless the rotation says.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
const MAX_ROTATION_GRACE_SECS: i64 = 7 * 24 * 3600;
/// Subscriptions a workspace may have.
pub const MAX_WEBHOOKS: usize = 100;
const MAX_URL_CHARS: usize = 2048;
const MAX_PATTERNS: usize = 50;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long a subscription's host may take to resolve when it is made.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per page of an attempt listing.
pub const MAX_ATTEMPT_PAGE: u32 = 1000;

/// How webhooks behave; see `clientele serve --help`.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Seals secrets at rest; without it webhooks cannot be created or sent.
    pub key: Option<Arc<SealingKey>>,
    /// Allows targets on loopback, private and link-local addresses, and
    /// plain `http` (for tests and closed networks).
    pub allow_private: bool,
    /// The delay before each attempt of a delivery (the first is usually 0).
    pub schedule: Vec<Duration>,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// How long attempts and finished deliveries are kept.
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            key: None,
            allow_private: false,
            schedule: DEFAULT_SCHEDULE.to_vec(),
            attempt_timeout: Duration::from_secs(10),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The key that seals webhook secrets (AES-256-GCM). It lives outside the
/// database, so a dump of the database alone cannot sign a webhook.
pub struct SealingKey(Aes256Gcm);

impl SealingKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(bytes.into()))
    }

    /// Reads the key file at `path` (base64 of 32 bytes), creating it
    /// (readable by its owner only) with a new random key if it is missing.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::decode(text.trim()).map_err(|message| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {message}", path.display()),
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                write_private(path, &format!("{}\n", BASE64.encode(bytes)))?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(error) => Err(error),
        }
    }

    fn decode(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text)
            .map_err(|_| "the webhook key is not base64".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the webhook key must be 32 bytes (base64)".to_owned())?;
        Ok(Self::from_bytes(&bytes))
    }

    /// `secret` sealed for the subscription `webhook_id` (which is bound
    /// in, so a sealed secret copied to another subscription does not open).
    fn seal(&self, webhook_id: &str, secret: &str) -> Result<String, DomainError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: webhook_id.as_bytes(),
                },
            )
            .map_err(|_| DomainError::Internal("sealing a webhook secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("v1:{}", BASE64.encode(out)))
    }

    fn open(&self, webhook_id: &str, sealed: &str) -> Result<String, DomainError> {
        let wrong_key = || {
            DomainError::Internal(format!(
                "the secret of webhook {webhook_id} does not open with this server's webhook \
                 key: every instance needs the same --webhook-key-file"
            ))
        };
        let bytes = sealed
            .strip_prefix("v1:")
            .and_then(|text| BASE64.decode(text).ok())
            .filter(|bytes| bytes.len() > 12)
            .ok_or_else(wrong_key)?;
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| wrong_key())?;
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: webhook_id.as_bytes(),
                },
            )
            .map_err(|_| wrong_key())?;
        String::from_utf8(plain).map_err(|_| wrong_key())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// A new secret: `whsec_` and 24 random bytes in base64, as Standard
/// Webhooks writes them.
fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The Standard Webhooks signature of a message with `secret`:
/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the
/// bytes the secret's base64 (after `whsec_`) encodes.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "a webhook secret is not base64".to_owned())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|error| error.to_string())?;
    mac.update(format!("{message_id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// A message ready to send: the Standard Webhooks headers' values and the
/// body they sign.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedMessage {
    /// `webhook-id`: the event id, the same on every retry.
    pub id: String,
    /// `webhook-timestamp`: seconds since the epoch, at signing.
    pub timestamp: i64,
    /// `webhook-signature`: one `v1,…` per valid secret, space-separated.
    pub signature: String,
    pub body: String,
}

/// What one attempt to send got.
#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why there was no answer (refused address, timeout, connection).
    pub error: Option<String>,
}

/// Sends a signed message to a URL (HTTP in `crate::delivery`).
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, url: &str, message: &SignedMessage) -> SendResult;
}

/// Whether a target address is inside the network: loopback, private,
/// link-local (with the cloud metadata address), shared, unspecified,
/// multicast or broadcast, in IPv4 or IPv6 (also IPv4 mapped in IPv6).
pub fn is_internal_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
                || first == 0x2001 && v6.segments()[1] == 0xdb8
        }
    }
}

/// Checks a target URL as far as can be without the network; the message
/// says what to fix.
pub fn check_url_form(text: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("not a URL: {error}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err("must use https (plain http only with --webhook-allow-private)".into());
        }
        other => return Err(format!("scheme '{other}' is not http or https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (they would be logged and stored in clear)".into());
    }
    match url.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Ipv4(v4)) if !allow_private && is_internal_address(IpAddr::V4(v4)) => {
            return Err(internal_message(&v4.to_string()));
        }
        Some(url::Host::Ipv6(v6)) if !allow_private && is_internal_address(IpAddr::V6(v6)) => {
            return Err(internal_message(&v6.to_string()));
        }
        Some(url::Host::Domain(domain))
            if !allow_private
                && (domain.eq_ignore_ascii_case("localhost")
                    || domain.to_ascii_lowercase().ends_with(".localhost")) =>
        {
            return Err(internal_message(domain));
        }
        _ => {}
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    Ok(url)
}

pub fn internal_message(address: &str) -> String {
    format!(
        "resolves to {address}, a loopback, private, link-local or metadata address; such \
         targets are refused unless the server runs with --webhook-allow-private"
    )
}

/// Resolves the URL's host and refuses it if any address is internal.
async fn check_url_addresses(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let Some(url::Host::Domain(domain)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((domain, port));
    let addresses = tokio::time::timeout(DNS_TIMEOUT, lookup)
        .await
        .map_err(|_| format!("host '{domain}' did not resolve within {DNS_TIMEOUT:?}"))?
        .map_err(|error| format!("host '{domain}' does not resolve: {error}"))?;
    for address in addresses {
        if is_internal_address(address.ip()) {
            return Err(internal_message(&address.ip().to_string()));
        }
    }
    Ok(())
}

/// A subscription as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredWebhook> for Webhook {
    fn from(stored: &StoredWebhook) -> Self {
        let now = Utc::now();
        Self {
            id: stored.id.clone(),
            url: stored.url.clone(),
            event_types: stored.event_types.clone(),
            description: stored.description.clone(),
            enabled: stored.enabled,
            disabled_reason: stored.disabled_reason.clone(),
            previous_secret_valid_until: stored
                .previous_secret_until
                .filter(|until| *until > now && stored.previous_secret.is_some()),
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        }
    }
}

/// A subscription with its secret in the clear: the answer to a create or
/// a rotation, the one time the secret is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: String,
}

/// An attempt, as the attempt list shows it.
pub type Attempt = StoredAttempt;

/// The answer to a test send.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub event_id: String,
    pub result: SendResult,
}

/// What a create or update body holds, once read.
struct SubscriptionFields {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<Option<String>>,
    enabled: Option<bool>,
}

const WRITABLE: [&str; 4] = ["url", "eventTypes", "description", "enabled"];

/// Reads a create (`creating`) or update body, every error at its path.
async fn read_subscription(
    body: &Value,
    creating: bool,
    allow_private: bool,
) -> Result<SubscriptionFields, DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let Some(fields) = reader.record_body(body, &root, &WRITABLE, &[], !creating) else {
        return Err(reader.into_error());
    };
    let mut url_path = None;
    let url = if creating {
        reader.required(&fields, "url", |reader, value, path| {
            url_path = Some(path.clone());
            reader.string(value, path, 1..=MAX_URL_CHARS)
        })
    } else {
        reader
            .optional(&fields, "url", |reader, value, path| {
                url_path = Some(path.clone());
                reader.string(value, path, 1..=MAX_URL_CHARS)
            })
            .flatten()
    };
    let checked_url = match (url, url_path) {
        (Some(url), Some(path)) => match check_url_form(&url, allow_private) {
            Ok(parsed) => Some((url, parsed, path)),
            Err(message) => {
                reader.error(&path, message);
                None
            }
        },
        _ => None,
    };
    let read_patterns = |reader: &mut Reader, value: &Value, path: &FieldPath| {
        reader.array(value, path, 1..=MAX_PATTERNS, |reader, item, path| {
            let Value::String(text) = item else {
                reader.type_error(path, Expected::String, item);
                return None;
            };
            match TypePattern::parse(text) {
                Ok(_) => Some(text.clone()),
                Err(message) => {
                    reader.error(path, message);
                    None
                }
            }
        })
    };
    let event_types = if creating {
        reader.required(&fields, "eventTypes", read_patterns)
    } else {
        reader
            .optional(&fields, "eventTypes", read_patterns)
            .flatten()
    };
    let description = if fields.contains("description") {
        reader.nullable(&fields, "description", |reader, value, path| {
            reader.string(value, path, 0..=MAX_DESCRIPTION_CHARS)
        })
    } else {
        None
    };
    let enabled = reader
        .optional(&fields, "enabled", |reader, value, path| {
            reader.boolean(value, path)
        })
        .flatten();
    // The network check last, and only for a URL that is otherwise fine.
    let url = match checked_url {
        Some((text, parsed, path)) => match check_url_addresses(&parsed, allow_private).await {
            Ok(()) => Some(text),
            Err(message) => {
                reader.error(&path, message);
                None
            }
        },
        None => None,
    };
    let mut event_types = event_types;
    if let Some(patterns) = &mut event_types {
        let mut seen = Vec::new();
        patterns.retain(|pattern| {
            let fresh = !seen.contains(pattern);
            seen.push(pattern.clone());
            fresh
        });
    }
    reader.finish(SubscriptionFields {
        url,
        event_types,
        description,
        enabled,
    })
}

/// Reads a replay request's body (`since`, `includeDelivered`), every
/// error at its path.
pub fn read_replay(body: &Value) -> Result<(DateTime<Utc>, bool), DomainError> {
    let mut reader = Reader::new();
    let root = FieldPath::root();
    let Some(fields) = reader.record_body(body, &root, &["since", "includeDelivered"], &[], false)
    else {
        return Err(reader.into_error());
    };
    let since = reader.required(&fields, "since", |reader, value, path| {
        reader.date_time(
            value,
            path,
            "must be an ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z",
        )
    });
    let include_delivered = reader
        .optional(&fields, "includeDelivered", |reader, value, path| {
            reader.boolean(value, path)
        })
        .flatten()
        .unwrap_or(false);
    let since = reader.finish(since)?;
    since
        .map(|since| (since, include_delivered))
        .ok_or_else(|| DomainError::invalid(root, "since is required"))
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: RecordKind::Webhook,
        id: id.to_owned(),
    }
}

fn no_key() -> DomainError {
    DomainError::Unavailable(
        "webhooks need a webhook key: start the server with --webhook-key-file".into(),
    )
}

/// Webhook subscriptions, deliveries and their attempts.
#[derive(Clone)]
pub struct Webhooks {
    store: SharedStore,
    settings: Arc<WebhookSettings>,
    sender: Arc<dyn Sender>,
}

impl Webhooks {
    pub fn new(store: SharedStore, settings: WebhookSettings, sender: Arc<dyn Sender>) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            sender,
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    fn key(&self) -> Result<&SealingKey, DomainError> {
        self.settings.key.as_deref().ok_or_else(no_key)
    }

    async fn stored(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<StoredWebhook, DomainError> {
        self.store
            .webhook(workspace, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Creates a subscription from a request body; its secret is shown
    /// once, in the answer.
    pub async fn create(
        &self,
        principal: &Principal,
        body: &Value,
    ) -> Result<WithSecret, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let fields = read_subscription(body, true, self.settings.allow_private).await?;
        let key = self.key()?;
        if self.store.webhooks(&principal.workspace).await?.len() >= MAX_WEBHOOKS {
            return Err(DomainError::invalid(
                FieldPath::root(),
                format!("a workspace may have at most {MAX_WEBHOOKS} webhooks; delete one first"),
            ));
        }
        let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
        let secret = new_secret();
        let now = Utc::now();
        let stored = StoredWebhook {
            secret: key.seal(&id, &secret)?,
            id,
            workspace: principal.workspace.clone(),
            url: fields.url.unwrap_or_default(),
            event_types: fields.event_types.unwrap_or_default(),
            description: fields.description.flatten(),
            enabled: fields.enabled.unwrap_or(true),
            disabled_reason: None,
            previous_secret: None,
            previous_secret_until: None,
            events_after: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook(&stored).await?;
        Ok(WithSecret {
            webhook: Webhook::from(&stored),
            secret,
        })
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<Webhook>, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        Ok(self
            .store
            .webhooks(&principal.workspace)
            .await?
            .iter()
            .map(Webhook::from)
            .collect())
    }

    /// A subscription and how many of its deliveries are in each state.
    pub async fn get(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(Webhook, DeliveryCounts), DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let stored = self.stored(&principal.workspace, id).await?;
        let counts = self.store.delivery_counts(&principal.workspace, id).await?;
        Ok((Webhook::from(&stored), counts))
    }

    /// Changes the fields the body names; enabling clears why the server
    /// had disabled it.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        body: &Value,
    ) -> Result<Webhook, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let fields = read_subscription(body, false, self.settings.allow_private).await?;
        let mut stored = self.stored(&principal.workspace, id).await?;
        if let Some(url) = fields.url {
            stored.url = url;
        }
        if let Some(patterns) = fields.event_types {
            stored.event_types = patterns;
        }
        if let Some(description) = fields.description {
            stored.description = description;
        }
        if let Some(enabled) = fields.enabled {
            if enabled {
                stored.disabled_reason = None;
                if !stored.enabled {
                    // Events committed while it was off are not sent.
                    stored.events_after = None;
                }
            }
            stored.enabled = enabled;
        }
        stored.updated_at = Utc::now();
        if !self.store.update_webhook(&stored).await? {
            return Err(not_found(id));
        }
        Ok(Webhook::from(&stored))
    }

    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<(), DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        if self.store.delete_webhook(&principal.workspace, id).await? {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Gives a subscription a new secret, shown once; the old one keeps
    /// signing beside it for `previousSecretValidSeconds` (default a day),
    /// so receivers can switch without losing a delivery.
    pub async fn rotate(
        &self,
        principal: &Principal,
        id: &str,
        body: &Value,
    ) -> Result<WithSecret, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let mut reader = Reader::new();
        let root = FieldPath::root();
        let grace =
            match reader.record_body(body, &root, &["previousSecretValidSeconds"], &[], false) {
                Some(fields) => reader
                    .optional(
                        &fields,
                        "previousSecretValidSeconds",
                        |reader, value, path| {
                            reader.integer(value, path, 0..=MAX_ROTATION_GRACE_SECS)
                        },
                    )
                    .flatten(),
                None => None,
            };
        let grace = reader.finish(grace)?;
        let key = self.key()?;
        let mut stored = self.stored(&principal.workspace, id).await?;
        let secret = new_secret();
        let now = Utc::now();
        let grace = grace.map_or(DEFAULT_ROTATION_GRACE, |seconds| {
            Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
        });
        stored.previous_secret = (!grace.is_zero()).then(|| stored.secret.clone());
        stored.previous_secret_until =
            (!grace.is_zero()).then(|| now + chrono::Duration::from_std(grace).unwrap_or_default());
        stored.secret = key.seal(&stored.id, &secret)?;
        stored.updated_at = now;
        if !self.store.update_webhook(&stored).await? {
            return Err(not_found(id));
        }
        Ok(WithSecret {
            webhook: Webhook::from(&stored),
            secret,
        })
    }

    /// Sends a `webhook.test` event to the subscription now, signed as a
    /// delivery is, and keeps the attempt.
    pub async fn test(&self, principal: &Principal, id: &str) -> Result<TestResult, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let stored = self.stored(&principal.workspace, id).await?;
        let now = Utc::now();
        let event_id = format!("evt_test_{}", uuid::Uuid::new_v4().simple());
        let body = serde_json::json!({
            "id": event_id,
            "type": "webhook.test",
            "timestamp": super::events::iso_millis(&now),
            "workspace": principal.workspace.as_str(),
            "data": {"webhookId": stored.id},
        })
        .to_string();
        let message = self.sign(&stored, event_id.clone(), body)?;
        let result = self.sender.send(&stored.url, &message).await;
        self.store
            .record_attempt(&attempt_record(
                &stored.id, &event_id, 1, now, &result, "test",
            ))
            .await?;
        Ok(TestResult { event_id, result })
    }

    /// A page of a subscription's attempts, oldest first, after `after`.
    pub async fn attempts(
        &self,
        principal: &Principal,
        id: &str,
        after: Option<&str>,
        limit: Option<&str>,
    ) -> Result<(Vec<Attempt>, Option<String>), DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        let mut errors = Vec::new();
        let (after_id, limit) = read_page(
            after,
            limit,
            parse_sequence,
            "must be the `next` of an earlier page",
            MAX_ATTEMPT_PAGE,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(DomainError::InvalidQuery(errors));
        }
        self.stored(&principal.workspace, id).await?;
        let attempts = self
            .store
            .attempts(&principal.workspace, id, after_id, limit)
            .await?;
        let next = (attempts.len() == limit as usize)
            .then(|| attempts.last().map(|attempt| attempt.id.to_string()))
            .flatten();
        Ok((attempts, next))
    }

    /// Sends again the failed deliveries (and the delivered ones too with
    /// `include_delivered`) of events since `since`, of one subscription
    /// or of all of the workspace's; returns how many.
    pub async fn replay(
        &self,
        principal: &Principal,
        id: Option<&str>,
        since: DateTime<Utc>,
        include_delivered: bool,
    ) -> Result<u64, DomainError> {
        require_admin(principal, RecordKind::Webhook)?;
        if let Some(id) = id {
            self.stored(&principal.workspace, id).await?;
        }
        Ok(self
            .store
            .replay(
                &principal.workspace,
                id,
                since,
                include_delivered,
                Utc::now(),
            )
            .await?)
    }

    /// Signs `body` with the subscription's secret, and with its previous
    /// secret while a rotation's grace lasts.
    fn sign(
        &self,
        webhook: &StoredWebhook,
        id: String,
        body: String,
    ) -> Result<SignedMessage, DomainError> {
        let key = self.key()?;
        let timestamp = Utc::now().timestamp();
        let mut signatures = vec![key.open(&webhook.id, &webhook.secret)?];
        if let (Some(previous), Some(until)) =
            (&webhook.previous_secret, webhook.previous_secret_until)
            && until > Utc::now()
        {
            signatures.push(key.open(&webhook.id, previous)?);
        }
        let signature = signatures
            .iter()
            .map(|secret| sign(secret, &id, timestamp, &body).map_err(DomainError::Internal))
            .collect::<Result<Vec<_>, _>>()?
            .join(" ");
        Ok(SignedMessage {
            id,
            timestamp,
            signature,
            body,
        })
    }

    /// Fans out committed events to the subscriptions that want them;
    /// returns how many events it passed.
    pub async fn dispatch(&self, limit: u32) -> Result<u64, DomainError> {
        let route = |event: &crate::store::events::EventHead, hooks: &[StoredWebhook]| {
            hooks
                .iter()
                .filter(|hook| {
                    hook.workspace == event.workspace
                        && event.seq > hook.events_after.unwrap_or(0)
                        && wanted_by(&hook.event_types, &event.kind, &event.action)
                })
                .map(|hook| hook.id.clone())
                .collect()
        };
        Ok(self.store.dispatch(limit, &route).await?)
    }

    /// A signal raised by every local commit.
    pub fn committed_signal(&self) -> Arc<tokio::sync::Notify> {
        self.store.committed_signal()
    }

    /// Releases the leases a dead process left (see
    /// [`crate::store::events::EventStore::release_orphaned_leases`]).
    pub async fn release_orphaned_leases(&self) -> Result<u64, DomainError> {
        Ok(self.store.release_orphaned_leases().await?)
    }

    /// Leases due deliveries to `owner` for a while longer than an
    /// attempt may take (with time to record it): a lease outlives its
    /// attempt, so a delivery is sent twice only when its instance died
    /// or stalled, and an instance that died holds its deliveries (and the
    /// later events of their records) back for no longer than this.
    pub async fn lease(&self, owner: &str, limit: u32) -> Result<Vec<LeasedDelivery>, DomainError> {
        let lease = self.settings.attempt_timeout * 2 + Duration::from_secs(5);
        Ok(self
            .store
            .lease_deliveries(owner, Utc::now(), lease, limit)
            .await?)
    }

    /// Makes one attempt of a leased delivery and decides what follows.
    pub async fn attempt(&self, leased: &LeasedDelivery) -> FinishedDelivery {
        let event = Event::from_stored(&leased.event);
        let attempt = leased.attempts_before + 1;
        let at = Utc::now();
        let result = match self.sign(&leased.webhook, event.id.clone(), event.to_json()) {
            Ok(message) => self.sender.send(&leased.webhook.url, &message).await,
            Err(error) => {
                tracing::error!(webhook = %leased.webhook.id, %error, "cannot sign a delivery");
                SendResult {
                    status: None,
                    latency: Duration::ZERO,
                    error: Some("the server could not sign this delivery (see its log)".into()),
                }
            }
        };
        let outcome = self.outcome(&result, attempt, at);
        FinishedDelivery {
            delivery_id: leased.id,
            attempt: attempt_record(
                &leased.webhook.id,
                &event.id,
                attempt,
                at,
                &result,
                outcome.as_str(),
            ),
            outcome,
        }
    }

    /// 2xx: delivered; 410: the endpoint is gone, disable; anything else:
    /// the next attempt of the schedule, with ±20% jitter, or failed.
    fn outcome(&self, result: &SendResult, attempt: i32, at: DateTime<Utc>) -> DeliveryOutcome {
        match result.status {
            Some(status) if (200..300).contains(&status) => DeliveryOutcome::Delivered,
            Some(410) => DeliveryOutcome::Disable {
                reason: "the endpoint answered 410 Gone".into(),
            },
            _ => match self
                .settings
                .schedule
                .get(usize::try_from(attempt).unwrap_or(usize::MAX))
            {
                Some(delay) => {
                    let jittered = delay.mul_f64(rand::rng().random_range(0.8..=1.2));
                    DeliveryOutcome::Retry {
                        at: at + chrono::Duration::from_std(jittered).unwrap_or_default(),
                    }
                }
                None => DeliveryOutcome::Failed,
            },
        }
    }

    pub async fn finish(
        &self,
        owner: &str,
        finished: &[FinishedDelivery],
    ) -> Result<(), DomainError> {
        Ok(self.store.finish_deliveries(owner, finished).await?)
    }

    /// Vacuums the delivery table where the backend needs it (see
    /// [`crate::store::events::EventStore::maintain_deliveries`]).
    pub async fn maintain(&self) -> Result<(), DomainError> {
        Ok(self.store.maintain_deliveries().await?)
    }

    /// Deletes attempts and finished deliveries older than the retention.
    pub async fn purge(&self) -> Result<u64, DomainError> {
        let before =
            Utc::now() - chrono::Duration::from_std(self.settings.retention).unwrap_or_default();
        Ok(self.store.purge_deliveries(before).await?)
    }
}

fn attempt_record(
    webhook_id: &str,
    event_id: &str,
    attempt: i32,
    at: DateTime<Utc>,
    result: &SendResult,
    outcome: &str,
) -> AttemptRecord {
    AttemptRecord {
        webhook_id: webhook_id.to_owned(),
        event_id: event_id.to_owned(),
        attempt,
        at,
        status: result.status,
        latency_ms: i64::try_from(result.latency.as_millis()).unwrap_or(i64::MAX),
        error: result.error.clone(),
        outcome: outcome.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference
        // libraries (their test vectors).
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .expect("signs");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_webhook() {
        let key = SealingKey::from_bytes(&[7; 32]);
        let sealed = key.seal("wh_1", "whsec_abc").expect("seals");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(key.open("wh_1", &sealed).expect("opens"), "whsec_abc");
        assert!(key.open("wh_2", &sealed).is_err());
        assert!(
            SealingKey::from_bytes(&[8; 32])
                .open("wh_1", &sealed)
                .is_err()
        );
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            let address: IpAddr = internal.parse().expect("an address");
            assert!(is_internal_address(address), "{internal}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            let address: IpAddr = public.parse().expect("an address");
            assert!(!is_internal_address(address), "{public}");
        }
    }

    #[test]
    fn urls_need_https_and_a_public_host() {
        assert!(check_url_form("https://example.com/hook", false).is_ok());
        assert!(check_url_form("http://example.com/hook", false).is_err());
        assert!(check_url_form("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url_form("https://127.0.0.1/hook", false).is_err());
        assert!(check_url_form("https://[::1]/hook", false).is_err());
        assert!(check_url_form("https://localhost/hook", false).is_err());
        assert!(check_url_form("https://user:pw@example.com/", false).is_err());
        assert!(check_url_form("ftp://example.com/", false).is_err());
    }
}

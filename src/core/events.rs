//! Change events: every committed create, update and delete of a record,
//! read from the audit trail (the transactional outbox: a history row is
//! written in its write's own transaction, so a rolled-back write has no
//! event and a committed one always has). This module names events
//! (`icp.updated`), matches type patterns (`client.*`), pages the change
//! feed, and defines the event's JSON, the same in the feed and in webhook
//! deliveries.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::auth::Principal;
use super::error::{DomainError, FieldError, FieldPath, RecordKind};
use super::records::ChangedField;
use crate::store::SharedStore;
use crate::store::events::StoredEvent;

/// The record kinds events name, with the stored kind each stands for.
/// `contracts.md` fixes these names for events and history.
pub const EVENT_KINDS: [(&str, &str); 8] = [
    ("icp", "icp"),
    ("client", "client"),
    ("profile", "hood_profile"),
    ("profile_list", "hood_profile_list"),
    // An unsubscribed Hood email or number (made by unsubscribing, kept
    // when the profile goes).
    ("suppression", "hood_suppression"),
    ("person", "person"),
    ("company", "company"),
    ("lead_list", "lead_list"),
];

/// What happened to the record, in an event type's words, with the stored
/// action each stands for.
pub const EVENT_ACTIONS: [(&str, &str); 3] = [
    ("created", "create"),
    ("updated", "update"),
    ("deleted", "delete"),
];

/// The most events one feed page holds.
pub const MAX_PAGE: u32 = 1000;
/// Events per feed page when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;

/// The event name of a stored kind (`hood_profile` → `profile`); a kind
/// without one keeps its stored name.
pub fn event_kind(stored_kind: &str) -> &str {
    EVENT_KINDS
        .iter()
        .find(|(_, stored)| *stored == stored_kind)
        .map_or(stored_kind, |(name, _)| name)
}

fn event_action(stored_action: &str) -> &str {
    EVENT_ACTIONS
        .iter()
        .find(|(_, stored)| *stored == stored_action)
        .map_or(stored_action, |(name, _)| name)
}

/// An event's id: its place in the history, zero-padded so that ids sort
/// as text in the order they happened.
pub fn event_id(seq: i64) -> String {
    format!("evt_{seq:016}")
}

/// The sequence number of an event id (or of a bare number).
pub fn parse_event_id(text: &str) -> Option<i64> {
    parse_sequence(text.strip_prefix("evt_").unwrap_or(text))
}

/// A non-negative number written in digits only (no sign, no spaces).
pub fn parse_sequence(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads the `after` and `limit` parameters of a cursor-paged list of
/// Clientele's own API: `after` by `read_cursor` (absent or empty: from
/// the start; `hint` says what it should be), `limit` from 1 to `max`
/// (absent: [`DEFAULT_PAGE`]). A bad one is recorded in `errors`.
pub fn read_page(
    after: Option<&str>,
    limit: Option<&str>,
    read_cursor: fn(&str) -> Option<i64>,
    hint: &str,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> (i64, u32) {
    let after = match after {
        None | Some("") => 0,
        Some(text) => read_cursor(text).unwrap_or_else(|| {
            errors.push(parameter_error("after", hint));
            0
        }),
    };
    let limit = match limit {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<u32>() {
            Ok(limit) if (1..=max).contains(&limit) => limit,
            _ => {
                errors.push(parameter_error(
                    "limit",
                    format!("must be a whole number from 1 to {max}"),
                ));
                DEFAULT_PAGE
            }
        },
    };
    (after, limit)
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub user_id: String,
    pub key_id: Option<String>,
    /// The server's id of the request.
    pub request_id: String,
    /// The `X-Request-Id` the client sent, if any.
    pub client_request_id: Option<String>,
}

/// What an event says about its record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// `icp`, `client`, `profile`, `profile_list`.
    pub kind: String,
    pub id: String,
    /// The record's version after the change (for a delete, its last).
    pub version: i64,
    /// Each changed field with its old and new value, as the record's
    /// history has them.
    pub changes: Vec<ChangedField>,
    pub actor: Actor,
}

/// One change event, as the feed lists it and a webhook delivers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `evt_` and the history sequence number: unique, sortable.
    pub id: String,
    /// `<kind>.<created|updated|deleted>`, e.g. `icp.updated`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change was made (ISO 8601, UTC, milliseconds).
    pub timestamp: String,
    pub workspace: String,
    pub data: EventData,
}

impl Event {
    pub fn from_stored(stored: &StoredEvent) -> Self {
        let entry = &stored.entry;
        let kind = event_kind(&entry.kind).to_owned();
        Self {
            id: event_id(stored.seq),
            event_type: format!("{kind}.{}", event_action(&entry.action)),
            timestamp: iso_millis(&entry.at),
            workspace: stored.workspace.as_str().to_owned(),
            data: EventData {
                kind,
                id: entry.record_id.clone(),
                version: entry.version,
                changes: serde_json::from_value(entry.changes.clone()).unwrap_or_else(|error| {
                    tracing::error!(seq = stored.seq, %error, "stored changes do not decode");
                    Vec::new()
                }),
                actor: Actor {
                    user_id: entry.user_id.clone(),
                    key_id: entry.key_id.clone(),
                    request_id: entry.request_id.clone(),
                    client_request_id: entry.client_request_id.clone(),
                },
            },
        }
    }

    /// The event as the JSON text that is sent and signed.
    pub fn to_json(&self) -> String {
        // An event holds only strings, numbers and JSON values: it always
        // serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// ISO 8601 in UTC with milliseconds (`2024-01-25T09:15:00.000Z`): how
/// events, and the surfaces that write times this way, write them.
pub fn iso_millis(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An event type pattern: `icp.updated`, `client.*`, `*.deleted` or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePattern {
    kind: Option<String>,
    action: Option<String>,
}

impl TypePattern {
    /// Reads a pattern, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self {
                kind: None,
                action: None,
            });
        }
        let Some((kind, action)) = text.split_once('.') else {
            return Err(format!(
                "'{text}' is not an event type: expected <kind>.<action> (e.g. icp.updated), \
                 with * for any kind or action, or * alone"
            ));
        };
        let kind = match kind {
            "*" => None,
            known if EVENT_KINDS.iter().any(|(name, _)| *name == known) => Some(known.to_owned()),
            unknown => {
                return Err(format!(
                    "unknown kind '{unknown}' in '{text}': expected one of {} or *",
                    EVENT_KINDS.map(|(name, _)| name).join(", ")
                ));
            }
        };
        let action = match action {
            "*" => None,
            known if EVENT_ACTIONS.iter().any(|(name, _)| *name == known) => Some(known.to_owned()),
            unknown => {
                return Err(format!(
                    "unknown action '{unknown}' in '{text}': expected created, updated, deleted or *"
                ));
            }
        };
        Ok(Self { kind, action })
    }

    /// The stored `(kind, action)` pairs this pattern selects.
    fn stored_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (name, stored_kind) in EVENT_KINDS {
            if self.kind.as_deref().is_some_and(|want| want != name) {
                continue;
            }
            for (verb, stored_action) in EVENT_ACTIONS {
                if self.action.as_deref().is_some_and(|want| want != verb) {
                    continue;
                }
                pairs.push((stored_kind.to_owned(), stored_action.to_owned()));
            }
        }
        pairs
    }
}

/// Whether any of `patterns` (checked when they were stored) selects the
/// events of a stored kind and action. Called for every event and
/// subscription the dispatcher routes, so it builds nothing.
pub fn wanted_by(patterns: &[String], stored_kind: &str, stored_action: &str) -> bool {
    let (kind, action) = (event_kind(stored_kind), event_action(stored_action));
    patterns.iter().any(|pattern| {
        pattern == "*"
            || pattern
                .split_once('.')
                .is_some_and(|(want_kind, want_action)| {
                    (want_kind == "*" || want_kind == kind)
                        && (want_action == "*" || want_action == action)
                })
    })
}

/// One page of the feed, and the cursor to ask for next.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub items: Vec<Event>,
    /// The id of the last event listed, or the cursor asked for when none
    /// was: poll `after=next` for what happens later.
    pub next: Option<String>,
}

/// What a feed request asks for, as its query parameters give it.
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    pub after: Option<String>,
    pub limit: Option<String>,
    pub types: Option<String>,
}

/// The change feed of a workspace.
#[derive(Clone)]
pub struct Events {
    store: SharedStore,
}

impl Events {
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }

    /// A page of the caller's workspace's events after `query.after`, in
    /// the order they committed. Admins only: events carry every record.
    pub async fn feed(
        &self,
        principal: &Principal,
        query: &FeedQuery,
    ) -> Result<FeedPage, DomainError> {
        require_admin(principal, RecordKind::Event)?;
        let mut errors = Vec::new();
        let (after, limit) = read_page(
            query.after.as_deref(),
            query.limit.as_deref(),
            parse_event_id,
            "must be an event id from an earlier page (evt_…)",
            MAX_PAGE,
            &mut errors,
        );
        let mut only = Vec::new();
        if let Some(types) = query.types.as_deref() {
            for pattern in types.split(',').map(str::trim) {
                match TypePattern::parse(pattern) {
                    Ok(pattern) => only.extend(pattern.stored_pairs()),
                    Err(message) => errors.push(parameter_error("types", message)),
                }
            }
            if only.is_empty() && errors.is_empty() {
                errors.push(parameter_error("types", "names no event type"));
            }
            only.sort();
            only.dedup();
            // Every pair: no filter at all.
            if only.len() == EVENT_KINDS.len() * EVENT_ACTIONS.len() {
                only.clear();
            }
        }
        if !errors.is_empty() {
            return Err(DomainError::InvalidQuery(errors));
        }
        let stored = self
            .store
            .events(&principal.workspace, after, limit, &only)
            .await?;
        let items: Vec<Event> = stored.iter().map(Event::from_stored).collect();
        // Where to poll from next: after the last event listed, or where
        // this page started (nothing newer yet).
        let next = match items.last() {
            Some(last) => Some(last.id.clone()),
            None => (after > 0).then(|| event_id(after)),
        };
        Ok(FeedPage { items, next })
    }
}

pub fn parameter_error(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: FieldPath::root().key(name),
        message: message.into(),
    }
}

/// Refuses callers who are not admins of their workspace.
pub fn require_admin(principal: &Principal, kind: RecordKind) -> Result<(), DomainError> {
    if principal.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden { kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_kinds_and_actions() {
        let wants = |pattern: &str, kind: &str, action: &str| {
            assert!(TypePattern::parse(pattern).is_ok(), "{pattern}");
            wanted_by(&[pattern.to_owned()], kind, action)
        };
        assert!(wants("*", "icp", "update"));
        assert!(wants("icp.*", "icp", "delete"));
        assert!(!wants("icp.*", "client", "delete"));
        assert!(wants("*.created", "hood_profile_list", "create"));
        assert!(!wants("*.created", "hood_profile_list", "update"));
        assert!(wants("profile.updated", "hood_profile", "update"));
        assert!(!wants("profile.updated", "hood_profile_list", "update"));
        assert!(TypePattern::parse("icp").is_err());
        assert!(TypePattern::parse("lead.*").is_err());
        assert!(TypePattern::parse("icp.changed").is_err());
        assert!(TypePattern::parse("icp.up*").is_err());
    }

    #[test]
    fn patterns_select_stored_pairs() {
        let pairs = TypePattern::parse("profile.*")
            .expect("valid")
            .stored_pairs();
        assert_eq!(pairs.len(), 3);
        assert!(pairs.contains(&("hood_profile".to_owned(), "update".to_owned())));
    }

    #[test]
    fn event_ids_sort_as_text_and_read_back() {
        assert_eq!(event_id(42), "evt_0000000000000042");
        assert!(event_id(9) < event_id(10));
        assert_eq!(parse_event_id("evt_0000000000000042"), Some(42));
        assert_eq!(parse_event_id("42"), Some(42));
        assert_eq!(parse_event_id("evt_x"), None);
        assert_eq!(parse_event_id("-1"), None);
        assert_eq!(parse_event_id(""), None);
    }
}

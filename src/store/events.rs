//! Events and webhooks as the store keeps them. The audit trail is the
//! outbox: an event is a history row, written in its write's transaction,
//! so it exists exactly when the write committed. [`EventStore`] pages
//! those rows (the change feed), fans them out to webhook subscriptions
//! (deliveries) and leases deliveries to the instances that send them.
//!
//! What the store guarantees, whatever the backend:
//! - [`EventStore::events`] and [`EventStore::dispatch`] only ever see a
//!   prefix of the history in sequence order that is complete: no row with
//!   a lower sequence number can appear later (see the PostgreSQL
//!   implementation for how, with sequence numbers taken before commit).
//! - A delivery is leased to one sender at a time; a lease that expires
//!   (its instance died) is taken over by another.
//! - A record's deliveries to one subscription are leased in sequence
//!   order, one at a time: a delivery waits while an earlier one of the
//!   same record is pending or leased.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{HistoryEntry, StoreError, WorkspaceId};

/// One committed change, with its place in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The history row's sequence number: unique and increasing.
    pub seq: i64,
    pub workspace: WorkspaceId,
    pub entry: HistoryEntry,
}

/// A webhook subscription as stored. The secrets are sealed by the core;
/// the store never sees one in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWebhook {
    pub id: String,
    pub workspace: WorkspaceId,
    pub url: String,
    /// Event type patterns (`icp.updated`, `client.*`, `*`).
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the server disabled it (e.g. the endpoint answered 410).
    pub disabled_reason: Option<String>,
    pub secret: String,
    /// The secret before the last rotation, still signed with until
    /// `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Events up to this sequence number are not sent to it: they were
    /// committed before it was made or enabled again. `None` when writing
    /// means "every event committed so far" (the store reads the number in
    /// the write's own transaction).
    pub events_after: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery leased to this sender: the event, the subscription, and how
/// many attempts were made before.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub id: i64,
    pub webhook: StoredWebhook,
    pub event: StoredEvent,
    pub attempts_before: i32,
}

/// What became of one attempt, and so of its delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at this time.
    Retry {
        at: DateTime<Utc>,
    },
    /// The retry schedule is spent; `replay` can send it again.
    Failed,
    /// The endpoint asked to stop (410): the subscription is disabled.
    Disable {
        reason: String,
    },
}

impl DeliveryOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Disable { .. } => "disabled",
        }
    }
}

/// One attempt to send an event to a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub webhook_id: String,
    pub event_id: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// `delivered`, `retry`, `failed`, `disabled` (or `test`).
    pub outcome: String,
}

/// A kept attempt, with its id (the cursor of the attempt list).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttempt {
    pub id: i64,
    pub attempt: AttemptRecord,
}

/// A finished attempt of a leased delivery, to record.
#[derive(Debug, Clone)]
pub struct FinishedDelivery {
    pub delivery_id: i64,
    pub outcome: DeliveryOutcome,
    pub attempt: AttemptRecord,
}

/// How many deliveries of a subscription are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl DeliveryCounts {
    /// Counts from `(state, count)` rows (a leased delivery is pending).
    pub fn from_rows(rows: Vec<(String, i64)>) -> Self {
        let mut counts = Self::default();
        for (state, count) in rows {
            let count = u64::try_from(count).unwrap_or(0);
            match state.as_str() {
                "pending" | "leased" => counts.pending += count,
                "delivered" => counts.delivered += count,
                _ => counts.failed += count,
            }
        }
        counts
    }
}

/// What routing an event needs, and all the dispatcher reads of it: the
/// changes (most of a history row, and JSON to decode) are read only when
/// the event is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHead {
    pub seq: i64,
    pub workspace: WorkspaceId,
    /// The stored kind and action (as in [`HistoryEntry`]).
    pub kind: String,
    pub action: String,
    pub record_id: String,
}

impl EventHead {
    /// The key that orders a record's deliveries: kind and id.
    pub fn record_key(&self) -> String {
        format!("{}/{}", self.kind, self.record_id)
    }
}

/// Which subscriptions an event goes to: given the event and every enabled
/// subscription, the ids of those that want it.
pub type Router<'a> = &'a (dyn Fn(&EventHead, &[StoredWebhook]) -> Vec<String> + Send + Sync);

/// The events and webhook part of the store.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Up to `limit` events of `workspace` after sequence number `after`,
    /// in order, of the `(kind, action)` pairs in `only` (all when empty).
    async fn events(
        &self,
        workspace: &WorkspaceId,
        after: i64,
        limit: u32,
        only: &[(String, String)],
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Fans out up to `limit` events past the dispatch horizon to the
    /// subscriptions `route` picks, and moves the horizon past them, in one
    /// transaction; returns how many events it passed. Several instances
    /// may call it at once: one does the work, the others pass 0.
    async fn dispatch(&self, limit: u32, route: Router<'_>) -> Result<u64, StoreError>;

    /// A signal raised after every commit of a write in this process, so a
    /// dispatcher need not poll for local writes.
    fn committed_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;

    /// Called once by a process that starts sending: releases the leases
    /// that can only belong to a process that is gone. On SQLite, where
    /// one server process serves a file, that is every lease (a server
    /// killed mid-send left them); on PostgreSQL none (other instances may
    /// hold theirs), and a dead instance's leases expire instead.
    async fn release_orphaned_leases(&self) -> Result<u64, StoreError>;

    /// Leases up to `limit` due deliveries to `owner` for `lease`.
    async fn lease_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<LeasedDelivery>, StoreError>;

    /// Records attempts of deliveries leased to `owner`, and what became of
    /// each delivery (a delivery whose lease was lost is left alone; its
    /// attempt is still recorded).
    async fn finish_deliveries(
        &self,
        owner: &str,
        finished: &[FinishedDelivery],
    ) -> Result<(), StoreError>;

    async fn insert_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError>;

    async fn webhook(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError>;

    /// The workspace's subscriptions, oldest first.
    async fn webhooks(&self, workspace: &WorkspaceId) -> Result<Vec<StoredWebhook>, StoreError>;

    /// Replaces a subscription's settings; false if it does not exist.
    async fn update_webhook(&self, webhook: &StoredWebhook) -> Result<bool, StoreError>;

    /// Deletes a subscription with its deliveries and attempts.
    async fn delete_webhook(&self, workspace: &WorkspaceId, id: &str) -> Result<bool, StoreError>;

    /// Keeps an attempt that belongs to no delivery (a test send).
    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError>;

    /// Up to `limit` attempts of a subscription with ids above `after`.
    async fn attempts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredAttempt>, StoreError>;

    async fn delivery_counts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
    ) -> Result<DeliveryCounts, StoreError>;

    /// Makes the failed deliveries (and the delivered ones too when
    /// `include_delivered`) of events since `since` pending again, from
    /// the first attempt; of one subscription, or of every one of the
    /// workspace. Returns how many.
    async fn replay(
        &self,
        workspace: &WorkspaceId,
        webhook_id: Option<&str>,
        since: DateTime<Utc>,
        include_delivered: bool,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Keeps the delivery tables fast under churn: every delivery is
    /// updated two or three times, and on PostgreSQL each update leaves a
    /// dead row and dead index entries that the lease query must step over
    /// until a vacuum; autovacuum may be off, or late, and its statistics
    /// stale (a plan made when the table was empty scans it whole). So
    /// PostgreSQL vacuums and analyzes the table itself; SQLite needs
    /// nothing.
    async fn maintain_deliveries(&self) -> Result<(), StoreError>;

    /// Deletes finished deliveries and attempts from before `before`.
    async fn purge_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

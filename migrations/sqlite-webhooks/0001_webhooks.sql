-- The webhook file: subscriptions, deliveries and attempts, beside the
-- records' database file (`<database>.webhooks`). They live in a file of
-- their own so that their bookkeeping (four row writes per event and
-- subscription) runs on a writer of its own and never queues with the
-- records' writes: SQLite has one writer per file. The history, which is
-- the outbox, stays in the records' file, written in each write's own
-- transaction. Tables moved here from the records' file (0204 there) when
-- the server first opens it; see src/store/sqlite/events.rs.

-- How far events have been fanned out to subscriptions: every history row
-- up to `horizon` has its deliveries. (On SQLite commits happen in
-- sequence order, so the feed needs no horizon; PostgreSQL's does.)
CREATE TABLE event_dispatch (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    horizon INTEGER NOT NULL
);
-- The row is written when the file is made, from the database it serves
-- (history written before events existed is in the feed but is not sent).

-- A workspace's webhook subscriptions. Secrets are sealed (AES-256-GCM
-- under the server's webhook key, which is not in the database).
CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL,
    url                    TEXT NOT NULL,
    event_types            TEXT NOT NULL CHECK (json_valid(event_types)),
    description            TEXT,
    enabled                INTEGER NOT NULL,
    disabled_reason        TEXT,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    -- Events up to this sequence number were committed before the
    -- subscription was made (or enabled again) and are not sent to it.
    events_after           INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

-- One event to send to one subscription. A record's deliveries to one
-- subscription go out in event order: one waits while an earlier one is
-- pending or leased.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    event_seq        INTEGER NOT NULL,
    record_key       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (webhook_id, event_seq)
);
-- Both indexes hold only unfinished deliveries: delivered and failed
-- ones stay for the retention (30 days) and must not slow the lease
-- query, which walks due deliveries in order and checks, for each, that
-- no earlier one of its record is unfinished.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, event_seq)
    WHERE state IN ('pending', 'leased');
CREATE INDEX webhook_deliveries_by_record ON webhook_deliveries (webhook_id, record_key, event_seq)
    WHERE state IN ('pending', 'leased');
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;

-- Every attempt to send, kept for the configured retention.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY,
    webhook_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    outcome     TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

-- Events and webhooks. The audit trail is the outbox: every write appends
-- its history row in its own transaction, so an event exists exactly when
-- the write committed. These tables only fan events out to subscriptions.

CREATE INDEX history_by_workspace_seq ON history (workspace_id, seq);

-- How far the history is known complete: every sequence number up to
-- `horizon` is either committed or will never commit. On PostgreSQL
-- sequence numbers are taken before commit, so a row with a higher number
-- can become visible before one with a lower number; the feed and the
-- fan-out read only up to the horizon, which the dispatcher advances (see
-- src/store/postgres/events.rs).
CREATE TABLE event_dispatch (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    horizon BIGINT NOT NULL
);
INSERT INTO event_dispatch (id, horizon) SELECT 1, COALESCE(MAX(seq), 0) FROM history;

CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL,
    url                    TEXT NOT NULL,
    event_types            JSONB NOT NULL,
    description            TEXT,
    enabled                BOOLEAN NOT NULL,
    disabled_reason        TEXT,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    -- Events up to this sequence number were committed before the
    -- subscription was made (or enabled again) and are not sent to it.
    events_after           BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    event_seq        BIGINT NOT NULL,
    record_key       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT,
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

CREATE TABLE webhook_attempts (
    id          BIGSERIAL PRIMARY KEY,
    webhook_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          BIGINT NOT NULL,
    status      INTEGER,
    latency_ms  BIGINT NOT NULL,
    error       TEXT,
    outcome     TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (at);

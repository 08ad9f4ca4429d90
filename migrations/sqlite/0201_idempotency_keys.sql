-- Idempotency keys (the Idempotency-Key request header): the request's
-- fingerprint and, once its write committed, the response to replay. The
-- row is written in the same transaction as the write it answers, so a
-- crash can never leave one without the other. On SQLite a request that is
-- still running holds its key in the server's memory (one process owns the
-- file); rows here are always complete.
CREATE TABLE idempotency_keys (
    workspace_id    TEXT NOT NULL,
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    status          INTEGER,
    headers         TEXT,
    body            BLOB,
    PRIMARY KEY (workspace_id, caller, idempotency_key)
) WITHOUT ROWID;

-- Expired keys are purged oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (started_at);

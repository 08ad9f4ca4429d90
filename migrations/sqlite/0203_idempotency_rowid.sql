-- Idempotency keys in a rowid table with a unique index on the key,
-- instead of a WITHOUT ROWID table keyed by it: a kept response is about a
-- kilobyte, a quarter of a page, and WITHOUT ROWID tables keep whole rows
-- in the key's B-tree, so every write with a fresh (random) key split and
-- rewrote a random leaf full of responses. Rows now go to the end of the
-- table; only the small index entry lands at a random place.
CREATE TABLE idempotency_keys_by_rowid (
    workspace_id    TEXT NOT NULL,
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    status          INTEGER,
    headers         TEXT,
    body            BLOB,
    UNIQUE (workspace_id, caller, idempotency_key)
);
INSERT INTO idempotency_keys_by_rowid
    (workspace_id, caller, idempotency_key, fingerprint, started_at, status, headers, body)
    SELECT workspace_id, caller, idempotency_key, fingerprint, started_at, status, headers, body
    FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_rowid RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (started_at);

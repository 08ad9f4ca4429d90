-- The audit trail: one row per create, update and delete, written in the
-- same transaction as the change. Kept when the record is deleted.
CREATE TABLE history (
    seq          BIGSERIAL PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    user_id      TEXT NOT NULL,
    key_id       TEXT,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,
    changes      JSONB NOT NULL
);

CREATE INDEX history_by_record ON history (workspace_id, kind, record_id, seq);

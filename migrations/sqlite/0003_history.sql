-- The audit trail: one row per create, update and delete, written in the
-- same transaction as the change. Kept when the record is deleted.
CREATE TABLE history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    user_id      TEXT NOT NULL,
    key_id       TEXT,
    request_id   TEXT NOT NULL,
    at           INTEGER NOT NULL,
    changes      TEXT NOT NULL CHECK (json_valid(changes))
);

CREATE INDEX history_by_record ON history (workspace_id, kind, record_id, seq);

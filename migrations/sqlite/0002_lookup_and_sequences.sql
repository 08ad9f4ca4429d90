-- A second, unique key per record (e.g. a ClientSuccess client's numeric id
-- beside its UUID), and counters for numeric ids.
ALTER TABLE records ADD COLUMN lookup TEXT;

CREATE UNIQUE INDEX records_lookup ON records (workspace_id, kind, lookup)
    WHERE lookup IS NOT NULL;

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);

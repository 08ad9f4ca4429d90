-- Workspaces, API keys (hashes only), records as versioned JSONB documents,
-- and counters for numeric ids. Timestamps are Unix milliseconds (UTC), as
-- in the SQLite schema, so both backends hand the core the same values.
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE records (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      BIGINT NOT NULL CHECK (version >= 1),
    lookup       TEXT,
    body         JSONB NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, kind, id)
);

-- Listing a kind in a workspace in creation order.
CREATE INDEX records_by_creation ON records (workspace_id, kind, created_at, id);

CREATE UNIQUE INDEX records_lookup ON records (workspace_id, kind, lookup)
    WHERE lookup IS NOT NULL;

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

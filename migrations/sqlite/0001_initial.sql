-- Workspaces, API keys (hashes only) and records as versioned JSON documents.
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- Timestamps are Unix milliseconds (UTC).
CREATE TABLE records (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    body         TEXT NOT NULL CHECK (json_valid(body)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, id)
) WITHOUT ROWID;

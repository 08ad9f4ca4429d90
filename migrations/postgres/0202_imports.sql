-- Bulk import (`clientele import`): how far each file got, so that running
-- the same file again resumes after the last committed batch instead of
-- creating its rows twice. `source` is the SHA-256 of the file's bytes; the
-- row is written in the same transaction as the batch it counts.
CREATE TABLE import_checkpoints (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    source       TEXT NOT NULL,
    line         BIGINT NOT NULL,
    done         BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, kind, source)
);

-- Natural keys an import may upsert by (`--match`): a Hood profile's phone
-- number and a ClientSuccess client's externalId (the email already has
-- `records_body_email`). The expressions must match the lookups in
-- src/store/postgres.rs. Partial, for their kind alone, so that updates
-- of other kinds do not maintain them.
CREATE INDEX records_body_phone ON records (workspace_id, (body->>'mobile_phone_number'))
    WHERE kind = 'hood_profile';
CREATE INDEX records_body_external_id ON records (workspace_id, (body->>'externalId'))
    WHERE kind = 'client';

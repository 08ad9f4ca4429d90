-- Bulk import (`clientele import`): how far each file got, so that running
-- the same file again resumes after the last committed batch instead of
-- creating its rows twice. `source` is the SHA-256 of the file's bytes; the
-- row is written in the same transaction as the batch it counts.
CREATE TABLE import_checkpoints (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    source       TEXT NOT NULL,
    line         INTEGER NOT NULL,
    done         INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, source)
) WITHOUT ROWID;

-- Natural keys an import may upsert by (`--match`) besides the email
-- (which has `records_body_email`): a Hood profile's phone number and a
-- ClientSuccess client's externalId, kept in a table of their own by
-- triggers in the write's transaction. Not expression indexes: SQLite
-- re-evaluates those on every UPDATE of the body, which cost every PATCH of
-- every kind two JSON extractions (PATCH ICP at 64 connections fell from
-- 2.08x to 1.71x the storage floor); and not partial indexes either: the
-- mere presence of a partial index on `records` made the filtered profile
-- list 2.3x slower with the same plan (measured on 20,000 profiles: 0.22 s
-- against 0.50 s for 3,000 queries). The triggers test the kind first.
CREATE TABLE record_keys (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    field        TEXT NOT NULL,
    value        TEXT NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, kind, field, value, id)
) WITHOUT ROWID;

INSERT INTO record_keys (workspace_id, kind, field, value, id)
    SELECT workspace_id, kind, 'mobile_phone_number', json_extract(body, '$.mobile_phone_number'), id
    FROM records WHERE kind = 'hood_profile' AND json_extract(body, '$.mobile_phone_number') IS NOT NULL;
INSERT INTO record_keys (workspace_id, kind, field, value, id)
    SELECT workspace_id, kind, 'externalId', json_extract(body, '$.externalId'), id
    FROM records WHERE kind = 'client' AND json_extract(body, '$.externalId') IS NOT NULL;

CREATE TRIGGER phone_keys_insert AFTER INSERT ON records
WHEN NEW.kind = 'hood_profile' AND json_extract(NEW.body, '$.mobile_phone_number') IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO record_keys (workspace_id, kind, field, value, id)
        VALUES (NEW.workspace_id, NEW.kind, 'mobile_phone_number',
                json_extract(NEW.body, '$.mobile_phone_number'), NEW.id);
END;

CREATE TRIGGER phone_keys_delete AFTER DELETE ON records
WHEN OLD.kind = 'hood_profile' AND json_extract(OLD.body, '$.mobile_phone_number') IS NOT NULL
BEGIN
    DELETE FROM record_keys
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'mobile_phone_number'
          AND value = json_extract(OLD.body, '$.mobile_phone_number') AND id = OLD.id;
END;

CREATE TRIGGER phone_keys_update AFTER UPDATE OF body ON records
WHEN NEW.kind = 'hood_profile'
     AND json_extract(OLD.body, '$.mobile_phone_number') IS NOT json_extract(NEW.body, '$.mobile_phone_number')
BEGIN
    DELETE FROM record_keys
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'mobile_phone_number'
          AND value = json_extract(OLD.body, '$.mobile_phone_number') AND id = OLD.id;
    INSERT OR IGNORE INTO record_keys (workspace_id, kind, field, value, id)
        SELECT NEW.workspace_id, NEW.kind, 'mobile_phone_number',
               json_extract(NEW.body, '$.mobile_phone_number'), NEW.id
        WHERE json_extract(NEW.body, '$.mobile_phone_number') IS NOT NULL;
END;

CREATE TRIGGER external_id_keys_insert AFTER INSERT ON records
WHEN NEW.kind = 'client' AND json_extract(NEW.body, '$.externalId') IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO record_keys (workspace_id, kind, field, value, id)
        VALUES (NEW.workspace_id, NEW.kind, 'externalId', json_extract(NEW.body, '$.externalId'), NEW.id);
END;

CREATE TRIGGER external_id_keys_delete AFTER DELETE ON records
WHEN OLD.kind = 'client' AND json_extract(OLD.body, '$.externalId') IS NOT NULL
BEGIN
    DELETE FROM record_keys
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'externalId'
          AND value = json_extract(OLD.body, '$.externalId') AND id = OLD.id;
END;

CREATE TRIGGER external_id_keys_update AFTER UPDATE OF body ON records
WHEN NEW.kind = 'client'
     AND json_extract(OLD.body, '$.externalId') IS NOT json_extract(NEW.body, '$.externalId')
BEGIN
    DELETE FROM record_keys
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'externalId'
          AND value = json_extract(OLD.body, '$.externalId') AND id = OLD.id;
    INSERT OR IGNORE INTO record_keys (workspace_id, kind, field, value, id)
        SELECT NEW.workspace_id, NEW.kind, 'externalId', json_extract(NEW.body, '$.externalId'), NEW.id
        WHERE json_extract(NEW.body, '$.externalId') IS NOT NULL;
END;

-- Exports walk a kind in creation order (parents before the children that
-- name them), a page at a time from the last (created_at, id) seen.
CREATE INDEX records_by_creation ON records (workspace_id, kind, created_at, id);

-- How many records of each workspace and kind hold each value of the body
-- fields most filtered on (the ones with expression indexes in 0004), kept
-- by triggers in the same transaction as the write. A list filtered by one
-- of them alone (`organization_id=eq:1007`) then reads its total instead of
-- counting every match: SQLite checks each entry of an index on a body
-- expression against the table, about a microsecond per match, which made
-- a filter matching 100,000 records cost over 100 ms per request.
-- The expressions must match the filters' (src/store/query.rs) exactly.
-- Only Hood profiles have these fields; the triggers test the kind first,
-- so writes of other kinds do not parse their bodies for nothing (that cost
-- an ICP PATCH 18% more instructions).
CREATE TABLE record_value_counts (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    field        TEXT NOT NULL,
    value        NOT NULL, -- no type: an integer stays an integer, text stays text
    records      INTEGER NOT NULL CHECK (records >= 0),
    PRIMARY KEY (workspace_id, kind, field, value)
) WITHOUT ROWID;

INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
    SELECT workspace_id, kind, 'organization_id',
           CAST(json_extract(body, '$.organization_id') AS INTEGER), COUNT(*)
    FROM records WHERE kind = 'hood_profile' AND json_extract(body, '$.organization_id') IS NOT NULL
    GROUP BY workspace_id, kind, CAST(json_extract(body, '$.organization_id') AS INTEGER);

INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
    SELECT workspace_id, kind, 'email', json_extract(body, '$.email'), COUNT(*)
    FROM records WHERE kind = 'hood_profile' AND json_extract(body, '$.email') IS NOT NULL
    GROUP BY workspace_id, kind, json_extract(body, '$.email');

CREATE TRIGGER organization_counts_insert AFTER INSERT ON records
WHEN NEW.kind = 'hood_profile' AND json_extract(NEW.body, '$.organization_id') IS NOT NULL
BEGIN
    INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
        VALUES (NEW.workspace_id, NEW.kind, 'organization_id',
                CAST(json_extract(NEW.body, '$.organization_id') AS INTEGER), 1)
        ON CONFLICT (workspace_id, kind, field, value) DO UPDATE SET records = records + 1;
END;

CREATE TRIGGER organization_counts_delete AFTER DELETE ON records
WHEN OLD.kind = 'hood_profile' AND json_extract(OLD.body, '$.organization_id') IS NOT NULL
BEGIN
    UPDATE record_value_counts SET records = records - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'organization_id'
          AND value = CAST(json_extract(OLD.body, '$.organization_id') AS INTEGER);
END;

CREATE TRIGGER organization_counts_update AFTER UPDATE OF body ON records
WHEN NEW.kind = 'hood_profile'
     AND CAST(json_extract(OLD.body, '$.organization_id') AS INTEGER)
     IS NOT CAST(json_extract(NEW.body, '$.organization_id') AS INTEGER)
BEGIN
    UPDATE record_value_counts SET records = records - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'organization_id'
          AND value = CAST(json_extract(OLD.body, '$.organization_id') AS INTEGER);
    INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
        SELECT NEW.workspace_id, NEW.kind, 'organization_id',
               CAST(json_extract(NEW.body, '$.organization_id') AS INTEGER), 1
        WHERE json_extract(NEW.body, '$.organization_id') IS NOT NULL
        ON CONFLICT (workspace_id, kind, field, value) DO UPDATE SET records = records + 1;
END;

CREATE TRIGGER email_counts_insert AFTER INSERT ON records
WHEN NEW.kind = 'hood_profile' AND json_extract(NEW.body, '$.email') IS NOT NULL
BEGIN
    INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
        VALUES (NEW.workspace_id, NEW.kind, 'email', json_extract(NEW.body, '$.email'), 1)
        ON CONFLICT (workspace_id, kind, field, value) DO UPDATE SET records = records + 1;
END;

CREATE TRIGGER email_counts_delete AFTER DELETE ON records
WHEN OLD.kind = 'hood_profile' AND json_extract(OLD.body, '$.email') IS NOT NULL
BEGIN
    UPDATE record_value_counts SET records = records - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'email'
          AND value = json_extract(OLD.body, '$.email');
END;

CREATE TRIGGER email_counts_update AFTER UPDATE OF body ON records
WHEN OLD.kind = 'hood_profile' AND json_extract(OLD.body, '$.email') IS NOT json_extract(NEW.body, '$.email')
BEGIN
    UPDATE record_value_counts SET records = records - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind AND field = 'email'
          AND value = json_extract(OLD.body, '$.email');
    INSERT INTO record_value_counts (workspace_id, kind, field, value, records)
        SELECT NEW.workspace_id, NEW.kind, 'email', json_extract(NEW.body, '$.email'), 1
        WHERE json_extract(NEW.body, '$.email') IS NOT NULL
        ON CONFLICT (workspace_id, kind, field, value) DO UPDATE SET records = records + 1;
END;

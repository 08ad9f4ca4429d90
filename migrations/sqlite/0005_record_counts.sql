-- How many records each workspace has of each kind, kept by triggers in the
-- same transaction as the insert or delete, so an unfiltered list can give
-- its total without counting a million rows (src/store/query.rs).
CREATE TABLE record_counts (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    records      INTEGER NOT NULL CHECK (records >= 0),
    PRIMARY KEY (workspace_id, kind)
) WITHOUT ROWID;

INSERT INTO record_counts (workspace_id, kind, records)
    SELECT workspace_id, kind, COUNT(*) FROM records GROUP BY workspace_id, kind;

CREATE TRIGGER record_counts_insert AFTER INSERT ON records
BEGIN
    INSERT INTO record_counts (workspace_id, kind, records)
        VALUES (NEW.workspace_id, NEW.kind, 1)
        ON CONFLICT (workspace_id, kind) DO UPDATE SET records = records + 1;
END;

CREATE TRIGGER record_counts_delete AFTER DELETE ON records
BEGIN
    UPDATE record_counts SET records = records - 1
        WHERE workspace_id = OLD.workspace_id AND kind = OLD.kind;
END;

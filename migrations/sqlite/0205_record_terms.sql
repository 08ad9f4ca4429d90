-- Search terms of the kinds that are searched by field (Lance persons and
-- companies): each record's normalised values (a seniority, a country, one
-- word of a job title, the id of its company, …) by field, written by the
-- core in the record's own write transaction (`WriteTx::set_terms`). A
-- search is then a set of index range scans over this table instead of a
-- scan of every body. Not triggers or expression indexes on `records`:
-- splitting a title into words is the core's rule, and anything on
-- `records` would cost every write of every kind (see 0202).
CREATE TABLE record_terms (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    field        TEXT NOT NULL,
    term         TEXT NOT NULL,
    id           TEXT NOT NULL,
    PRIMARY KEY (workspace_id, kind, field, term, id)
) WITHOUT ROWID;

-- A record's terms by field: what a search probes for each record it
-- considers (and what rewriting a record's terms deletes first).
CREATE INDEX record_terms_by_record ON record_terms (workspace_id, kind, id, field, term);

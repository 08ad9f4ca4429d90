-- Indexes for queries the database now runs itself (see src/store/query.rs):
-- numeric-id order for paging, and the Hood fields most filtered on, each
-- followed by the numeric id so a filtered page comes out in order without
-- a sort. The expressions must match the ones the queries use. Numeric
-- casts are guarded: other kinds' ids (UUIDs, suppression keys) are not
-- numbers, and an index expression must not fail on any row.
CREATE INDEX records_numeric_id ON records (workspace_id, kind,
    (CASE WHEN id ~ '^[0-9]{1,30}$' THEN CAST(id AS NUMERIC) END));
CREATE INDEX records_body_email ON records (workspace_id, kind, (body->>'email'),
    (CASE WHEN id ~ '^[0-9]{1,30}$' THEN CAST(id AS NUMERIC) END));
CREATE INDEX records_body_organization ON records (workspace_id, kind,
    (CASE WHEN body->>'organization_id' ~ '^[0-9]{1,30}$' THEN CAST(body->>'organization_id' AS NUMERIC) END),
    (CASE WHEN id ~ '^[0-9]{1,30}$' THEN CAST(id AS NUMERIC) END));

-- Indexes for queries the database now runs itself (see src/store/query.rs):
-- numeric-id order for paging, and the Hood fields most filtered on, each
-- followed by the numeric id so a filtered page comes out in order without
-- a sort. The expressions must match the ones the queries use, character
-- for character.
CREATE INDEX records_numeric_id ON records (workspace_id, kind, CAST(id AS INTEGER));
CREATE INDEX records_body_email
    ON records (workspace_id, kind, json_extract(body, '$.email'), CAST(id AS INTEGER));
CREATE INDEX records_body_organization
    ON records (workspace_id, kind, CAST(json_extract(body, '$.organization_id') AS INTEGER),
                CAST(id AS INTEGER));

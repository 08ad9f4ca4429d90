-- The statements one Hood profile PATCH issues on PostgreSQL, for pgbench:
-- lock the row, write the new version, append the audit entry, commit.
-- Variables: :first and :count (the preloaded profile ids), set by the harness.
\set id random(:first, :first + :count - 1)
BEGIN;
SELECT kind, id, version, lookup, body, created_at, updated_at FROM records
    WHERE workspace_id = 'bench' AND kind = 'hood_profile' AND id = :id::text FOR UPDATE;
UPDATE records SET version = version + 1,
    body = jsonb_set(body, '{custom_properties,clicker}', to_jsonb(random()::text)),
    updated_at = (extract(epoch from clock_timestamp()) * 1000)::bigint
    WHERE workspace_id = 'bench' AND kind = 'hood_profile' AND id = :id::text;
INSERT INTO history (workspace_id, kind, record_id, version, action, user_id, key_id, request_id, at, changes)
    VALUES ('bench', 'hood_profile', :id::text, 2, 'update', 'user_bench', NULL, 'pgbench',
            (extract(epoch from clock_timestamp()) * 1000)::bigint,
            '[{"field":"custom_properties","old":{},"new":{}}]');
COMMIT;

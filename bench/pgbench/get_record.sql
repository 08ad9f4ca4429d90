-- The one statement a GET issues on PostgreSQL (SELECT_RECORD in
-- src/store/postgres.rs), for pgbench with `-M prepared`, as sqlx sends it:
-- one record by its primary key. Run over the preloaded Hood profiles,
-- whose ids are numbers pgbench can draw; ICP ids are UUIDs it cannot.
-- Variables: :first and :count (the preloaded profile ids), set by the harness.
\set id random(:first, :first + :count - 1)
SELECT kind, id, version, lookup, body, created_at, updated_at FROM records
    WHERE workspace_id = 'bench' AND kind = 'hood_profile' AND id = :id::text;

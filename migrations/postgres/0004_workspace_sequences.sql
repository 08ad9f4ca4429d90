-- Numeric ids (ClientSuccess client ids, Hood profile and list ids) were
-- drawn from one counter per kind shared by every workspace, so the gaps a
-- tenant saw in its own ids counted the other tenants' creates. From here
-- on every workspace numbers each kind on its own counter, and ids are
-- unique per workspace (records, lookup keys and history are all keyed by
-- workspace already).
--
-- No id may be issued twice in a workspace, so the new counters must start
-- past every id the old one issued there. Every workspace this database
-- knows (named in `workspaces`, `records` or `history`) starts each counter
-- at the old global value; its next id is one more. That is provably safe:
-- the global counter grew by one for every id it issued, in any workspace,
-- so no issued id exceeds it.
--
-- The workspace's own largest id would not be safe: a deleted record's id
-- lives on in its history, in profiles' `lists` (deleting a list leaves its
-- id there) and in children's `parentClientId`, and issuing it again would
-- join those to an unrelated new record.
--
-- A workspace named nowhere has no record and no history, so nothing stored
-- holds an id of it (every create has written history since 0002); it
-- starts at the kind's first number, like a workspace created later. The
-- one-off cost: known workspaces' next ids jump to just past the global
-- value, which each of them could already read off its own newest id.
--
-- Instances still running the previous version may be creating records
-- while this runs. The lock makes them wait: every create that drew from
-- the global counter has committed (its record and history with it) before
-- the values are copied, so the copy sees every id issued and every
-- workspace that holds one; after this commits the global table is gone and
-- their creates fail rather than draw an id again.
LOCK TABLE sequences IN ACCESS EXCLUSIVE MODE;

CREATE TABLE workspace_sequences (
    workspace_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    value        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

INSERT INTO workspace_sequences (workspace_id, name, value)
    SELECT known.workspace_id, sequences.name, sequences.value
    FROM (SELECT id AS workspace_id FROM workspaces
          UNION SELECT workspace_id FROM records
          UNION SELECT workspace_id FROM history) AS known
    CROSS JOIN sequences;

DROP TABLE sequences;

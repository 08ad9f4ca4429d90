-- Idempotency keys (the Idempotency-Key request header): the request's
-- fingerprint and, once its write committed, the response to replay
-- (status NOT NULL). A row without a response is a claim: a request of some
-- instance is running under that key (its started_at lets a later retry
-- take over a claim whose instance died). The response is written in the
-- same transaction as the write it answers.
CREATE TABLE idempotency_keys (
    workspace_id    TEXT NOT NULL,
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    status          INTEGER,
    headers         JSONB,
    body            BYTEA,
    PRIMARY KEY (workspace_id, caller, idempotency_key)
);

-- Expired keys are purged oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (started_at);

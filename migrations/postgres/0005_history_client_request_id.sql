-- The audit trail's request id is now always the server's own id of the
-- request (a new UUID per request); the X-Request-Id a client sends is kept
-- beside it here, for tracing. Before, a sane client-sent X-Request-Id was
-- stored as `request_id` itself, so one user could make a change look like
-- part of another user's request. Entries written before this migration
-- keep what they had: their `request_id` may be an id the client chose, and
-- their `client_request_id` is NULL because which it was is not known.
ALTER TABLE history ADD COLUMN client_request_id TEXT;

-- Approver push notifications (postgres). Kept in step with ../sqlite/0004_push.sql.

-- One row per (request, device) to alert, written in the same transaction as the request
-- it announces, so a crash cannot lose one. Workers lease due rows (locked_until), so each
-- is sent by one replica at a time; delivered rows are never sent again.
CREATE TABLE push_outbox (
    id              TEXT PRIMARY KEY,
    auth_req_id     TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    channel         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT,
    UNIQUE (auth_req_id, device_id)
);
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

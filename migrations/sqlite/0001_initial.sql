-- Countersign initial schema (SQLite). Times are Unix milliseconds; JSON is stored as text.
-- Kept in step with ../postgres/0001_initial.sql.

CREATE TABLE humans (
    subject        TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1,
    user_code_hash TEXT,
    created_at     INTEGER NOT NULL
);

CREATE TABLE clients (
    client_id              TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    owner_subject          TEXT NOT NULL REFERENCES humans (subject),
    auth_method            TEXT NOT NULL,
    secret_hash            TEXT,
    jwks                   TEXT,
    delivery_mode          TEXT NOT NULL,
    notification_endpoint  TEXT,
    require_signed_request INTEGER NOT NULL DEFAULT 0,
    user_code_required     INTEGER NOT NULL DEFAULT 0,
    enabled                INTEGER NOT NULL DEFAULT 1,
    created_at             INTEGER NOT NULL
);

CREATE TABLE auth_requests (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES clients (client_id),
    subject               TEXT NOT NULL REFERENCES humans (subject),
    scope                 TEXT NOT NULL,
    binding_message       TEXT,
    acr_values            TEXT,
    authorization_details TEXT,
    delivery_mode         TEXT NOT NULL,
    notification_token    TEXT,
    status                TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    interval_secs         INTEGER NOT NULL,
    last_poll_at          INTEGER,
    decided_at            INTEGER,
    decided_by            TEXT,
    decision_method       TEXT,
    -- The access token issued for this request (at most one): its identity lives here so
    -- that issuing it and moving the request to `issued` are one statement.
    token_issued_at       INTEGER,
    token_jti             TEXT UNIQUE,
    token_type            TEXT,
    token_cnf_jkt         TEXT,
    token_expires_at      INTEGER,
    token_revoked_at      INTEGER,
    token_revoked_reason  TEXT,
    -- The credential's entry in a Token Status List (list id, index).
    token_status_list     INTEGER,
    token_status_idx      INTEGER,
    -- When a ping/push client was told its undecided request expired.
    expiry_notified_at    INTEGER
);
CREATE INDEX auth_requests_status ON auth_requests (status, expires_at);
CREATE UNIQUE INDEX auth_requests_status_entry ON auth_requests (token_status_list, token_status_idx);

-- Token Status Lists (draft-ietf-oauth-status-list). Indexes are handed out in blocks of
-- a counter and mapped through a keyed permutation, so they are unique within a list and
-- do not reveal issuance order.
CREATE TABLE status_lists (
    id           INTEGER PRIMARY KEY,
    capacity     INTEGER NOT NULL,
    next_counter INTEGER NOT NULL,
    perm_key     TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE seen_jtis (
    namespace  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX seen_jtis_expiry ON seen_jtis (expires_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    auth_req_id     TEXT NOT NULL REFERENCES auth_requests (id),
    endpoint        TEXT NOT NULL,
    bearer          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER,
    failed_at       INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE admin_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

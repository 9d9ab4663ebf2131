-- Policies, approver routing, sessions, baselines and the decision trace (postgres). Kept
-- in step with ../sqlite/0005_policy.sql.

-- What policies know of people and agents, and who approves whom.
ALTER TABLE humans ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE humans ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE humans ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE humans ADD COLUMN manager_subject TEXT REFERENCES humans (subject);
CREATE INDEX humans_role ON humans (role) WHERE role <> '';
ALTER TABLE clients ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN risk_tier TEXT NOT NULL DEFAULT 'low';
ALTER TABLE clients ADD COLUMN description TEXT;

CREATE TABLE groups (
    name         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    subject    TEXT NOT NULL REFERENCES humans (subject) ON DELETE CASCADE,
    PRIMARY KEY (group_name, subject)
);
CREATE INDEX group_members_subject ON group_members (subject);

-- Versioned policy documents (Cedar). The active version is the latest activation;
-- none means the built-in default (every action steps up to the named user).
CREATE TABLE policy_versions (
    version     BIGINT PRIMARY KEY,
    source      TEXT NOT NULL,
    description TEXT,
    sha256      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE TABLE policy_activations (
    seq          BIGSERIAL PRIMARY KEY,
    version      BIGINT NOT NULL REFERENCES policy_versions (version),
    activated_at BIGINT NOT NULL,
    activated_by TEXT NOT NULL
);

-- The decision each request got, and who may approve a step-up (any one of them).
ALTER TABLE auth_requests ADD COLUMN action TEXT;
ALTER TABLE auth_requests ADD COLUMN resource TEXT;
ALTER TABLE auth_requests ADD COLUMN policy_outcome TEXT;
ALTER TABLE auth_requests ADD COLUMN policy_refs TEXT;
ALTER TABLE auth_requests ADD COLUMN policy_reasons TEXT;
ALTER TABLE auth_requests ADD COLUMN risk_signals TEXT;
ALTER TABLE auth_requests ADD COLUMN validity_secs BIGINT;
CREATE TABLE request_approvers (
    auth_req_id TEXT NOT NULL REFERENCES auth_requests (id),
    subject     TEXT NOT NULL,
    PRIMARY KEY (auth_req_id, subject)
);
CREATE INDEX request_approvers_subject ON request_approvers (subject);
-- Requests made before routing existed wait for the human they name.
INSERT INTO request_approvers (auth_req_id, subject)
    SELECT id, subject FROM auth_requests WHERE status = 'pending';

-- What an agent's task or session did: how many actions, and (one row each) the data
-- classifications it read and the action classes it performed. Inserting a fact twice
-- changes nothing, so no read is needed to record one.
CREATE TABLE agent_sessions (
    client_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    actions    BIGINT NOT NULL,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (client_id, session_id)
);
CREATE TABLE agent_session_facts (
    client_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (client_id, session_id, kind, value)
);

-- Accepted actions, from which per agent × action baselines are computed. Quantities
-- and amounts are stored as integers in units of 1/10 000 (sqlx's Any driver declares a
-- NULL float as float4 on PostgreSQL, so floats cannot be bound as optional values).
CREATE TABLE decision_samples (
    client_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    quantity_e4 BIGINT,
    amount_e4   BIGINT
);
CREATE INDEX decision_samples_key ON decision_samples (client_id, action, at);

-- Signed checkpoints of the audit chain's head (JWS by the server key), so truncating
-- the newest events is detected even if the head row is rewritten.
CREATE TABLE audit_checkpoints (
    seq  BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    at   BIGINT NOT NULL,
    jws  TEXT NOT NULL
);
CREATE INDEX audit_events_kind ON audit_events (kind, at);

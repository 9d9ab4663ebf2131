-- Credential renewal and the hash-chained audit trail (sqlite). Kept in step with
-- ../postgres/0002_renewal_and_audit.sql.

-- The task or session an agent's request belongs to (optional; renewal stays within it).
ALTER TABLE auth_requests ADD COLUMN task_id TEXT;
-- A renewed credential is a row of its own, marked with the credential it renews (its
-- jti) and the request whose human approval it rests on. The unique index makes renewing
-- the same credential twice impossible, however many replicas try at once. Both indexes
-- are partial: ordinary requests (no renewal) pay nothing for them.
ALTER TABLE auth_requests ADD COLUMN renewal_of TEXT;
ALTER TABLE auth_requests ADD COLUMN approval_id TEXT;
CREATE UNIQUE INDEX auth_requests_renewal_of ON auth_requests (renewal_of) WHERE renewal_of IS NOT NULL;
CREATE INDEX auth_requests_approval ON auth_requests (approval_id) WHERE approval_id IS NOT NULL;

-- Append-only audit trail. Each event's hash covers its fields and the previous event's
-- hash, so any edit, deletion or reordering breaks the chain from that event on.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject);

-- The chain's head. Appenders lock this one row (UPDATE) for the length of their
-- transaction, so events are chained in commit order across replicas.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'genesis');

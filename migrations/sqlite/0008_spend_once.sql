-- An approval is spent as approved, by the agent it was approved for (sqlite). Kept in step
-- with ../postgres/0008_spend_once.sql.

-- How often the request's credential may be used: set at the decision from the policy's
-- @max_uses (default 1); 0 means any number of times within its validity. token_uses
-- counts the uses recorded online (POST /credentials/{id}/uses).
ALTER TABLE auth_requests ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 1;
ALTER TABLE auth_requests ADD COLUMN token_uses INTEGER NOT NULL DEFAULT 0;
-- The DPoP key (RFC 7638 thumbprint) the request's credential must be bound to, given at
-- bc-authorize as dpop_jkt (RFC 9449 section 10) or taken from the client's registration.
ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT;

-- One row per recorded use: the presenter's DPoP proof (its jti) is the use, so a retried
-- report of the same use is answered with the same count instead of counting twice.
CREATE TABLE credential_uses (
    jti      TEXT NOT NULL,
    use_key  TEXT NOT NULL,
    n        INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (jti, use_key)
);

-- Clients registered to receive bearer credentials (no DPoP); every other client must
-- prove possession of a key (RFC 9449 dpop_bound_access_tokens). A registered DPoP key
-- binds ping and push credentials when a request names none.
ALTER TABLE clients ADD COLUMN bearer_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_jkt TEXT;

-- Offboarding revokes what a human decided (decided_by), wherever it was routed.
CREATE INDEX auth_requests_live_by_decider ON auth_requests (decided_by)
    WHERE token_jti IS NOT NULL AND token_revoked_at IS NULL;

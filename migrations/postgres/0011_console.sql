-- The server console (postgres). Kept in step with ../sqlite/0011_console.sql.

-- What an admin key may do: viewer (read), operator (approvals queue, suspend and resume,
-- revoke, offboard), admin (everything). Keys made before roles existed are admins.
ALTER TABLE admin_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';

-- Single-use links that sign a browser in to the console (`countersign admin
-- sign-in-link`): the token's hash only, its role, who made it, and when it was used.
CREATE TABLE console_sign_in_links (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Console passkeys (sqlite). Kept in step with ../postgres/0014_admin_passkeys.sql.

-- An admin's passkey for the console: the WebAuthn relying party's stored state
-- (base64url of webauthn_rp encodings), the role it signs in with (the role of the
-- session that registered it: a passkey never raises a role), and its label.
CREATE TABLE admin_passkeys (
    id            TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    role          TEXT NOT NULL,
    user_handle   TEXT NOT NULL,
    static_state  TEXT NOT NULL,
    dynamic_state TEXT NOT NULL,
    transports    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

-- A console registration ceremony belongs to the session that started it.
ALTER TABLE webauthn_ceremonies ADD COLUMN admin_key_id TEXT;

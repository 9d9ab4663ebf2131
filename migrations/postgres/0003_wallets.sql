-- Wallet enrollment, devices, passkey ceremonies and approval evidence (postgres). Kept in
-- step with ../sqlite/0003_wallets.sql.

-- One-time invitations to enroll a wallet for a human. Only the token's SHA-256 is kept.
CREATE TABLE enrollment_invitations (
    id          TEXT PRIMARY KEY,
    subject     TEXT NOT NULL REFERENCES humans (subject),
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    redeemed_at BIGINT,
    device_id   TEXT
);

-- A human's enrolled wallets: the device key (P-256, in the phone's secure hardware) that
-- signs every API call and every decision, and the passkey (WebAuthn, user verification
-- required) that confirms each decision with a biometric.
CREATE TABLE devices (
    id                    TEXT PRIMARY KEY,
    subject               TEXT NOT NULL REFERENCES humans (subject),
    key_jkt               TEXT NOT NULL UNIQUE,
    key_jwk               TEXT NOT NULL,
    platform              TEXT NOT NULL,
    name                  TEXT,
    push_channel          TEXT NOT NULL,
    push_token            TEXT,
    push_token_invalid_at BIGINT,
    attestation           TEXT,
    passkey_id            TEXT NOT NULL UNIQUE,
    passkey_user          TEXT NOT NULL,
    passkey_static        TEXT NOT NULL,
    passkey_dynamic       TEXT NOT NULL,
    passkey_transports    BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    last_used_at          BIGINT,
    disabled_at           BIGINT,
    disabled_reason       TEXT
);
CREATE INDEX devices_subject ON devices (subject);

-- WebAuthn ceremonies in flight, keyed by their single-use challenge: a registration
-- during enrollment, or an assertion for one request shown on one device (with the hash
-- of the transaction shown). A ceremony is deleted when it is used.
CREATE TABLE webauthn_ceremonies (
    challenge        TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    invitation_id    TEXT,
    device_id        TEXT,
    auth_req_id      TEXT,
    transaction_hash TEXT,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);

-- A wallet lists the requests waiting for its human. Partial, so a request leaves the
-- index once when decided and issuing its token does not touch it.
CREATE INDEX auth_requests_pending_subject ON auth_requests (subject) WHERE status = 'pending';

-- The human's decision as the wallet signed it, and the device key that signed it.
ALTER TABLE auth_requests ADD COLUMN approval_jws TEXT;
ALTER TABLE auth_requests ADD COLUMN approval_device_jkt TEXT;

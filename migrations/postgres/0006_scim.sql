-- SCIM provisioning (postgres). Kept in step with ../sqlite/0006_scim.sql.

-- Each provisioned User or Group as the identity provider sent it (normalized JSON,
-- without id and meta), beside the human or group it provisions (`target`). `name_key`
-- is the lower-cased userName or displayName, unique per type as RFC 7643 asks.
CREATE TABLE scim_resources (
    id            TEXT PRIMARY KEY,
    resource_type TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    external_id   TEXT,
    target        TEXT NOT NULL,
    doc           TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_resources_name ON scim_resources (resource_type, name_key);
CREATE UNIQUE INDEX scim_resources_target ON scim_resources (resource_type, target);

-- Admin keys carry a scope (`admin` for the admin API, `scim` for provisioning) and may
-- expire.
ALTER TABLE admin_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE admin_keys ADD COLUMN expires_at BIGINT;

-- AuthZEN access requests (postgres). Kept in step with ../sqlite/0019_access_request_uses.sql.
--
-- An approval an enforcement point redeems by re-evaluating (the Access Request and
-- Approval profile) issues no credential: its uses are counted on the request itself,
-- against the policy's max_uses, in the statement that checks them.
ALTER TABLE auth_requests ADD COLUMN approval_uses BIGINT NOT NULL DEFAULT 0;

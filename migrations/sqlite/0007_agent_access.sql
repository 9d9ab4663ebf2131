-- What an agent may use and who approves for it (sqlite). Kept in step with
-- ../postgres/0007_agent_access.sql.

-- The tools (names from policy.tools) the agent may act on, as a JSON array; NULL means
-- any tool policies allow.
ALTER TABLE clients ADD COLUMN tools TEXT;
-- Who approves the agent's step-ups when the deciding policy names no @approver
-- (owner, manager, user, group:NAME, role:NAME); NULL means the request's user.
ALTER TABLE clients ADD COLUMN approver TEXT;

-- Offboarding and the kill switch revoke every live credential of an owner's agents, an
-- agent, or an approver in one statement; these keep that from scanning every request
-- ever made. Partial: only live credentials are in them.
CREATE INDEX auth_requests_live_by_client ON auth_requests (client_id)
    WHERE token_jti IS NOT NULL AND token_revoked_at IS NULL;
CREATE INDEX auth_requests_live_by_subject ON auth_requests (subject)
    WHERE token_jti IS NOT NULL AND token_revoked_at IS NULL;
CREATE INDEX clients_owner ON clients (owner_subject);

-- What an agent may use and who approves for it (sqlite). Kept in step with
-- ../postgres/0007_agent_access.sql.

-- The tools (names from policy.tools) the agent may act on, as a JSON array; NULL means
-- any tool policies allow.
ALTER TABLE clients ADD COLUMN tools TEXT;
-- Who approves the agent's step-ups when the deciding policy names no @approver
-- (owner, manager, user, group:NAME, role:NAME); NULL means the request's user.
ALTER TABLE clients ADD COLUMN approver TEXT;

-- Searching humans by prefix (sqlite). Kept in step with ../postgres/0015_human_search.sql.

-- The console's search reads a range of each (store::humans::page_humans): with 100,000
-- people a substring scan took tens of milliseconds per keystroke.
CREATE INDEX humans_subject_lower ON humans ((LOWER(subject)));
CREATE INDEX humans_email_lower ON humans ((LOWER(email)));
CREATE INDEX humans_name_lower ON humans ((LOWER(name)));

-- The approvers page counts the active humans holding each role (what `role:NAME` routes
-- reach) from this index alone, without reading 100,000 rows.
CREATE INDEX humans_role_active ON humans (role, active) WHERE role <> '';

-- And the agents with an approver route of their own, without reading every agent.
CREATE INDEX clients_own_route ON clients (client_id) WHERE approver IS NOT NULL;

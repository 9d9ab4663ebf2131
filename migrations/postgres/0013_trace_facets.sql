-- The console's decision trace filters (postgres). Kept in step with
-- ../sqlite/0013_trace_facets.sql.
--
-- What a decision event is about, copied out of its `detail` JSON into plain columns when
-- the event is appended, so the trace filters with indexed queries instead of reading the
-- trail. They are an index, not part of the event: the chain hash covers `detail`, from
-- which they are derived again at any time. NULL when the event does not say.
--   agent           detail.agent (decisions, approvals, issuance)
--   human           detail.user: the human the request was made for
--   outcome         decision.made: allow, step_up or deny; request.approved: approved;
--                   request.denied: denied
--   policy_id,      the first of detail.policies (the policy that determined the outcome)
--   policy_version
--   resource        detail.resource (decisions, issuance)
ALTER TABLE audit_events ADD COLUMN agent TEXT;
ALTER TABLE audit_events ADD COLUMN human TEXT;
ALTER TABLE audit_events ADD COLUMN outcome TEXT;
ALTER TABLE audit_events ADD COLUMN policy_id TEXT;
ALTER TABLE audit_events ADD COLUMN policy_version BIGINT;
ALTER TABLE audit_events ADD COLUMN resource TEXT;

UPDATE audit_events SET
    agent = detail::jsonb ->> 'agent',
    human = detail::jsonb ->> 'user',
    outcome = CASE kind
        WHEN 'decision.made' THEN detail::jsonb ->> 'outcome'
        WHEN 'request.approved' THEN 'approved'
        WHEN 'request.denied' THEN 'denied'
    END,
    policy_id = detail::jsonb -> 'policies' -> 0 ->> 'id',
    policy_version = (detail::jsonb -> 'policies' -> 0 ->> 'version')::bigint,
    resource = detail::jsonb ->> 'resource'
WHERE kind IN ('decision.made', 'request.approved', 'request.denied', 'credential.issued');

-- Each filter walks its own index newest first (keyset pagination on seq).
CREATE INDEX audit_events_agent ON audit_events (agent, seq) WHERE agent IS NOT NULL;
CREATE INDEX audit_events_human ON audit_events (human, seq) WHERE human IS NOT NULL;
CREATE INDEX audit_events_outcome ON audit_events (outcome, seq) WHERE outcome IS NOT NULL;
CREATE INDEX audit_events_policy ON audit_events (policy_id, policy_version, seq)
    WHERE policy_id IS NOT NULL;
CREATE INDEX audit_events_resource ON audit_events (resource, seq) WHERE resource IS NOT NULL;
-- A kind filter alone walks each kind it covers newest first (see Store::page_trace).
CREATE INDEX audit_events_kind_seq ON audit_events (kind, seq);
-- A time range becomes a range of seq (see Store::page_trace).
CREATE INDEX audit_events_at ON audit_events (at, seq);

-- A person's or an agent's credentials, newest first (a human's detail lists those they
-- approved, an agent's its live ones): one walk per side of the approver rule.
CREATE INDEX auth_requests_issued_by_decider ON auth_requests (decided_by, token_issued_at)
    WHERE token_jti IS NOT NULL;
CREATE INDEX auth_requests_issued_for_subject ON auth_requests (subject, token_issued_at)
    WHERE token_jti IS NOT NULL;
CREATE INDEX auth_requests_issued_to_client ON auth_requests (client_id, token_issued_at)
    WHERE token_jti IS NOT NULL;

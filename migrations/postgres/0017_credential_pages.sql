-- Credentials in keyset pages (postgres). Kept in step with ../sqlite/0017_credential_pages.sql.

-- The console and the admin API page through credentials newest first on
-- (token_issued_at, token_jti): the jti breaks ties between credentials issued in the
-- same millisecond, so each index carries it and a page after a cursor is one range walk.
-- Unfiltered: every credential.
CREATE INDEX auth_requests_issued ON auth_requests (token_issued_at, token_jti)
    WHERE token_jti IS NOT NULL;

-- Per agent, approver and requested-for human (0013's indexes, with the tie-breaker).
DROP INDEX auth_requests_issued_by_decider;
CREATE INDEX auth_requests_issued_by_decider ON auth_requests (decided_by, token_issued_at, token_jti)
    WHERE token_jti IS NOT NULL;
DROP INDEX auth_requests_issued_for_subject;
CREATE INDEX auth_requests_issued_for_subject ON auth_requests (subject, token_issued_at, token_jti)
    WHERE token_jti IS NOT NULL;
DROP INDEX auth_requests_issued_to_client;
CREATE INDEX auth_requests_issued_to_client ON auth_requests (client_id, token_issued_at, token_jti)
    WHERE token_jti IS NOT NULL;

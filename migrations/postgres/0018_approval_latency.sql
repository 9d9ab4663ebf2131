-- The console's approval latency without a join (postgres). Kept in step with
-- ../sqlite/0018_approval_latency.sql.
--
-- A human's decision (request.approved, request.denied) records how long the request
-- waited for it (detail.waited_ms); like the facets of 0013 it is copied into a column
-- when the event is appended. Events written before this migration have no such field:
-- their column is filled from their request's timestamps, the same figure.
ALTER TABLE audit_events ADD COLUMN latency_ms BIGINT;

UPDATE audit_events SET latency_ms = (
    SELECT r.decided_at - r.created_at FROM auth_requests r
    WHERE r.id = audit_events.subject AND r.decided_at IS NOT NULL
)
WHERE kind IN ('request.approved', 'request.denied');

-- The overview reads the last day's latencies from this index alone.
CREATE INDEX audit_events_latency ON audit_events (at, latency_ms)
    WHERE latency_ms IS NOT NULL;

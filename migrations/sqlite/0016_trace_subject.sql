-- The trace by subject (sqlite). Kept in step with ../postgres/0016_trace_subject.sql.

-- The console's trace filtered by subject pages newest first on seq: an index on
-- (subject, seq) gives those rows in that order, so no planner walks the whole trail by
-- seq looking for them (PostgreSQL did, 300-400 ms on 1,000,000 events, before its
-- statistics knew a request id is rare). It serves plain subject lookups too.
DROP INDEX audit_events_subject;
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

-- Status lists are signed once per change (sqlite). Kept in step with
-- ../postgres/0010_status_list_revisions.sql.

-- Bumped in the transaction of every revocation that sets one of the list's bits: a
-- server (any replica) serves its signed copy of the list for as long as this has not
-- moved, instead of reading, compressing and signing the list for every fetch.
ALTER TABLE status_lists ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- The console's integrations page (sqlite). Kept in step with ../postgres/0012_console_figures.sql.

-- Pushes given up, for "failures by reason" over the last day: without this the page
-- would read every push ever sent. Partial: only given-up rows are in it.
CREATE INDEX push_outbox_failed ON push_outbox (failed_at) WHERE failed_at IS NOT NULL;

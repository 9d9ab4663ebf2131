-- Searching humans by prefix (postgres). Kept in step with ../sqlite/0015_human_search.sql.

-- The console's search reads a range of each (store::humans::page_humans): with 100,000
-- people a substring scan took tens of milliseconds per keystroke.
CREATE INDEX humans_subject_lower ON humans ((LOWER(subject) COLLATE "C"));
CREATE INDEX humans_email_lower ON humans ((LOWER(email) COLLATE "C"));
CREATE INDEX humans_name_lower ON humans ((LOWER(name) COLLATE "C"));

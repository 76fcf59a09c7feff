-- pyindex catalog, schema version 10 (PostgreSQL), as SQLite's version 10: an evicted upstream
-- file is a change ('upstream-file', its SHA-256 as the subject), so that every replica forgets
-- it cached it.
ALTER TABLE changes DROP CONSTRAINT changes_scope_check;
ALTER TABLE changes ADD CONSTRAINT changes_scope_check
    CHECK (scope IN ('project', 'project-list', 'account', 'everything', 'upstream-file'));

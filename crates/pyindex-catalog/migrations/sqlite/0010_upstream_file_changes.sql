-- pyindex catalog, schema version 10: an evicted upstream file is a change ('upstream-file', its
-- SHA-256 as the subject), so that every process (CLI, other replicas) forgets it cached it.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with its rows and
-- sequence numbers (AUTOINCREMENT continues from the largest one copied).
CREATE TABLE changes_v10 (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    scope    TEXT NOT NULL
             CHECK (scope IN ('project', 'project-list', 'account', 'everything', 'upstream-file')),
    subject  TEXT              -- the project's normalized name, the account's name, or a SHA-256
);
INSERT INTO changes_v10 (seq, scope, subject) SELECT seq, scope, subject FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v10 RENAME TO changes;

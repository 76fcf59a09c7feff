-- pyindex catalog, schema version 4 (SQLite): one file per distribution, and a change log.

-- The distribution a file is, independent of the filename's spelling: MarkupSafe-2.1.5-...whl and
-- markupsafe-2.1.5-...whl are one distribution, so only one of them can be published. Rows from
-- before this version are filled in by the catalog when it opens the database.
ALTER TABLE files ADD COLUMN dist_key TEXT;
CREATE UNIQUE INDEX files_dist_key ON files (dist_key);

-- What changed, in commit order, so that every process serving the catalog (the server, another
-- replica) can drop exactly the cached pages and credentials a change affects. Each write appends
-- one row per thing it changed; no row is ever updated, so writers never queue on a hot row. Old
-- rows are pruned: a reader that fell further behind than what is kept drops all its caches.
CREATE TABLE changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    scope    TEXT NOT NULL CHECK (scope IN ('project', 'project-list', 'account', 'everything')),
    subject  TEXT              -- the project's normalized name or the account's name
);
INSERT INTO changes (scope, subject) VALUES ('everything', NULL);
DROP TABLE catalog_state;

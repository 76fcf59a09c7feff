-- pyindex catalog, schema version 6 (SQLite): what the web pages show of a release, and browser
-- sign-in sessions.

-- Project URLs, license, author, keywords and classifiers of a release, as a JSON object taken
-- from the metadata of its first file. NULL for releases published before this version: the
-- registry fills them in once by re-reading their stored metadata files when it opens.
ALTER TABLE releases ADD COLUMN details TEXT;

-- The summary of each project's newest release, as shown in search results, and in lower case
-- (Unicode lower case, written by the catalog; ASCII lower case for projects from before this
-- version) for searching, so that a search reads one table.
ALTER TABLE projects ADD COLUMN summary TEXT;
ALTER TABLE projects ADD COLUMN summary_folded TEXT;
UPDATE projects SET summary = (SELECT r.summary FROM releases r WHERE r.project_id = projects.id
                               ORDER BY r.id DESC LIMIT 1);
UPDATE projects SET summary_folded = LOWER(summary);

-- Browser sessions. Only a SHA-256 of the session id is stored, so a copy of the database
-- cannot be used to sign in; deleting the row revokes the session.
CREATE TABLE ui_sessions (
    id_hash     TEXT    PRIMARY KEY,           -- hex SHA-256 of the random id in the cookie
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,              -- the session's anti-forgery token
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_id);

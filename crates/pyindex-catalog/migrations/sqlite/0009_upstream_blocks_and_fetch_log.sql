-- pyindex catalog, schema version 9 (SQLite): blocked upstream projects and releases, and the
-- log of upstream files fetched.

-- Upstream projects (version_key '') and releases an operator blocked: never listed nor served,
-- whatever the cache holds. version_key is the canonical version (PEP 440-equal versions share
-- it: 1.0 and 1.0.0 are one key), so one release has one block.
CREATE TABLE upstream_blocks (
    project      TEXT    NOT NULL,  -- normalized name
    version_key  TEXT    NOT NULL,  -- canonical version; '' for the whole project
    version      TEXT,              -- the version as blocked, in normal form; NULL for the project
    reason       TEXT    NOT NULL,
    created_us   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    PRIMARY KEY (project, version_key)
);

-- Every upstream distribution fetched (downloaded whole and verified against the upstream's
-- SHA-256), once per project, filename and content: did a build pull it, and when?
CREATE TABLE upstream_fetches (
    project           TEXT    NOT NULL,  -- normalized name
    filename          TEXT    NOT NULL,
    sha256            TEXT    NOT NULL,
    version           TEXT,              -- from the filename, when it parses
    upload_time_us    INTEGER,           -- the upstream's upload time, when it gives one
    first_fetched_us  INTEGER NOT NULL,
    last_fetched_us   INTEGER NOT NULL,  -- fetched again after the cache evicted it
    fetches           INTEGER NOT NULL,  -- upstream downloads of it (not downloads from the cache)
    last_served_us    INTEGER NOT NULL,  -- last served, from the upstream or the cache (to a minute)
    PRIMARY KEY (project, filename, sha256)
);

CREATE INDEX upstream_fetches_sha256 ON upstream_fetches (sha256);

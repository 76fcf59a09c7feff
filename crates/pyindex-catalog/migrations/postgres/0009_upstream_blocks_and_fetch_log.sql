-- pyindex catalog, schema version 9 (PostgreSQL), as SQLite's version 9: blocked upstream projects and releases, and the
-- log of upstream files fetched.

-- Upstream projects (version_key '') and releases an operator blocked: never listed nor served,
-- whatever the cache holds. version_key is the canonical version (PEP 440-equal versions share
-- it: 1.0 and 1.0.0 are one key), so one release has one block.
CREATE TABLE upstream_blocks (
    project      TEXT    COLLATE "C" NOT NULL,  -- normalized name
    version_key  TEXT    COLLATE "C" NOT NULL,  -- canonical version; '' for the whole project
    version      TEXT,              -- the version as blocked, in normal form; NULL for the project
    reason       TEXT    NOT NULL,
    created_us   BIGINT NOT NULL,
    created_by   TEXT    NOT NULL,
    PRIMARY KEY (project, version_key)
);

-- Every upstream distribution fetched (downloaded whole and verified against the upstream's
-- SHA-256), once per project, filename and content: did a build pull it, and when?
CREATE TABLE upstream_fetches (
    project           TEXT    COLLATE "C" NOT NULL,  -- normalized name
    filename          TEXT    COLLATE "C" NOT NULL,
    sha256            TEXT    COLLATE "C" NOT NULL,
    version           TEXT,              -- from the filename, when it parses
    upload_time_us    BIGINT,           -- the upstream's upload time, when it gives one
    first_fetched_us  BIGINT NOT NULL,
    last_fetched_us   BIGINT NOT NULL,  -- fetched again after the cache evicted it
    fetches           BIGINT NOT NULL,  -- upstream downloads of it (not downloads from the cache)
    last_served_us    BIGINT NOT NULL,  -- last served, from the upstream or the cache (to a minute)
    PRIMARY KEY (project, filename, sha256)
);

CREATE INDEX upstream_fetches_sha256 ON upstream_fetches (sha256);

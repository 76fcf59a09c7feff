-- pyindex catalog, schema version 1 (SQLite).
-- Projects are identified by their PEP 503 normalized name; releases by the canonical form of
-- their PEP 440 version (trailing zeros stripped); files by their filename, which is unique
-- across the whole index and never reused.

CREATE TABLE projects (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,  -- normalized name, e.g. "shared-pkg"
    display_name  TEXT    NOT NULL,         -- the Name of the first upload, e.g. "Shared_Pkg"
    created_us    INTEGER NOT NULL          -- microseconds since the Unix epoch, UTC
);

CREATE TABLE releases (
    id                        INTEGER PRIMARY KEY,
    project_id                INTEGER NOT NULL REFERENCES projects (id),
    version                   TEXT    NOT NULL,  -- normalized PEP 440 version of the first upload
    canonical_version         TEXT    NOT NULL,  -- release key: 1.0 and 1.0.0 are one release
    summary                   TEXT,
    description               TEXT,
    description_content_type  TEXT,
    requires_python           TEXT,
    requires_dist             TEXT    NOT NULL DEFAULT '[]',  -- JSON array of PEP 508 strings
    yanked                    INTEGER NOT NULL DEFAULT 0,
    yanked_reason             TEXT,
    created_us                INTEGER NOT NULL,
    UNIQUE (project_id, canonical_version)
);

CREATE TABLE files (
    id               INTEGER PRIMARY KEY,
    release_id       INTEGER NOT NULL REFERENCES releases (id),
    filename         TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL CHECK (kind IN ('bdist_wheel', 'sdist')),
    size             INTEGER NOT NULL,
    sha256           TEXT    NOT NULL,  -- also the blob key of the file
    md5              TEXT    NOT NULL,
    blake2_256       TEXT    NOT NULL,
    requires_python  TEXT,
    metadata_sha256  TEXT,              -- blob key of the PEP 658 metadata file, if served
    uploaded_us      INTEGER NOT NULL
);

CREATE INDEX files_release ON files (release_id);

-- One row. `generation` grows with every change, so that every process serving the catalog can
-- notice changes made by another one (the CLI, another replica) and refresh its caches.
CREATE TABLE catalog_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO catalog_state (id, generation) VALUES (1, 0);

-- pyindex catalog, schema version 7 (SQLite): the upstream proxy's cache index.
-- Upstream files are not published files: they live in their own tables, apart from `files`
-- and its UNIQUE(filename), since an upstream may list a filename that is also published here.

-- The last good page of each proxied project (one per normalized name), in parsed form.
CREATE TABLE upstream_pages (
    project        TEXT    PRIMARY KEY,  -- normalized name
    upstream       TEXT    NOT NULL,     -- the index URL it came from (without credentials)
    page           TEXT    NOT NULL,     -- the parsed page, JSON
    etag           TEXT,
    last_modified  TEXT,
    fetched_us     INTEGER NOT NULL      -- when it was last fetched or revalidated
);

-- Cached upstream blobs (distributions and metadata files), by the SHA-256 that is their key
-- in the blob store, with when they were last served, for least-recently-used eviction.
CREATE TABLE upstream_blobs (
    sha256        TEXT    PRIMARY KEY,
    size          INTEGER NOT NULL,
    last_used_us  INTEGER NOT NULL
);

CREATE INDEX upstream_blobs_last_used ON upstream_blobs (last_used_us);

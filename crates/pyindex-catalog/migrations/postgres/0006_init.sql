-- pyindex catalog on PostgreSQL: the schema of SQLite schema version 6 in one migration, numbered
-- 6 so that a schema version means the same tables on both engines (the SQLite migrations 1 to 6
-- are the history of the embedded engine; a PostgreSQL database starts at 6).
--
-- Differences from SQLite, all deliberate:
--   * ids are BIGINT identity columns; flags are BOOLEAN; times stay microseconds since the Unix
--     epoch (BIGINT), as on SQLite, so both engines share the row mapping;
--   * names and filenames use the "C" collation: listings sort by bytes, as SQLite's BINARY
--     collation does, whatever the database's default collation;
--   * files.dist_key is NOT NULL: there are no rows from before distribution keys to fill in;
--   * writers of the change log hold a shared advisory lock until they commit (see changes).

CREATE TABLE projects (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT    COLLATE "C" NOT NULL UNIQUE,  -- normalized name, e.g. "shared-pkg"
    display_name    TEXT    NOT NULL,                     -- the Name of the first upload
    created_us      BIGINT  NOT NULL,                     -- microseconds since the Unix epoch, UTC
    status          TEXT    NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'archived', 'quarantined', 'deprecated')),
    status_reason   TEXT,
    summary         TEXT,   -- the newest release's summary, as shown in search results
    summary_folded  TEXT    -- the same in lower case, for searching
);

CREATE TABLE releases (
    id                        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id                BIGINT  NOT NULL REFERENCES projects (id),
    version                   TEXT    NOT NULL,  -- normalized PEP 440 version of the first upload
    canonical_version         TEXT    COLLATE "C" NOT NULL,  -- release key: 1.0 and 1.0.0 are one
    summary                   TEXT,
    description               TEXT,
    description_content_type  TEXT,
    requires_python           TEXT,
    requires_dist             TEXT    NOT NULL DEFAULT '[]',  -- JSON array of PEP 508 strings
    yanked                    BOOLEAN NOT NULL DEFAULT FALSE,
    yanked_reason             TEXT,
    created_us                BIGINT  NOT NULL,
    details                   TEXT,   -- JSON object: URLs, license, author, classifiers...
    UNIQUE (project_id, canonical_version)
);

CREATE TABLE files (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id       BIGINT  NOT NULL REFERENCES releases (id),
    filename         TEXT    COLLATE "C" NOT NULL UNIQUE,
    dist_key         TEXT    COLLATE "C" NOT NULL UNIQUE,  -- the distribution, whatever the spelling
    kind             TEXT    NOT NULL CHECK (kind IN ('bdist_wheel', 'sdist')),
    size             BIGINT  NOT NULL,
    sha256           TEXT    NOT NULL,  -- also the blob key of the file
    md5              TEXT    NOT NULL,
    blake2_256       TEXT    NOT NULL,
    requires_python  TEXT,
    metadata_sha256  TEXT,              -- blob key of the PEP 658 metadata file, if served
    uploaded_us      BIGINT  NOT NULL
);

CREATE INDEX files_release ON files (release_id);

CREATE TABLE users (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT    COLLATE "C" NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,  -- PHC string (argon2id), or an imported htpasswd hash
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_us     BIGINT  NOT NULL
);

CREATE TABLE tokens (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id    TEXT    NOT NULL UNIQUE,  -- the non-secret part of the token
    secret_hash  TEXT    NOT NULL,         -- hex SHA-256 of the whole token
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    projects     TEXT,                     -- JSON array of normalized names; NULL: every project
    read_only    BOOLEAN NOT NULL DEFAULT FALSE,
    description  TEXT,
    created_us   BIGINT  NOT NULL,
    expires_us   BIGINT,                   -- NULL: never
    revoked_us   BIGINT                    -- NULL: valid
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE project_roles (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('owner', 'maintainer')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_roles_user ON project_roles (user_id);

CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us    BIGINT NOT NULL,
    actor    TEXT   NOT NULL,  -- user name, or "cli" / "anonymous"
    action   TEXT   NOT NULL,  -- e.g. "publish", "yank", "token.create"
    subject  TEXT   NOT NULL,  -- what it acted on
    address  TEXT,             -- client address, for actions over HTTP
    detail   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_us);

-- What changed, so that every replica drops exactly the cached pages and credentials a change
-- affects. Each write appends rows; no row is ever updated, so writers never queue on a hot row.
-- `seq` comes from a sequence, so it is handed out in the order writers ask, not the order they
-- commit: a reader can see seq 11 while seq 10 is still in flight (or rolled back). See the
-- engine's `changes_since` for how readers tell the two apart.
CREATE TABLE changes (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope    TEXT   NOT NULL CHECK (scope IN ('project', 'project-list', 'account', 'everything')),
    subject  TEXT              -- the project's normalized name or the account's name
);
INSERT INTO changes (scope, subject) VALUES ('everything', NULL);

-- Browser sessions; only a SHA-256 of the session id is stored.
CREATE TABLE ui_sessions (
    id_hash     TEXT   PRIMARY KEY,           -- hex SHA-256 of the random id in the cookie
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf        TEXT   NOT NULL,              -- the session's anti-forgery token
    created_us  BIGINT NOT NULL,
    expires_us  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_id);

-- pyindex catalog, schema version 2 (SQLite): accounts, API tokens, project roles, audit log.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,  -- PHC string (argon2id), or an imported htpasswd hash
    is_admin       INTEGER NOT NULL DEFAULT 0,
    created_us     INTEGER NOT NULL
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    public_id    TEXT    NOT NULL UNIQUE,  -- the non-secret part of the token, shown in listings
    secret_hash  TEXT    NOT NULL,         -- hex SHA-256 of the whole token
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    projects     TEXT,                     -- JSON array of normalized names; NULL: every project
    read_only    INTEGER NOT NULL DEFAULT 0,
    description  TEXT,
    created_us   INTEGER NOT NULL,
    expires_us   INTEGER,                  -- NULL: never
    revoked_us   INTEGER                   -- NULL: valid
);

CREATE TABLE project_roles (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'maintainer')),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at_us    INTEGER NOT NULL,
    actor    TEXT    NOT NULL,  -- user name, or "cli" / "anonymous"
    action   TEXT    NOT NULL,  -- e.g. "publish", "yank", "token.create"
    subject  TEXT    NOT NULL,  -- what it acted on: a filename, "project version", a token id
    address  TEXT,              -- client address, for actions over HTTP
    detail   TEXT
);

CREATE INDEX audit_log_at ON audit_log (at_us);

-- pyindex catalog, schema version 3 (SQLite): PEP 792 project status markers.
-- Every existing project is `active`; `status_reason` is free text shown to clients, or NULL.

ALTER TABLE projects ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'archived', 'quarantined', 'deprecated'));
ALTER TABLE projects ADD COLUMN status_reason TEXT;

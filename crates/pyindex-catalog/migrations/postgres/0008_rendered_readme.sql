-- pyindex catalog, schema version 8 (PostgreSQL): each release's README as the web page shows it
-- (sanitized HTML rendered at publication; NULL: rendered later by the registry), as SQLite's
-- version 8.
ALTER TABLE releases ADD COLUMN readme_html TEXT;

-- pyindex catalog, schema version 7 (SQLite): each release's README as the web page shows it.

-- The description rendered by its content type and sanitized (HTML, safe to put into a page as
-- it is), computed by the registry when the release is published, so a page view never renders
-- Markdown; '' when the release has no description. NULL for releases published before this
-- version: the registry renders them once (at start-up in the background, or on the first view
-- of the release's page) and stores the result. Setting it back to NULL re-renders it.
ALTER TABLE releases ADD COLUMN readme_html TEXT;

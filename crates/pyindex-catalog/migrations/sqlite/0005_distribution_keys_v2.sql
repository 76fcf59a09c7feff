-- pyindex catalog, schema version 5 (SQLite): distribution keys, second form.

-- Keys are now made of the canonical version (1.0 and 1.0.0 are one release, so one
-- distribution), each compressed tag set as a sorted set (py2.py3 = py3.py2), the build tag as the
-- wheel specification compares it (01 = 1), and for a source distribution no archive format (a
-- release has one sdist). Forget every key: the catalog recomputes them when it opens the database,
-- and a file whose new key is already taken (two spellings published under the old keys) keys on
-- its filename, so it stays listed.
UPDATE files SET dist_key = NULL;

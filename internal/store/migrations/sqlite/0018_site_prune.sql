-- Pruning the site repository's history (sqlite). Keep in step with
-- ../postgres/0018_site_prune.sql.

-- The server prunes site versions older than its retention window
-- (Writer.PruneSite), oldest first: the oldest version it keeps becomes
-- the first of the chain, so its reference to the pruned one is cleared
-- in the same statement. SQLite cannot change a foreign key in place, so
-- the table is made anew with every rule of 0012 but that one.
ALTER TABLE site_versions RENAME TO site_versions_0017;
DROP INDEX site_versions_one_first;

CREATE TABLE site_versions (
	version        INTEGER PRIMARY KEY,
	previous       INTEGER UNIQUE REFERENCES site_versions(version) ON DELETE SET NULL,
	timestamp_json BLOB NOT NULL,
	writer         TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	CHECK (previous IS NULL OR version = previous + 1)
);
CREATE UNIQUE INDEX site_versions_one_first ON site_versions ((previous IS NULL)) WHERE previous IS NULL;

INSERT INTO site_versions (version, previous, timestamp_json, writer, created_at)
	SELECT version, previous, timestamp_json, writer, created_at FROM site_versions_0017 ORDER BY version;
DROP TABLE site_versions_0017;

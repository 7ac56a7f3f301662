-- Several server processes without a shared disk (SQLite): the signed
-- site repository's states, the files they name, and what every process
-- needs to join. SQLite serves one process, which is always the writer;
-- the tables are the same so that the site repository has one source of
-- truth on both databases. Keep in step with
-- ../postgres/0012_site_versions.sql.

CREATE TABLE site_versions (
	version        INTEGER PRIMARY KEY,
	previous       INTEGER UNIQUE REFERENCES site_versions(version),
	timestamp_json BLOB NOT NULL,
	writer         TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	CHECK (previous IS NULL OR version = previous + 1)
);
CREATE UNIQUE INDEX site_versions_one_first ON site_versions ((previous IS NULL)) WHERE previous IS NULL;

CREATE TABLE site_files (
	path       TEXT PRIMARY KEY,
	data       BLOB NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE server_shared (
	name       TEXT PRIMARY KEY,
	data       BLOB NOT NULL,
	updated_at TEXT NOT NULL
);

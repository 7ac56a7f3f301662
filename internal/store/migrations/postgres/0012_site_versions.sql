-- Several server processes without a shared disk (PostgreSQL): the signed
-- site repository's states, the files they name, and what every process
-- needs to join (the vendor root, the site repository's settings, its
-- online keys encrypted under the site key secret). Keep in step with
-- ../sqlite/0012_site_versions.sql.

-- One row per signed state of the site repository, keyed by the version
-- of its timestamp.json. The versions form one chain: each follows the
-- one before it (version = previous + 1), no version has two successors,
-- and only the first has none before it. So versions never repeat, never
-- skip and never go backwards, whatever a stale writer tries.
CREATE TABLE site_versions (
	version        BIGINT PRIMARY KEY,
	previous       BIGINT UNIQUE REFERENCES site_versions(version),
	timestamp_json BYTEA NOT NULL,
	writer         TEXT NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	CHECK (previous IS NULL OR version = previous + 1)
);
CREATE UNIQUE INDEX site_versions_one_first ON site_versions ((previous IS NULL)) WHERE previous IS NULL;

-- The immutable files of the published tree (versioned metadata,
-- content-addressed targets), by path relative to it.
CREATE TABLE site_files (
	path       TEXT COLLATE "C" PRIMARY KEY,
	data       BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

-- Small named values every server process shares.
CREATE TABLE server_shared (
	name       TEXT COLLATE "C" PRIMARY KEY,
	data       BYTEA NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- The sync log (postgres): one row per sync from the origin.
-- Keep in step with ../sqlite/0017_sync_log.sql.

-- A server process records each sync it runs when it finishes, succeeded
-- or failed. writer says whether the process was the writer (which alone
-- records and deploys what a sync brings) or only mirrored. deployed is a
-- JSON object of component -> version (NULL: nothing deployed). Rows
-- older than the report retention are pruned.
CREATE TABLE syncs (
	id          TEXT COLLATE "C" PRIMARY KEY,
	started_at  TIMESTAMPTZ NOT NULL,
	finished_at TIMESTAMPTZ NOT NULL,
	result      TEXT COLLATE "C" NOT NULL,
	error       TEXT NOT NULL,
	timestamp   BIGINT NOT NULL,
	targets     BIGINT NOT NULL,
	fetched     BIGINT NOT NULL,
	bytes       BIGINT NOT NULL,
	deployed    TEXT,
	server      TEXT NOT NULL,
	writer      BOOLEAN NOT NULL
);
CREATE INDEX syncs_finished ON syncs (finished_at);

-- The sync log (sqlite): one row per sync from the origin.
-- Keep in step with ../postgres/0017_sync_log.sql.

-- A server process records each sync it runs when it finishes, succeeded
-- or failed. writer says whether the process was the writer (which alone
-- records and deploys what a sync brings) or only mirrored. deployed is a
-- JSON object of component -> version (NULL: nothing deployed). Rows
-- older than the report retention are pruned.
CREATE TABLE syncs (
	id          TEXT PRIMARY KEY,
	started_at  TEXT NOT NULL,
	finished_at TEXT NOT NULL,
	result      TEXT NOT NULL,
	error       TEXT NOT NULL,
	timestamp   INTEGER NOT NULL,
	targets     INTEGER NOT NULL,
	fetched     INTEGER NOT NULL,
	bytes       INTEGER NOT NULL,
	deployed    TEXT,
	server      TEXT NOT NULL,
	writer      INTEGER NOT NULL
);
CREATE INDEX syncs_finished ON syncs (finished_at);

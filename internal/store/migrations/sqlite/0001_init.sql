-- The initial schema (SQLite). Times are UTC text in the fixed-width form
-- 2006-01-02T15:04:05.000000Z, so comparing text compares times. Hashes
-- are lower-case hex SHA-256. JSON documents are kept as text, verbatim.
-- Keep in step with ../postgres/0001_init.sql.

CREATE TABLE admin_tokens (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	secret_hash TEXT NOT NULL UNIQUE,
	created_at  TEXT NOT NULL,
	revoked_at  TEXT
);

CREATE TABLE domains (
	name       TEXT PRIMARY KEY,
	created_at TEXT NOT NULL
);

CREATE TABLE domain_settings (
	domain     TEXT PRIMARY KEY REFERENCES domains (name) ON DELETE CASCADE,
	version    INTEGER NOT NULL,
	document   TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

CREATE TABLE enrollment_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL UNIQUE,
	domain      TEXT NOT NULL REFERENCES domains (name),
	max_uses    INTEGER NOT NULL CHECK (max_uses >= 0),
	uses        INTEGER NOT NULL DEFAULT 0,
	expires_at  TEXT,
	created_at  TEXT NOT NULL,
	revoked_at  TEXT
);
CREATE INDEX enrollment_tokens_domain ON enrollment_tokens (domain);

CREATE TABLE endpoints (
	id              TEXT PRIMARY KEY,
	hostname        TEXT NOT NULL,
	domain          TEXT NOT NULL REFERENCES domains (name),
	role            TEXT NOT NULL CHECK (role IN ('client', 'agent')),
	agent_id        TEXT,
	agent_url       TEXT,
	addresses       TEXT NOT NULL, -- JSON array of strings
	credential_hash TEXT NOT NULL UNIQUE,
	enrolled_at     TEXT NOT NULL,
	last_seen_at    TEXT NOT NULL,
	revoked_at      TEXT,
	installed       TEXT NOT NULL, -- JSON: category -> item -> version
	CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
-- Agent ids are unique among endpoints that are not revoked, so that a
-- re-enrolled machine can take over its old agent id.
CREATE UNIQUE INDEX endpoints_agent_id ON endpoints (agent_id) WHERE revoked_at IS NULL;
CREATE INDEX endpoints_domain ON endpoints (domain, id);
CREATE INDEX endpoints_role ON endpoints (role, id);

CREATE TABLE reports (
	id           TEXT PRIMARY KEY,
	endpoint_id  TEXT NOT NULL REFERENCES endpoints (id),
	received_at  TEXT NOT NULL,
	trigger_kind TEXT NOT NULL,
	started_at   TEXT,
	finished_at  TEXT,
	result       TEXT NOT NULL,
	document     TEXT
);
CREATE INDEX reports_endpoint ON reports (endpoint_id, received_at);
CREATE INDEX reports_received ON reports (received_at);

CREATE TABLE report_categories (
	report_id       TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
	category        TEXT NOT NULL,
	result          TEXT NOT NULL,
	source          TEXT,
	versions_before TEXT, -- JSON: item -> version
	versions_after  TEXT,
	bytes           INTEGER NOT NULL,
	PRIMARY KEY (report_id, category)
);

-- The last report of each endpoint, kept by PruneReports.
CREATE TABLE last_reports (
	endpoint_id TEXT PRIMARY KEY REFERENCES endpoints (id),
	report_id   TEXT NOT NULL REFERENCES reports (id),
	received_at TEXT NOT NULL
);
CREATE INDEX last_reports_report ON last_reports (report_id);

CREATE TABLE policies (
	version    INTEGER PRIMARY KEY,
	document   TEXT NOT NULL,
	author     TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE program_approvals (
	domain      TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
	program     TEXT NOT NULL,
	version     TEXT NOT NULL,
	approved_at TEXT NOT NULL,
	PRIMARY KEY (domain, program)
);

CREATE TABLE components (
	name             TEXT PRIMARY KEY,
	latest_version   TEXT NOT NULL,
	synced_at        TEXT NOT NULL,
	deployed_version TEXT,
	deployed_at      TEXT,
	held             INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE notifications (
	id                  TEXT PRIMARY KEY,
	created_at          TEXT NOT NULL,
	versions            TEXT NOT NULL,
	domain              TEXT,
	agents_first        INTEGER NOT NULL,
	clients_released_at TEXT
);
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE notification_deliveries (
	notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
	endpoint_id     TEXT NOT NULL REFERENCES endpoints (id),
	role            TEXT NOT NULL CHECK (role IN ('client', 'agent')),
	state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'done', 'failed')),
	delivered_at    TEXT,
	finished_at     TEXT,
	detail          TEXT,
	PRIMARY KEY (notification_id, endpoint_id)
);
CREATE INDEX notification_deliveries_pending ON notification_deliveries (endpoint_id) WHERE state = 'pending';

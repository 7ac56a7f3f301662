-- The initial schema (PostgreSQL). Times are timestamptz, written in UTC.
-- Hashes are lower-case hex SHA-256. JSON documents are kept as text, verbatim.
-- Text sorts bytewise (COLLATE "C"), as in SQLite, whatever the database's
-- locale. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE admin_tokens (
	id          TEXT COLLATE "C" PRIMARY KEY,
	name        TEXT COLLATE "C" NOT NULL,
	secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
	created_at  TIMESTAMPTZ NOT NULL,
	revoked_at  TIMESTAMPTZ
);

CREATE TABLE domains (
	name       TEXT COLLATE "C" PRIMARY KEY,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE domain_settings (
	domain     TEXT COLLATE "C" PRIMARY KEY REFERENCES domains (name) ON DELETE CASCADE,
	version    BIGINT NOT NULL,
	document   TEXT COLLATE "C" NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE enrollment_tokens (
	id          TEXT COLLATE "C" PRIMARY KEY,
	secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
	domain      TEXT COLLATE "C" NOT NULL REFERENCES domains (name),
	max_uses    BIGINT NOT NULL CHECK (max_uses >= 0),
	uses        BIGINT NOT NULL DEFAULT 0,
	expires_at  TIMESTAMPTZ,
	created_at  TIMESTAMPTZ NOT NULL,
	revoked_at  TIMESTAMPTZ
);
CREATE INDEX enrollment_tokens_domain ON enrollment_tokens (domain);

CREATE TABLE endpoints (
	id              TEXT COLLATE "C" PRIMARY KEY,
	hostname        TEXT COLLATE "C" NOT NULL,
	domain          TEXT COLLATE "C" NOT NULL REFERENCES domains (name),
	role            TEXT COLLATE "C" NOT NULL CHECK (role IN ('client', 'agent')),
	agent_id        TEXT COLLATE "C",
	agent_url       TEXT COLLATE "C",
	addresses       TEXT COLLATE "C" NOT NULL, -- JSON array of strings
	credential_hash TEXT COLLATE "C" NOT NULL UNIQUE,
	enrolled_at     TIMESTAMPTZ NOT NULL,
	last_seen_at    TIMESTAMPTZ NOT NULL,
	revoked_at      TIMESTAMPTZ,
	installed       TEXT COLLATE "C" NOT NULL, -- JSON: category -> item -> version
	CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
-- Agent ids are unique among endpoints that are not revoked, so that a
-- re-enrolled machine can take over its old agent id.
CREATE UNIQUE INDEX endpoints_agent_id ON endpoints (agent_id) WHERE revoked_at IS NULL;
CREATE INDEX endpoints_domain ON endpoints (domain, id);
CREATE INDEX endpoints_role ON endpoints (role, id);

CREATE TABLE reports (
	id           TEXT COLLATE "C" PRIMARY KEY,
	endpoint_id  TEXT COLLATE "C" NOT NULL REFERENCES endpoints (id),
	received_at  TIMESTAMPTZ NOT NULL,
	trigger_kind TEXT COLLATE "C" NOT NULL,
	started_at   TIMESTAMPTZ,
	finished_at  TIMESTAMPTZ,
	result       TEXT COLLATE "C" NOT NULL,
	document     TEXT COLLATE "C"
);
CREATE INDEX reports_endpoint ON reports (endpoint_id, received_at);
CREATE INDEX reports_received ON reports (received_at);

CREATE TABLE report_categories (
	report_id       TEXT COLLATE "C" NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
	category        TEXT COLLATE "C" NOT NULL,
	result          TEXT COLLATE "C" NOT NULL,
	source          TEXT COLLATE "C",
	versions_before TEXT COLLATE "C", -- JSON: item -> version
	versions_after  TEXT COLLATE "C",
	bytes           BIGINT NOT NULL,
	PRIMARY KEY (report_id, category)
);

-- The last report of each endpoint, kept by PruneReports.
CREATE TABLE last_reports (
	endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoints (id),
	report_id   TEXT COLLATE "C" NOT NULL REFERENCES reports (id),
	received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX last_reports_report ON last_reports (report_id);

CREATE TABLE policies (
	version    BIGINT PRIMARY KEY,
	document   TEXT COLLATE "C" NOT NULL,
	author     TEXT COLLATE "C" NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE program_approvals (
	domain      TEXT COLLATE "C" NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
	program     TEXT COLLATE "C" NOT NULL,
	version     TEXT COLLATE "C" NOT NULL,
	approved_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (domain, program)
);

CREATE TABLE components (
	name             TEXT COLLATE "C" PRIMARY KEY,
	latest_version   TEXT COLLATE "C" NOT NULL,
	synced_at        TIMESTAMPTZ NOT NULL,
	deployed_version TEXT COLLATE "C",
	deployed_at      TIMESTAMPTZ,
	held             BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE notifications (
	id                  TEXT COLLATE "C" PRIMARY KEY,
	created_at          TIMESTAMPTZ NOT NULL,
	versions            TEXT COLLATE "C" NOT NULL,
	domain              TEXT COLLATE "C",
	agents_first        BOOLEAN NOT NULL,
	clients_released_at TIMESTAMPTZ
);
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE notification_deliveries (
	notification_id TEXT COLLATE "C" NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
	endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES endpoints (id),
	role            TEXT COLLATE "C" NOT NULL CHECK (role IN ('client', 'agent')),
	state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'delivered', 'done', 'failed')),
	delivered_at    TIMESTAMPTZ,
	finished_at     TIMESTAMPTZ,
	detail          TEXT COLLATE "C",
	PRIMARY KEY (notification_id, endpoint_id)
);
CREATE INDEX notification_deliveries_pending ON notification_deliveries (endpoint_id) WHERE state = 'pending';

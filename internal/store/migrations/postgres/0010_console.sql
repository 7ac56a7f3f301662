-- The administrator's web console (PostgreSQL): accounts with passwords,
-- their sign-in sessions, and the audit log of every change made through
-- the console, the API or the CLI. Keep in step with
-- ../sqlite/0010_console.sql.

CREATE TABLE accounts (
	id            TEXT COLLATE "C" PRIMARY KEY,
	name          TEXT COLLATE "C" NOT NULL UNIQUE,
	role          TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'viewer')),
	password_hash TEXT COLLATE "C" NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	disabled_at   TIMESTAMPTZ
);

CREATE TABLE sessions (
	secret_hash  TEXT COLLATE "C" PRIMARY KEY,
	account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	created_at   TIMESTAMPTZ NOT NULL,
	last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE audit_log (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at         TIMESTAMPTZ NOT NULL,
	actor      TEXT COLLATE "C" NOT NULL,
	kind       TEXT COLLATE "C" NOT NULL,
	target     TEXT COLLATE "C" NOT NULL,
	summary    TEXT NOT NULL,
	before_doc TEXT,
	after_doc  TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);

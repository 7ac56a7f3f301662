-- The administrator's web console (SQLite): accounts with passwords,
-- their sign-in sessions, and the audit log of every change made through
-- the console, the API or the CLI. Keep in step with
-- ../postgres/0010_console.sql.

CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
	password_hash TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	disabled_at   TEXT
);

CREATE TABLE sessions (
	secret_hash  TEXT PRIMARY KEY,
	account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE audit_log (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	at         TEXT NOT NULL,
	actor      TEXT NOT NULL,
	kind       TEXT NOT NULL,
	target     TEXT NOT NULL,
	summary    TEXT NOT NULL,
	before_doc TEXT,
	after_doc  TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);

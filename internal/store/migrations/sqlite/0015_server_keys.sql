-- The TLS key fingerprints of the site's server processes (sqlite).
-- Keep in step with ../postgres/0015_server_keys.sql.

-- Each server process records its own key when it starts; every process
-- answers enrollment and status with all of them (besides its configured
-- peer_keys), so that endpoints pin a process that joins later without
-- the others being reconfigured. A row stays until an operator forgets
-- it (`cascade server keys forget`).
CREATE TABLE server_keys (
	fingerprint TEXT PRIMARY KEY,
	url         TEXT NOT NULL,
	recorded_at TEXT NOT NULL
);

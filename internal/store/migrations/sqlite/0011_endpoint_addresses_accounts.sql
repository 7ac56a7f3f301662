-- The console's address-range filter and account management (SQLite).
-- Keep in step with ../postgres/0011_endpoint_addresses_accounts.sql.
--
-- endpoint_addresses holds each reported address of each endpoint in a
-- sortable form (addrKey in addresses.go: "4" and 8 hex digits for IPv4,
-- IPv4-mapped IPv6 included; "6" and 32 hex digits for IPv6), so that an
-- address range is a BETWEEN on the text. The rows of endpoints enrolled
-- before this migration are filled in by the migration's Go step
-- (migrate.go), which parses their JSON addresses.

CREATE TABLE endpoint_addresses (
	endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	addr_key    TEXT NOT NULL,
	PRIMARY KEY (endpoint_id, addr_key)
);
CREATE INDEX endpoint_addresses_key ON endpoint_addresses(addr_key, endpoint_id);

-- When each console account last signed in (NULL: never).
ALTER TABLE accounts ADD COLUMN last_signin_at TEXT;

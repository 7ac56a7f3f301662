-- The console's endpoint list sorts by hostname and by last contact, and
-- its "not seen" filter and the dashboard count endpoints last seen before
-- a time: with these indexes a page reads the rows it shows instead of
-- sorting the whole registry, and a count reads the index alone. Only
-- endpoints that are not revoked are listed, so only they are indexed
-- (BENCHMARKS.md, "Console"). Keep in step with the other database's
-- 0014_console_indexes.sql.

CREATE INDEX endpoints_live_hostname ON endpoints (hostname, id) WHERE revoked_at IS NULL;
CREATE INDEX endpoints_live_last_seen ON endpoints (last_seen_at, id) WHERE revoked_at IS NULL;

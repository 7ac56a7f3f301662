-- The console's text search (a substring of the hostname, the id, the
-- agent id or the addresses, case-insensitively) reads a trigram index
-- instead of every endpoint: a GIN index (pg_trgm) on the lower-cased
-- fields joined by spaces, which the query adds as a condition before its LIKE
-- conditions (BENCHMARKS.md, "Console"). pg_trgm ships with PostgreSQL's
-- contrib modules and is trusted (the database's owner may create it);
-- where it cannot be created the index is left out and the search reads
-- every endpoint, with the same results. Keep in step with the other
-- database's 0016_endpoint_search.sql.

DO $$
DECLARE
	trgm TEXT;
BEGIN
	SELECT extnamespace::regnamespace::text INTO trgm FROM pg_extension WHERE extname = 'pg_trgm';
	IF trgm IS NULL THEN
		BEGIN
			CREATE EXTENSION pg_trgm SCHEMA public;
			trgm := 'public';
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'pg_trgm unavailable (%): the endpoint search reads every endpoint', SQLERRM;
			RETURN;
		END;
	END IF;
	EXECUTE format('CREATE INDEX endpoints_search ON endpoints USING gin ((LOWER(hostname || %L || id || %L || COALESCE(agent_id, %L) || %L || addresses)) %s.gin_trgm_ops) WHERE revoked_at IS NULL',
		' ', ' ', '', ' ', quote_ident(trgm));
END
$$;

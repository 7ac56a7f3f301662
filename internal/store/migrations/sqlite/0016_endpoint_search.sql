-- The console's text search (a substring of the hostname, the id, the
-- agent id or the addresses, case-insensitively) reads a trigram index
-- instead of every endpoint: endpoint_search holds each endpoint's
-- lower-cased fields (FTS5, trigram tokenizer), keyed by
-- endpoint_search_keys (an INTEGER PRIMARY KEY, kept by VACUUM, unlike
-- the endpoints' implicit rowid). Triggers keep it current. The query
-- keeps its LIKE conditions, so the index only narrows the rows read
-- (BENCHMARKS.md, "Console"). Keep in step with the other database's
-- 0016_endpoint_search.sql.

CREATE TABLE endpoint_search_keys (
	key         INTEGER PRIMARY KEY,
	endpoint_id TEXT NOT NULL UNIQUE
);

CREATE VIRTUAL TABLE endpoint_search USING fts5(hostname, eid, agent, addresses, tokenize = 'trigram');

INSERT INTO endpoint_search_keys (endpoint_id) SELECT id FROM endpoints ORDER BY id;
INSERT INTO endpoint_search (rowid, hostname, eid, agent, addresses)
	SELECT k.key, LOWER(e.hostname), LOWER(e.id), LOWER(COALESCE(e.agent_id, '')), LOWER(e.addresses)
	FROM endpoint_search_keys k JOIN endpoints e ON e.id = k.endpoint_id;

CREATE TRIGGER endpoint_search_insert AFTER INSERT ON endpoints BEGIN
	INSERT INTO endpoint_search_keys (endpoint_id) VALUES (NEW.id);
	INSERT INTO endpoint_search (rowid, hostname, eid, agent, addresses)
		VALUES ((SELECT key FROM endpoint_search_keys WHERE endpoint_id = NEW.id),
			LOWER(NEW.hostname), LOWER(NEW.id), LOWER(COALESCE(NEW.agent_id, '')), LOWER(NEW.addresses));
END;

-- A heartbeat rewrites the addresses: only a change reaches the index.
CREATE TRIGGER endpoint_search_update AFTER UPDATE OF id, hostname, agent_id, addresses ON endpoints
	WHEN OLD.id IS NOT NEW.id OR OLD.hostname IS NOT NEW.hostname
		OR OLD.agent_id IS NOT NEW.agent_id OR OLD.addresses IS NOT NEW.addresses BEGIN
	DELETE FROM endpoint_search WHERE rowid = (SELECT key FROM endpoint_search_keys WHERE endpoint_id = OLD.id);
	DELETE FROM endpoint_search_keys WHERE endpoint_id = OLD.id;
	INSERT INTO endpoint_search_keys (endpoint_id) VALUES (NEW.id);
	INSERT INTO endpoint_search (rowid, hostname, eid, agent, addresses)
		VALUES ((SELECT key FROM endpoint_search_keys WHERE endpoint_id = NEW.id),
			LOWER(NEW.hostname), LOWER(NEW.id), LOWER(COALESCE(NEW.agent_id, '')), LOWER(NEW.addresses));
END;

CREATE TRIGGER endpoint_search_delete AFTER DELETE ON endpoints BEGIN
	DELETE FROM endpoint_search WHERE rowid = (SELECT key FROM endpoint_search_keys WHERE endpoint_id = OLD.id);
	DELETE FROM endpoint_search_keys WHERE endpoint_id = OLD.id;
END;

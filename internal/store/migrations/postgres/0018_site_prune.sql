-- Pruning the site repository's history (postgres). Keep in step with
-- ../sqlite/0018_site_prune.sql.

-- The server prunes site versions older than its retention window
-- (Writer.PruneSite), oldest first: the oldest version it keeps becomes
-- the first of the chain, so its reference to the pruned one is cleared
-- in the same statement. Every other rule of 0012 stands: versions still
-- form one chain (version = previous + 1, no version has two successors,
-- only the first has none before it), now a suffix of the full history.
ALTER TABLE site_versions DROP CONSTRAINT site_versions_previous_fkey;
ALTER TABLE site_versions ADD CONSTRAINT site_versions_previous_fkey
	FOREIGN KEY (previous) REFERENCES site_versions(version) ON DELETE SET NULL;

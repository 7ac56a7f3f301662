-- Bytes a category's downloads would have taken without deltas (postgres):
-- with the bytes column, what deltas saved. 0 in reports of endpoints that
-- do not use deltas and in reports stored before this migration. Keep in
-- step with ../sqlite/0005_report_full_bytes.sql.

ALTER TABLE report_categories ADD COLUMN full_bytes BIGINT NOT NULL DEFAULT 0;

-- Enrollment tokens that may enroll update agents (SQLite). A token made
-- before this migration, or without the permission, enrolls clients only:
-- an endpoint stating role agent is refused. Keep in step with
-- ../postgres/0002_enrollment_token_agents.sql.

ALTER TABLE enrollment_tokens ADD COLUMN agents INTEGER NOT NULL DEFAULT 0 CHECK (agents IN (0, 1));

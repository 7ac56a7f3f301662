-- Enrollment tokens that may enroll update agents (PostgreSQL). A token
-- made before this migration, or without the permission, enrolls clients
-- only: an endpoint stating role agent is refused. Keep in step with
-- ../sqlite/0002_enrollment_token_agents.sql.

ALTER TABLE enrollment_tokens ADD COLUMN agents BOOLEAN NOT NULL DEFAULT FALSE;

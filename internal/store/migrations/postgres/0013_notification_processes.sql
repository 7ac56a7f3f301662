-- Notifications across several server processes (postgres). Keep in step
-- with ../sqlite/0013_notification_processes.sql.

-- Deliveries written to an endpoint's stream and not yet reported, by
-- endpoint: what a stream resuming on another server process is sent
-- again (Notifications.DeliveredAfter).
CREATE INDEX notification_deliveries_delivered ON notification_deliveries (endpoint_id) WHERE state = 'delivered';

-- The notification hubs (one per server process) that ran lately: when
-- one stopped or went silent, its endpoints are reconnecting to the
-- others, whose update agents hold the clients meanwhile
-- (Notifications.BeatHub, hub.Options.ReconnectGrace).
CREATE TABLE notification_hubs (
	id         TEXT COLLATE "C" PRIMARY KEY,
	seen_at    TIMESTAMPTZ NOT NULL,
	stopped_at TIMESTAMPTZ
);

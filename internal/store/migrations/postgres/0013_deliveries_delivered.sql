-- Deliveries written to an endpoint's stream and not yet reported, by
-- endpoint (postgres): what a stream resuming on another server process is
-- sent again (Notifications.DeliveredAfter). Keep in step with
-- ../sqlite/0013_deliveries_delivered.sql.

CREATE INDEX notification_deliveries_delivered ON notification_deliveries (endpoint_id) WHERE state = 'delivered';

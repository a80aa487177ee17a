-- The event log, webhook endpoints, and the delivery outbox. Events and their deliveries are written in
-- the same transaction as the state change they describe.

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- the pull API's cursor
    id TEXT NOT NULL UNIQUE,                 -- UUID, the same on every delivery attempt
    type TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    snapshot TEXT NOT NULL                   -- the object as it was, stored as core JSON
);
CREATE INDEX events_object ON events (object_id, seq);
CREATE INDEX events_type ON events (type, seq);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    events TEXT,                 -- JSON array of event types; NULL means all
    enabled {bool} NOT NULL,
    secret TEXT NOT NULL,
    source TEXT NOT NULL,        -- 'api' or 'config'
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    failing_since_ms INTEGER,
    disabled_reason TEXT
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES events (seq),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    object_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending, delivered, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    lease_token TEXT,
    lease_until_ms INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at_ms);
CREATE INDEX deliveries_order ON deliveries (endpoint_id, object_id, id);
CREATE INDEX deliveries_event ON deliveries (event_seq);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempted_at_ms INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    success {bool} NOT NULL
);
CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);
CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (endpoint_id, id);
--postgres: CREATE TRIGGER events_written AFTER INSERT ON events
--postgres:     FOR EACH STATEMENT EXECUTE FUNCTION openvod_notify('openvod_events');
--postgres: CREATE TRIGGER deliveries_written AFTER INSERT ON deliveries
--postgres:     FOR EACH STATEMENT EXECUTE FUNCTION openvod_notify('openvod_events');

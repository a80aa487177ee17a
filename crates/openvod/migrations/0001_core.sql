-- Core tables for the embedded (SQLite) engine. Times are Unix seconds.

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    timeout_secs INTEGER NOT NULL,
    cors_origin TEXT,
    new_asset_settings TEXT NOT NULL,
    test {bool} NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    total_size INTEGER,
    committed_offset INTEGER NOT NULL DEFAULT 0,
    asset_id TEXT,
    error_message TEXT,
    tus_metadata TEXT
);
CREATE INDEX uploads_created ON uploads (created_at DESC, id DESC);
CREATE INDEX uploads_waiting_expiry ON uploads (expires_at) WHERE status = 'waiting';

CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    upload_id TEXT,
    passthrough TEXT,
    settings TEXT NOT NULL,
    ingest_type TEXT NOT NULL,
    input_url TEXT,
    source TEXT,
    errors TEXT,
    original_key TEXT,
    original_size INTEGER,
    master_access_until INTEGER
);
CREATE INDEX assets_created ON assets (created_at DESC, id DESC);
CREATE INDEX assets_upload ON assets (upload_id);

CREATE TABLE playback_ids (
    id TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    policy TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX playback_ids_asset ON playback_ids (asset_id);
--postgres: -- The insertion order SQLite keeps in `rowid` (`db::postgres::dialect::INSERTION_ORDER`).
--postgres: ALTER TABLE playback_ids ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;

-- The durable job queue. A claimed job carries a lease; `lease_token` fences late completions
-- from a worker whose lease was reclaimed.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at INTEGER NOT NULL,
    lease_token TEXT,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_runnable ON jobs (state, run_at);
--postgres:
--postgres: -- Wake-ups across processes: NOTIFY is delivered when (and only if) the transaction
--postgres: -- commits, to every `openvod` process listening (`db::postgres::relay_notifications`).
--postgres: CREATE FUNCTION openvod_notify() RETURNS trigger LANGUAGE plpgsql AS $$
--postgres: BEGIN
--postgres:     PERFORM pg_notify(TG_ARGV[0], '');
--postgres:     RETURN NULL;
--postgres: END
--postgres: $$;
--postgres: CREATE TRIGGER jobs_queued AFTER INSERT OR UPDATE OF state ON jobs
--postgres:     FOR EACH STATEMENT EXECUTE FUNCTION openvod_notify('openvod_jobs');

-- Numeric FileIds (Tencent VOD style) for every asset, and processing tasks (ProcessMedia procedures).

ALTER TABLE assets ADD COLUMN file_id TEXT;
CREATE UNIQUE INDEX assets_file_id ON assets (file_id);

CREATE TABLE processing_tasks (
    id TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL,
    status TEXT NOT NULL,             -- WAITING, PROCESSING, FINISH
    task TEXT NOT NULL,               -- the whole task as core JSON (requests, results, context)
    session_id TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX processing_tasks_session ON processing_tasks (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX processing_tasks_asset ON processing_tasks (asset_id);
--postgres: CREATE TRIGGER tasks_created AFTER INSERT ON processing_tasks
--postgres:     FOR EACH STATEMENT EXECUTE FUNCTION openvod_notify('openvod_jobs');

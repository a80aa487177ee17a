-- The BigBlueButton migration's state: one row per recordID of the old server, its owners, what
-- each mode did, and the external recordings (one per recordID and owner) waiting to be imported.

CREATE TABLE bbb_recordings (
    record_id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    name TEXT NOT NULL,
    start_time_ms INTEGER,
    origin_server TEXT,
    -- The playback the asset comes from: a presentation (rendered) or a video (downloaded).
    source_url TEXT,
    raw_xml TEXT NOT NULL,
    first_listed_at INTEGER NOT NULL,
    listed_at INTEGER NOT NULL
);

CREATE TABLE bbb_owners (
    record_id TEXT NOT NULL REFERENCES bbb_recordings(record_id),
    username TEXT NOT NULL,
    full_name TEXT,
    email TEXT,
    -- moodle | admin | claim
    origin TEXT NOT NULL,
    PRIMARY KEY (record_id, username)
);
--postgres: ALTER TABLE bbb_owners ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;

CREATE TABLE bbb_actions (
    record_id TEXT NOT NULL REFERENCES bbb_recordings(record_id),
    -- manual_claim | import_video
    mode TEXT NOT NULL,
    -- done | failed
    state TEXT NOT NULL,
    asset_id TEXT,
    detail TEXT,
    error TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (record_id, mode)
);
CREATE UNIQUE INDEX bbb_actions_asset ON bbb_actions(asset_id) WHERE asset_id IS NOT NULL;

CREATE TABLE external_recordings (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL REFERENCES bbb_recordings(record_id),
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    start_at_ms INTEGER,
    source_url TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'bigbluebutton',
    asset_id TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (record_id, owner)
);
CREATE INDEX external_recordings_owner ON external_recordings(owner, start_at_ms DESC);

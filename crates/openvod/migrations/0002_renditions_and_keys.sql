-- Published outputs of the pipeline, and playback signing keys.

ALTER TABLE assets ADD COLUMN renditions TEXT;
ALTER TABLE assets ADD COLUMN static_files TEXT;

CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    -- RS256: the public key as PEM. HS256: the shared secret itself (needed to verify).
    verification_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

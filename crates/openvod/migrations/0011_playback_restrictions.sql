-- Playback restrictions (Mux's /video/v1/playback-restrictions): the rules as JSON.
CREATE TABLE playback_restrictions (
    id TEXT PRIMARY KEY,
    referrer TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

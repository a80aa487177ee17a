-- Playback restrictions (Mux's /video/v1/playback-restrictions): the rules as JSON text.
CREATE TABLE playback_restrictions (
    id TEXT PRIMARY KEY,
    referrer TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

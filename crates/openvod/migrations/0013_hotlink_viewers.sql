-- The client addresses each rlimit-capped Key Hotlink Protection URL (by its sign) has been played
-- from, kept until the URL expires: the cap holds across every server sharing the database.
CREATE TABLE hotlink_viewers (
    sign TEXT NOT NULL,
    viewer TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sign, viewer)
);
CREATE INDEX hotlink_viewers_expiry ON hotlink_viewers (expires_at);

-- Invite links: an admin hands one to a person (a Moodle moderator the BBB migration gave an
-- account without a password, a new colleague), who chooses a password with it once.
CREATE TABLE invites (
    -- SHA-256 of the token in the link: a stolen database holds no usable invite.
    token_sha256 BLOB PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    created_by TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX invites_username ON invites(username);

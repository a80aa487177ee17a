-- Console accounts and their sessions.
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    -- admin | staff | user
    role TEXT NOT NULL,
    -- Argon2id PHC string; NULL until a password is set (an account nobody can log in to yet).
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);

CREATE TABLE sessions (
    -- SHA-256 of the cookie value: a stolen database does not hold usable sessions.
    id_sha256 BLOB PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_username ON sessions(username);

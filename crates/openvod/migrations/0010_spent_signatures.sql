-- Signatures valid once (Tencent VOD's upload signatures with oneTimeValid=1): the SHA-256 of each
-- one used, kept until it would have expired anyway.
CREATE TABLE spent_signatures (
    digest BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

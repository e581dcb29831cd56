-- Access keys (issue 10): what clients of the Elastic Beanstalk and S3 faces sign requests
-- with (SigV4). The secret itself is kept, not a hash of it: verifying an HMAC signature
-- needs the key it was made with. The database file is the server owner's alone (0600,
-- `Home.prepare`). A revoked key keeps its row, so its id is never handed out again.
CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL,
    description TEXT NOT NULL DEFAULT ''
);

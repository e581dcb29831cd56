-- API tokens with roles (issue 14, part 5): only the secret's SHA-256 is kept.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    application TEXT,
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
-- The audit log: every change asked of the REST API and of Elastic Beanstalk's API, and
-- every refused credential: who, what, when, from where, and the answer.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT,
    application TEXT,
    environment TEXT,
    action TEXT NOT NULL,
    status INTEGER NOT NULL,
    source TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_application ON audit (application, time);

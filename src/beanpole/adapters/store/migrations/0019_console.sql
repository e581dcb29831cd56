-- The web console (issue 11): users who sign in with a password, and signed-in sessions.
-- A password is kept as its Argon2id hash (argon2-cffi's encoded form, parameters included);
-- a session as the SHA-256 of its cookie value, so a copy of the database signs no one in.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_sign_in_at REAL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,             -- a user's name, or 'token' for the API token
    method TEXT NOT NULL,           -- 'password' or 'token'
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX sessions_user ON sessions (user);

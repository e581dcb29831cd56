-- Stored TLS certificates the load balancer serves by SNI (`beanpole certs`). The PEM
-- (leaf, chain, key) is a file of its own, <home>/certs/<name>.pem, owner-only: the key
-- never enters the database. The facts here are what listing and expiry warnings need.
CREATE TABLE certificates (
    name TEXT PRIMARY KEY,
    domains TEXT NOT NULL,  -- JSON list of the DNS names it covers
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    serial TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

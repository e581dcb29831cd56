-- The load balancer weight of an in-service instance (traffic splitting lowers it).
ALTER TABLE instances ADD COLUMN weight INTEGER NOT NULL DEFAULT 100;

-- What each successful deployment ran: a version plus the settings (for rollback).
CREATE TABLE releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    deployment_id INTEGER NOT NULL,
    version_label TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX releases_env ON releases(environment, id);

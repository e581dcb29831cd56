CREATE TABLE applications (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);

CREATE TABLE versions (
    application TEXT NOT NULL REFERENCES applications(name),
    label TEXT NOT NULL,
    digest TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    build_status TEXT NOT NULL,
    build_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (application, label)
);

CREATE TABLE environments (
    name TEXT NOT NULL,
    application TEXT NOT NULL REFERENCES applications(name),
    cname TEXT NOT NULL,
    status TEXT NOT NULL,
    health TEXT NOT NULL,
    version_label TEXT,
    settings TEXT NOT NULL,          -- JSON: direct option settings
    deployment_id INTEGER NOT NULL DEFAULT 0,
    causes TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    id INTEGER PRIMARY KEY AUTOINCREMENT
);
-- A name and a CNAME belong to at most one live environment; terminated ones stay for history.
CREATE UNIQUE INDEX environments_live_name ON environments(name) WHERE status != 'Terminated';
CREATE UNIQUE INDEX environments_live_cname ON environments(cname) WHERE status != 'Terminated';

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    version_label TEXT NOT NULL,
    release_key TEXT NOT NULL,
    deployment_id INTEGER NOT NULL,
    port INTEGER NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    healthy INTEGER NOT NULL DEFAULT 0,
    causes TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE INDEX instances_env ON instances(environment, state);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    severity TEXT NOT NULL,
    environment TEXT,
    application TEXT,
    version_label TEXT,
    message TEXT NOT NULL
);
CREATE INDEX events_env ON events(environment, id);

CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    target_version TEXT,
    previous_version TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    message TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX operations_env ON operations(environment, status);

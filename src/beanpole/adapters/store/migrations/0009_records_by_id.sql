-- Records refer to environments by id only (the ids were filled by 0008's Python step): the
-- name columns go, so nothing can look a record up by a name that may have been reused.
CREATE UNIQUE INDEX applications_id ON applications(id);
CREATE UNIQUE INDEX versions_id ON versions(id);
CREATE UNIQUE INDEX environments_id ON environments(id);

DROP INDEX instances_env;
ALTER TABLE instances DROP COLUMN environment;
CREATE INDEX instances_env ON instances(environment_id, state);

DROP INDEX events_env;
ALTER TABLE events DROP COLUMN environment;
CREATE INDEX events_env ON events(environment_id, id);

DROP INDEX releases_env;
ALTER TABLE releases DROP COLUMN environment;
CREATE INDEX releases_env ON releases(environment_id, id);

DROP INDEX operations_env;
ALTER TABLE operations DROP COLUMN environment;
CREATE INDEX operations_env ON operations(environment_id, status);

-- The metrics tables' key includes the environment: rebuilt with the id in it. Windows of a
-- name that no environment row ever had cannot be shown and are not carried over.
CREATE TABLE metrics_by_id (
    environment_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    start REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (environment_id, instance, start)
);
INSERT INTO metrics_by_id SELECT environment_id, instance, start, data FROM metrics
    WHERE environment_id IS NOT NULL;
DROP TABLE metrics;
ALTER TABLE metrics_by_id RENAME TO metrics;
CREATE INDEX metrics_start ON metrics (start);

CREATE TABLE metrics_rollup_by_id (
    environment_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    start REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (environment_id, instance, start)
);
INSERT INTO metrics_rollup_by_id SELECT environment_id, instance, start, data FROM metrics_rollup
    WHERE environment_id IS NOT NULL;
DROP TABLE metrics_rollup;
ALTER TABLE metrics_rollup_by_id RENAME TO metrics_rollup;
CREATE INDEX metrics_rollup_start ON metrics_rollup (start);

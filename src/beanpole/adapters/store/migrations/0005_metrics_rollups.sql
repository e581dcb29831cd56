-- 5 min roll-ups of the request windows, kept two weeks; expiry by time needs an index.
CREATE TABLE metrics_rollup (
    environment TEXT NOT NULL,
    instance TEXT NOT NULL,
    start REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (environment, instance, start)
);
CREATE INDEX metrics_start ON metrics (start);
CREATE INDEX metrics_rollup_start ON metrics_rollup (start);

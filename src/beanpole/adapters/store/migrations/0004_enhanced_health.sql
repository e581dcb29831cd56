-- Enhanced health status (Ok, Warning, Degraded, ...) beside the basic colour.
ALTER TABLE environments ADD COLUMN health_status TEXT NOT NULL DEFAULT 'Unknown';
ALTER TABLE instances ADD COLUMN health_status TEXT NOT NULL DEFAULT 'Pending';

-- 10 s windows per environment and instance (instance '' = the environment), kept a day.
CREATE TABLE metrics (
    environment TEXT NOT NULL,
    instance TEXT NOT NULL,
    start REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (environment, instance, start)
);

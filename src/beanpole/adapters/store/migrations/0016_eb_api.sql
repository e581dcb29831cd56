-- Elastic Beanstalk's API (issue 10): the request that started each operation and event
-- (the eb CLI follows an operation by it), and what EB's resources carry that Beanpole's
-- own records do not (descriptions, tags, the solution stack as named, settings as given).
ALTER TABLE events ADD COLUMN request_id TEXT;
CREATE INDEX events_request ON events(request_id);
ALTER TABLE operations ADD COLUMN request_id TEXT;
ALTER TABLE applications ADD COLUMN max_age_days INTEGER NOT NULL DEFAULT 0;
CREATE TABLE resource_meta (
    kind TEXT NOT NULL,          -- application, version, environment, template
    key TEXT NOT NULL,           -- the record's id (a template: "application/name")
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, key)
)

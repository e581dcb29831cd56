-- The processes a listener rule reaches on each instance and the port each listens on
-- (`core.listener_rules`), as the instance was started: the load balancer's process backends
-- list an instance only for the processes it runs, at its own port, so a deployment that
-- adds a rule or moves a port leaves the old instances as they were.
ALTER TABLE instances ADD COLUMN process_ports TEXT NOT NULL DEFAULT '{}';  -- JSON {name: port}

-- An instance's address is its runtime's choice (a host and a port), not an assumed loopback:
-- HAProxy's servers and Beanpole's probes use both. Instances recorded before this migration
-- ran on supervisord on this host, on loopback.
ALTER TABLE instances ADD COLUMN host TEXT NOT NULL DEFAULT '127.0.0.1';

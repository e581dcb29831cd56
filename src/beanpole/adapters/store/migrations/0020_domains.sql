-- Domains (issue 14, part 2): host names an environment answers on besides its CNAME.
-- Keyed by the environment's id, so a CNAME swap leaves them with their environment; a
-- host name belongs to one environment at most.
CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX domains_environment ON domains (environment_id);

-- The platform a version was built for ("python", "nodejs", "static", "procfile"), recorded
-- when it is built: the load balancer serves EB's Python default static files (/static from
-- the static folder) only for python versions. Empty until a version is (re)built.
ALTER TABLE versions ADD COLUMN platform TEXT NOT NULL DEFAULT '';

-- The user an instance's processes run as (`Artifact.run_as`), as it was started: the
-- application's own (bp-<id>) or the shared one ($BEANPOLE_APP_USER); NULL when Beanpole was
-- not root, or for an instance started before this column (when every application ran as
-- one shared user). At start the server replaces the instances that do not run as their
-- application's user now (`core.run_as`).
ALTER TABLE instances ADD COLUMN run_as TEXT;

-- A version's .ebextensions files, commands and container_commands (issue 8), parsed once at
-- upload (`beanpole.core.bundle_steps.Steps`, as JSON). Versions uploaded before keep none:
-- their commands were ignored when they were uploaded.
ALTER TABLE versions ADD COLUMN steps TEXT NOT NULL DEFAULT '{}';

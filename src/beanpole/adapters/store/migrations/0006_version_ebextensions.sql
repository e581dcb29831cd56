-- A version's .ebextensions option settings (JSON, read and validated once at upload) and the
-- warnings about the files and keys that were ignored (JSON list). Versions uploaded before
-- this migration keep an empty layer: they were uploaded when .ebextensions was ignored.
ALTER TABLE versions ADD COLUMN ebextensions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE versions ADD COLUMN ebextensions_warnings TEXT NOT NULL DEFAULT '[]';

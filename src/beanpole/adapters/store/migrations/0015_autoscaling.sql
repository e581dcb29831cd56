-- Auto scaling (issue 9). The bounds a scheduled action set when it fired (JSON: min_size,
-- max_size, action, at), in force until another fires or the bounds are set directly; and
-- the autoscaler's memory of an environment (JSON: the last decision and when, when the last
-- scaling activity ended, the latest scheduled firing carried out), kept across restarts.
ALTER TABLE environments ADD COLUMN scheduled_bounds TEXT;
ALTER TABLE environments ADD COLUMN scaling TEXT NOT NULL DEFAULT '{}';

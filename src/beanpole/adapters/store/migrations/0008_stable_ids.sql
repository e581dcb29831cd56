-- Stable identities (issue 7, part 3). An environment's name is free again once it is
-- terminated, so records refer to its id. The integer row id becomes `seq` (it still orders
-- the rows of one name); `id` is the text id minted by the Python step of this migration
-- (`beanpole.adapters.store.upgrades`), which also links every record to its environment row.
ALTER TABLE applications ADD COLUMN id TEXT;
ALTER TABLE versions ADD COLUMN id TEXT;
ALTER TABLE environments RENAME COLUMN id TO seq;
ALTER TABLE environments ADD COLUMN id TEXT;
ALTER TABLE instances ADD COLUMN environment_id TEXT;
ALTER TABLE events ADD COLUMN environment_id TEXT;
ALTER TABLE releases ADD COLUMN environment_id TEXT;
ALTER TABLE operations ADD COLUMN environment_id TEXT;
ALTER TABLE metrics ADD COLUMN environment_id TEXT;
ALTER TABLE metrics_rollup ADD COLUMN environment_id TEXT;

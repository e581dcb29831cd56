-- Keep at most this many versions per application (0: keep all); deployed ones are never deleted.
ALTER TABLE applications ADD COLUMN max_versions INTEGER NOT NULL DEFAULT 0;

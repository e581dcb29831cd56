-- The platform an environment names (issue 8, part 7): `beanpole create --platform
-- python|node|static|docker|procfile`, as EB environments name theirs. NULL: none named,
-- each version's platform is detected from its bundle (`beanpole.core.platforms.detect`).
ALTER TABLE environments ADD COLUMN platform TEXT;

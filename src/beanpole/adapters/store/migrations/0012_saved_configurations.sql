-- Saved configurations (issue 8, part 8): named option settings of an application, EB's
-- configuration templates. An environment created from one keeps its name and a copy of its
-- settings (the layer between .ebextensions and the direct settings), so deleting the saved
-- configuration, which EB allows while environments use it, changes no environment.
CREATE TABLE saved_configurations (
    application TEXT NOT NULL REFERENCES applications(name),
    name TEXT NOT NULL,
    settings TEXT NOT NULL,          -- JSON: "namespace:Option" -> value
    description TEXT NOT NULL DEFAULT '',
    platform TEXT,                   -- the platform of the environment it was saved from
    environment_id TEXT,             -- the environment it was saved from
    created_at REAL NOT NULL,
    PRIMARY KEY (application, name)
);
ALTER TABLE environments ADD COLUMN saved_configuration TEXT;
ALTER TABLE environments ADD COLUMN saved_settings TEXT NOT NULL DEFAULT '{}';
-- Which .ebextensions file set each option of a version (JSON: key -> ".ebextensions/x.config").
-- Versions uploaded before keep an empty map: their values show the source ".ebextensions".
ALTER TABLE versions ADD COLUMN ebextensions_origins TEXT NOT NULL DEFAULT '{}';

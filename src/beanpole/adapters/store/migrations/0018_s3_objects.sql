-- The S3 face's bundle store (issue 10, part 4): buckets, the objects in them, multipart
-- uploads and their parts. An object's body is a file named by its sha256 under
-- BEANPOLE_HOME/bundles/objects (one file however many keys share it), a part's under
-- bundles/uploads/<upload id>/<part number>. Keys compare as UTF-8 bytes (SQLite's BINARY
-- collation), the order S3 lists them in.
CREATE TABLE s3_buckets (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    location TEXT NOT NULL DEFAULT '',  -- the LocationConstraint it was created with ('' = us-east-1)
    tags TEXT                           -- JSON object, NULL when no tag set was ever put
);
CREATE TABLE s3_objects (
    bucket TEXT NOT NULL REFERENCES s3_buckets(name),
    key TEXT NOT NULL,
    digest TEXT NOT NULL,               -- sha256 of the body: its file name
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,                 -- md5 hex, or md5-of-part-md5s "-N" for multipart
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',  -- JSON: x-amz-meta-* names (without the prefix)
    headers TEXT NOT NULL DEFAULT '{}',   -- JSON: cache-control, content-disposition, ...
    checksums TEXT NOT NULL DEFAULT '{}', -- JSON: algorithm -> base64 value the client sent
    tags TEXT NOT NULL DEFAULT '{}',      -- JSON object
    created_at REAL NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX s3_objects_digest ON s3_objects (digest);
CREATE TABLE s3_uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES s3_buckets(name),
    key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    headers TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE s3_parts (
    upload_id TEXT NOT NULL REFERENCES s3_uploads(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,                  -- hex: the part's ETag without quotes
    checksums TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (upload_id, number)
)

-- Zanzi SQLite datastore, version 1.
--
-- Every committed write transaction is one row of `transactions`; its revision is the
-- AUTOINCREMENT key, so revisions only grow, even after old rows are garbage-collected.
-- Relationships are MVCC rows: a snapshot at revision R sees the rows with
-- created_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R). Rows of a committed revision
-- never change except that deleted_rev is set once, to a later revision.

CREATE TABLE transactions (
    revision       INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp      INTEGER NOT NULL,            -- commit time, microseconds since the epoch (UTC)
    schema_changed INTEGER NOT NULL DEFAULT 0   -- 1 when the transaction wrote the schema
);

-- check_revision and GC look up the oldest revision inside the window by time.
CREATE INDEX transactions_by_timestamp ON transactions (timestamp);

CREATE TABLE relationships (
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    relation         TEXT NOT NULL,
    subject_type     TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    subject_relation TEXT NOT NULL,             -- '...' when the subject has no relation
    caveat_name      TEXT,
    caveat_context   TEXT,                      -- canonical JSON object, NULL when empty
    expiration       INTEGER,                   -- microseconds since the epoch (UTC), NULL = never
    created_rev      INTEGER NOT NULL,
    deleted_rev      INTEGER                    -- NULL while live
);

-- Forward lookups (resource type + relation + a batch of ids) and ordered, paginated reads:
-- the columns are in sort-key order, so `ORDER BY` the key needs no sort and an `after`
-- cursor is a range seek.
CREATE INDEX relationships_forward ON relationships (
    resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created_rev
);

-- Reverse lookups: a subject type + a batch of subject ids (+ subject relation, resource
-- type, relation).
CREATE INDEX relationships_reverse ON relationships (
    subject_type, subject_id, subject_relation, resource_type, relation
);

-- At most one live row per relationship key; also the writer's point lookup.
CREATE UNIQUE INDEX relationships_live_key ON relationships (
    resource_type, resource_id, relation, subject_type, subject_id, subject_relation
) WHERE deleted_rev IS NULL;

-- The changelog (rows created / deleted at a revision) and garbage collection.
CREATE INDEX relationships_created ON relationships (created_rev);
CREATE INDEX relationships_deleted ON relationships (deleted_rev) WHERE deleted_rev IS NOT NULL;
CREATE INDEX relationships_expiration ON relationships (expiration)
    WHERE expiration IS NOT NULL AND deleted_rev IS NULL;

-- Schema text with MVCC history: the version visible at R is the newest with created_rev <= R.
CREATE TABLE schema_versions (
    created_rev INTEGER PRIMARY KEY,
    text        TEXT NOT NULL
);

-- datastore_id (uuid4 text) and token_secret (32 random bytes), written once at creation.
CREATE TABLE metadata (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

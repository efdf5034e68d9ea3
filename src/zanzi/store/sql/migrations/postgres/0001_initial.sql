-- Zanzi PostgreSQL datastore, version 1. Every table is prefixed `zanzi_`, so the datastore can
-- share a database (or live in its own schema, chosen with the connection's search_path).
--
-- Revisions. Write transactions run concurrently; only their last step is ordered: it
-- increments the single row of `zanzi_clock` (holding that row lock until the commit is
-- visible), records its xid and the pg_current_snapshot() taken after getting the lock in
-- `zanzi_transactions`, and commits. So revision order is commit order, and the snapshot of
-- revision R, with R's own xid marked complete, makes exactly the transactions of revisions
-- <= R visible (see zanzi/store/sql/postgres.py for the argument).
--
-- Relationships are MVCC rows stamped with the top-level xid8 of the transaction that created
-- (and the one that deleted) them. A read at revision R keeps the rows with
-- pg_visible_in_snapshot(created_xid, S_R) AND NOT pg_visible_in_snapshot(deleted_xid, S_R).

CREATE TABLE zanzi_metadata (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE zanzi_clock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint NOT NULL,     -- the newest committed revision
    timestamp bigint NOT NULL      -- its commit time, microseconds since the epoch (UTC)
);

CREATE TABLE zanzi_transactions (
    revision       bigint PRIMARY KEY,
    xid            xid8 NOT NULL,
    snapshot       pg_snapshot NOT NULL,   -- taken inside the transaction, after the clock lock
    timestamp      bigint NOT NULL,        -- commit time, microseconds since the epoch (UTC)
    schema_changed boolean NOT NULL DEFAULT false
);

-- Resolving a commit whose acknowledgement was lost, by xid.
CREATE UNIQUE INDEX zanzi_transactions_by_xid ON zanzi_transactions (xid);
-- check_revision and GC find the oldest revision inside the window by time.
CREATE INDEX zanzi_transactions_by_timestamp ON zanzi_transactions (timestamp);

-- Key columns use the "C" collation: byte order of UTF-8 is code-point order, the order of
-- Python strings, so ORDER BY and cursors agree with zanzi.store.base.sort_key whatever the
-- database's default collation is.
CREATE TABLE zanzi_relationships (
    resource_type    text COLLATE "C" NOT NULL,
    resource_id      text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL,  -- '...' when the subject has no relation
    caveat_name      text COLLATE "C",
    caveat_context   text,                       -- canonical JSON object, NULL when empty
    expiration       bigint,                     -- microseconds since the epoch (UTC), NULL = never
    created_xid      xid8 NOT NULL,
    deleted_xid      xid8                        -- NULL while live
);

-- Forward lookups and ordered, paginated reads (the columns are in sort-key order).
CREATE INDEX zanzi_relationships_forward ON zanzi_relationships (
    resource_type, resource_id, relation, subject_type, subject_id, subject_relation
);

-- Reverse lookups: subject type + a batch of subject ids (+ relation, resource type).
CREATE INDEX zanzi_relationships_reverse ON zanzi_relationships (
    subject_type, subject_id, subject_relation, resource_type, relation
);

-- At most one live row per relationship key; the writers' point lookup and conflict arbiter.
CREATE UNIQUE INDEX zanzi_relationships_live_key ON zanzi_relationships (
    resource_type, resource_id, relation, subject_type, subject_id, subject_relation
) WHERE deleted_xid IS NULL;

-- The changelog (rows created / deleted by a transaction) and garbage collection.
CREATE INDEX zanzi_relationships_created ON zanzi_relationships (created_xid);
CREATE INDEX zanzi_relationships_deleted ON zanzi_relationships (deleted_xid)
    WHERE deleted_xid IS NOT NULL;
CREATE INDEX zanzi_relationships_expiration ON zanzi_relationships (expiration)
    WHERE expiration IS NOT NULL AND deleted_xid IS NULL;

-- Schema text with history. A transaction that writes the schema inserts its row with
-- revision NULL and its xid; the commit step sets the revision. The schema at R is the row
-- with the greatest revision <= R.
CREATE TABLE zanzi_schema (
    revision bigint UNIQUE,
    xid      xid8 NOT NULL,
    text     text NOT NULL
);
CREATE INDEX zanzi_schema_pending ON zanzi_schema (xid) WHERE revision IS NULL;

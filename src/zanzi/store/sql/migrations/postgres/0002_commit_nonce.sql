-- Zanzi PostgreSQL datastore, version 2: a random nonce per committed transaction.
--
-- A commit whose acknowledgement was lost (the connection dropped during COMMIT) is looked up
-- after reconnecting. Its xid alone does not identify it: after a crash, PostgreSQL restarts
-- transaction ids after the last one its WAL holds, so a transaction that never reached the WAL
-- leaves its xid to a later transaction, whose commit would then be mistaken for ours. The
-- nonce, chosen by the committing process and written with the revision, does identify it.
-- Rows committed before this version have none.

ALTER TABLE zanzi_transactions ADD COLUMN nonce uuid;

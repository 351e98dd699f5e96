-- A revision for each rollup's users sketch: 0 while the row has no sketch, raised by one each
-- time the sketch is rewritten. Readers fingerprint a run of sketches by their starts and
-- revisions and keep the merged result in memory, so a stats call reads the sketch bytes of
-- past days once, not on every call.
ALTER TABLE impression_rollups ADD COLUMN users_rev BIGINT NOT NULL DEFAULT 0;
UPDATE impression_rollups SET users_rev = 1 WHERE users IS NOT NULL;

-- How far the merge of users into sketches has reached: it merges and deletes the oldest parts
-- first, so every part with an id at or below `upto` is gone. Readers look for pending parts
-- above it only, by the primary key, instead of walking the deleted parts' dead rows that an
-- index by hour still finds until the table is vacuumed.
CREATE TABLE impression_parts_merged (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto BIGINT NOT NULL
);
INSERT INTO impression_parts_merged (one, upto) VALUES (1, 0);

-- Both tables churn: parts are inserted and deleted within seconds, rollup rows rewritten by
-- every batch and merge. Vacuum them after a fixed number of dead rows, not a share of the
-- table, and leave room in rollup pages so a row's new version stays on its page (a HOT
-- update: no new index entries, and the old versions pruned as the page is read) instead of
-- leaving a trail of dead versions that every reader's index scan walks.
ALTER TABLE impression_user_parts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000);
ALTER TABLE impression_rollups SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 5000);

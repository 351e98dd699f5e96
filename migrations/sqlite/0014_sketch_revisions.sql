-- A revision for each rollup's users sketch: 0 while the row has no sketch, raised by one each
-- time the sketch is rewritten. Readers fingerprint a run of sketches by their starts and
-- revisions and keep the merged result in memory, so a stats call reads the sketch bytes of
-- past days once, not on every call.
ALTER TABLE impression_rollups ADD COLUMN users_rev BIGINT NOT NULL DEFAULT 0;
UPDATE impression_rollups SET users_rev = 1 WHERE users IS NOT NULL;

-- How far the merge of users into sketches has reached: it merges and deletes the oldest parts
-- first, so every part with an id at or below `upto` is gone; readers look above it only.
CREATE TABLE impression_parts_merged (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto BIGINT NOT NULL
);
INSERT INTO impression_parts_merged (one, upto) VALUES (1, 0);

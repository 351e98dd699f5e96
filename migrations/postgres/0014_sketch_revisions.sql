-- A revision for each rollup's users sketch: 0 while the row has no sketch, raised by one each
-- time the sketch is rewritten. Readers fingerprint a run of sketches by their starts and
-- revisions and keep the merged result in memory, so a stats call reads the sketch bytes of
-- past days once, not on every call.
ALTER TABLE impression_rollups ADD COLUMN users_rev BIGINT NOT NULL DEFAULT 0;
UPDATE impression_rollups SET users_rev = 1 WHERE users IS NOT NULL;

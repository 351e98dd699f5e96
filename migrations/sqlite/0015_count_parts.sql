-- Batches append their counts too, beside their users: one part per flag, value and minute,
-- with how many impressions it holds and when the first and last were evaluated. The
-- background merge folds them into the minute, hour and day rollups and into flags' activity.
-- Parts appended before this migration hold users only (`minute` NULL): their counts are in
-- the rollups.
ALTER TABLE impression_user_parts ADD COLUMN minute BIGINT;
ALTER TABLE impression_user_parts ADD COLUMN count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE impression_user_parts ADD COLUMN first_seen BIGINT;
ALTER TABLE impression_user_parts ADD COLUMN last_seen BIGINT;

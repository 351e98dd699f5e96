-- Impressions (what SDKs report they evaluated) and evaluation insights.
--
-- `impressions` holds the raw rows with Checkgate's columns and indexes, kept
-- IMPRESSIONS_RETENTION_DAYS (by `received_at`, which its index serves). Everything the stats
-- and insights routes read comes from the two rollup tables instead, kept
-- INSIGHTS_RETENTION_DAYS: `impression_rollups` (per environment × flag × value, at three
-- spans — 1, 60 and 1440 minutes — with a count, the last time seen and, for hours and days, a
-- HyperLogLog++ sketch of the users) and `evaluation_counts` (what edges counted of their own
-- evaluations, per environment × flag × variant, at the same three spans). `start` is in whole
-- minutes since the Unix epoch. `flag_activity` is each flag's first and last evaluation seen.
-- `insight_batches` remembers the ids of batches already stored, so a retried batch is stored
-- once, across restarts (kept as long as raw impressions).
CREATE TABLE impressions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key       TEXT NOT NULL,
    user_id        TEXT,
    value          TEXT NOT NULL,
    context        TEXT,
    evaluated_at   BIGINT NOT NULL,
    received_at    BIGINT NOT NULL
);
CREATE INDEX impressions_by_flag ON impressions (environment_id, flag_key, evaluated_at DESC);
CREATE INDEX impressions_by_time ON impressions (environment_id, evaluated_at DESC);
CREATE INDEX impressions_received ON impressions (received_at);
-- The list and its `since_id` poll: newest first, per environment.
CREATE INDEX impressions_by_id ON impressions (environment_id, id DESC);
-- The list filtered by user (the Stream tab's user filter).
CREATE INDEX impressions_by_user ON impressions (environment_id, user_id, id DESC);

CREATE TABLE impression_rollups (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key       TEXT NOT NULL,
    span           BIGINT NOT NULL CHECK (span IN (1, 60, 1440)),
    start          BIGINT NOT NULL,
    value          TEXT NOT NULL,
    count          BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    users          BLOB,
    PRIMARY KEY (environment_id, flag_key, span, start, value)
);
CREATE INDEX impression_rollups_by_time ON impression_rollups (environment_id, span, start);
CREATE INDEX impression_rollups_start ON impression_rollups (start);

CREATE TABLE evaluation_counts (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key       TEXT NOT NULL,
    span           BIGINT NOT NULL CHECK (span IN (1, 60, 1440)),
    start          BIGINT NOT NULL,
    variant        TEXT NOT NULL,
    count          BIGINT NOT NULL,
    PRIMARY KEY (environment_id, flag_key, span, start, variant)
);
CREATE INDEX evaluation_counts_by_time ON evaluation_counts (environment_id, span, start);
CREATE INDEX evaluation_counts_start ON evaluation_counts (start);

-- The users of each batch not yet merged into the hour and day sketches of
-- `impression_rollups`: per environment × flag × value × hour, the batch's distinct user hashes
-- (8 bytes each, little-endian). Appending them keeps the ingest path free of sketch reads and
-- rewrites; a background task merges them into the sketches and deletes them, and readers
-- count what is still here too.
CREATE TABLE impression_user_parts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key       TEXT NOT NULL,
    value          TEXT NOT NULL,
    hour           BIGINT NOT NULL,
    users          BLOB NOT NULL
);
CREATE INDEX impression_user_parts_by_hour ON impression_user_parts (environment_id, hour);

-- When each flag was first and last seen evaluated (impressions or counters), for "last
-- evaluated" and the stale signal on the flag list without reading the rollups.
CREATE TABLE flag_activity (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key       TEXT NOT NULL,
    first_seen     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    PRIMARY KEY (environment_id, flag_key)
);
CREATE INDEX flag_activity_last_seen ON flag_activity (last_seen);

CREATE TABLE insight_batches (
    id          TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX insight_batches_received ON insight_batches (received_at);

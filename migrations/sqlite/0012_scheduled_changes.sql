-- Scheduled changes: a flag PATCH to apply at `scheduled_at` (ms since the Unix epoch, compared
-- with the database's clock). `status` is `pending`, `applied`, `failed` or `cancelled`; a row
-- leaves `pending` exactly once, in the transaction that applies it (or marks it failed or
-- cancelled). `patch` is the JSON object a PATCH of the flag would take; `if_version`, when set,
-- is the flag version the change expects. `executed_at` is when it was applied or failed (by
-- the database's clock), `applied_version` the environment version the change took.
CREATE TABLE scheduled_changes (
    id               TEXT PRIMARY KEY,
    environment_id   TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    flag_key         TEXT NOT NULL,
    scheduled_at     BIGINT NOT NULL,
    patch            TEXT NOT NULL,
    if_version       BIGINT,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    created_by_kind  TEXT NOT NULL,
    created_by_id    TEXT,
    created_by_name  TEXT NOT NULL,
    executed_at      BIGINT,
    applied_version  BIGINT,
    failure_reason   TEXT,
    cancelled_at     BIGINT
);

CREATE INDEX scheduled_changes_due ON scheduled_changes (scheduled_at) WHERE status = 'pending';
CREATE INDEX scheduled_changes_environment ON scheduled_changes (environment_id, scheduled_at);
CREATE INDEX scheduled_changes_flag ON scheduled_changes (environment_id, flag_key, status);

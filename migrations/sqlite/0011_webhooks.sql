-- Webhooks of an environment. `secret` is sealed under the master key (see
-- control-plane/src/vault.rs: `cg1.<key id>.<hex>`), never plain text; NULL when unsigned.
-- `consecutive_failures` counts failed attempts since the last success; `failing` is 1 once
-- `webhook.failing` was raised for the current run of failures (raised once, not per attempt).
CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY,
    environment_id       TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    url                  TEXT NOT NULL,
    format               TEXT NOT NULL DEFAULT 'checkgate',
    enabled              BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    secret               TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failing              BIGINT NOT NULL DEFAULT 0 CHECK (failing IN (0, 1)),
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhooks_by_environment ON webhooks (environment_id);

-- The outbox and the delivery log in one: a row is written in the transaction of the change
-- it announces (state `pending`), claimed by the one delivering instance (`claimed_until`, in
-- ms since the epoch, a visibility timeout), and ends `delivered` or `failed`. The last
-- attempt's outcome is kept: status, latency, error and at most 1 KiB of the remote body.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    status_code     BIGINT,
    latency_ms      BIGINT,
    error           TEXT,
    response_body   TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at);

-- Connected SDKs: the latest report of each server's open SDK streams, replaced by the next.
-- `reporter` is the edge's fleet row (`edge_sessions.id`, also in `edge_session`) or, for a
-- control-plane instance's in-process serving, `control-plane:<instance id>` with
-- `edge_session` NULL. `entries` is a JSON array of
-- {"env_id", "key_id", "count", "clients": [{"address", "connected_at"}]} (clients only when
-- the server reports addresses). Times are milliseconds since the Unix epoch.
CREATE TABLE sdk_connection_reports (
    reporter     TEXT PRIMARY KEY,
    edge_session TEXT,
    name         TEXT NOT NULL,
    reported_at  BIGINT NOT NULL,
    entries      TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX sdk_connection_reports_reported ON sdk_connection_reports (reported_at);

-- Fleet alerts: one row per episode (`edge.stale`, `edge.lagging`, `webhook.failing`),
-- opened when the condition starts and resolved when it ends. `subject` names what the alert
-- is about (an edge as `<token id>/<edge name>`, a webhook by its id); at most one episode
-- of a kind per subject is open at a time. `environments` is a JSON array of environment ids,
-- `detail` a JSON object.
CREATE TABLE fleet_alerts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    edge_name    TEXT,
    environments TEXT NOT NULL DEFAULT '[]',
    opened_at    BIGINT NOT NULL,
    resolved_at  BIGINT,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX fleet_alerts_one_open ON fleet_alerts (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX fleet_alerts_opened ON fleet_alerts (opened_at);

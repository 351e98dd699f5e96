-- The edge fleet: one row per feed session an edge opened, kept current by the control plane
-- instance that holds it. `positions` is a JSON object {environment id: last version sent}.
-- A session whose `closed_at` is NULL but whose `last_seen_at` is old was held by an instance
-- that died: the dashboard shows it as stale.
CREATE TABLE edge_sessions (
    id           TEXT PRIMARY KEY,
    token_id     TEXT NOT NULL,
    edge_name    TEXT NOT NULL,
    region       TEXT NOT NULL,
    address      TEXT NOT NULL,
    connected_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    closed_at    BIGINT,
    positions    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX edge_sessions_last_seen ON edge_sessions (last_seen_at);

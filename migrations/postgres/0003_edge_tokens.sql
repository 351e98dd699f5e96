-- Edge tokens: the credential an edge relay presents on the change feed. Only a hash is kept.
-- `environments` is a JSON array of environment ids the token may serve, or NULL for all.
CREATE TABLE edge_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    environments TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_seen_at BIGINT
);

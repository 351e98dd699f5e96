-- The control plane's durable model. Identifiers are UUID text, times are Unix milliseconds,
-- flags are booleans stored as 0/1 (the same in both dialects, so one set of queries serves
-- both), and every document (flag, segment) is its canonical JSON text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    is_admin      BIGINT NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    PRIMARY KEY (project_id, user_id)
);

-- `version` is the environment's feed head: every change to what edges serve takes the next
-- one, allocated by an UPDATE of this row inside the writing transaction, so versions are
-- gapless and become visible in commit order.
CREATE TABLE environments (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL,
    color      TEXT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    -- Display order within the project (development, staging, production, then newer ones).
    position   BIGINT NOT NULL DEFAULT 0,
    version    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, slug)
);
CREATE UNIQUE INDEX environments_one_default_per_project ON environments (project_id) WHERE is_default = 1;

CREATE TABLE sdk_keys (
    id             TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('server', 'client')),
    key_hash       TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX sdk_keys_by_environment ON sdk_keys (environment_id);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    token_hash TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE flags (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    version        BIGINT NOT NULL,
    doc            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (environment_id, key)
);

CREATE TABLE segments (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    version        BIGINT NOT NULL,
    doc            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (environment_id, key)
);

-- The change feed (transactional outbox): one row per version of an environment. No foreign
-- key, so the row that records an environment's deletion outlives it.
CREATE TABLE changes (
    environment_id TEXT NOT NULL,
    version        BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    key            TEXT NOT NULL,
    doc            TEXT,
    at             BIGINT NOT NULL,
    PRIMARY KEY (environment_id, version)
);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             BIGINT NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT,
    actor_name     TEXT NOT NULL,
    project_id     TEXT,
    environment_id TEXT,
    action         TEXT NOT NULL,
    target_kind    TEXT NOT NULL,
    target_key     TEXT NOT NULL,
    before_doc     TEXT,
    after_doc      TEXT
);
CREATE INDEX audit_by_project ON audit_log (project_id, at);
CREATE INDEX audit_by_environment ON audit_log (environment_id, at);
CREATE INDEX audit_by_actor ON audit_log (actor_id, at);

-- Sign-in throttling, shared by every control-plane instance on this database (and kept over
-- restarts): one fixed window of failures per key, and the (account, address) pairs that
-- signed in before. A key is an HMAC, under a key derived from SESSION_SECRET, of the account,
-- the client address, the pair, or a device cookie's id: never the email or the address.
-- `scope` is `pair`, `address`, `account` or `device`; times are ms since the epoch.
CREATE TABLE login_windows (
    scope    TEXT NOT NULL,
    key      TEXT NOT NULL,
    started  BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_windows_by_start ON login_windows (started);
CREATE TABLE login_known (
    key TEXT PRIMARY KEY,
    at  BIGINT NOT NULL
);
CREATE INDEX login_known_by_at ON login_known (at);

-- Leases: which control-plane instance does a job only one may do at a time (the NATS relay).
-- `token` grows by one with every new holder: the fencing token a holder stamps on its work.
-- `expires_at` is in milliseconds since the Unix epoch; the holder renews it, others take the
-- lease once it has passed.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- An environment's serving settings, as JSON: what edges apply when they serve it. For now
-- `{"client_keys_read_rules": bool}` — whether client (browser) keys may read flag rules.
ALTER TABLE environments ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

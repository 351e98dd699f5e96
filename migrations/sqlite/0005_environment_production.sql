-- Whether an environment is production: the dashboard asks for confirmation before it
-- changes a flag there. Environments called `production` start marked.
ALTER TABLE environments ADD COLUMN is_production BIGINT NOT NULL DEFAULT 0 CHECK (is_production IN (0, 1));
UPDATE environments SET is_production = 1 WHERE slug = 'production';

-- When an API token last authenticated a request (updated at most once a minute), so an
-- administrator can see which tokens are still in use before revoking one.
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
CREATE INDEX api_tokens_by_project ON api_tokens (project_id);

-- Emails are unique regardless of case. Sign-in has always matched emails case-insensitively,
-- so of several accounts whose emails differed only in case, only one could ever sign in.
-- `lower` is the database's own, as in the sign-in query (SQLite folds ASCII letters only).
--
-- Existing duplicates: the oldest account of each group (earliest created_at, then lowest id)
-- keeps its email. Every later one is renamed to `{email}#duplicate-{id}` and loses its
-- password and its sessions, so it cannot sign in; it stays in the user list, with its
-- project roles and its history, for a workspace admin to see and delete. Each rename is in
-- the audit log (`user.email_deduplicate`, actor `system`).

INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, project_id, environment_id, action,
                       target_kind, target_key, before_doc, after_doc)
SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT), 'system', NULL, 'system',
       NULL, NULL, 'user.email_deduplicate', 'user', u.id,
       json_build_object('email', u.email)::TEXT,
       json_build_object('email', u.email || '#duplicate-' || u.id)::TEXT
FROM users u
WHERE EXISTS (SELECT 1 FROM users o
              WHERE lower(o.email) = lower(u.email)
                AND (o.created_at < u.created_at OR (o.created_at = u.created_at AND o.id < u.id)));

DELETE FROM sessions
WHERE user_id IN (SELECT u.id FROM users u
                  WHERE EXISTS (SELECT 1 FROM users o
                                WHERE lower(o.email) = lower(u.email)
                                  AND (o.created_at < u.created_at
                                       OR (o.created_at = u.created_at AND o.id < u.id))));

-- The oldest of a group is never renamed, so every later one still finds it while this runs.
UPDATE users
SET email = email || '#duplicate-' || id, password_hash = NULL
WHERE EXISTS (SELECT 1 FROM users o
              WHERE lower(o.email) = lower(users.email)
                AND (o.created_at < users.created_at
                     OR (o.created_at = users.created_at AND o.id < users.id)));

CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

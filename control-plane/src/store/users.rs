//! Users, server-side sessions and first-run setup. Sessions are rows, so logout, user deletion
//! and a password change end them at once; only a hash of each session token is stored.

use super::{Actor, Store, StoreError, audit, new_id, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: i64,
}

/// A user's role in the workspace: `admin` for workspace admins; roles in projects are per
/// project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceRole {
    /// A workspace admin: may do everything.
    Admin,
    /// Acts in projects by their role there.
    Member,
}

impl User {
    pub fn workspace_role(&self) -> WorkspaceRole {
        if self.is_admin {
            WorkspaceRole::Admin
        } else {
            WorkspaceRole::Member
        }
    }
}

/// What first-run setup creates.
#[derive(Debug, Clone)]
pub struct Setup {
    pub workspace_name: String,
    pub project_name: String,
    pub name: String,
    pub email: String,
    pub password_hash: String,
}

type UserRow = (String, String, String, i64, i64);

fn user((id, email, name, is_admin, created_at): UserRow) -> User {
    User {
        id,
        email,
        name,
        is_admin: is_admin != 0,
        created_at,
    }
}

const USER_COLUMNS: &str = "id, email, name, is_admin, created_at";

impl Store {
    /// Whether first-run setup has been completed.
    pub async fn setup_complete(&self) -> Result<bool, StoreError> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'setup_complete'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The workspace's name, empty before setup.
    pub async fn workspace_name(&self) -> Result<String, StoreError> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'workspace_name'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.unwrap_or_default())
    }

    /// Completes first-run setup: the workspace admin and the first project, in one
    /// transaction. The `setup_complete` row is inserted first, so of two concurrent setups
    /// exactly one succeeds; the other gets `Conflict`.
    pub async fn complete_setup(&self, setup: &Setup) -> Result<User, StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('setup_complete', 'true')")
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("setup".into()),
                other => other,
            })?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('workspace_name', $1) ON CONFLICT (key) DO UPDATE SET value = $1")
            .bind(&setup.workspace_name)
            .execute(&mut *tx)
            .await?;
        let admin = User {
            id: new_id(),
            email: setup.email.clone(),
            name: setup.name.clone(),
            is_admin: true,
            created_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}, password_hash) VALUES ($1, $2, $3, 1, $4, $5)"
        ))
        .bind(&admin.id)
        .bind(&admin.email)
        .bind(&admin.name)
        .bind(now)
        .bind(&setup.password_hash)
        .execute(&mut *tx)
        .await?;
        let actor = Actor::user(&admin.id, &admin.email);
        audit(
            &mut tx,
            &actor,
            None,
            None,
            "setup.complete",
            ("workspace", &setup.workspace_name),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        self.create_project(&actor, &setup.project_name).await?;
        Ok(admin)
    }

    /// A user and their password hash, by email (case-insensitive; emails are unique
    /// regardless of case, so there is at most one).
    pub async fn user_for_login(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row: Option<(String, String, String, i64, i64, Option<String>)> =
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)"
            ))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id, email, name, admin, created, hash)| {
            (user((id, email, name, admin, created)), hash)
        }))
    }

    /// Starts a session for `user`, stored under the hash of its token, audited as
    /// `auth.login` (workspace-wide, read by workspace admins) with `details` (the client's
    /// address and how the sign-in was throttled; never a credential).
    pub async fn create_session(
        &self,
        user: &User,
        token_hash: &str,
        ttl_ms: i64,
        details: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(&user.id)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(&mut *tx)
            .await?;
        let actor = Actor::user(&user.id, &user.email);
        audit_sign_in(&mut tx, &actor, "auth.login", &user.id, Some(details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a refused sign-in as `auth.login_failed` (by nobody known, with `details`: the
    /// client's address), on the account when one was named (`user`), else on no account:
    /// what was typed may be a password, so it is not kept. Both cost the same write, so the
    /// time of the answer does not tell whether an account exists.
    pub async fn audit_failed_login(
        &self,
        user: Option<&User>,
        details: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let account = user.map_or("", |u| u.id.as_str());
        let (actor, action) = (Actor::anonymous(), "auth.login_failed");
        audit_sign_in(&mut tx, &actor, action, account, Some(details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a live session, `None` when the session does not exist or has expired.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.name, u.is_admin, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(user))
    }

    /// Ends one session, audited as `auth.logout` by its user; nothing when there is no such
    /// session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let ended: Option<(String, String)> = sqlx::query_as(
            "SELECT u.id, u.email FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, email)) = ended else {
            return Ok(());
        };
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        let actor = Actor::user(&id, &email);
        audit_sign_in(&mut tx, &actor, "auth.logout", &id, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// One user by id.
    pub async fn user(&self, id: &str) -> Result<User, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(user)
            .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))
    }

    /// The password hash of a user, for checking their current password.
    pub async fn password_hash(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))
    }

    /// Replaces a user's password, ends every session of theirs and, when given, starts
    /// `new_session` (the hash of a fresh token and its lifetime in milliseconds) to replace the
    /// session that asked, all in one transaction: no session from before the change survives
    /// it, not even one whose token was seen together with the old password.
    pub async fn set_password(
        &self,
        actor: &Actor,
        id: &str,
        password_hash: &str,
        new_session: Option<(&str, i64)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some((token_hash, ttl_ms)) = new_session {
            let now = now_ms();
            sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(id)
                .bind(now)
                .bind(now + ttl_ms)
                .execute(&mut *tx)
                .await?;
        }
        audit(
            &mut tx,
            actor,
            None,
            None,
            "user.password_change",
            ("user", id),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Serialises the transactions that can change who the workspace admins are, so two of
    /// them cannot each remove "the other" last admin: the first write of such a transaction
    /// touches this one row (a row lock on PostgreSQL, the write lock on SQLite). The `epoch`
    /// row exists from the moment the store opens.
    async fn lock_admins(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        sqlx::query("UPDATE meta SET value = value WHERE key = 'epoch'")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// How many workspace admins there are, inside a transaction that took [`Self::lock_admins`].
    async fn admins_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
                .fetch_one(&mut **tx)
                .await?,
        )
    }

    /// Renames a user and/or makes them a workspace admin or not. Refused when it would leave
    /// the workspace without an admin.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &str,
        name: Option<&str>,
        is_admin: Option<bool>,
    ) -> Result<User, StoreError> {
        let mut tx = self.write().await?;
        Self::lock_admins(&mut tx).await?;
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let before = row
            .map(user)
            .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))?;
        let mut after = before.clone();
        if let Some(name) = name {
            after.name = name.to_owned();
        }
        if let Some(is_admin) = is_admin {
            after.is_admin = is_admin;
        }
        if before.is_admin && !after.is_admin && Self::admins_in(&mut tx).await? <= 1 {
            return Err(StoreError::Refused(
                "the last workspace admin must stay an admin".into(),
            ));
        }
        sqlx::query("UPDATE users SET name = $2, is_admin = $3 WHERE id = $1")
            .bind(id)
            .bind(&after.name)
            .bind(i64::from(after.is_admin))
            .execute(&mut *tx)
            .await?;
        let shape =
            |u: &User| serde_json::json!({ "name": u.name, "is_admin": u.is_admin }).to_string();
        audit(
            &mut tx,
            actor,
            None,
            None,
            "user.update",
            ("user", id),
            Some(&shape(&before)),
            Some(&shape(&after)),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a user; their sessions end with them. Refused for the last workspace admin.
    pub async fn delete_user(&self, actor: &Actor, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        Self::lock_admins(&mut tx).await?;
        let admin: Option<i64> = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let admin = admin.ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))?;
        if admin != 0 && Self::admins_in(&mut tx).await? <= 1 {
            return Err(StoreError::Refused(
                "the last workspace admin cannot be deleted".into(),
            ));
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            None,
            None,
            "user.delete",
            ("user", id),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Appends the audit row of a sign-in, a refused one or a sign-out, on account `user_id`
/// (empty: none), workspace-wide.
async fn audit_sign_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    action: &str,
    user_id: &str,
    details: Option<&str>,
) -> Result<(), StoreError> {
    audit(
        tx,
        actor,
        None,
        None,
        action,
        ("user", user_id),
        None,
        details,
    )
    .await
}

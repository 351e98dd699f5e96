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
        let mut tx = self.pool.begin().await?;
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

    /// A user and their password hash, by email (case-insensitive).
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

    /// Starts a session for `user_id`, stored under the hash of its token.
    pub async fn create_session(
        &self,
        user_id: &str,
        token_hash: &str,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(&self.pool)
            .await?;
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

    /// Ends one session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
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

    /// Deletes a user; their sessions end with them.
    pub async fn delete_user(&self, actor: &Actor, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
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

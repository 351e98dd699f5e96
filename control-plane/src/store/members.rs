//! Project membership: a user's role in a project (admin, editor, viewer).

use super::{Actor, Store, StoreError, audit};

/// A role within a project, `viewer`, `editor` or `admin` in API bodies. Ordered: a higher role
/// can do everything a lower one can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl Store {
    /// The user's role in the project, `None` when not a member.
    pub async fn member_role(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<Role>, StoreError> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    /// Adds a member, or changes their role; audited.
    pub async fn set_member(
        &self,
        actor: &Actor,
        project_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = $3",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({ "user_id": user_id, "role": role.as_str() }).to_string();
        audit(
            &mut tx,
            actor,
            Some(project_id),
            None,
            "member.set",
            ("member", user_id),
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A project's members: (user, role), by email.
    pub async fn members(&self, project_id: &str) -> Result<Vec<(super::User, Role)>, StoreError> {
        let rows: Vec<(String, String, String, i64, i64, String)> = sqlx::query_as(
            "SELECT u.id, u.email, u.name, u.is_admin, u.created_at, m.role FROM project_members m \
             JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.email",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, email, name, admin, created_at, role)| {
                Role::parse(&role).map(|r| {
                    (
                        super::User {
                            id,
                            email,
                            name,
                            is_admin: admin != 0,
                            created_at,
                        },
                        r,
                    )
                })
            })
            .collect())
    }

    /// Removes a member; audited.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        project_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(project_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("member {user_id:?}")));
        }
        audit(
            &mut tx,
            actor,
            Some(project_id),
            None,
            "member.remove",
            ("member", user_id),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every user, by email.
    pub async fn users(&self) -> Result<Vec<super::User>, StoreError> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, email, name, is_admin, created_at FROM users ORDER BY email",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, email, name, admin, created_at)| super::User {
                id,
                email,
                name,
                is_admin: admin != 0,
                created_at,
            })
            .collect())
    }

    /// How many workspace admins there are (the last one cannot be deleted).
    pub async fn admin_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Ids of the projects a user is a member of.
    pub async fn member_projects(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT project_id FROM project_members WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Creates a user, a workspace admin or not; audited. For the users API and tests.
    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        name: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<super::User, StoreError> {
        let user = super::User {
            id: super::new_id(),
            email: email.to_owned(),
            name: name.to_owned(),
            is_admin,
            created_at: super::now_ms(),
        };
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO users (id, email, name, is_admin, created_at, password_hash) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&user.id)
            .bind(&user.email)
            .bind(&user.name)
            .bind(i64::from(is_admin))
            .bind(user.created_at)
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("a user with email {email:?}")),
                other => other,
            })?;
        audit(
            &mut tx,
            actor,
            None,
            None,
            "user.create",
            ("user", &user.id),
            None,
            Some(&serde_json::json!({ "email": email, "role": if is_admin { "admin" } else { "member" } }).to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }
}

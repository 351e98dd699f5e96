//! Projects and their environments. A new project gets development (the default), staging and
//! production; environment slugs are unique within a project, not across the install.

use checkgate_protocol::EnvironmentSettings;

use super::changes::{Audited, Change, ChangeKind, NextVersion};
use super::{Actor, Store, StoreError, audit, new_id, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub slug: String,
    pub color: String,
    pub is_default: bool,
    /// The environment's feed head.
    pub version: u64,
    pub created_at: i64,
    /// Whether client (browser) keys may read flag rules (Checkgate's browser SDK needs them);
    /// off unless an admin turns it on.
    pub client_keys_read_rules: bool,
    /// Marked as production: the dashboard confirms every flag change here.
    pub is_production: bool,
    /// What is kept of the impressions SDKs report here.
    pub impressions: checkgate_protocol::ImpressionSettings,
}

/// The environments every new project starts with: (name, slug, colour, default,
/// production).
const SEEDED: [(&str, &str, &str, bool, bool); 3] = [
    ("Development", "development", "#22c55e", true, false),
    ("Staging", "staging", "#f59e0b", false, false),
    ("Production", "production", "#ef4444", false, true),
];

/// A URL-safe slug: lowercase ASCII letters and digits, runs of anything else as one `-`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

type EnvRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
);

fn environment(
    (id, project_id, name, slug, color, is_default, version, created_at, settings, is_production): EnvRow,
) -> Environment {
    Environment {
        id,
        project_id,
        name,
        slug,
        color,
        is_default: is_default != 0,
        version: version.max(0) as u64,
        created_at,
        client_keys_read_rules: EnvironmentSettings::parse(&settings).client_keys_read_rules,
        impressions: EnvironmentSettings::parse(&settings).impressions,
        is_production: is_production != 0,
    }
}

/// The change row that tells edges an environment is gone.
fn environment_deleted(env: &str) -> Change<'_> {
    Change {
        kind: ChangeKind::EnvironmentDeleted,
        key: env,
        doc: None,
    }
}

/// The columns an environment is inserted with (`settings` takes its default).
const ENV_COLUMNS: &str =
    "id, project_id, name, slug, color, is_default, version, created_at, is_production";
/// The columns an environment is read with.
const ENV_SELECT: &str =
    "id, project_id, name, slug, color, is_default, version, created_at, settings, is_production";

impl Store {
    /// Creates a project with its three environments, audited, in one transaction.
    pub async fn create_project(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<(Project, Vec<Environment>), StoreError> {
        let slug = slugify(name);
        let now = now_ms();
        let project = Project {
            id: new_id(),
            name: name.to_owned(),
            slug,
            created_at: now,
        };
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO projects (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&project.id)
            .bind(&project.name)
            .bind(&project.slug)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("a project with slug {:?}", project.slug))
                }
                other => other,
            })?;
        let mut environments = Vec::with_capacity(SEEDED.len());
        for (position, (env_name, env_slug, color, is_default, is_production)) in
            SEEDED.into_iter().enumerate()
        {
            let env = Environment {
                id: new_id(),
                project_id: project.id.clone(),
                name: env_name.into(),
                slug: env_slug.into(),
                color: color.into(),
                is_default,
                version: 0,
                created_at: now,
                client_keys_read_rules: false,
                is_production,
                impressions: checkgate_protocol::ImpressionSettings::default(),
            };
            sqlx::query(&format!("INSERT INTO environments ({ENV_COLUMNS}, position) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)"))
                .bind(&env.id)
                .bind(&env.project_id)
                .bind(&env.name)
                .bind(&env.slug)
                .bind(&env.color)
                .bind(i64::from(is_default))
                .bind(now)
                .bind(i64::from(is_production))
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
            environments.push(env);
        }
        let after = serde_json::json!({ "name": project.name, "slug": project.slug }).to_string();
        audit(
            &mut tx,
            actor,
            Some(&project.id),
            None,
            "project.create",
            ("project", &project.id),
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok((project, environments))
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, slug, created_at FROM projects ORDER BY name, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, slug, created_at)| Project {
                id,
                name,
                slug,
                created_at,
            })
            .collect())
    }

    pub async fn project(&self, id: &str) -> Result<Project, StoreError> {
        let row: Option<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, slug, created_at FROM projects WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(id, name, slug, created_at)| Project {
            id,
            name,
            slug,
            created_at,
        })
        .ok_or_else(|| StoreError::NotFound(format!("project {id:?}")))
    }

    /// Renames a project (its slug stays), audited.
    pub async fn rename_project(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
    ) -> Result<Project, StoreError> {
        let mut tx = self.write().await?;
        let before: Option<String> = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let before = before.ok_or_else(|| StoreError::NotFound(format!("project {id:?}")))?;
        sqlx::query("UPDATE projects SET name = $2 WHERE id = $1")
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            Some(id),
            None,
            "project.rename",
            ("project", id),
            Some(&before),
            Some(name),
        )
        .await?;
        tx.commit().await?;
        self.project(id).await
    }

    /// Deletes a project with everything in it, audited.
    pub async fn delete_project(&self, actor: &Actor, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        // Each environment takes its next version for the change row that tells edges it is
        // gone; the rows outlive the environments (the feed table has no foreign key). The
        // deletion is audited once, for the project.
        let gone = NextVersion::take_all(&mut tx, id).await?;
        for next in &gone {
            next.append(&mut tx, environment_deleted(&next.environment_id))
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {id:?}")));
        }
        audit(
            &mut tx,
            actor,
            Some(id),
            None,
            "project.delete",
            ("project", id),
            None,
            None,
        )
        .await?;
        self.commit_changes(tx, &gone).await
    }

    /// Adds an environment to a project, after the existing ones; audited.
    pub async fn create_environment(
        &self,
        actor: &Actor,
        project_id: &str,
        name: &str,
        slug: &str,
        color: &str,
        is_production: bool,
    ) -> Result<Environment, StoreError> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let position: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM environments WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await?;
        let env = Environment {
            id: new_id(),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            slug: slug.to_owned(),
            color: color.to_owned(),
            is_default: false,
            version: 0,
            created_at: now,
            client_keys_read_rules: false,
            is_production,
            impressions: checkgate_protocol::ImpressionSettings::default(),
        };
        sqlx::query(&format!("INSERT INTO environments ({ENV_COLUMNS}, position) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $8)"))
            .bind(&env.id)
            .bind(project_id)
            .bind(name)
            .bind(slug)
            .bind(color)
            .bind(now)
            .bind(i64::from(is_production))
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("an environment with slug {slug:?} in this project")),
                StoreError::NotFound(_) => StoreError::NotFound(format!("project {project_id:?}")),
                other => other,
            })?;
        let after = serde_json::json!({ "name": name, "slug": slug, "color": color, "is_production": is_production }).to_string();
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(&env.id),
            "environment.create",
            ("environment", &env.id),
            None,
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(env)
    }

    /// Renames an environment or changes its colour (its slug stays: SDK keys and URLs
    /// name it). Neither is served by edges, so it takes no version; it is audited.
    pub async fn update_environment(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
        name: Option<&str>,
        color: Option<&str>,
        is_production: Option<bool>,
    ) -> Result<Environment, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<EnvRow> = sqlx::query_as(&format!(
            "SELECT {ENV_SELECT} FROM environments WHERE id = $1 AND project_id = $2"
        ))
        .bind(id)
        .bind(project_id)
        .fetch_optional(&mut *tx)
        .await?;
        let before = row
            .map(environment)
            .ok_or_else(|| StoreError::NotFound(format!("environment {id:?}")))?;
        let mut after = before.clone();
        if let Some(name) = name {
            after.name = name.to_owned();
        }
        if let Some(color) = color {
            after.color = color.to_owned();
        }
        if let Some(is_production) = is_production {
            after.is_production = is_production;
        }
        sqlx::query(
            "UPDATE environments SET name = $2, color = $3, is_production = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(&after.name)
        .bind(&after.color)
        .bind(i64::from(after.is_production))
        .execute(&mut *tx)
        .await?;
        let shape = |e: &Environment| {
            serde_json::json!({ "name": e.name, "color": e.color, "is_production": e.is_production })
                .to_string()
        };
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(id),
            "environment.update",
            ("environment", id),
            Some(&shape(&before)),
            Some(&shape(&after)),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes an environment's serving settings with `edit`, under the environment's lock (so
    /// the fields this version does not know are kept as they are): a change edges must see,
    /// so it takes the environment's next version with its change row (and its audit row).
    /// Returns the version.
    pub async fn edit_environment_settings(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
        edit: impl FnOnce(&mut EnvironmentSettings) + Send,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let next = NextVersion::take_in(&mut tx, project_id, id).await?;
        let before: String = sqlx::query_scalar("SELECT settings FROM environments WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut settings = EnvironmentSettings::parse(&before);
        edit(&mut settings);
        let json = settings.to_json();
        sqlx::query("UPDATE environments SET settings = $2 WHERE id = $1")
            .bind(id)
            .bind(&json)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            kind: ChangeKind::SettingsUpdate,
            key: id,
            doc: Some(&json),
        };
        let audited = Audited {
            action: "environment.settings",
            target: ("environment", id),
            before: Some(&before),
            after: Some(&json),
        };
        next.record(&mut tx, actor, change, audited).await?;
        self.commit_changes(tx, std::slice::from_ref(&next)).await?;
        Ok(next.version)
    }

    /// Deletes an environment and everything in it. The default environment and a project's
    /// last environment cannot be deleted. Its final change row tells edges it is gone; returns
    /// that row's version.
    pub async fn delete_environment(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let next = NextVersion::take_in(&mut tx, project_id, id).await?;
        let (name, is_default, count): (String, i64, i64) = sqlx::query_as(
            "SELECT name, is_default, (SELECT COUNT(*) FROM environments WHERE project_id = $2) \
             FROM environments WHERE id = $1",
        )
        .bind(id)
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await?;
        if is_default != 0 {
            return Err(StoreError::Refused(
                "the default environment cannot be deleted; make another one the default first"
                    .into(),
            ));
        }
        if count <= 1 {
            return Err(StoreError::Refused(
                "a project keeps at least one environment".into(),
            ));
        }
        sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = Audited {
            action: "environment.delete",
            target: ("environment", id),
            before: Some(&name),
            after: None,
        };
        next.record(&mut tx, actor, environment_deleted(id), audited)
            .await?;
        self.commit_changes(tx, std::slice::from_ref(&next)).await?;
        Ok(next.version)
    }

    /// Makes an environment its project's default (the one before is no longer).
    pub async fn set_default_environment(
        &self,
        actor: &Actor,
        project_id: &str,
        id: &str,
    ) -> Result<Environment, StoreError> {
        let mut tx = self.write().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM environments WHERE id = $1 AND project_id = $2")
                .bind(id)
                .bind(project_id)
                .fetch_optional(&mut *tx)
                .await?;
        exists.ok_or_else(|| StoreError::NotFound(format!("environment {id:?}")))?;
        sqlx::query(
            "UPDATE environments SET is_default = 0 WHERE project_id = $1 AND is_default = 1",
        )
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE environments SET is_default = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            Some(project_id),
            Some(id),
            "environment.set_default",
            ("environment", id),
            None,
            None,
        )
        .await?;
        tx.commit().await?;
        self.environment(id).await
    }

    pub async fn environments(&self, project_id: &str) -> Result<Vec<Environment>, StoreError> {
        let rows: Vec<EnvRow> = sqlx::query_as(&format!(
            "SELECT {ENV_SELECT} FROM environments WHERE project_id = $1 ORDER BY position, created_at, slug"
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(environment).collect())
    }

    pub async fn environment(&self, id: &str) -> Result<Environment, StoreError> {
        let row: Option<EnvRow> = sqlx::query_as(&format!(
            "SELECT {ENV_SELECT} FROM environments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(environment)
            .ok_or_else(|| StoreError::NotFound(format!("environment {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Web Shop"), "web-shop");
        assert_eq!(slugify("  --Ünïcode & Co!! "), "n-code-co");
        assert_eq!(slugify("API v2"), "api-v2");
    }
}

//! Reading the audit log: filtered by project, environment, actor, target and time, newest
//! first, paginated by a cursor (the last id seen), so pages stay stable while rows are added.

use super::{Store, StoreError};

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Which rows to read. Every field narrows; `None` does not.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project_id: Option<String>,
    /// Projects the reader may see; `None` for a workspace admin (all rows).
    pub visible_projects: Option<Vec<String>>,
    pub environment_id: Option<String>,
    pub actor_id: Option<String>,
    pub target_kind: Option<String>,
    pub target_key: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only rows older than this id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

enum Param {
    Text(String),
    Int(i64),
}

type Row = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Audit rows of an environment, newest first: `(action, target key, before, after)`.
    pub async fn audit_for_environment(
        &self,
        env: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT action, target_key, before_doc, after_doc FROM audit_log \
             WHERE environment_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(env)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        let mut add = |clause: &str, param: Param| {
            params.push(param);
            clauses.push(clause.replace('?', &format!("${}", params.len())));
        };
        if let Some(v) = &filter.project_id {
            add("project_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &filter.environment_id {
            add("environment_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &filter.actor_id {
            add("actor_id = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &filter.target_kind {
            add("target_kind = ?", Param::Text(v.clone()));
        }
        if let Some(v) = &filter.target_key {
            add("target_key = ?", Param::Text(v.clone()));
        }
        if let Some(v) = filter.since_ms {
            add("at >= ?", Param::Int(v));
        }
        if let Some(v) = filter.until_ms {
            add("at < ?", Param::Int(v));
        }
        if let Some(v) = filter.before_id {
            add("id < ?", Param::Int(v));
        }
        if let Some(projects) = &filter.visible_projects {
            if projects.is_empty() {
                return Ok(Vec::new());
            }
            let mut slots = Vec::with_capacity(projects.len());
            for p in projects {
                params.push(Param::Text(p.clone()));
                slots.push(format!("${}", params.len()));
            }
            clauses.push(format!("project_id IN ({})", slots.join(", ")));
        }
        params.push(Param::Int(i64::from(filter.limit)));
        let limit = format!("${}", params.len());
        let condition = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT id, at, actor_kind, actor_id, actor_name, project_id, environment_id, action, target_kind, target_key, \
             before_doc, after_doc FROM audit_log {condition} ORDER BY id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query_as::<_, Row>(&sql);
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t),
                Param::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    at,
                    actor_kind,
                    actor_id,
                    actor_name,
                    project_id,
                    environment_id,
                    action,
                    target_kind,
                    target_key,
                    before,
                    after,
                )| AuditEntry {
                    id,
                    at,
                    actor_kind,
                    actor_id,
                    actor_name,
                    project_id,
                    environment_id,
                    action,
                    target_kind,
                    target_key,
                    before,
                    after,
                },
            )
            .collect())
    }
}

//! A PostgreSQL database of a test's own (`CHECKGATE_TEST_PG` names the server), for tests
//! that run the control plane as a process; dropped when the test ends.

use sqlx::Connection;

pub fn admin_url() -> String {
    std::env::var("CHECKGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `name` on the test server, without a password.
pub fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Creates database `name` on the test server; returns its URL.
pub async fn create_database(name: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL answers (scripts/test.sh starts it)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    database_url(name)
}

/// Drops database `name`, ending the connections still open to it.
pub async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// A PostgreSQL database of the test's own, dropped afterwards.
pub struct Database {
    name: String,
    runtime: tokio::runtime::Runtime,
}

impl Database {
    pub fn new() -> Self {
        let name = format!("cg_proc_{}", uuid::Uuid::new_v4().simple());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(create_database(&name));
        Self { name, runtime }
    }

    /// The database's URL with `password` in it (the test server trusts loopback, so any
    /// password is accepted — which is what lets this test see whether it leaks).
    pub fn url_with_password(&self, password: &str) -> String {
        let admin = admin_url();
        let (scheme, rest) = admin.split_once("://").unwrap();
        let (userinfo, host_and_db) = rest.split_once('@').unwrap();
        let user = userinfo.split(':').next().unwrap();
        let host = host_and_db.split('/').next().unwrap();
        format!("{scheme}://{user}:{password}@{host}/{}", self.name)
    }
}

impl Database {
    /// The database's URL, without a password.
    pub fn url(&self) -> String {
        database_url(&self.name)
    }

    /// Runs one SQL statement against the server (not inside the database).
    pub fn admin_sql(&self, sql: &str) {
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        });
    }

    /// Runs one SQL statement inside the database.
    pub fn admin_sql_in_db(&self, sql: &str) {
        let url = self.url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        });
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every environment's head: id → version.
    pub fn heads(&self) -> std::collections::BTreeMap<String, u64> {
        let url = self.url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, version FROM environments")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.into_iter().map(|(id, v)| (id, v as u64)).collect()
        })
    }

    /// An environment's flags as stored: key → (version, document).
    pub fn flags(&self, env: &str) -> std::collections::BTreeMap<String, (u64, serde_json::Value)> {
        let url = self.url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let rows: Vec<(String, i64, String)> =
                sqlx::query_as("SELECT key, version, doc FROM flags WHERE environment_id = $1")
                    .bind(env)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            rows.into_iter()
                .map(|(k, v, d)| (k, (v as u64, serde_json::from_str(&d).unwrap())))
                .collect()
        })
    }

    /// The fencing token of the lease `name`, and whether it runs now (not expired).
    pub fn lease(&self, name: &str) -> Option<(u64, bool)> {
        let url = self.url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let row: Option<(i64, bool)> = sqlx::query_as(
                "SELECT token, expires_at > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT \
                 FROM leases WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
            row.map(|(token, running)| (token as u64, running))
        })
    }

    /// The change row of `(env, version)`: its kind and key.
    pub fn change(&self, env: &str, version: u64) -> Option<(String, String)> {
        let url = self.url();
        self.runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_as(
                "SELECT kind, key FROM changes WHERE environment_id = $1 AND version = $2",
            )
            .bind(env)
            .bind(version as i64)
            .fetch_optional(&mut conn)
            .await
            .unwrap()
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(drop_database(&self.name));
    }
}

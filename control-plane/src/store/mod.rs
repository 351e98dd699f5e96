//! The durable store: one implementation over sqlx's `Any` driver, serving the embedded SQLite
//! file (the default) and PostgreSQL with the same queries. Migrations (one folder per dialect)
//! run when the store opens, before the process binds any port.
//!
//! Every write that changes what an edge serves runs in one transaction that (1) takes the
//! environment's next version by updating its row — a row lock on PostgreSQL, the database
//! write lock on SQLite — so versions are gapless and become visible in commit order, (2)
//! writes the item, (3) appends the change row (the feed's outbox) and (4) the audit row.
//! `changes.rs` does (1), (3) and (4) for every such writer.

mod audit_log;
mod automata;
mod changes;
pub mod connections;
mod credentials;
mod edge_tokens;
mod error;
mod feed;
mod flags;
mod fleet;
pub mod fleet_alerts;
mod impression_merge;
mod impression_reads;
pub mod impressions;
mod insights_retention;
mod items;
mod keys;
mod leases;
pub mod login_throttle;
mod members;
mod projects;
mod schedules;
mod segments;
mod tokens;
mod users;
pub mod webhook_delivery;
mod webhook_outbox;
mod webhook_sealed;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit_log::{AuditEntry, AuditFilter};
pub use changes::{ChangeKind, ChangeRow, UnknownChangeKind};
pub use checkgate_protocol::EnvironmentSettings;
pub use credentials::key_hash;
pub use edge_tokens::{EDGE_TOKEN_TAG, EdgeToken};
pub use error::StoreError;
pub use feed::{FeedEnvironment, FeedSdkKey, SnapshotData};
pub use flags::StoredFlag;
pub use fleet::{EdgeSession, FLEET_KEEP_MS, FLEET_REFRESH};
pub use keys::{CreatedSdkKey, KeyKind, SdkKey};
pub use leases::Lease;
pub use members::Role;
pub use projects::{Environment, Project, slugify};
pub use schedules::{
    NewSchedule, SCHEDULE_APPLY, SCHEDULE_CANCEL, SCHEDULE_CREATE, ScheduleFilter, ScheduleStatus,
    ScheduledChange,
};
pub use segments::StoredSegment;
pub use tokens::{ApiToken, TOKEN_TAG};
pub use users::{Setup, User, WorkspaceRole};
pub use webhook_outbox::enqueue_event;
pub use webhooks::{Webhook, WebhookChanges};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user`, `api_token` or `system`.
    pub kind: &'static str,
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            kind: "system",
            id: None,
            name: "system".into(),
        }
    }

    /// Someone not signed in (a refused sign-in).
    pub fn anonymous() -> Self {
        Self {
            kind: "anonymous",
            id: None,
            name: "anonymous".into(),
        }
    }

    pub fn user(id: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            kind: "user",
            id: Some(id.into()),
            name: email.into(),
        }
    }

    pub fn api_token(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: "api_token",
            id: Some(id.into()),
            name: name.into(),
        }
    }
}

/// A change that committed: its environment and the version it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub environment_id: String,
    pub version: u64,
}

/// How many announcements a slow listener may fall behind before it is told it lagged (and
/// then reads every head from the database instead).
const COMMITS_BACKLOG: usize = 4096;

/// The expected version of an item that must not exist yet (versions start at 1), for writes
/// that create and must not replace: the check is made inside the write's transaction.
pub const ABSENT: u64 = 0;

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Identifies this database: a restored or reset database has another, so edges resync.
    epoch: u64,
    /// Announces each committed change of this process, so the feed can send it at once
    /// instead of at its next poll. Only a hint: the database stays the truth.
    commits: tokio::sync::broadcast::Sender<Committed>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The URL of the embedded default: a SQLite file in the data directory.
pub fn embedded_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("checkgate.db").display()
    )
}

/// Keeps a SQLite database readable by its owner only: it holds password and key hashes, the
/// flags and the audit log. SQLite creates a new file with mode 0644 (less the umask) and gives
/// its `-wal` and `-shm` files the main file's mode, so the main file is created here first,
/// with mode 0600, when the URL asks for it to be created (`mode=rwc`); an existing file and
/// its `-wal` and `-shm` are tightened to 0600 (with a warning when that is not allowed).
fn private_sqlite_files(url: &str) -> Result<(), StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(StoreError::connect)?;
    let path = options.get_filename();
    if url.contains("mode=memory") || path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if url.contains("mode=rwc") {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(StoreError::File {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => tracing::info!(
                        file = %file.display(), was = %format!("{mode:o}"),
                        "made the database file private (mode 600)"
                    ),
                    Err(e) => tracing::warn!(
                        file = %file.display(), mode = %format!("{mode:o}"), cause = %e,
                        "the database file can be read by other users and its mode cannot be changed"
                    ),
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Opens the database at `url` (`sqlite:…` or `postgres://…`) and brings its schema up to
    /// date, waiting at most `connect_timeout` for a connection.
    pub async fn open(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        if backend == Backend::Sqlite {
            private_sqlite_files(url)?;
        }
        let options = AnyConnectOptions::from_str(url).map_err(StoreError::connect)?;
        let pool = AnyPoolOptions::new()
            .acquire_timeout(connect_timeout)
            .max_connections(if backend == Backend::Sqlite { max_connections.min(8) } else { max_connections })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed while one writer commits; foreign keys are
                        // off by default in SQLite.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::connect)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let epoch = Self::load_epoch(&pool).await?;
        Ok(Self {
            pool,
            backend,
            epoch,
            commits: tokio::sync::broadcast::channel(COMMITS_BACKLOG).0,
        })
    }

    async fn load_epoch(pool: &AnyPool) -> Result<u64, StoreError> {
        let fresh = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .unwrap_or([1; 8]),
        );
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(fresh.to_string())
        .execute(pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'epoch'")
            .fetch_one(pool)
            .await?;
        value
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("epoch {value:?} is not a number")))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Announcements of this process's committed changes, from now on.
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<Committed> {
        self.commits.subscribe()
    }

    /// Announces a committed change (nobody listening is fine).
    pub(crate) fn committed(&self, environment_id: &str, version: u64) {
        let _ = self.commits.send(Committed {
            environment_id: environment_id.to_owned(),
            version,
        });
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads before it writes cannot upgrade
    /// once another connection has committed, and fails at once ("database is locked") instead
    /// of waiting out the busy timeout. On PostgreSQL, row locks do the same job.
    pub(crate) async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Whether the database answers, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Appends an audit row inside the caller's transaction.
#[allow(
    clippy::too_many_arguments,
    reason = "one column each; a struct would only rename them"
)]
pub(crate) async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    project_id: Option<&str>,
    environment_id: Option<&str>,
    action: &str,
    target: (&str, &str),
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, project_id, environment_id, action, \
         target_kind, target_key, before_doc, after_doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(now_ms())
    .bind(actor.kind)
    .bind(actor.id.as_deref())
    .bind(&actor.name)
    .bind(project_id)
    .bind(environment_id)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(before)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

//! Store errors, and the one function that maps database errors onto them.

/// What went wrong in the store, in terms the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    /// The request conflicts with a rule of the model (deleting the default environment, …).
    #[error("{0}")]
    Refused(String),
    /// A conditional write whose expected version is no longer current.
    #[error("{what} is at version {current}, not {expected}")]
    VersionMismatch {
        what: String,
        expected: u64,
        current: u64,
    },
    /// A write whose regexes would take its environment's automata past their cap.
    #[error(
        "this environment's regexes would take {} KiB of automaton, over its cap of {} KiB",
        .total.div_ceil(1024),
        .cap / 1024
    )]
    AutomatonCap { total: u64, cap: u64 },
    /// A flag whose rules name a segment the environment does not have (deleted after the
    /// writer looked).
    #[error("rules: segment {0:?} does not exist in this environment")]
    MissingSegment(String),
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// The embedded database's file could not be created.
    #[error("{path}")]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    pub(crate) fn connect(e: sqlx::Error) -> Self {
        Self::Connect(e)
    }
}

impl From<sqlx::Error> for StoreError {
    /// Constraint violations become domain errors; everything else stays a database error.
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound("row".into()),
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => {
                    Self::Conflict(db.constraint().unwrap_or("record").to_owned())
                }
                ErrorKind::ForeignKeyViolation => Self::NotFound("referenced record".into()),
                _ => Self::Database(e),
            },
            _ => Self::Database(e),
        }
    }
}

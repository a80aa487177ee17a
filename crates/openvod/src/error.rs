//! The classification every domain error maps onto. `http::error` turns a kind into a status once.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unauthorized,
    Forbidden,
    NotFound,
    /// The route exists, not with this method: 405 (with `Allow`).
    MethodNotAllowed,
    Conflict,
    /// The resource existed but can no longer be used (cancelled or timed-out upload).
    Gone,
    TooLarge,
    /// tus checksum extension: the body did not match `Upload-Checksum`.
    ChecksumMismatch,
    LengthRequired,
    UnsupportedMediaType,
    /// The resource exists but is not in a state to be served (an asset still preparing or errored).
    NotReady,
    Unavailable,
    /// Not yet, but soon (a segment still being encoded): 503 with `Retry-After`, message shown.
    RetryLater,
    /// Too many attempts (a locked account): 429, with `Retry-After` where the caller knows it.
    TooManyRequests,
    Internal,
}

/// What a repository (storage engine) call can fail with; every domain maps it through `kind`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("the database did not answer within {} s", .0.as_secs())]
    Stalled(std::time::Duration),
}

/// Bounds a database call made by a background loop: past `limit` the call is dropped (its
/// transaction rolls back) and `DbError::Stalled` comes back. A connection whose peer vanished
/// without a word (a host gone, a black-holed network) would otherwise hold the loop until the
/// TCP stack gives up, which on a connection waiting for an answer can be never: sqlx sets no
/// client-side keepalive or timeout on its sockets.
pub async fn within<T, E: From<DbError>>(
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(DbError::Stalled(limit).into()))
}

impl DbError {
    /// `Unavailable` (503, try again) when the same call may pass in a moment: the connection to
    /// the database broke or none was free, or the engine asked for a retry (serialization
    /// failure, deadlock, lock timeout, shutting down, SQLite busy); `Internal` otherwise.
    pub fn kind(&self) -> ErrorKind {
        let transient = match self {
            DbError::Sqlx(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            DbError::Stalled(_) => true,
            DbError::Sqlx(sqlx::Error::Database(e)) => matches!(
                e.code().as_deref(),
                Some("40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "53300")
                    | Some("5" | "6" | "261" | "262" | "517" | "773")
            ),
            _ => false,
        };
        if transient {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        }
    }
}

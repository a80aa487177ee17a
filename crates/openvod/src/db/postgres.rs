//! PostgreSQL engine (`[database] url = "postgres://…"`): many `openvod serve` and `openvod worker`
//! processes on many machines share one database.
//!
//! The repositories are the SQLite engine's (`sql/repos.rs`), compiled a second time against
//! `sqlx::Postgres`. What SQLite gets from its single writer connection, PostgreSQL gets from row
//! locks: claims take rows `FOR UPDATE SKIP LOCKED` (two workers never claim one job or delivery),
//! read-then-write transactions lock what they read (`FOR UPDATE`), and the few critical sections
//! with no row to lock use transaction-scoped advisory locks (the event log's order, one BBB claim
//! per recording). Triggers (the `--postgres:` lines of migrations 0001, 0004 and 0005) `NOTIFY`
//! at commit when jobs or events are written; a listener turns that into the same in-process
//! wake-ups SQLite gives, across processes.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;

use crate::keyed_lock::LockError;

type Engine = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type DbConn = sqlx::PgConnection;
type SqlDb = PgDb;

/// The channels the triggers of migrations 0001, 0004 and 0005 notify.
const JOBS_CHANNEL: &str = "openvod_jobs";
const EVENTS_CHANNEL: &str = "openvod_events";

pub struct PgDb {
    /// One pool; `writer` and `reader` are the same (the shared code names both, for SQLite).
    writer: PgPool,
    reader: PgPool,
    jobs_queued: Arc<Notify>,
    events_written: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgDb {
    /// Connects, applies pending migrations (sqlx holds an advisory lock meanwhile, so servers
    /// starting together migrate once) and starts listening for other processes' wake-ups.
    /// While the database cannot be reached, work waits `acquire_timeout` for a connection and
    /// then fails as `Unavailable`.
    /// A session of this process's left idle in a transaction for `idle_in_transaction` (the
    /// process stalled or cut off mid-transaction) is ended by the server, so its row locks do
    /// not hold up the other processes.
    pub async fn open(
        url: &str,
        acquire_timeout: Duration,
        idle_in_transaction: Duration,
    ) -> Result<PgDb, DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect_options(url, Some(idle_in_transaction))?)
            .await?;
        adopt_first_history(&pool).await?;
        sqlx::migrate::Migrator::new(super::schema::Rendered(super::schema::Target::Postgres))
            .await?
            .run(&pool)
            .await?;
        let jobs_queued = Arc::new(Notify::new());
        let events_written = Arc::new(Notify::new());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen_all([JOBS_CHANNEL, EVENTS_CHANNEL]).await?;
        let listener = tokio::spawn(relay_notifications(
            listener,
            jobs_queued.clone(),
            events_written.clone(),
        ));
        Ok(PgDb {
            writer: pool.clone(),
            reader: pool,
            jobs_queued,
            events_written,
            listener,
        })
    }
}

/// How to connect: `url`, plus session settings that let the server notice a stalled or vanished
/// process on its own and free what it holds. TCP keepalives (every 5 s after 15 s idle, 3
/// misses) end the session of a machine that is gone, and with it its advisory locks, in about
/// half a minute rather than the system's two hours; `idle_in_transaction` (when given) ends a
/// session left in the middle of a transaction (no transaction here waits on anything but the
/// database, so a long idle one is a stalled process). Sent as startup options: no round trip.
pub fn connect_options(
    url: &str,
    idle_in_transaction: Option<Duration>,
) -> Result<PgConnectOptions, DbError> {
    let options: PgConnectOptions = url.parse()?;
    let mut settings = vec![
        ("tcp_keepalives_idle", "15".to_owned()),
        ("tcp_keepalives_interval", "5".to_owned()),
        ("tcp_keepalives_count", "3".to_owned()),
    ];
    if let Some(limit) = idle_in_transaction {
        settings.push((
            "idle_in_transaction_session_timeout",
            format!("{}ms", limit.as_millis().max(1)),
        ));
    }
    Ok(options.options(settings))
}

/// Wakes this process's workers and dispatchers when any process commits a job or an event.
async fn relay_notifications(mut listener: PgListener, jobs: Arc<Notify>, events: Arc<Notify>) {
    loop {
        match listener.recv().await {
            Ok(n) if n.channel() == JOBS_CHANNEL => jobs.notify_waiters(),
            Ok(_) => events.notify_waiters(),
            Err(e) => {
                // `recv` reconnects on the next call; what was notified meanwhile is lost, so
                // everyone looks for work once.
                tracing::warn!(error = %e, "PostgreSQL notifications interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                jobs.notify_waiters();
                events.notify_waiters();
            }
        }
    }
}

/// `KeyedLocks`' cross-process layer for processes on many machines: PostgreSQL session advisory
/// locks, each held on its own connection of a separate pool (so that waiting for a lock never
/// takes a connection the lock holders need for their work). A process that dies loses its
/// connections, hence its locks.
pub struct AdvisoryLocks {
    pool: PgPool,
}

impl AdvisoryLocks {
    /// Connections are opened as locks are taken, up to `max` at once.
    pub fn connect(
        url: &str,
        max: u32,
        acquire_timeout: Duration,
    ) -> Result<AdvisoryLocks, DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire_timeout)
            .min_connections(0)
            // Session locks are held by idle sessions on purpose: no idle-in-transaction limit.
            .connect_lazy_with(connect_options(url, None)?);
        Ok(AdvisoryLocks { pool })
    }
}

#[async_trait]
impl crate::keyed_lock::SharedLocks for AdvisoryLocks {
    async fn lock(&self, key: &str) -> Result<Box<dyn Send + Sync>, LockError> {
        let (pool, key) = (self.pool.clone(), key.to_owned());
        // Taken in a task of its own: if the caller gives up while waiting, the lock is still
        // taken and then released whole, never left on a pooled connection.
        let taken = tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 1))")
                .bind(&key)
                .execute(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(AdvisoryGuard(Some(conn)))
        })
        .await
        .map_err(|e| LockError::Io(std::io::Error::other(e)))?
        .map_err(|e| match DbError::from(e) {
            e if e.kind() == crate::error::ErrorKind::Unavailable => {
                LockError::Unavailable(e.to_string())
            }
            e => LockError::Io(std::io::Error::other(e)),
        })?;
        Ok(Box::new(taken))
    }
}

struct AdvisoryGuard(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Drop for AdvisoryGuard {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()")
                        .execute(&mut *conn)
                        .await;
                    if unlocked.is_err() {
                        // Closing the session is the other way to let go.
                        conn.close_on_drop();
                    }
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// PostgreSQL's spellings of what the two engines say differently.
mod dialect {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    use super::{DbConn, DbError};

    /// The SQL with SQLite's `?N` and `?` placeholders turned into `$N` (a bare `?` takes the
    /// number after the largest one so far, as in SQLite). Each distinct statement is translated
    /// once and kept: the statements are the program's own, so the cache is bounded.
    pub fn sql(sql: &str) -> &'static str {
        static TRANSLATED: LazyLock<Mutex<HashMap<String, &'static str>>> =
            LazyLock::new(Default::default);
        let mut cache = TRANSLATED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = cache.get(sql) {
            return done;
        }
        let done: &'static str = Box::leak(placeholders(sql).into_boxed_str());
        cache.insert(sql.to_owned(), done);
        done
    }

    pub(super) fn placeholders(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut largest = 0u32;
        let mut in_string = false;
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                in_string = !in_string;
            }
            if c != '?' || in_string {
                out.push(c);
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            let n = match digits.parse::<u32>() {
                Ok(n) => n,
                Err(_) => largest + 1,
            };
            largest = largest.max(n);
            out.push_str(&format!("${n}"));
        }
        out
    }

    /// The text at a dotted `path` inside the JSON text column `col`.
    pub fn json_text(col: &str, path: &str) -> String {
        format!("({col}::jsonb #>> '{{{}}}')", path.replace('.', ","))
    }

    /// The integer at `path` in the JSON text column `col`.
    pub fn json_int(col: &str, path: &str) -> String {
        format!("{}::bigint", json_text(col, path))
    }

    /// Whether the JSON array in the text column `array` holds the text `value`.
    pub fn json_array_has(array: &str, value: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text({array}::jsonb) AS j(value) WHERE j.value = {value})"
        )
    }

    /// Whether the text `haystack` contains `needle` (both SQL expressions).
    pub fn contains(haystack: &str, needle: &str) -> String {
        format!("strpos({haystack}, {needle}) > 0")
    }

    /// Orders rows as they were inserted (an identity column where SQLite has `rowid`).
    pub const INSERTION_ORDER: &str = "seq";

    /// Locks the rows a `SELECT` in a write transaction reads, so that what it decides on cannot
    /// change before it commits.
    pub const FOR_UPDATE: &str = " FOR UPDATE";

    /// Claims skip rows another transaction holds instead of waiting for them.
    pub fn skip_locked(of: &str) -> String {
        format!(" FOR UPDATE OF {of} SKIP LOCKED")
    }

    /// A critical section named `key`, across every process, until the transaction ends.
    pub async fn lock(conn: &mut DbConn, key: &str) -> Result<(), DbError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(conn)
            .await?;
        Ok(())
    }
}

include!("sql/repos.rs");

/// A fresh database on the PostgreSQL server of `OPENVOD_TEST_POSTGRES_URL` (which `scripts/test`
/// starts), for tests: its URL. A missing URL is a panic, never a skip.
pub async fn scratch_database_url() -> String {
    use sqlx::Connection;
    let admin = std::env::var("OPENVOD_TEST_POSTGRES_URL").expect(
        "OPENVOD_TEST_POSTGRES_URL names a PostgreSQL server for tests (scripts/test starts one)",
    );
    let name = format!("openvod_{}", crate::id::random_id().to_ascii_lowercase());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a scratch database");
    let mut url = url::Url::parse(&admin).expect("OPENVOD_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// Rewrites the migration records of a database migrated by this engine's first history (its own
/// squashed files, before `db::schema` rendered one history for both engines) to the records of
/// the history that made the same schema, so sqlx finds its own migrations applied and goes on
/// from there. The table is locked meanwhile: servers starting together rewrite it once.
async fn adopt_first_history(pool: &PgPool) -> Result<(), DbError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE _sqlx_migrations IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let applied: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    if applied.iter().any(|(_, _, success)| !success) {
        // Half-applied: sqlx refuses it with its own message.
        return Ok(());
    }
    let applied: Vec<(i64, Vec<u8>)> = applied.into_iter().map(|(v, c, _)| (v, c)).collect();
    let Some(versions) = super::schema::legacy_postgres_equivalent(&applied) else {
        return Ok(());
    };
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&mut *tx)
        .await?;
    for migration in super::schema::migrations(super::schema::Target::Postgres)
        .into_iter()
        .filter(|m| versions.contains(&m.version))
    {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)",
        )
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        through = versions.end(),
        "migration records of the first PostgreSQL history rewritten to the shared one"
    );
    Ok(())
}

#[cfg(test)]
async fn scratch_db() -> (PgDb, ()) {
    (
        PgDb::open(
            &scratch_database_url().await,
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
        .await
        .unwrap(),
        (),
    )
}

#[cfg(test)]
mod postgres_tests {
    use super::dialect::placeholders;
    use super::{scratch_database_url, PgDb};
    use crate::db::{AssetRepo, EventRepo, JobRepo};
    use crate::tokens::SecretRepo;
    use std::time::Duration;

    /// A session of ours stalled in the middle of a transaction is ended by the server after
    /// `idle_in_transaction`, and what it locked goes to the next taker; every session has the
    /// keepalives that let the server notice a vanished machine.
    #[tokio::test]
    async fn a_session_stalled_in_a_transaction_is_ended_and_its_locks_freed() {
        use sqlx::Connection;
        let url = scratch_database_url().await;
        let db = PgDb::open(&url, Duration::from_secs(10), Duration::from_secs(60))
            .await
            .unwrap();
        let settings: (String, String) = sqlx::query_as(
            "SELECT current_setting('idle_in_transaction_session_timeout'), \
             current_setting('tcp_keepalives_idle')",
        )
        .fetch_one(&db.writer)
        .await
        .unwrap();
        assert_eq!(settings, ("1min".to_owned(), "15".to_owned()));

        let options = super::connect_options(&url, Some(Duration::from_millis(500))).unwrap();
        let mut stalled = sqlx::PgConnection::connect_with(&options).await.unwrap();
        sqlx::query("BEGIN").execute(&mut stalled).await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock(4242)")
            .execute(&mut stalled)
            .await
            .unwrap();
        // `stalled` now does nothing, as a process that hangs mid-transaction.
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            sqlx::query("SELECT pg_advisory_xact_lock(4242)").execute(&mut other),
        )
        .await
        .expect("the stalled session's lock was freed")
        .unwrap();
        assert!(
            sqlx::query("SELECT 1").execute(&mut stalled).await.is_err(),
            "the stalled session was ended"
        );
    }

    /// Two processes on one database: a job or an event committed by one wakes the other's idle
    /// workers and dispatchers through LISTEN/NOTIFY, not through its own (in-process) signal.
    #[tokio::test]
    async fn a_job_or_event_committed_by_one_process_wakes_the_others() {
        let url = scratch_database_url().await;
        let (writer, idle) = (
            PgDb::open(&url, Duration::from_secs(10), Duration::from_secs(60))
                .await
                .unwrap(),
            PgDb::open(&url, Duration::from_secs(10), Duration::from_secs(60))
                .await
                .unwrap(),
        );
        let wait = std::time::Duration::from_secs(30);

        let jobs = idle.job_signal();
        let woken = jobs.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let job = crate::jobs::Job::ProbeAsset {
            asset_id: "a".into(),
        };
        writer.enqueue_job(&job, 0).await.unwrap();
        tokio::time::timeout(wait, woken)
            .await
            .expect("the other process is woken by the queued job");

        let events = idle.event_signal();
        let woken = events.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let asset = crate::assets::new_asset(
            &crate::assets::model::AssetSettings::default(),
            crate::assets::model::IngestType::Url,
            None,
            Some("https://example.com/a.mp4".into()),
            None,
            1,
        );
        writer.create_asset(&asset, None, 1).await.unwrap();
        tokio::time::timeout(wait, woken)
            .await
            .expect("the other process is woken by the asset's event");
        // And what it was woken for is there for it to read.
        assert_eq!(idle.list_events(0, 10, None, None).await.unwrap().len(), 1);
    }

    /// A database migrated by the engine's first history (records of versions 1-4 with that
    /// history's checksums) opens: its records become the shared history's 1-13 and nothing more
    /// is applied (every table is there already); its rows are kept. Without the rewrite sqlx
    /// refuses it (version 1's checksum differs).
    #[tokio::test]
    async fn a_database_of_the_first_postgres_history_is_adopted_with_its_rows() {
        use sqlx::Connection;
        let url = scratch_database_url().await;
        let open = || PgDb::open(&url, Duration::from_secs(10), Duration::from_secs(60));
        let first = open().await.unwrap();
        first.get_or_create_secret("kept", b"value").await.unwrap();
        drop(first);
        // The same schema, recorded as the first history recorded it.
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations")
            .execute(&mut conn)
            .await
            .unwrap();
        for (version, sha384, _) in crate::db::schema::LEGACY_POSTGRES {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES ($1, $2, TRUE, $3, 1)",
            )
            .bind(version)
            .bind(format!("first history {version}"))
            .bind(hex::decode(sha384).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let db = open().await.unwrap();
        let kept = db.get_or_create_secret("kept", b"other").await.unwrap();
        assert_eq!(kept, b"value");
        let records: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let shared: Vec<(i64, Vec<u8>)> =
            crate::db::schema::migrations(crate::db::schema::Target::Postgres)
                .iter()
                .map(|m| (m.version, m.checksum.to_vec()))
                .collect();
        assert_eq!(records, shared);
    }

    #[test]
    fn placeholders_become_numbered_outside_strings() {
        assert_eq!(
            placeholders("SELECT ?, ?3, ? FROM t WHERE a = '?' AND b = ?1"),
            "SELECT $1, $3, $4 FROM t WHERE a = '?' AND b = $1"
        );
        assert_eq!(
            placeholders("json_extract(s, '$.meta.x') = ?"),
            "json_extract(s, '$.meta.x') = $1"
        );
    }
}

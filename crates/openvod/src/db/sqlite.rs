//! SQLite engine (the embedded default).
//!
//! Writes go through a pool of exactly one connection, so transactions never contend for the write
//! lock and claims (`UPDATE … RETURNING`) are serialized. Reads use a separate pool; WAL keeps them
//! from blocking the writer. `synchronous = FULL`: a committed transaction survives power loss.
//! The repositories themselves are shared with PostgreSQL (`sql/repos.rs`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

type Engine = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type DbConn = sqlx::SqliteConnection;
type SqlDb = SqliteDb;

pub struct SqliteDb {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Woken after every commit that queued a job, so idle in-process workers start at once.
    jobs_queued: std::sync::Arc<tokio::sync::Notify>,
    /// Woken after every commit that wrote an event (and deliveries): dispatchers and long polls.
    events_written: std::sync::Arc<tokio::sync::Notify>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file and applies pending migrations. Work waits
    /// up to `wait` for the write lock another process holds (then fails as `Unavailable`).
    pub async fn open(path: &Path, wait: Duration) -> Result<SqliteDb, DbError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(wait);
        // One writer: whoever waits for it waits no longer than for the lock itself.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(wait)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate::Migrator::new(super::schema::Rendered(super::schema::Target::Sqlite))
            .await?
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(wait)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteDb {
            writer,
            reader,
            jobs_queued: Default::default(),
            events_written: Default::default(),
        })
    }
}

/// SQLite's spellings of what the two engines say differently.
mod dialect {
    use super::{DbConn, DbError};

    /// The SQL as written: `?` and `?N` are SQLite's own placeholders.
    pub fn sql(sql: &str) -> &str {
        sql
    }

    /// The text (or number) at a dotted `path` inside the JSON text column `col`. Spelled exactly
    /// as migration 0006's expression indexes are, so that they serve the filters.
    pub fn json_text(col: &str, path: &str) -> String {
        format!("json_extract({col}, '$.{path}')")
    }

    /// The integer at `path` in the JSON text column `col`.
    pub fn json_int(col: &str, path: &str) -> String {
        json_text(col, path)
    }

    /// Whether the JSON array in the text column `array` holds the text `value`.
    pub fn json_array_has(array: &str, value: &str) -> String {
        format!("EXISTS (SELECT 1 FROM json_each({array}) WHERE value = {value})")
    }

    /// Whether the text `haystack` contains `needle` (both SQL expressions).
    pub fn contains(haystack: &str, needle: &str) -> String {
        format!("instr({haystack}, {needle}) > 0")
    }

    /// Orders rows as they were inserted.
    pub const INSERTION_ORDER: &str = "rowid";

    /// Locks the rows a `SELECT` in a write transaction reads. The single writer connection
    /// already serializes every write transaction, so nothing is needed.
    pub const FOR_UPDATE: &str = "";

    /// Lets concurrent claimers skip the rows another one holds; with one writer there are none.
    pub fn skip_locked(_of: &str) -> String {
        String::new()
    }

    /// A critical section named `key` until the transaction ends; the single writer connection
    /// already is one.
    pub async fn lock(_conn: &mut DbConn, _key: &str) -> Result<(), DbError> {
        Ok(())
    }
}

include!("sql/repos.rs");

#[cfg(test)]
async fn scratch_db() -> (SqliteDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("scratch.db"), Duration::from_secs(10))
        .await
        .unwrap();
    (db, dir)
}

#[cfg(test)]
mod sqlite_tests {
    use super::tests::ids;
    use super::*;

    #[tokio::test]
    async fn meta_filters_use_their_indexes_and_old_rows_load() {
        let (db, _scratch) = scratch_db().await;
        for (filter, index) in [
            (
                AssetFilter {
                    external_id: Some("x".into()),
                    ..AssetFilter::default()
                },
                "assets_meta_external_id",
            ),
            (
                AssetFilter {
                    creator_id: Some("c".into()),
                    ..AssetFilter::default()
                },
                "assets_meta_creator_id",
            ),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {}", list_assets_sql(&filter, false));
            let plan: Vec<String> = query(&sql)
                .bind("x")
                .bind(10)
                .bind(0)
                .fetch_all(&db.reader)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap())
                .collect();
            assert!(
                plan.iter().any(|d| d.contains(index)),
                "{index} unused: {plan:?}"
            );
        }
        // A row written before meta existed (no `meta` key in its settings) still loads.
        query(
            "INSERT INTO assets (id, status, created_at, settings, ingest_type, file_id)
             VALUES ('old', 'ready', 1, ?, 'url', '1')",
        )
        .bind(r#"{"playback_policies":["public"],"passthrough":null,"mp4_support":null,"static_renditions":[],"video_quality":null,"max_resolution_tier":null,"test":false}"#)
        .execute(&db.writer)
        .await
        .unwrap();
        let old = db.get_asset("old").await.unwrap().expect("loads");
        assert!(old.settings.meta.is_empty());
        let filter = AssetFilter {
            external_id: Some("x".into()),
            ..AssetFilter::default()
        };
        assert!(ids(&db, &filter).await.is_empty());
    }
}

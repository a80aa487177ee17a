// The repositories on a SQL engine, written once for SQLite and PostgreSQL: each engine module
// (`db::sqlite`, `db::postgres`) `include!`s this file after defining `Engine` (the sqlx database),
// `SqlDb` (its handle: a `writer` and a `reader` pool plus the wake-up signals), `DbRow`, `DbConn`
// and `dialect` (the few spellings that differ, and the `?` placeholder translation). The SQL here
// is the common subset; what differs goes through `dialect`.

use async_trait::async_trait;
use sqlx::{Row, Transaction};

use super::{
    ApiToken, AssetRepo, DbError, FinalizeOutcome, JobRepo, RestrictionRepo, SecretRepo,
    SigningKeyRepo, TokenRepo, UploadRepo,
};
use crate::assets::model::{
    Asset, AssetChange, AssetErrors, AssetFilter, AssetSettings, AssetStatus, IngestType,
    PlaybackId, PlaybackPolicy, Rendition, StaticFile, StoredOriginal, Track, TrackKind,
    TrackStatus,
};
use crate::events::model::Snapshot;
use crate::ingest::model::{Upload, UploadStatus};
use crate::jobs::{ClaimedJob, Job, JobResult, Kinds};
use crate::media::probe::MediaInfo;
use crate::playback::keys::SigningKey;
use crate::playback::restrictions::PlaybackRestriction;
use crate::processing::ProcessingTask;

type Args<'q> = <Engine as sqlx::Database>::Arguments<'q>;

/// `sqlx::query` with the SQL in the engine's placeholder syntax.
fn query<'q>(sql: &'q str) -> sqlx::query::Query<'q, Engine, Args<'q>> {
    sqlx::query(dialect::sql(sql))
}

fn query_scalar<'q, O>(sql: &'q str) -> sqlx::query::QueryScalar<'q, Engine, O, Args<'q>>
where
    (O,): for<'r> sqlx::FromRow<'r, DbRow>,
{
    sqlx::query_scalar(dialect::sql(sql))
}

fn query_as<'q, O>(sql: &'q str) -> sqlx::query::QueryAs<'q, Engine, O, Args<'q>>
where
    O: for<'r> sqlx::FromRow<'r, DbRow>,
{
    sqlx::query_as(dialect::sql(sql))
}

mod accounts {
    include!("accounts.rs");
}
mod bbb {
    include!("bbb.rs");
}
mod events {
    include!("events.rs");
}
mod tasks {
    include!("tasks.rs");
}
use events::{emit, emit_asset, emit_static_rendition, emit_track, emit_upload, read_asset};

/// `SELECT * FROM assets` with one `AND` term per filter field that is set, then the cursor or
/// offset; placeholders are bound in that order by `list_assets`.
fn list_assets_sql(filter: &AssetFilter, after: bool) -> String {
    // The meta fields live in the `settings` JSON, spelled as the expression indexes are (migration
    // 0006) so that they serve these filters. The title test folds ASCII case on both sides.
    let external_id = format!("{} = ?", dialect::json_text("settings", "meta.external_id"));
    let creator_id = format!("{} = ?", dialect::json_text("settings", "meta.creator_id"));
    let title = dialect::contains(
        &format!("lower({})", dialect::json_text("settings", "meta.title")),
        "?",
    );
    let mut sql = String::from("SELECT * FROM assets WHERE 1 = 1");
    for (set, term) in [
        (filter.upload_id.is_some(), "upload_id = ?"),
        (filter.external_id.is_some(), &external_id),
        (filter.creator_id.is_some(), &creator_id),
        (filter.status.is_some(), "status = ?"),
        (filter.title_contains.is_some(), &title),
        (filter.created_after.is_some(), "created_at >= ?"),
        (filter.created_before.is_some(), "created_at <= ?"),
    ] {
        if set {
            sql.push_str(&format!(" AND {term}"));
        }
    }
    let (cmp, order) = if filter.oldest_first {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if after {
        sql.push_str(&format!(" AND (created_at, id) {cmp} (?, ?)"));
    }
    sql.push_str(&format!(
        " ORDER BY created_at {order}, id {order} LIMIT ? OFFSET ?"
    ));
    sql
}

fn corrupt(what: &str, value: &str) -> DbError {
    DbError::Corrupt(format!("{what} {value:?}"))
}

fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, col: &str) -> Result<Option<T>, DbError> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| DbError::Corrupt(format!("{col}: {e}"))))
        .transpose()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("core types serialize to JSON")
}

fn upload_from_row(row: &DbRow) -> Result<Upload, DbError> {
    let status: String = row.try_get("status")?;
    Ok(Upload {
        id: row.try_get("id")?,
        status: UploadStatus::parse(&status).ok_or_else(|| corrupt("upload status", &status))?,
        timeout_secs: row.try_get::<i64, _>("timeout_secs")? as u64,
        cors_origin: row.try_get("cors_origin")?,
        new_asset_settings: json_col(row, "new_asset_settings")?.unwrap_or_default(),
        test: row.try_get("test")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        total_size: row
            .try_get::<Option<i64>, _>("total_size")?
            .map(|v| v as u64),
        committed_offset: row.try_get::<i64, _>("committed_offset")? as u64,
        asset_id: row.try_get("asset_id")?,
        error_message: row.try_get("error_message")?,
        tus_metadata: row.try_get("tus_metadata")?,
    })
}

fn asset_from_row(row: &DbRow, playback_ids: Vec<PlaybackId>) -> Result<Asset, DbError> {
    let status: String = row.try_get("status")?;
    let ingest_type: String = row.try_get("ingest_type")?;
    let original_key: Option<String> = row.try_get("original_key")?;
    let original_size: Option<i64> = row.try_get("original_size")?;
    let settings: AssetSettings = json_col(row, "settings")?.unwrap_or_default();
    Ok(Asset {
        id: row.try_get("id")?,
        file_id: row
            .try_get::<Option<String>, _>("file_id")?
            .unwrap_or_default(),
        status: AssetStatus::parse(&status).ok_or_else(|| corrupt("asset status", &status))?,
        created_at: row.try_get("created_at")?,
        upload_id: row.try_get("upload_id")?,
        passthrough: row.try_get("passthrough")?,
        settings,
        ingest_type: IngestType::parse(&ingest_type)
            .ok_or_else(|| corrupt("ingest type", &ingest_type))?,
        input_url: row.try_get("input_url")?,
        source: json_col::<MediaInfo>(row, "source")?,
        errors: json_col::<AssetErrors>(row, "errors")?,
        original: original_key.map(|key| StoredOriginal {
            key,
            size: original_size.unwrap_or(0) as u64,
        }),
        master_access_until: row.try_get("master_access_until")?,
        playback_ids,
        renditions: json_col(row, "renditions")?.unwrap_or_default(),
        static_files: json_col(row, "static_files")?.unwrap_or_default(),
        tracks: json_col(row, "text_tracks")?.unwrap_or_default(),
        outputs_complete: row.try_get("outputs_complete")?,
    })
}

fn playback_id_from_row(row: &DbRow) -> Result<PlaybackId, DbError> {
    let policy: String = row.try_get("policy")?;
    Ok(PlaybackId {
        id: row.try_get("id")?,
        policy: PlaybackPolicy::parse(&policy).ok_or_else(|| corrupt("policy", &policy))?,
    })
}

async fn insert_job(
    tx: &mut Transaction<'_, Engine>,
    job: &Job,
    run_at: i64,
) -> Result<i64, DbError> {
    let id: i64 = query_scalar(
        "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(job.kind())
    .bind(to_json(job))
    .bind(run_at)
    .bind(run_at)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

async fn insert_asset(
    tx: &mut Transaction<'_, Engine>,
    asset: &Asset,
    now: i64,
) -> Result<(), DbError> {
    query(
        "INSERT INTO assets (id, status, created_at, upload_id, passthrough, settings, ingest_type,
            input_url, source, errors, original_key, original_size, master_access_until, file_id,
            text_tracks)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&asset.id)
    .bind(asset.status.as_str())
    .bind(asset.created_at)
    .bind(&asset.upload_id)
    .bind(&asset.passthrough)
    .bind(to_json(&asset.settings))
    .bind(asset.ingest_type.as_str())
    .bind(&asset.input_url)
    .bind(asset.source.as_ref().map(to_json))
    .bind(asset.errors.as_ref().map(to_json))
    .bind(asset.original.as_ref().map(|o| o.key.clone()))
    .bind(asset.original.as_ref().map(|o| o.size as i64))
    .bind(asset.master_access_until)
    .bind(&asset.file_id)
    .bind(to_json(&asset.tracks))
    .execute(&mut **tx)
    .await?;
    for pid in &asset.playback_ids {
        query("INSERT INTO playback_ids (id, asset_id, policy, created_at) VALUES (?, ?, ?, ?)")
            .bind(&pid.id)
            .bind(&asset.id)
            .bind(pid.policy.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Inserts a new asset with `job` (what fills it in), writes `video.asset.created` and a
/// `video.asset.static_rendition.created` per static file asked for, and queues the fetch of each
/// text track it was created with (`video.asset.track.created`).
async fn insert_new_asset(
    tx: &mut Transaction<'_, Engine>,
    asset: &Asset,
    job: Option<&Job>,
    now: i64,
) -> Result<(), DbError> {
    insert_asset(tx, asset, now).await?;
    if let Some(job) = job {
        insert_job(tx, job, now).await?;
    }
    emit_asset(tx, "video.asset.created", &asset.id).await?;
    for resolution in &asset.settings.static_renditions {
        emit_static_rendition(
            tx,
            "video.asset.static_rendition.created",
            asset,
            None,
            Some(resolution),
        )
        .await?;
    }
    for track in &asset.tracks {
        queue_track(tx, asset, track, now).await?;
    }
    Ok(())
}

async fn write_tracks(tx: &mut Transaction<'_, Engine>, asset: &Asset) -> Result<(), DbError> {
    query("UPDATE assets SET text_tracks = ? WHERE id = ?")
        .bind(to_json(&asset.tracks))
        .bind(&asset.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes `video.asset.track.created` for a new track and queues its job: a text track's fetch at
/// once, an audio track's once the asset is probed (`set_asset_source` queues it then), since its
/// rendition lasts as long as the asset.
async fn queue_track(
    tx: &mut Transaction<'_, Engine>,
    asset: &Asset,
    track: &Track,
    now: i64,
) -> Result<(), DbError> {
    if let Some(job) = track_job(&asset.id, track, asset.source.is_some()) {
        insert_job(tx, &job, now).await?;
    }
    emit_track(tx, "video.asset.track.created", asset, track).await
}

/// The job that prepares `track`, if it can start now (`probed`: the asset's source is known).
fn track_job(asset_id: &str, track: &Track, probed: bool) -> Option<Job> {
    let (asset_id, track_id) = (asset_id.to_owned(), track.id.clone());
    match track.input.kind {
        TrackKind::Text => Some(Job::FetchTextTrack { asset_id, track_id }),
        TrackKind::Audio => probed.then_some(Job::FetchAudioTrack { asset_id, track_id }),
    }
}

/// An asset's playback ids in the order they were created.
async fn playback_ids<'c, X>(conn: X, asset_id: &str) -> Result<Vec<PlaybackId>, DbError>
where
    X: sqlx::Executor<'c, Database = Engine>,
{
    let sql = format!(
        "SELECT id, policy FROM playback_ids WHERE asset_id = ? ORDER BY created_at, {}",
        dialect::INSERTION_ORDER
    );
    let rows = query(&sql).bind(asset_id).fetch_all(conn).await?;
    rows.iter().map(playback_id_from_row).collect()
}

impl SqlDb {
    async fn playback_ids_of(&self, asset_id: &str) -> Result<Vec<PlaybackId>, DbError> {
        playback_ids(&self.reader, asset_id).await
    }
}

#[async_trait]
impl TokenRepo for SqlDb {
    async fn spend_once(&self, digest: &[u8], expires_at: i64, now: i64) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        query("DELETE FROM spent_signatures WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let done = query(
            "INSERT INTO spent_signatures (digest, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn admit_viewer(
        &self,
        sign: &str,
        viewer: &str,
        limit: u32,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        // Servers admitting new viewers of one URL take turns, so the count cannot be overrun.
        dialect::lock(&mut tx, &format!("hotlink-viewers:{sign}")).await?;
        query("DELETE FROM hotlink_viewers WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let counted: Vec<String> =
            query_scalar("SELECT viewer FROM hotlink_viewers WHERE sign = ?")
                .bind(sign)
                .fetch_all(&mut *tx)
                .await?;
        let admitted = if counted.iter().any(|v| v == viewer) {
            true
        } else if counted.len() >= limit as usize {
            false
        } else {
            query("INSERT INTO hotlink_viewers (sign, viewer, expires_at) VALUES (?, ?, ?)")
                .bind(sign)
                .bind(viewer)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            true
        };
        tx.commit().await?;
        Ok(admitted)
    }

    async fn create_token(&self, token: &ApiToken) -> Result<(), DbError> {
        query(
            "INSERT INTO api_tokens (id, name, secret_sha256, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.secret_sha256)
        .bind(token.created_at)
        .bind(token.revoked_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, DbError> {
        let row = query("SELECT * FROM api_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, DbError> {
        let rows = query("SELECT * FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, DbError> {
        let done =
            query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn token_from_row(row: &DbRow) -> Result<ApiToken, DbError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_sha256: row.try_get("secret_sha256")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait]
impl SecretRepo for SqlDb {
    async fn get_or_create_secret(&self, name: &str, generated: &[u8]) -> Result<Vec<u8>, DbError> {
        query(
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generated)
        .execute(&self.writer)
        .await?;
        let value: Vec<u8> = query_scalar("SELECT value FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.writer)
            .await?;
        Ok(value)
    }
}

#[async_trait]
impl UploadRepo for SqlDb {
    async fn create_upload(&self, upload: &Upload) -> Result<(), DbError> {
        let mut tx = self.writer.begin().await?;
        query(
            "INSERT INTO uploads (id, status, timeout_secs, cors_origin, new_asset_settings, test,
                created_at, expires_at, total_size, committed_offset, asset_id, error_message, tus_metadata)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&upload.id)
        .bind(upload.status.as_str())
        .bind(upload.timeout_secs as i64)
        .bind(&upload.cors_origin)
        .bind(to_json(&upload.new_asset_settings))
        .bind(upload.test)
        .bind(upload.created_at)
        .bind(upload.expires_at)
        .bind(upload.total_size.map(|v| v as i64))
        .bind(upload.committed_offset as i64)
        .bind(&upload.asset_id)
        .bind(&upload.error_message)
        .bind(&upload.tus_metadata)
        .execute(&mut *tx)
        .await?;
        emit_upload(&mut tx, "video.upload.created", &upload.id).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> Result<Option<Upload>, DbError> {
        let row = query("SELECT * FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| upload_from_row(&r)).transpose()
    }

    async fn list_uploads(&self, limit: u32, offset: u32) -> Result<Vec<Upload>, DbError> {
        let rows =
            query("SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?")
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn set_upload_size(&self, id: &str, total_size: u64) -> Result<(), DbError> {
        query("UPDATE uploads SET total_size = ? WHERE id = ? AND total_size IS NULL")
            .bind(total_size as i64)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn commit_upload_offset(&self, id: &str, offset: u64) -> Result<(), DbError> {
        query("UPDATE uploads SET committed_offset = ? WHERE id = ? AND committed_offset < ?")
            .bind(offset as i64)
            .bind(id)
            .bind(offset as i64)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn finalize_upload(
        &self,
        upload_id: &str,
        asset: &Asset,
        job: &Job,
        now: i64,
    ) -> Result<FinalizeOutcome, DbError> {
        let mut tx = self.writer.begin().await?;
        let updated = query(
            "UPDATE uploads SET status = 'asset_created', asset_id = ? WHERE id = ? AND status = 'waiting'",
        )
        .bind(&asset.id)
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let row = query("SELECT * FROM uploads WHERE id = ?")
                .bind(upload_id)
                .fetch_one(&mut *tx)
                .await?;
            return Ok(FinalizeOutcome::NotWaiting(upload_from_row(&row)?.status));
        }
        emit_upload(&mut tx, "video.upload.asset_created", upload_id).await?;
        insert_new_asset(&mut tx, asset, Some(job), now).await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(FinalizeOutcome::Created)
    }

    async fn end_upload(
        &self,
        id: &str,
        new_status: UploadStatus,
        error_message: Option<&str>,
    ) -> Result<Option<Upload>, DbError> {
        let mut tx = self.writer.begin().await?;
        let changed = query(
            "UPDATE uploads SET status = ?, error_message = ? WHERE id = ? AND status = 'waiting'",
        )
        .bind(new_status.as_str())
        .bind(error_message)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // Mux sends no event for a timed-out upload.
        let event = match new_status {
            UploadStatus::Cancelled => Some("video.upload.cancelled"),
            UploadStatus::Errored => Some("video.upload.errored"),
            _ => None,
        };
        if let Some(kind) = event.filter(|_| changed) {
            emit_upload(&mut tx, kind, id).await?;
        }
        let row = query("SELECT * FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        row.map(|r| upload_from_row(&r)).transpose()
    }

    async fn list_expired_uploads(&self, now: i64) -> Result<Vec<String>, DbError> {
        let ids =
            query_scalar("SELECT id FROM uploads WHERE status = 'waiting' AND expires_at < ?")
                .bind(now)
                .fetch_all(&self.reader)
                .await?;
        Ok(ids)
    }
}

#[async_trait]
impl AssetRepo for SqlDb {
    async fn get_asset_by_file_id(&self, file_id: &str) -> Result<Option<Asset>, DbError> {
        let Some(row) = query("SELECT * FROM assets WHERE file_id = ?")
            .bind(file_id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let pids = self.playback_ids_of(&id).await?;
        asset_from_row(&row, pids).map(Some)
    }

    async fn create_asset(
        &self,
        asset: &Asset,
        job: Option<&Job>,
        now: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.writer.begin().await?;
        insert_new_asset(&mut tx, asset, job, now).await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(())
    }

    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, DbError> {
        let Some(row) = query("SELECT * FROM assets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let pids = self.playback_ids_of(id).await?;
        asset_from_row(&row, pids).map(Some)
    }

    async fn list_assets(
        &self,
        limit: u32,
        offset: u32,
        filter: &AssetFilter,
        after: Option<(i64, &str)>,
    ) -> Result<Vec<Asset>, DbError> {
        let sql = list_assets_sql(filter, after.is_some());
        let mut query = query(&sql);
        let values = [
            filter.upload_id.clone(),
            filter.external_id.clone(),
            filter.creator_id.clone(),
            filter.status.map(|s| s.as_str().to_owned()),
            filter
                .title_contains
                .as_ref()
                .map(|t| t.to_ascii_lowercase()),
        ];
        for value in values.into_iter().flatten() {
            query = query.bind(value);
        }
        for time in [filter.created_after, filter.created_before]
            .into_iter()
            .flatten()
        {
            query = query.bind(time);
        }
        if let Some((created_at, id)) = after {
            query = query.bind(created_at).bind(id);
        }
        let rows = query
            .bind(i64::from(limit))
            .bind(if after.is_some() {
                0
            } else {
                i64::from(offset)
            })
            .fetch_all(&self.reader)
            .await?;
        let mut assets = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let pids = self.playback_ids_of(&id).await?;
            assets.push(asset_from_row(row, pids)?);
        }
        Ok(assets)
    }

    async fn update_asset(&self, id: &str, change: &AssetChange) -> Result<Option<Asset>, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(mut asset) = read_asset(&mut tx, id).await? else {
            return Ok(None);
        };
        let asked_before = asset.settings.static_renditions.clone();
        change.apply(&mut asset);
        query("UPDATE assets SET passthrough = ?, settings = ? WHERE id = ?")
            .bind(&asset.passthrough)
            .bind(to_json(&asset.settings))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        emit(
            &mut tx,
            "video.asset.updated",
            &Snapshot::Asset(Box::new(asset.clone())),
        )
        .await?;
        for resolution in &asset.settings.static_renditions {
            if !asked_before.contains(resolution) {
                emit_static_rendition(
                    &mut tx,
                    "video.asset.static_rendition.created",
                    &asset,
                    None,
                    Some(resolution),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(Some(asset))
    }

    async fn add_track(
        &self,
        asset_id: &str,
        track: &Track,
        now: i64,
    ) -> Result<Option<Asset>, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(mut asset) = read_asset(&mut tx, asset_id).await? else {
            return Ok(None);
        };
        asset.tracks.push(track.clone());
        write_tracks(&mut tx, &asset).await?;
        queue_track(&mut tx, &asset, track, now).await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(Some(asset))
    }

    async fn finish_track(
        &self,
        asset_id: &str,
        track_id: &str,
        status: TrackStatus,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(mut asset) = read_asset(&mut tx, asset_id).await? else {
            return Ok(false);
        };
        let Some(track) = asset.tracks.iter_mut().find(|t| t.id == track_id) else {
            return Ok(false);
        };
        if track.status != TrackStatus::Preparing {
            return Ok(true); // A rerun after a crash: already recorded.
        }
        track.status = status;
        track.error = error.map(str::to_owned);
        let track = track.clone();
        write_tracks(&mut tx, &asset).await?;
        let kind = match status {
            TrackStatus::Errored => "video.asset.track.errored",
            _ => "video.asset.track.ready",
        };
        emit_track(&mut tx, kind, &asset, &track).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn delete_track(&self, asset_id: &str, track_id: &str) -> Result<Option<Track>, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(mut asset) = read_asset(&mut tx, asset_id).await? else {
            return Ok(None);
        };
        let Some(at) = asset.tracks.iter().position(|t| t.id == track_id) else {
            return Ok(None);
        };
        let track = asset.tracks.remove(at);
        write_tracks(&mut tx, &asset).await?;
        emit_track(&mut tx, "video.asset.track.deleted", &asset, &track).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(Some(track))
    }

    async fn list_expired_assets(&self, now: i64) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "SELECT id FROM assets WHERE {} <= ? LIMIT 1000",
            dialect::json_int("settings", "expire_at")
        );
        Ok(query_scalar(&sql).bind(now).fetch_all(&self.reader).await?)
    }

    async fn set_asset_original(
        &self,
        id: &str,
        original: &StoredOriginal,
    ) -> Result<bool, DbError> {
        let done = query("UPDATE assets SET original_key = ?, original_size = ? WHERE id = ?")
            .bind(&original.key)
            .bind(original.size as i64)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_asset_source(
        &self,
        id: &str,
        source: &MediaInfo,
        next: Option<&Job>,
        task: Option<&ProcessingTask>,
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let sql = format!(
            "SELECT source, text_tracks FROM assets WHERE id = ?{}",
            dialect::FOR_UPDATE
        );
        let Some(row) = query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let previous: Option<String> = row.try_get("source")?;
        let tracks: Vec<Track> = json_col(&row, "text_tracks")?.unwrap_or_default();
        query("UPDATE assets SET source = ? WHERE id = ?")
            .bind(to_json(source))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if previous.is_none() {
            // The file is stored and understood: Tencent VOD's NewFileUpload.
            emit_asset(&mut tx, "vod.file.uploaded", id).await?;
        }
        // A probe rerun (after a lease takeover) must not start the follow-up work twice.
        if previous.is_none() {
            if let Some(task) = task {
                tasks::insert_task(&mut tx, task).await?;
            }
            if let Some(job) = next {
                insert_job(&mut tx, job, now).await?;
            }
            // Audio tracks waited for the asset's duration.
            for track in tracks.iter().filter(|t| t.status == TrackStatus::Preparing) {
                if let Some(job @ Job::FetchAudioTrack { .. }) = track_job(id, track, true) {
                    insert_job(&mut tx, &job, now).await?;
                }
            }
        }
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn publish_outputs(
        &self,
        id: &str,
        renditions: &[Rendition],
        static_files: &[StaticFile],
        complete: bool,
    ) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(before) = read_asset(&mut tx, id).await? else {
            return Ok(false);
        };
        query(
            "UPDATE assets SET renditions = ?, static_files = ?, outputs_complete = ?,
                status = CASE WHEN status = 'preparing' THEN 'ready' ELSE status END
             WHERE id = ?",
        )
        .bind(to_json(&renditions))
        .bind(to_json(&static_files))
        .bind(complete)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if before.status == AssetStatus::Preparing {
            emit_asset(&mut tx, "video.asset.ready", id).await?;
        }
        // Each static file's own events: ready when it first appears, deleted when it goes.
        let after = read_asset(&mut tx, id).await?;
        for file in static_files {
            if !before.static_files.iter().any(|f| f.name == file.name) {
                if let Some(after) = &after {
                    emit_static_rendition(
                        &mut tx,
                        "video.asset.static_rendition.ready",
                        after,
                        Some(&file.name),
                        None,
                    )
                    .await?;
                }
            }
        }
        for file in &before.static_files {
            if !static_files.iter().any(|f| f.name == file.name) {
                emit_static_rendition(
                    &mut tx,
                    "video.asset.static_rendition.deleted",
                    &before,
                    Some(&file.name),
                    None,
                )
                .await?;
            }
        }
        if complete && !before.outputs_complete && !static_files.is_empty() {
            emit_asset(&mut tx, "video.asset.static_renditions.ready", id).await?;
        }
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn find_playback_id(
        &self,
        playback_id: &str,
    ) -> Result<Option<(String, PlaybackPolicy)>, DbError> {
        let row = query("SELECT asset_id, policy FROM playback_ids WHERE id = ?")
            .bind(playback_id)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let policy: String = row.try_get("policy")?;
        Ok(Some((
            row.try_get("asset_id")?,
            PlaybackPolicy::parse(&policy).ok_or_else(|| corrupt("policy", &policy))?,
        )))
    }

    async fn set_asset_errored(&self, id: &str, errors: &AssetErrors) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let done = query(
            "UPDATE assets SET status = 'errored', errors = ? WHERE id = ? AND status = 'preparing'",
        )
        .bind(to_json(errors))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        emit_asset(&mut tx, "video.asset.errored", id).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn set_master_access(&self, id: &str, until: Option<i64>) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let done = query("UPDATE assets SET master_access_until = ? WHERE id = ?")
            .bind(until)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // The original is kept as uploaded, so the master is ready as soon as access is granted.
        let kind = if until.is_some() {
            "video.asset.master.ready"
        } else {
            "video.asset.updated"
        };
        emit_asset(&mut tx, kind, id).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn delete_asset(&self, id: &str, job: &Job, now: i64) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let Some(asset) = read_asset(&mut tx, id).await? else {
            return Ok(false);
        };
        query("DELETE FROM assets WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_job(&mut tx, job, now).await?;
        let snapshot = Snapshot::Asset(Box::new(asset));
        emit(&mut tx, "video.asset.deleted", &snapshot).await?;
        emit(&mut tx, "vod.file.deleted", &snapshot).await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn create_playback_id(
        &self,
        asset_id: &str,
        playback_id: &PlaybackId,
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let done = query(
            "INSERT INTO playback_ids (id, asset_id, policy, created_at)
             SELECT ?, id, ?, ? FROM assets WHERE id = ?",
        )
        .bind(&playback_id.id)
        .bind(playback_id.policy.as_str())
        .bind(now)
        .bind(asset_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        emit_asset(&mut tx, "video.asset.updated", asset_id).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }

    async fn delete_playback_id(&self, asset_id: &str, playback_id: &str) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        let done = query("DELETE FROM playback_ids WHERE id = ? AND asset_id = ?")
            .bind(playback_id)
            .bind(asset_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        emit_asset(&mut tx, "video.asset.updated", asset_id).await?;
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(true)
    }
}

#[async_trait]
impl JobRepo for SqlDb {
    async fn enqueue_job(&self, job: &Job, run_at: i64) -> Result<i64, DbError> {
        let mut tx = self.writer.begin().await?;
        let id = insert_job(&mut tx, job, run_at).await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        Ok(id)
    }

    async fn claim_job(
        &self,
        now: i64,
        lease_secs: i64,
        kinds: &Kinds,
    ) -> Result<Option<ClaimedJob>, DbError> {
        let lease_token = crate::id::random_id();
        let (filter, names) = match kinds {
            Kinds::All => (String::new(), &[][..]),
            Kinds::Only(names) => (format!(" AND kind IN ({})", marks(names.len())), &names[..]),
            Kinds::Except(names) => (
                format!(" AND kind NOT IN ({})", marks(names.len())),
                &names[..],
            ),
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_token = ?1, lease_until = ?2, attempts = attempts + 1
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ?3{filter}
                         ORDER BY run_at, id LIMIT 1{})
             RETURNING id, payload, attempts",
            dialect::skip_locked("jobs")
        );
        let mut claim = query(&sql)
            .bind(&lease_token)
            .bind(now + lease_secs)
            .bind(now);
        for name in names {
            claim = claim.bind(name);
        }
        let row = claim.fetch_optional(&self.writer).await?;
        row.map(|row| claimed_from_row(&row, lease_token))
            .transpose()
    }

    async fn count_jobs(&self) -> Result<Vec<(String, String, i64)>, DbError> {
        Ok(query_as(
            "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    async fn running_job(&self, id: i64, lease_token: &str) -> Result<Option<ClaimedJob>, DbError> {
        let row = query(
            "SELECT id, payload, attempts FROM jobs WHERE id = ? AND lease_token = ? AND state = 'running'",
        )
        .bind(id)
        .bind(lease_token)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| claimed_from_row(&row, lease_token.to_owned()))
            .transpose()
    }

    async fn heartbeat_job(&self, id: i64, lease_token: &str, until: i64) -> Result<bool, DbError> {
        let done = query(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_token = ? AND state = 'running'",
        )
        .bind(until)
        .bind(id)
        .bind(lease_token)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job(
        &self,
        id: i64,
        lease_token: &str,
        result: &JobResult,
        now: i64,
    ) -> Result<bool, DbError> {
        let query = match result {
            JobResult::Done => query(
                "UPDATE jobs SET state = 'done', finished_at = ?1, last_error = COALESCE(?4, last_error),
                     lease_token = NULL, lease_until = NULL
                 WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
            )
            .bind(now),
            JobResult::Retry { run_at, .. } => query(
                "UPDATE jobs SET state = 'queued', last_error = ?4, run_at = ?1, lease_token = NULL, lease_until = NULL
                 WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
            )
            .bind(*run_at),
            JobResult::Failed { .. } => query(
                "UPDATE jobs SET state = 'failed', last_error = ?4, finished_at = ?1, lease_token = NULL, lease_until = NULL
                 WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
            )
            .bind(now),
        };
        let error = match result {
            JobResult::Done => None,
            JobResult::Retry { error, .. } | JobResult::Failed { error } => Some(error.as_str()),
        };
        let done = query
            .bind(id)
            .bind(lease_token)
            .bind(error)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    fn job_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.jobs_queued.clone()
    }

    async fn requeue_stale_jobs(&self, now: i64) -> Result<u64, DbError> {
        let done = query(
            "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL, run_at = ?1
             WHERE state = 'running' AND lease_until < ?1",
        )
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

/// `n` placeholders for an `IN (...)` list, numbered after the `?1`..`?3` before them.
fn marks(n: usize) -> String {
    (0..n)
        .map(|i| format!("?{}", i + 4))
        .collect::<Vec<_>>()
        .join(", ")
}

fn claimed_from_row(row: &DbRow, lease_token: String) -> Result<ClaimedJob, DbError> {
    let payload: String = row.try_get("payload")?;
    let job: Job = serde_json::from_str(&payload)
        .map_err(|e| DbError::Corrupt(format!("job payload {payload:?}: {e}")))?;
    Ok(ClaimedJob {
        id: row.try_get("id")?,
        job,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        lease_token,
    })
}

fn signing_key_from_row(row: &DbRow) -> Result<SigningKey, DbError> {
    Ok(SigningKey {
        id: row.try_get("id")?,
        algorithm: row.try_get("algorithm")?,
        verification_key: row.try_get("verification_key")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl SigningKeyRepo for SqlDb {
    async fn create_signing_key(&self, key: &SigningKey) -> Result<(), DbError> {
        query(
            "INSERT INTO signing_keys (id, algorithm, verification_key, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.algorithm)
        .bind(&key.verification_key)
        .bind(key.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_signing_key(&self, id: &str) -> Result<Option<SigningKey>, DbError> {
        let row = query("SELECT * FROM signing_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| signing_key_from_row(&r)).transpose()
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>, DbError> {
        let rows = query("SELECT * FROM signing_keys ORDER BY created_at DESC, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn delete_signing_key(&self, id: &str) -> Result<bool, DbError> {
        let done = query("DELETE FROM signing_keys WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn restriction_from_row(row: &DbRow) -> Result<PlaybackRestriction, DbError> {
    Ok(PlaybackRestriction {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        referrer: json_col(row, "referrer")?.unwrap_or_default(),
        user_agent: json_col(row, "user_agent")?.unwrap_or_default(),
    })
}

#[async_trait]
impl RestrictionRepo for SqlDb {
    async fn create_restriction(&self, r: &PlaybackRestriction) -> Result<(), DbError> {
        query(
            "INSERT INTO playback_restrictions (id, referrer, user_agent, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(to_json(&r.referrer))
        .bind(to_json(&r.user_agent))
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_restriction(&self, id: &str) -> Result<Option<PlaybackRestriction>, DbError> {
        let row = query("SELECT * FROM playback_restrictions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| restriction_from_row(&r)).transpose()
    }

    async fn list_restrictions(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<PlaybackRestriction>, DbError> {
        let rows = query(
            "SELECT * FROM playback_restrictions ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
        )
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(restriction_from_row).collect()
    }

    async fn update_restriction(&self, r: &PlaybackRestriction) -> Result<bool, DbError> {
        let done = query(
            "UPDATE playback_restrictions SET referrer = ?, user_agent = ?, updated_at = ? WHERE id = ?",
        )
        .bind(to_json(&r.referrer))
        .bind(to_json(&r.user_agent))
        .bind(r.updated_at)
        .bind(&r.id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_restriction(&self, id: &str) -> Result<bool, DbError> {
        let done = query("DELETE FROM playback_restrictions WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::model::AssetMeta;
    use crate::db::EventRepo;
    use crate::jobs::JobResult;

    async fn asset_with_meta(db: &SqlDb, meta: AssetMeta, now: i64) -> Asset {
        let settings = AssetSettings {
            meta,
            ..AssetSettings::default()
        };
        let asset = crate::assets::new_asset(
            &settings,
            IngestType::Url,
            None,
            Some("https://example.com/a.mp4".into()),
            None,
            now,
        );
        db.create_asset(&asset, None, now).await.unwrap();
        asset
    }

    fn meta(creator_id: &str, external_id: &str) -> AssetMeta {
        AssetMeta {
            title: Some(format!("{creator_id}/{external_id}")),
            creator_id: Some(creator_id.into()),
            external_id: Some(external_id.into()),
            ..AssetMeta::default()
        }
    }

    pub(super) async fn ids(db: &SqlDb, filter: &AssetFilter) -> Vec<String> {
        let mut ids: Vec<String> = db
            .list_assets(100, 0, filter, None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn meta_filters_match_exactly_and_updates_replace_only_given_fields() {
        let (db, _scratch) = scratch_db().await;
        let a = asset_with_meta(&db, meta("alice", "x1"), 10).await;
        let b = asset_with_meta(&db, meta("alice", "x2"), 11).await;
        let c = asset_with_meta(&db, meta("bob", "x1"), 12).await;
        let plain = asset_with_meta(&db, AssetMeta::default(), 13).await;
        let by = |creator: Option<&str>, external: Option<&str>| AssetFilter {
            creator_id: creator.map(Into::into),
            external_id: external.map(Into::into),
            ..AssetFilter::default()
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            ids(&db, &by(Some("alice"), None)).await,
            sorted(vec![a.id.clone(), b.id.clone()])
        );
        assert_eq!(
            ids(&db, &by(None, Some("x1"))).await,
            sorted(vec![a.id.clone(), c.id.clone()])
        );
        assert_eq!(
            ids(&db, &by(Some("bob"), Some("x1"))).await,
            vec![c.id.clone()]
        );
        assert!(ids(&db, &by(Some("ALICE"), None)).await.is_empty());
        assert_eq!(ids(&db, &AssetFilter::default()).await.len(), 4);
        // Cursor pagination keeps the filter.
        let first = db
            .list_assets(1, 0, &by(Some("alice"), None), None)
            .await
            .unwrap();
        assert_eq!(first[0].id, b.id, "newest first");
        let next = db
            .list_assets(
                1,
                0,
                &by(Some("alice"), None),
                Some((first[0].created_at, &first[0].id)),
            )
            .await
            .unwrap();
        assert_eq!(next.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&a.id]);

        let updated = db
            .update_asset(
                &a.id,
                &AssetChange {
                    meta: Some(AssetMeta {
                        creator_id: Some("carol".into()),
                        title: Some(String::new()),
                        ..AssetMeta::default()
                    }),
                    ..AssetChange::default()
                },
            )
            .await
            .unwrap()
            .expect("the asset exists");
        let expected = AssetMeta {
            title: None,
            creator_id: Some("carol".into()),
            external_id: Some("x1".into()),
            ..AssetMeta::default()
        };
        assert_eq!(
            updated.settings.meta, expected,
            "given fields replaced, \"\" clears"
        );
        assert_eq!(
            db.get_asset(&a.id).await.unwrap().unwrap().settings.meta,
            expected
        );
        assert_eq!(ids(&db, &by(Some("carol"), None)).await, vec![a.id.clone()]);
        assert_eq!(ids(&db, &by(Some("alice"), None)).await, vec![b.id.clone()]);
        let events = db
            .list_events(0, 100, Some("video.asset.updated"), Some(&a.id))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "one event per update");
        match &events[0].snapshot {
            Snapshot::Asset(asset) => assert_eq!(asset.settings.meta, expected),
            other => panic!("unexpected snapshot {other:?}"),
        }
        assert!(db
            .update_asset(
                "missing",
                &AssetChange {
                    passthrough: Some("p".into()),
                    ..AssetChange::default()
                },
            )
            .await
            .unwrap()
            .is_none());
        assert!(db
            .get_asset(&plain.id)
            .await
            .unwrap()
            .unwrap()
            .settings
            .meta
            .is_empty());
    }

    #[tokio::test]
    async fn workers_claim_only_their_kinds_and_leases_are_checked() {
        let (db, _scratch) = scratch_db().await;
        let piece = Job::TranscodePiece {
            asset_id: "a".into(),
            first: 2,
            count: 3,
        };
        let probe = Job::ProbeAsset {
            asset_id: "b".into(),
        };
        db.enqueue_job(&piece, 100).await.unwrap();
        db.enqueue_job(&probe, 100).await.unwrap();
        let local = Kinds::Except(vec!["transcode_piece".into()]);
        let remote = Kinds::Only(vec!["transcode_piece".into()]);
        let got = db.claim_job(100, 10, &local).await.unwrap().unwrap();
        assert_eq!(got.job, probe);
        assert!(db.claim_job(100, 10, &local).await.unwrap().is_none());
        let got = db.claim_job(100, 10, &remote).await.unwrap().unwrap();
        assert_eq!(got.job, piece);
        let held = db.running_job(got.id, &got.lease_token).await.unwrap();
        assert_eq!(held.map(|j| j.job), Some(piece));
        assert!(db
            .running_job(got.id, "not-the-lease")
            .await
            .unwrap()
            .is_none());
        assert!(db
            .finish_job(got.id, &got.lease_token, &JobResult::Done, 101)
            .await
            .unwrap());
        assert!(db
            .running_job(got.id, &got.lease_token)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn leases_fence_late_completions_and_stale_jobs_are_reclaimed() {
        let (db, _scratch) = scratch_db().await;
        let job = Job::ProbeAsset {
            asset_id: "a".into(),
        };
        db.enqueue_job(&job, 100).await.unwrap();
        assert!(
            db.claim_job(99, 10, &Kinds::All).await.unwrap().is_none(),
            "not due yet"
        );
        let first = db
            .claim_job(100, 10, &Kinds::All)
            .await
            .unwrap()
            .expect("claimed");
        assert_eq!((first.job.clone(), first.attempts), (job.clone(), 1));
        assert!(
            db.claim_job(100, 10, &Kinds::All).await.unwrap().is_none(),
            "a claimed job is not handed out twice"
        );
        assert!(db
            .heartbeat_job(first.id, &first.lease_token, 115)
            .await
            .unwrap());
        assert_eq!(
            db.requeue_stale_jobs(112).await.unwrap(),
            0,
            "the heartbeat extended the lease"
        );
        assert_eq!(db.requeue_stale_jobs(120).await.unwrap(), 1);
        let second = db
            .claim_job(120, 10, &Kinds::All)
            .await
            .unwrap()
            .expect("reclaimed");
        assert_eq!(second.attempts, 2);
        // The first worker wakes up late: its completion, retry and heartbeat are all refused.
        assert!(!db
            .finish_job(first.id, &first.lease_token, &JobResult::Done, 121)
            .await
            .unwrap());
        assert!(!db
            .heartbeat_job(first.id, &first.lease_token, 200)
            .await
            .unwrap());
        let retry = JobResult::Retry {
            error: "transient".into(),
            run_at: 130,
        };
        assert!(db
            .finish_job(second.id, &second.lease_token, &retry, 121)
            .await
            .unwrap());
        assert!(
            db.claim_job(125, 10, &Kinds::All).await.unwrap().is_none(),
            "backoff respected"
        );
        let third = db
            .claim_job(130, 10, &Kinds::All)
            .await
            .unwrap()
            .expect("retried");
        assert!(db
            .finish_job(
                third.id,
                &third.lease_token,
                &JobResult::Failed {
                    error: "bad input".into()
                },
                131
            )
            .await
            .unwrap());
        assert!(
            db.claim_job(10_000, 10, &Kinds::All)
                .await
                .unwrap()
                .is_none(),
            "failed is terminal"
        );
    }
}

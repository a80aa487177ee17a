// The BigBlueButton migration's state.

use async_trait::async_trait;
use sqlx::Row;

use super::{dialect, insert_new_asset, query, query_scalar, DbRow, SqlDb};
use crate::assets::model::Asset;
use crate::db::{BbbRepo, DbError};
use crate::jobs::Job;
use crate::migration::model::{
    Action, BbbRecording, Claim, ExternalRecording, MigrationEntry, Mode, Owner, OwnerOrigin,
};

fn action_from_row(row: &DbRow) -> Result<Action, DbError> {
    let mode: String = row.try_get("mode")?;
    Ok(Action {
        record_id: row.try_get("record_id")?,
        mode: Mode::parse(&mode)
            .ok_or_else(|| DbError::Corrupt(format!("action mode {mode:?}")))?,
        state: row.try_get("state")?,
        asset_id: row.try_get("asset_id")?,
        detail: row.try_get("detail")?,
        error: row.try_get("error")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn external_from_row(row: &DbRow) -> Result<ExternalRecording, DbError> {
    Ok(ExternalRecording {
        id: row.try_get("id")?,
        record_id: row.try_get("record_id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        start_at_ms: row.try_get("start_at_ms")?,
        source_url: row.try_get("source_url")?,
        kind: row.try_get("kind")?,
        asset_id: row.try_get("asset_id")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Inserts the asset, its job and its `video.asset.created` event in `tx`.
async fn insert_asset_with_job(
    tx: &mut sqlx::Transaction<'_, super::Engine>,
    asset: &Asset,
    job: &Job,
    now: i64,
) -> Result<(), DbError> {
    insert_new_asset(tx, asset, Some(job), now).await
}

#[async_trait]
impl BbbRepo for SqlDb {
    async fn save_bbb_recording(
        &self,
        rec: &BbbRecording,
        owners: &[Owner],
        now: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.writer.begin().await?;
        query(
            "INSERT INTO bbb_recordings (record_id, meeting_id, name, start_time_ms, origin_server,
                source_url, raw_xml, first_listed_at, listed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (record_id) DO UPDATE SET meeting_id = excluded.meeting_id,
                name = excluded.name, start_time_ms = excluded.start_time_ms,
                origin_server = excluded.origin_server, source_url = excluded.source_url,
                raw_xml = excluded.raw_xml, listed_at = excluded.listed_at",
        )
        .bind(&rec.record_id)
        .bind(&rec.meeting_id)
        .bind(&rec.name)
        .bind(rec.start_time_ms)
        .bind(&rec.origin_server)
        .bind(&rec.source_url)
        .bind(&rec.raw_xml)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Owners found by this listing replace those of the previous one; claims stay.
        query("DELETE FROM bbb_owners WHERE record_id = ? AND origin != 'claim'")
            .bind(&rec.record_id)
            .execute(&mut *tx)
            .await?;
        for owner in owners {
            query(
                "INSERT INTO bbb_owners (record_id, username, full_name, email, origin)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&rec.record_id)
            .bind(&owner.username)
            .bind(&owner.full_name)
            .bind(&owner.email)
            .bind(owner.origin.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_bbb_action(&self, record_id: &str, mode: Mode) -> Result<Option<Action>, DbError> {
        let row = query("SELECT * FROM bbb_actions WHERE record_id = ? AND mode = ?")
            .bind(record_id)
            .bind(mode.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| action_from_row(&row)).transpose()
    }

    async fn list_bbb_owners(&self, record_id: &str) -> Result<Vec<Owner>, DbError> {
        let sql = format!(
            "SELECT * FROM bbb_owners WHERE record_id = ? ORDER BY {}",
            dialect::INSERTION_ORDER
        );
        let rows = query(&sql).bind(record_id).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                let origin: String = row.try_get("origin")?;
                Ok(Owner {
                    username: row.try_get("username")?,
                    full_name: row.try_get("full_name")?,
                    email: row.try_get("email")?,
                    origin: OwnerOrigin::parse(&origin)
                        .ok_or_else(|| DbError::Corrupt(format!("owner origin {origin:?}")))?,
                })
            })
            .collect()
    }

    async fn create_bbb_asset(
        &self,
        record_id: &str,
        asset: &Asset,
        job: &Job,
        detail: &str,
        now: i64,
    ) -> Result<(String, bool), DbError> {
        let mut tx = self.writer.begin().await?;
        // One claim per recording even with many servers: the check below and the insert are one
        // critical section per record id.
        dialect::lock(&mut tx, &format!("bbb-claim:{record_id}")).await?;
        let existing: Option<String> = query_scalar(
            "SELECT asset_id FROM bbb_actions
             WHERE record_id = ? AND mode = 'manual_claim' AND asset_id IS NOT NULL",
        )
        .bind(record_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Ok((id, false));
        }
        insert_asset_with_job(&mut tx, asset, job, now).await?;
        query(
            "INSERT INTO bbb_actions (record_id, mode, state, asset_id, detail, updated_at)
             VALUES (?, 'manual_claim', 'done', ?, ?, ?)
             ON CONFLICT (record_id, mode) DO UPDATE SET state = 'done',
                asset_id = excluded.asset_id, detail = excluded.detail, error = NULL,
                updated_at = excluded.updated_at",
        )
        .bind(record_id)
        .bind(&asset.id)
        .bind(detail)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok((asset.id.clone(), true))
    }

    async fn fail_bbb_action(
        &self,
        record_id: &str,
        mode: Mode,
        error: &str,
        now: i64,
    ) -> Result<(), DbError> {
        // A failure never hides what an earlier run did.
        query(
            "INSERT INTO bbb_actions (record_id, mode, state, error, updated_at)
             VALUES (?, ?, 'failed', ?, ?)
             ON CONFLICT (record_id, mode) DO UPDATE SET error = excluded.error,
                updated_at = excluded.updated_at
             WHERE bbb_actions.state = 'failed'",
        )
        .bind(record_id)
        .bind(mode.as_str())
        .bind(error)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn create_external_recordings(
        &self,
        record_id: &str,
        recordings: &[ExternalRecording],
        detail: &str,
        now: i64,
    ) -> Result<usize, DbError> {
        let mut tx = self.writer.begin().await?;
        let mut created = 0;
        for rec in recordings {
            let done = query(
                "INSERT INTO external_recordings (id, record_id, owner, name, start_at_ms,
                    source_url, kind, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id, owner) DO NOTHING",
            )
            .bind(&rec.id)
            .bind(record_id)
            .bind(&rec.owner)
            .bind(&rec.name)
            .bind(rec.start_at_ms)
            .bind(&rec.source_url)
            .bind(&rec.kind)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            created += done.rows_affected() as usize;
        }
        query(
            "INSERT INTO bbb_actions (record_id, mode, state, detail, updated_at)
             VALUES (?, 'import_video', 'done', ?, ?)
             ON CONFLICT (record_id, mode) DO UPDATE SET state = 'done', error = NULL,
                detail = excluded.detail, updated_at = excluded.updated_at",
        )
        .bind(record_id)
        .bind(detail)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_external_recordings(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<ExternalRecording>, DbError> {
        let rows = query(
            "SELECT * FROM external_recordings WHERE (?1 IS NULL OR owner = ?1)
             ORDER BY start_at_ms DESC, id",
        )
        .bind(owner)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(external_from_row).collect()
    }

    async fn get_external_recording(&self, id: &str) -> Result<Option<ExternalRecording>, DbError> {
        let row = query("SELECT * FROM external_recordings WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(external_from_row).transpose()
    }

    async fn start_external_import(
        &self,
        id: &str,
        asset: &Asset,
        job: &Job,
        now: i64,
    ) -> Result<Option<(String, bool)>, DbError> {
        let mut tx = self.writer.begin().await?;
        let sql = format!(
            "SELECT asset_id FROM external_recordings WHERE id = ?{}",
            dialect::FOR_UPDATE
        );
        let existing: Option<Option<String>> =
            query_scalar(&sql).bind(id).fetch_optional(&mut *tx).await?;
        match existing {
            None => return Ok(None),
            Some(Some(asset_id)) => return Ok(Some((asset_id, false))),
            Some(None) => {}
        }
        insert_asset_with_job(&mut tx, asset, job, now).await?;
        query("UPDATE external_recordings SET asset_id = ? WHERE id = ?")
            .bind(&asset.id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        self.events_written.notify_waiters();
        Ok(Some((asset.id.clone(), true)))
    }

    async fn list_bbb_claims(&self) -> Result<Vec<Claim>, DbError> {
        let sql = format!(
            "SELECT a.asset_id, r.record_id, r.name, r.start_time_ms, r.origin_server
             FROM bbb_actions a
             JOIN bbb_recordings r ON r.record_id = a.record_id
             JOIN assets s ON s.id = a.asset_id
             WHERE a.mode = 'manual_claim' AND {} IS NULL
             ORDER BY r.start_time_ms DESC, r.record_id",
            dialect::json_text("s.settings", "meta.creator_id")
        );
        let rows = query(&sql).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok(Claim {
                    asset_id: row.try_get("asset_id")?,
                    record_id: row.try_get("record_id")?,
                    name: row.try_get("name")?,
                    start_time_ms: row.try_get("start_time_ms")?,
                    origin_server: row.try_get("origin_server")?,
                })
            })
            .collect()
    }

    async fn bbb_record_of_asset(&self, asset_id: &str) -> Result<Option<String>, DbError> {
        Ok(query_scalar(
            "SELECT record_id FROM bbb_actions WHERE asset_id = ? AND mode = 'manual_claim'",
        )
        .bind(asset_id)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn add_bbb_owner(&self, record_id: &str, owner: &Owner) -> Result<(), DbError> {
        query(
            "INSERT INTO bbb_owners (record_id, username, full_name, email, origin)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (record_id, username) DO UPDATE SET origin = excluded.origin",
        )
        .bind(record_id)
        .bind(&owner.username)
        .bind(&owner.full_name)
        .bind(&owner.email)
        .bind(owner.origin.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_bbb_recordings(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<MigrationEntry>, i64), DbError> {
        let total: i64 = query_scalar("SELECT COUNT(*) FROM bbb_recordings")
            .fetch_one(&self.reader)
            .await?;
        let rows = query(
            "SELECT record_id, name, start_time_ms, origin_server, listed_at FROM bbb_recordings
             ORDER BY start_time_ms DESC, record_id LIMIT ? OFFSET ?",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let record_id: String = row.try_get("record_id")?;
            let actions = query("SELECT * FROM bbb_actions WHERE record_id = ? ORDER BY mode")
                .bind(&record_id)
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(action_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(MigrationEntry {
                owners: self.list_bbb_owners(&record_id).await?,
                actions,
                record_id,
                name: row.try_get("name")?,
                start_time_ms: row.try_get("start_time_ms")?,
                origin_server: row.try_get("origin_server")?,
                listed_at: row.try_get("listed_at")?,
            });
        }
        Ok((entries, total))
    }
}

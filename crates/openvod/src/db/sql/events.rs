// The event log, webhook endpoints and delivery outbox, plus the helpers other repos use to
// write events inside their own transactions.

use async_trait::async_trait;
use sqlx::Row;

use super::{
    asset_from_row, corrupt, dialect, query, query_as, query_scalar, to_json, upload_from_row,
    DbConn, DbRow, Engine, SqlDb,
};
use crate::assets::model::{Asset, Track};
use crate::db::{DbError, EventRepo};
use crate::events::model::{
    Attempt, ClaimedDelivery, DeliveryOutcome, DeliveryResult, Event, Snapshot,
    StaticRenditionSnapshot, TrackSnapshot, WebhookEndpoint, WebhookFormat,
};
use crate::id::{now_unix_ms, random_id, uuid_v4};
use crate::ingest::model::Upload;

pub(super) async fn read_upload(conn: &mut DbConn, id: &str) -> Result<Option<Upload>, DbError> {
    let row = query("SELECT * FROM uploads WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| upload_from_row(&r)).transpose()
}

pub(super) async fn read_asset(conn: &mut DbConn, id: &str) -> Result<Option<Asset>, DbError> {
    let sql = format!("SELECT * FROM assets WHERE id = ?{}", dialect::FOR_UPDATE);
    let Some(row) = query(&sql).bind(id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let pids = super::playback_ids(&mut *conn, id).await?;
    asset_from_row(&row, pids).map(Some)
}

/// SQL tests that endpoint `w` wants events of type `kind` (both SQL expressions): its format
/// takes that family (Tencent's `vod.*`, Mux's `video.*`), and its `events` list, if any, names it.
fn endpoint_wants(w: &str, kind: &str) -> (String, String) {
    let family = format!(
        "(CASE {w}.format WHEN 'tencent-v3' THEN {kind} LIKE 'vod.%' ELSE {kind} LIKE 'video.%' END)"
    );
    let listed = format!(
        "({w}.events IS NULL OR {})",
        dialect::json_array_has(&format!("{w}.events"), kind)
    );
    (family, listed)
}

/// Appends an event and, for every enabled endpoint that wants its type, a pending delivery.
pub(super) async fn emit(
    conn: &mut DbConn,
    kind: &str,
    snapshot: &Snapshot,
) -> Result<(), DbError> {
    // Event writers take turns until they commit, so `seq` grows in commit order and a reader
    // paging by `seq` never skips an event that commits later with a lower number.
    dialect::lock(conn, "event-log").await?;
    let now_ms = now_unix_ms();
    let seq: i64 = query_scalar(
        "INSERT INTO events (id, type, object_type, object_id, created_at_ms, snapshot)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(uuid_v4())
    .bind(kind)
    .bind(snapshot.object_type())
    .bind(snapshot.object_id())
    .bind(now_ms)
    .bind(to_json(snapshot))
    .fetch_one(&mut *conn)
    .await?;
    let (family, listed) = endpoint_wants("webhook_endpoints", "?4");
    let sql = format!(
        "INSERT INTO deliveries (event_seq, endpoint_id, object_id, next_attempt_at_ms, created_at_ms)
         SELECT ?1, id, ?2, ?3, ?3 FROM webhook_endpoints
         WHERE enabled = TRUE AND {family} AND {listed}"
    );
    query(&sql)
        .bind(seq)
        .bind(snapshot.object_id())
        .bind(now_ms)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn emit_upload(conn: &mut DbConn, kind: &str, id: &str) -> Result<(), DbError> {
    if let Some(upload) = read_upload(conn, id).await? {
        emit(conn, kind, &Snapshot::Upload(Box::new(upload))).await?;
    }
    Ok(())
}

pub(super) async fn emit_asset(conn: &mut DbConn, kind: &str, id: &str) -> Result<(), DbError> {
    if let Some(asset) = read_asset(conn, id).await? {
        emit(conn, kind, &Snapshot::Asset(Box::new(asset))).await?;
    }
    Ok(())
}

/// A text track event: the track as it is, with the asset it belongs to.
pub(super) async fn emit_track(
    conn: &mut DbConn,
    kind: &str,
    asset: &Asset,
    track: &Track,
) -> Result<(), DbError> {
    let snapshot = Snapshot::Track(Box::new(TrackSnapshot {
        asset: asset.clone(),
        track: track.clone(),
    }));
    emit(conn, kind, &snapshot).await
}

/// A static rendition event: the file (by name, or by the resolution asked for) and its asset.
pub(super) async fn emit_static_rendition(
    conn: &mut DbConn,
    kind: &str,
    asset: &Asset,
    name: Option<&str>,
    resolution: Option<&str>,
) -> Result<(), DbError> {
    let snapshot = Snapshot::StaticRendition(Box::new(StaticRenditionSnapshot {
        asset: asset.clone(),
        name: name.map(str::to_owned),
        resolution: resolution.map(str::to_owned),
    }));
    emit(conn, kind, &snapshot).await
}

fn event_from_row(row: &DbRow) -> Result<Event, DbError> {
    let snapshot: String = row.try_get("snapshot")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        created_at_ms: row.try_get("created_at_ms")?,
        snapshot: serde_json::from_str(&snapshot)
            .map_err(|e| DbError::Corrupt(format!("event snapshot: {e}")))?,
    })
}

fn endpoint_from_row(row: &DbRow) -> Result<WebhookEndpoint, DbError> {
    let format: String = row.try_get("format")?;
    let events: Option<String> = row.try_get("events")?;
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        format: WebhookFormat::parse(&format).ok_or_else(|| corrupt("webhook format", &format))?,
        events: events
            .map(|e| {
                serde_json::from_str(&e)
                    .map_err(|err| DbError::Corrupt(format!("endpoint events: {err}")))
            })
            .transpose()?,
        enabled: row.try_get("enabled")?,
        secret: row.try_get("secret")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        failing_since_ms: row.try_get("failing_since_ms")?,
        disabled_reason: row.try_get("disabled_reason")?,
    })
}

fn attempt_from_row(row: &DbRow) -> Result<Attempt, DbError> {
    Ok(Attempt {
        delivery_id: row.try_get("delivery_id")?,
        event_id: row.try_get("event_id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        attempted_at_ms: row.try_get("attempted_at_ms")?,
        latency_ms: row.try_get("latency_ms")?,
        status_code: row
            .try_get::<Option<i64>, _>("status_code")?
            .map(|c| c as u16),
        error: row.try_get("error")?,
        success: row.try_get("success")?,
    })
}

#[async_trait]
impl EventRepo for SqlDb {
    async fn list_events(
        &self,
        after_seq: i64,
        limit: u32,
        kind: Option<&str>,
        object_id: Option<&str>,
    ) -> Result<Vec<Event>, DbError> {
        let rows = query(
            "SELECT * FROM events WHERE seq > ?1 AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR object_id = ?3)
             ORDER BY seq LIMIT ?4",
        )
        .bind(after_seq)
        .bind(kind)
        .bind(object_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>, DbError> {
        let row = query("SELECT * FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| event_from_row(&r)).transpose()
    }

    fn event_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.events_written.clone()
    }

    async fn create_endpoint(&self, e: &WebhookEndpoint) -> Result<(), DbError> {
        insert_endpoint(&self.writer, e, false).await
    }

    async fn upsert_endpoint(&self, e: &WebhookEndpoint) -> Result<(), DbError> {
        insert_endpoint(&self.writer, e, true).await
    }

    async fn get_endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, DbError> {
        let row = query("SELECT * FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| endpoint_from_row(&r)).transpose()
    }

    async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>, DbError> {
        let rows = query("SELECT * FROM webhook_endpoints ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn update_endpoint(&self, e: &WebhookEndpoint) -> Result<bool, DbError> {
        let done = query(
            "UPDATE webhook_endpoints SET url = ?, format = ?, events = ?, enabled = ?, updated_at = ?,
                failing_since_ms = ?, disabled_reason = ?, secret = ? WHERE id = ?",
        )
        .bind(&e.url)
        .bind(e.format.as_str())
        .bind(e.events.as_ref().map(to_json))
        .bind(e.enabled)
        .bind(e.updated_at)
        .bind(e.failing_since_ms)
        .bind(&e.disabled_reason)
        .bind(&e.secret)
        .bind(&e.id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, DbError> {
        let done = query("DELETE FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, DbError> {
        let lease_token = random_id();
        let mut tx = self.writer.begin().await?;
        let sql = format!(
            "UPDATE deliveries SET lease_token = ?1, lease_until_ms = ?2 + ?3
             WHERE id IN (
                SELECT d.id FROM deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
                WHERE d.state = 'pending' AND d.next_attempt_at_ms <= ?2 AND w.enabled = TRUE AND w.url != ''
                  AND (d.lease_until_ms IS NULL OR d.lease_until_ms < ?2)
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries e
                    WHERE e.endpoint_id = d.endpoint_id AND e.object_id = d.object_id AND e.id < d.id
                      AND e.state = 'pending' AND (e.attempts = 0 OR e.lease_until_ms >= ?2))
                ORDER BY d.next_attempt_at_ms, d.id LIMIT ?4{})
             RETURNING id, event_seq, attempts",
            dialect::skip_locked("d")
        );
        let claimed: Vec<(i64, i64, i64)> = query_as(&sql)
            .bind(&lease_token)
            .bind(now_ms)
            .bind(lease_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut deliveries = Vec::with_capacity(claimed.len());
        for (id, event_seq, attempts) in claimed {
            let event_row = query("SELECT * FROM events WHERE seq = ?")
                .bind(event_seq)
                .fetch_one(&mut *tx)
                .await?;
            let endpoint_row = query(
                "SELECT w.* FROM webhook_endpoints w JOIN deliveries d ON d.endpoint_id = w.id WHERE d.id = ?",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            deliveries.push(ClaimedDelivery {
                id,
                lease_token: lease_token.clone(),
                attempts: attempts as u32,
                endpoint: endpoint_from_row(&endpoint_row)?,
                event: event_from_row(&event_row)?,
            });
        }
        tx.commit().await?;
        // Claimed deliveries are ordered by due time; keep each object's events in log order.
        deliveries.sort_by_key(|d| (d.endpoint.id.clone(), d.event.seq));
        Ok(deliveries)
    }

    async fn record_deliveries(
        &self,
        results: &[DeliveryResult],
        now_ms: i64,
        disable_after_ms: i64,
    ) -> Result<(), DbError> {
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for r in results {
            let (state, next_at, delivered_at) = match r.outcome {
                DeliveryOutcome::Delivered => ("delivered", None, Some(now_ms)),
                DeliveryOutcome::RetryAt(at) => ("pending", Some(at), None),
                DeliveryOutcome::GaveUp => ("failed", None, None),
            };
            let done = query(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1,
                    next_attempt_at_ms = COALESCE(?, next_attempt_at_ms), delivered_at_ms = ?,
                    last_status = ?, last_error = ?, lease_token = NULL, lease_until_ms = NULL
                 WHERE id = ? AND lease_token = ?",
            )
            .bind(state)
            .bind(next_at)
            .bind(delivered_at)
            .bind(r.attempt.status_code.map(i64::from))
            .bind(&r.attempt.error)
            .bind(r.delivery_id)
            .bind(&r.lease_token)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                continue; // The lease was lost: another dispatcher owns this delivery now.
            }
            let a = &r.attempt;
            query(
                "INSERT INTO delivery_attempts (delivery_id, event_id, endpoint_id, attempted_at_ms, latency_ms, status_code, error, success)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(a.delivery_id)
            .bind(&a.event_id)
            .bind(&a.endpoint_id)
            .bind(a.attempted_at_ms)
            .bind(a.latency_ms)
            .bind(a.status_code.map(i64::from))
            .bind(&a.error)
            .bind(a.success)
            .execute(&mut *tx)
            .await?;
            if a.success {
                query("UPDATE webhook_endpoints SET failing_since_ms = NULL WHERE id = ?")
                    .bind(&a.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                query(
                    "UPDATE webhook_endpoints SET failing_since_ms = COALESCE(failing_since_ms, ?1) WHERE id = ?2",
                )
                .bind(a.attempted_at_ms)
                .bind(&a.endpoint_id)
                .execute(&mut *tx)
                .await?;
                query(
                    "UPDATE webhook_endpoints SET enabled = FALSE,
                        disabled_reason = 'every delivery failed since ' || failing_since_ms || ' (Unix ms)'
                     WHERE id = ?1 AND enabled = TRUE AND failing_since_ms <= ?2",
                )
                .bind(&a.endpoint_id)
                .bind(now_ms - disable_after_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_attempts(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Attempt>, DbError> {
        let rows = query(
            "SELECT * FROM delivery_attempts WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR endpoint_id = ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(event_id)
        .bind(endpoint_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn resend_event(
        &self,
        event_id: &str,
        endpoint_id: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, DbError> {
        // Named endpoints get the event even if their list leaves it out (an operator's resend).
        let (family, listed) = endpoint_wants("w", "e.type");
        let sql = format!(
            "INSERT INTO deliveries (event_seq, endpoint_id, object_id, next_attempt_at_ms, created_at_ms)
             SELECT e.seq, w.id, e.object_id, ?1, ?1 FROM events e, webhook_endpoints w
             WHERE e.id = ?2 AND w.enabled = TRUE AND (?3 IS NULL OR w.id = ?3)
               AND {family} AND (?3 IS NOT NULL OR {listed})"
        );
        let done = query(&sql)
            .bind(now_ms)
            .bind(event_id)
            .bind(endpoint_id)
            .execute(&self.writer)
            .await?;
        self.events_written.notify_waiters();
        Ok(done.rows_affected())
    }

    async fn pull_deliveries(
        &self,
        endpoint_id: &str,
        now_ms: i64,
        visibility_ms: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String, Event)>, DbError> {
        let token = random_id();
        let mut tx = self.writer.begin().await?;
        let sql = format!(
            "UPDATE deliveries SET lease_token = ?1, lease_until_ms = ?2 + ?3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM deliveries WHERE endpoint_id = ?4 AND state = 'pending'
                          AND (lease_until_ms IS NULL OR lease_until_ms < ?2) ORDER BY id LIMIT ?5{})
             RETURNING id, event_seq",
            dialect::skip_locked("deliveries")
        );
        let claimed: Vec<(i64, i64)> = query_as(&sql)
            .bind(&token)
            .bind(now_ms)
            .bind(visibility_ms)
            .bind(endpoint_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for (id, seq) in claimed {
            let row = query("SELECT * FROM events WHERE seq = ?")
                .bind(seq)
                .fetch_one(&mut *tx)
                .await?;
            out.push((id, token.clone(), event_from_row(&row)?));
        }
        tx.commit().await?;
        out.sort_by_key(|(id, _, _)| *id);
        Ok(out)
    }

    async fn count_pullable(&self, endpoint_id: &str, now_ms: i64) -> Result<u64, DbError> {
        let n: i64 = query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE endpoint_id = ? AND state = 'pending'
             AND (lease_until_ms IS NULL OR lease_until_ms < ?)",
        )
        .bind(endpoint_id)
        .bind(now_ms)
        .fetch_one(&self.reader)
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn confirm_deliveries(
        &self,
        handles: &[(i64, String)],
        now_ms: i64,
    ) -> Result<u64, DbError> {
        let mut tx = self.writer.begin().await?;
        let mut confirmed = 0;
        for (id, token) in handles {
            confirmed += query(
                "UPDATE deliveries SET state = 'delivered', delivered_at_ms = ?, lease_token = NULL, lease_until_ms = NULL
                 WHERE id = ? AND lease_token = ? AND state = 'pending'",
            )
            .bind(now_ms)
            .bind(id)
            .bind(token)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(confirmed)
    }

    async fn replay_events(
        &self,
        endpoint_id: &str,
        after_seq: i64,
        now_ms: i64,
    ) -> Result<u64, DbError> {
        let (family, listed) = endpoint_wants("w", "e.type");
        let sql = format!(
            "INSERT INTO deliveries (event_seq, endpoint_id, object_id, next_attempt_at_ms, created_at_ms)
             SELECT e.seq, w.id, e.object_id, ?1, ?1 FROM events e, webhook_endpoints w
             WHERE w.id = ?2 AND e.seq > ?3 AND {family} AND {listed}
             ORDER BY e.seq"
        );
        let done = query(&sql)
            .bind(now_ms)
            .bind(endpoint_id)
            .bind(after_seq)
            .execute(&self.writer)
            .await?;
        self.events_written.notify_waiters();
        Ok(done.rows_affected())
    }
}

async fn insert_endpoint(
    pool: &sqlx::Pool<Engine>,
    e: &WebhookEndpoint,
    upsert: bool,
) -> Result<(), DbError> {
    let conflict = if upsert {
        " ON CONFLICT (id) DO UPDATE SET url = excluded.url, format = excluded.format, events = excluded.events,
            secret = excluded.secret, updated_at = excluded.updated_at"
    } else {
        ""
    };
    query(&format!(
        "INSERT INTO webhook_endpoints (id, url, format, events, enabled, secret, source, created_at, updated_at,
            failing_since_ms, disabled_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){conflict}"
    ))
    .bind(&e.id)
    .bind(&e.url)
    .bind(e.format.as_str())
    .bind(e.events.as_ref().map(to_json))
    .bind(e.enabled)
    .bind(&e.secret)
    .bind(&e.source)
    .bind(e.created_at)
    .bind(e.updated_at)
    .bind(e.failing_since_ms)
    .bind(&e.disabled_reason)
    .execute(pool)
    .await?;
    Ok(())
}

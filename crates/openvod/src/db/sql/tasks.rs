// Processing tasks.

use async_trait::async_trait;

use super::events::{emit, read_asset};
use super::{insert_job, query, query_scalar, to_json, SqlDb};
use crate::db::{DbError, TaskRepo};
use crate::events::model::{Snapshot, TaskSnapshot};
use crate::jobs::Job;
use crate::processing::ProcessingTask;

fn task_from_json(text: &str) -> Result<ProcessingTask, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("processing task: {e}")))
}

/// Inserts a task and its job in `tx`; `false` (nothing written) when its session id is taken.
pub(super) async fn insert_task(
    tx: &mut sqlx::Transaction<'_, super::Engine>,
    task: &ProcessingTask,
) -> Result<bool, DbError> {
    let inserted = query(
        "INSERT INTO processing_tasks (id, asset_id, status, task, session_id, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&task.id)
    .bind(&task.asset_id)
    .bind(task.status.as_str())
    .bind(to_json(task))
    .bind(&task.session_id)
    .bind(task.created_at_ms)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let job = Job::Process {
        task_id: task.id.clone(),
    };
    insert_job(tx, &job, task.created_at_ms / 1000).await?;
    Ok(true)
}

#[async_trait]
impl TaskRepo for SqlDb {
    async fn create_task(&self, task: &ProcessingTask) -> Result<bool, DbError> {
        let mut tx = self.writer.begin().await?;
        if !insert_task(&mut tx, task).await? {
            return Ok(false);
        }
        tx.commit().await?;
        self.jobs_queued.notify_waiters();
        Ok(true)
    }

    async fn get_task(&self, id: &str) -> Result<Option<ProcessingTask>, DbError> {
        let text: Option<String> = query_scalar("SELECT task FROM processing_tasks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        text.as_deref().map(task_from_json).transpose()
    }

    async fn save_task(&self, task: &ProcessingTask) -> Result<(), DbError> {
        query("UPDATE processing_tasks SET status = ?, task = ? WHERE id = ?")
            .bind(task.status.as_str())
            .bind(to_json(task))
            .bind(&task.id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn save_task_with_event(&self, task: &ProcessingTask) -> Result<(), DbError> {
        let mut tx = self.writer.begin().await?;
        query("UPDATE processing_tasks SET status = ?, task = ? WHERE id = ?")
            .bind(task.status.as_str())
            .bind(to_json(task))
            .bind(&task.id)
            .execute(&mut *tx)
            .await?;
        if let Some(asset) = read_asset(&mut tx, &task.asset_id).await? {
            let snapshot = Snapshot::Task(Box::new(TaskSnapshot {
                task: task.clone(),
                asset,
            }));
            emit(&mut tx, "vod.procedure.changed", &snapshot).await?;
        }
        tx.commit().await?;
        self.events_written.notify_waiters();
        Ok(())
    }

    async fn list_tasks_for_asset(&self, asset_id: &str) -> Result<Vec<ProcessingTask>, DbError> {
        let texts: Vec<String> = query_scalar(
            "SELECT task FROM processing_tasks WHERE asset_id = ? ORDER BY created_at_ms, id",
        )
        .bind(asset_id)
        .fetch_all(&self.reader)
        .await?;
        texts.iter().map(|t| task_from_json(t)).collect()
    }
}

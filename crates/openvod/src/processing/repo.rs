//! Processing tasks, as stored.

use async_trait::async_trait;

use crate::error::DbError;
use crate::processing::ProcessingTask;

#[async_trait]
pub trait TaskRepo: Send + Sync {
    /// Inserts the task and queues its job in one transaction; `false` when its session id is taken.
    async fn create_task(&self, task: &ProcessingTask) -> Result<bool, DbError>;
    async fn get_task(&self, id: &str) -> Result<Option<ProcessingTask>, DbError>;
    /// Saves progress (status, begin time).
    async fn save_task(&self, task: &ProcessingTask) -> Result<(), DbError>;
    /// Saves the task and writes its `vod.procedure.changed` event in one transaction.
    async fn save_task_with_event(&self, task: &ProcessingTask) -> Result<(), DbError>;
    async fn list_tasks_for_asset(&self, asset_id: &str) -> Result<Vec<ProcessingTask>, DbError>;
}

/// What running tasks needs stored: the tasks, and the assets they read.
pub trait TaskRunStore: TaskRepo + crate::assets::repo::AssetRepo {}
impl<T: TaskRepo + crate::assets::repo::AssetRepo + ?Sized> TaskRunStore for T {}

//! Processing tasks: on-demand outputs of an existing asset (MP4 files at given presets, snapshots,
//! covers), as requested through Tencent VOD's `ProcessMedia`. A task runs as one job; all MP4
//! outputs of a task come from one ffmpeg process (decode once). Its end is an event
//! (`vod.procedure.changed`) written in the same transaction as its results.

pub mod repo;
pub mod run;

use serde::{Deserialize, Serialize};

use crate::error::DbError;
use crate::error::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    Waiting,
    Processing,
    Finish,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Waiting => "WAITING",
            TaskStatus::Processing => "PROCESSING",
            TaskStatus::Finish => "FINISH",
        }
    }
}

/// One requested output. `preset` is the caller's template id, echoed in results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputRequest {
    /// An H.264/AAC file at `height` (never above the source's), `fps`, and the given bit rates:
    /// an MP4, or with `hls` an HLS playlist with its segments.
    Mp4 {
        preset: u32,
        height: u32,
        video_kbps: u32,
        audio_kbps: u32,
        fps: u32,
        #[serde(default)]
        hls: bool,
    },
    /// JPEG snapshots at the given times (seconds).
    Snapshots { preset: u32, times: Vec<f64> },
    /// One JPEG cover at `time` seconds.
    Cover { preset: u32, time: f64 },
}

impl OutputRequest {
    pub fn preset(&self) -> u32 {
        match self {
            OutputRequest::Mp4 { preset, .. }
            | OutputRequest::Snapshots { preset, .. }
            | OutputRequest::Cover { preset, .. } => *preset,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OutputFile {
    /// Path below the asset's public `vod/{file_id}/` folder.
    pub name: String,
    pub size: u64,
    pub md5: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u64,
    pub duration: f64,
    pub container: String,
    pub video_codec: Option<String>,
    pub video_bitrate: u64,
    pub fps: f64,
    pub audio_codec: Option<String>,
    pub audio_bitrate: u64,
    pub sample_rate: u32,
    /// For snapshots: where in the source, in milliseconds.
    pub time_offset_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputResult {
    pub request: OutputRequest,
    pub ok: bool,
    pub error: Option<String>,
    pub files: Vec<OutputFile>,
    pub begin_ms: i64,
    pub finish_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessingTask {
    pub id: String,
    pub asset_id: String,
    pub status: TaskStatus,
    pub outputs: Vec<OutputRequest>,
    pub results: Vec<OutputResult>,
    pub created_at_ms: i64,
    pub begin_ms: Option<i64>,
    pub finish_ms: Option<i64>,
    /// Why the whole task failed (the source is gone, say); per-output failures are in `results`.
    pub error: Option<String>,
    /// Owned by the adapter that created the task (e.g. Tencent's SessionContext); echoed in events.
    pub context: serde_json::Value,
    /// De-duplication key: a second task with the same one is refused.
    pub session_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessingError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("a task with session id {0:?} already exists")]
    DuplicateSession(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ProcessingError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProcessingError::NotFound(_) => ErrorKind::NotFound,
            ProcessingError::DuplicateSession(_) => ErrorKind::Conflict,
            ProcessingError::Db(e) => e.kind(),
        }
    }
}

/// Tencent-style task ids: `<app>-procedurev2-<32 hex>tt0`.
pub fn new_task_id() -> String {
    let mut b = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b);
    format!("1500000001-procedurev2-{}tt0", hex::encode(b))
}

pub struct ProcessingService {
    db: std::sync::Arc<dyn crate::processing::repo::TaskRepo>,
}

impl ProcessingService {
    pub fn new(db: std::sync::Arc<dyn crate::processing::repo::TaskRepo>) -> ProcessingService {
        ProcessingService { db }
    }

    /// Creates a task and queues its job in one transaction.
    pub async fn create(
        &self,
        asset_id: &str,
        outputs: Vec<OutputRequest>,
        context: serde_json::Value,
        session_id: Option<String>,
    ) -> Result<ProcessingTask, ProcessingError> {
        let task = ProcessingTask {
            id: new_task_id(),
            asset_id: asset_id.to_owned(),
            status: TaskStatus::Waiting,
            outputs,
            results: Vec::new(),
            created_at_ms: crate::id::now_unix_ms(),
            begin_ms: None,
            finish_ms: None,
            error: None,
            context,
            session_id: session_id.clone(),
        };
        if !self.db.create_task(&task).await? {
            return Err(ProcessingError::DuplicateSession(
                session_id.unwrap_or_default(),
            ));
        }
        Ok(task)
    }

    pub async fn list_for_asset(
        &self,
        asset_id: &str,
    ) -> Result<Vec<ProcessingTask>, ProcessingError> {
        Ok(self.db.list_tasks_for_asset(asset_id).await?)
    }

    pub async fn get(&self, id: &str) -> Result<ProcessingTask, ProcessingError> {
        self.db
            .get_task(id)
            .await?
            .ok_or_else(|| ProcessingError::NotFound(id.to_owned()))
    }
}

//! Ingest: uploads from creation to the last byte, for every upload protocol we speak
//! (UpChunk/GCS resumable `PUT` with `Content-Range`, a single plain `PUT`, and tus 1.0).
//!
//! Invariant: a chunk is acknowledged only after its bytes are fsync'd and the new offset is committed
//! to the database; the asset, its probe job and the upload's `asset_created` state are written in one
//! transaction. Bytes of one upload are written by one request at a time, across processes sharing
//! the staging folder (`KeyedLocks::across_processes`).

pub mod capability;
pub mod http;
pub mod model;
pub mod objects;
pub mod range;
pub mod repo;
pub mod staging;
pub mod tus;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use crate::assets::model::{AssetSettings, IngestType, StoredOriginal};
use crate::config::UploadsConfig;
use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::{is_valid_id, now_unix, random_id};
use crate::ingest::repo::FinalizeOutcome;
use crate::jobs::Job;
use crate::keyed_lock::{KeyedGuard, KeyedLocks};
use crate::storage::{ArcStore, StorageError, StoreKey};
use capability::{CapabilityError, UrlSigner};
use model::{Upload, UploadStatus};
use objects::ObjectStaging;
use range::ContentRangeError;
use staging::{ChecksumAlgorithm, Staging};

/// Mux's bounds for an upload's `timeout`, in seconds.
pub const MIN_TIMEOUT_SECS: u64 = 60;
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("upload {0} not found")]
    NotFound(String),
    #[error("upload URL refused: {0}")]
    Capability(#[from] CapabilityError),
    #[error("upload {id} is {} and accepts no more bytes", status.as_str())]
    NotWaiting { id: String, status: UploadStatus },
    #[error("Cancellation no longer possible: upload is {}", .0.as_str())]
    CancelNotAllowed(UploadStatus),
    #[error("upload of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("declared total size {declared} differs from the upload's total size {expected}")]
    TotalMismatch { declared: u64, expected: u64 },
    #[error("chunk starts at byte {start} but only {committed} bytes have been received; send from byte {committed}")]
    Gap { start: u64, committed: u64 },
    #[error("Upload-Offset {offset} does not match the {committed} bytes received")]
    OffsetMismatch { offset: u64, committed: u64 },
    #[error("bytes up to {end} are beyond the upload's total size of {total} bytes")]
    BeyondTotal { end: u64, total: u64 },
    #[error("request body has {got} bytes but the request declared {expected}")]
    BodyLength { expected: u64, got: u64 },
    #[error("request body ended early: {0}")]
    BodyInterrupted(String),
    #[error("the body does not match Upload-Checksum")]
    ChecksumMismatch,
    #[error("timeout {0} is out of range: must be between 60 and 604800 seconds")]
    InvalidTimeout(u64),
    #[error(transparent)]
    InvalidRange(#[from] ContentRangeError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Content-Length is required for an upload without Content-Range")]
    LengthRequired,
    #[error("staged bytes of upload {0} are missing")]
    StagedBytesLost(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("staging I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Object(#[from] objects::ObjectError),
    #[error(transparent)]
    Lock(#[from] crate::keyed_lock::LockError),
}

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        use IngestError::*;
        match self {
            NotFound(_) => ErrorKind::NotFound,
            Capability(_) | CancelNotAllowed(_) => ErrorKind::Forbidden,
            NotWaiting { .. } => ErrorKind::Gone,
            TooLarge { .. } => ErrorKind::TooLarge,
            Gap { .. } | OffsetMismatch { .. } => ErrorKind::Conflict,
            TotalMismatch { .. }
            | BeyondTotal { .. }
            | BodyLength { .. }
            | BodyInterrupted(_)
            | InvalidTimeout(_)
            | InvalidRange(_)
            | InvalidRequest(_) => ErrorKind::Invalid,
            ChecksumMismatch => ErrorKind::ChecksumMismatch,
            LengthRequired => ErrorKind::LengthRequired,
            Db(e) => e.kind(),
            Storage(e) => e.kind(),
            Lock(e) => e.kind(),
            StagedBytesLost(_) | Io(_) => ErrorKind::Internal,
            Object(e) => match e {
                objects::ObjectError::NoSuchUpload(_) => ErrorKind::NotFound,
                objects::ObjectError::TooLarge(_) => ErrorKind::TooLarge,
                objects::ObjectError::BadDigest => ErrorKind::ChecksumMismatch,
                objects::ObjectError::PartInProgress => ErrorKind::Conflict,
                objects::ObjectError::Io(_) => ErrorKind::Internal,
                _ => ErrorKind::Invalid,
            },
        }
    }
}

/// What the creator of an upload asks for.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    pub timeout_secs: Option<u64>,
    pub cors_origin: Option<String>,
    pub new_asset_settings: AssetSettings,
    pub test: bool,
    /// Known up front for tus (`Upload-Length`).
    pub total_size: Option<u64>,
    pub tus_metadata: Option<String>,
}

/// How a request's body relates to the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkMode {
    /// UpChunk/GCS: the body is exactly `len` bytes starting at `start`; bytes already held are skipped
    /// (a resent chunk whose acknowledgement was lost); the body is kept only if it arrived whole.
    Range { start: u64, len: u64 },
    /// tus `PATCH`: `start` must equal the received offset; whatever arrives is kept.
    Tus { start: u64 },
}

pub struct Chunk<S> {
    pub mode: ChunkMode,
    /// Total size declared by this request, if it declares one.
    pub total: Option<u64>,
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    pub body: S,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOutcome {
    pub committed: u64,
    pub total: u64,
    pub complete: bool,
}

pub struct IngestService {
    db: std::sync::Arc<dyn crate::ingest::repo::UploadRepo>,
    store: ArcStore,
    staging: Staging,
    objects: ObjectStaging,
    signer: UrlSigner,
    settings: UploadsConfig,
    public_url: url::Url,
    locks: KeyedLocks,
}

impl IngestService {
    pub fn new(
        db: std::sync::Arc<dyn crate::ingest::repo::UploadRepo>,
        store: ArcStore,
        staging: Staging,
        locks: KeyedLocks,
        signer: UrlSigner,
        settings: UploadsConfig,
        public_url: url::Url,
    ) -> IngestService {
        IngestService {
            db,
            store,
            objects: ObjectStaging::new(staging.dir().to_owned()),
            locks,
            staging,
            signer,
            settings,
            public_url,
        }
    }

    /// Serializes work on one upload, across every process sharing the staging folder.
    async fn lock_upload(&self, id: &str) -> Result<KeyedGuard, IngestError> {
        Ok(self.locks.lock(id).await?)
    }

    /// Signs and verifies capabilities (upload URLs, Tencent VOD upload credentials).
    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    pub fn max_size(&self) -> u64 {
        self.settings.max_size_bytes
    }

    pub async fn create_upload(&self, new: NewUpload) -> Result<Upload, IngestError> {
        let timeout_secs = new
            .timeout_secs
            .unwrap_or(self.settings.default_timeout_secs);
        if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
            return Err(IngestError::InvalidTimeout(timeout_secs));
        }
        if let Some(size) = new.total_size {
            self.check_size(size)?;
        }
        let now = now_unix();
        let upload = Upload {
            id: random_id(),
            status: UploadStatus::Waiting,
            timeout_secs,
            cors_origin: new.cors_origin,
            new_asset_settings: new.new_asset_settings,
            test: new.test,
            created_at: now,
            expires_at: now + timeout_secs as i64,
            total_size: new.total_size,
            committed_offset: 0,
            asset_id: None,
            error_message: None,
            tus_metadata: new.tus_metadata,
        };
        self.db.create_upload(&upload).await?;
        Ok(upload)
    }

    pub async fn get_upload(&self, id: &str) -> Result<Upload, IngestError> {
        if !is_valid_id(id) {
            return Err(IngestError::NotFound(id.to_owned()));
        }
        self.db
            .get_upload(id)
            .await?
            .ok_or_else(|| IngestError::NotFound(id.to_owned()))
    }

    pub async fn list_uploads(&self, limit: u32, page: u32) -> Result<Vec<Upload>, IngestError> {
        Ok(self
            .db
            .list_uploads(limit, limit.saturating_mul(page.saturating_sub(1)))
            .await?)
    }

    /// The capability URL that accepts this upload's bytes until it expires.
    pub fn upload_url(&self, upload: &Upload) -> String {
        let token = self.signer.sign("upload", &upload.id, upload.expires_at);
        let mut url = self.public_url.clone();
        url.set_path(&format!(
            "{}upload/{}",
            base_path(&self.public_url),
            upload.id
        ));
        url.set_query(Some(&format!("token={token}")));
        url.to_string()
    }

    /// Checks an upload URL's token; the upload itself is looked up separately.
    pub fn authorize(&self, id: &str, token: Option<&str>) -> Result<(), IngestError> {
        if !is_valid_id(id) {
            return Err(IngestError::NotFound(id.to_owned()));
        }
        Ok(self.signer.verify("upload", id, token, now_unix())?)
    }

    fn check_size(&self, size: u64) -> Result<(), IngestError> {
        if size > self.settings.max_size_bytes {
            return Err(IngestError::TooLarge {
                size,
                max: self.settings.max_size_bytes,
            });
        }
        Ok(())
    }

    /// Stores one request body of an upload. See `ChunkMode` for how bodies and offsets relate.
    pub async fn receive<S, E>(
        &self,
        id: &str,
        chunk: Chunk<S>,
    ) -> Result<ChunkOutcome, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let _guard = self.lock_upload(id).await?;
        let upload = self.get_upload(id).await?;
        let start = match chunk.mode {
            ChunkMode::Range { start, .. } | ChunkMode::Tus { start } => start,
        };
        let now = now_unix();
        match upload.status {
            UploadStatus::Waiting if now > upload.expires_at => {
                self.expire_locked(id).await?;
                return Err(IngestError::NotWaiting {
                    id: id.to_owned(),
                    status: UploadStatus::TimedOut,
                });
            }
            UploadStatus::Waiting => {}
            // The acknowledgement of the last chunk was lost and the client sends it again.
            UploadStatus::AssetCreated
                if matches!(chunk.mode, ChunkMode::Range { start, len }
                    if start + len <= upload.committed_offset) =>
            {
                return Ok(ChunkOutcome {
                    committed: upload.committed_offset,
                    total: upload.committed_offset,
                    complete: true,
                });
            }
            status => {
                return Err(IngestError::NotWaiting {
                    id: id.to_owned(),
                    status,
                })
            }
        }
        let total = match (upload.total_size, chunk.total) {
            (Some(expected), Some(declared)) if expected != declared => {
                return Err(IngestError::TotalMismatch { declared, expected })
            }
            (Some(total), _) => total,
            (None, Some(declared)) => {
                self.check_size(declared)?;
                self.db.set_upload_size(id, declared).await?;
                declared
            }
            (None, None) => {
                return Err(IngestError::InvalidRequest(
                    "the upload's total size is not known yet; declare it (Content-Range total or Upload-Length)"
                        .to_owned(),
                ))
            }
        };
        let committed = upload.committed_offset;
        if let ChunkMode::Tus { start } = chunk.mode {
            if start != committed {
                return Err(IngestError::OffsetMismatch {
                    offset: start,
                    committed,
                });
            }
        }
        if start > committed {
            return Err(IngestError::Gap { start, committed });
        }
        let max_len = match chunk.mode {
            ChunkMode::Range { start, len } => {
                if start + len > total {
                    return Err(IngestError::BeyondTotal {
                        end: start + len,
                        total,
                    });
                }
                len
            }
            ChunkMode::Tus { start } => total - start,
        };
        let mut new_offset = committed;
        let mut interrupted = None;
        // Once every byte is held there is nothing to write: this is a resend of the final chunk
        // after a crash between storing the bytes and creating the asset.
        if committed < total {
            let appended = self
                .staging
                .append(
                    id,
                    committed,
                    committed - start,
                    max_len,
                    chunk.checksum.as_ref().map(|(algorithm, _)| *algorithm),
                    chunk.body,
                )
                .await?;
            let rejection = if appended.overflowed {
                Some(match chunk.mode {
                    ChunkMode::Range { len, .. } => IngestError::BodyLength {
                        expected: len,
                        got: len + 1,
                    },
                    ChunkMode::Tus { .. } => IngestError::BeyondTotal {
                        end: total + 1,
                        total,
                    },
                })
            } else if let Some((_, expected)) = &chunk.checksum {
                (appended.body_error.is_some() || appended.digest.as_ref() != Some(expected))
                    .then_some(IngestError::ChecksumMismatch)
            } else {
                match (chunk.mode, &appended.body_error) {
                    (ChunkMode::Range { .. }, Some(e)) => {
                        Some(IngestError::BodyInterrupted(e.clone()))
                    }
                    (ChunkMode::Range { len, .. }, None) if appended.received != len => {
                        Some(IngestError::BodyLength {
                            expected: len,
                            got: appended.received,
                        })
                    }
                    _ => None,
                }
            };
            if let Some(rejection) = rejection {
                self.staging.truncate(id, committed).await?;
                return Err(rejection);
            }
            new_offset = committed + appended.written;
            if new_offset > committed {
                self.db.commit_upload_offset(id, new_offset).await?;
                crate::metrics::metrics()
                    .upload_bytes
                    .inc_by(new_offset - committed);
            }
            interrupted = appended.body_error;
        }
        let complete = new_offset == total;
        if complete {
            self.finalize_locked(&upload, total).await?;
        }
        if let Some(e) = interrupted {
            // tus keeps what arrived; the client resumes from the committed offset.
            return Err(IngestError::BodyInterrupted(e));
        }
        Ok(ChunkOutcome {
            committed: new_offset,
            total,
            complete,
        })
    }

    /// `receive` in its own task: a client that disconnects mid-request cannot interrupt the step
    /// from "all bytes committed" to "asset created".
    pub async fn receive_detached<S>(
        self: &Arc<Self>,
        id: &str,
        chunk: Chunk<S>,
    ) -> Result<ChunkOutcome, IngestError>
    where
        S: Stream<Item = Result<Bytes, axum::Error>> + Send + 'static,
    {
        let service = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move { service.receive(&id, chunk).await })
            .await
            .expect("receiving a chunk does not panic")
    }

    /// Finishes a waiting upload that holds every byte but has no asset yet (an interrupted
    /// finalization). Returns whether it did.
    pub async fn complete_if_stalled(&self, id: &str) -> Result<bool, IngestError> {
        let _guard = self.lock_upload(id).await?;
        let upload = self.get_upload(id).await?;
        match upload.total_size {
            Some(total)
                if upload.status == UploadStatus::Waiting && upload.committed_offset == total =>
            {
                self.finalize_locked(&upload, total).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Sets the total size of an upload known only now (a zero-byte `PUT`), then completes it if empty.
    pub async fn complete_if_empty(&self, id: &str) -> Result<ChunkOutcome, IngestError> {
        self.receive(
            id,
            Chunk {
                mode: ChunkMode::Range { start: 0, len: 0 },
                total: Some(0),
                checksum: None,
                body: futures_util::stream::empty::<Result<Bytes, std::io::Error>>(),
            },
        )
        .await
    }

    fn original_key(upload_id: &str) -> StoreKey {
        StoreKey::parse(&format!("uploads/{upload_id}/original"))
            .expect("upload ids are valid keys")
    }

    /// Moves the staged bytes into the store and creates the asset. Idempotent: a retry after a crash
    /// between the two steps finds the bytes already stored.
    async fn finalize_locked(&self, upload: &Upload, total: u64) -> Result<(), IngestError> {
        self.finalize_with_cover(upload, total, None).await
    }

    /// `finalize_locked`, storing a cover image (file, extension) with the asset first.
    async fn finalize_with_cover(
        &self,
        upload: &Upload,
        total: u64,
        cover: Option<(std::path::PathBuf, String)>,
    ) -> Result<(), IngestError> {
        let key = Self::original_key(&upload.id);
        if !self.staging.exists(&upload.id).await && total == 0 {
            self.staging.ensure_exists(&upload.id).await?;
        }
        if self.staging.exists(&upload.id).await {
            self.store
                .put_file(&key, &self.staging.path_of(&upload.id))
                .await?;
        }
        let size = self.store.size(&key).await?;
        if size != Some(total) {
            return Err(IngestError::StagedBytesLost(upload.id.clone()));
        }
        let now = now_unix();
        let mut asset = crate::assets::new_asset(
            &upload.new_asset_settings,
            IngestType::DirectUpload,
            Some(upload.id.clone()),
            None,
            Some(StoredOriginal {
                key: key.as_str().to_owned(),
                size: total,
            }),
            now,
        );
        if let Some((path, ext)) = cover {
            let key = StoreKey::parse(&format!("assets/{}/cover.{ext}", asset.id))?;
            self.store.put_file(&key, &path).await?;
            asset.settings.cover_key = Some(key.as_str().to_owned());
        }
        let job = Job::ProbeAsset {
            asset_id: asset.id.clone(),
        };
        match self
            .db
            .finalize_upload(&upload.id, &asset, &job, now)
            .await?
        {
            FinalizeOutcome::Created => Ok(()),
            FinalizeOutcome::NotWaiting(status) => Err(IngestError::NotWaiting {
                id: upload.id.clone(),
                status,
            }),
        }
    }

    /// Mux `cancel`: only a waiting upload can be cancelled; its staged bytes are removed.
    pub async fn cancel(&self, id: &str) -> Result<Upload, IngestError> {
        let _guard = self.lock_upload(id).await?;
        let before = self.get_upload(id).await?;
        match before.status {
            UploadStatus::Waiting => {}
            UploadStatus::Cancelled => return Ok(before),
            status => return Err(IngestError::CancelNotAllowed(status)),
        }
        let after = self
            .db
            .end_upload(id, UploadStatus::Cancelled, None)
            .await?
            .ok_or_else(|| IngestError::NotFound(id.to_owned()))?;
        self.staging.remove(id).await?;
        self.objects.remove(id).await?;
        Ok(after)
    }

    async fn expire_locked(&self, id: &str) -> Result<(), IngestError> {
        self.db.end_upload(id, UploadStatus::TimedOut, None).await?;
        self.staging.remove(id).await?;
        self.objects.remove(id).await?;
        Ok(())
    }

    /// Named objects staged for waiting uploads (see `objects`): the upload target of Tencent
    /// VOD's SDKs. Check the upload with `waiting` first.
    pub fn objects(&self) -> &ObjectStaging {
        &self.objects
    }

    /// The upload, if it still takes bytes (waiting, not past its timeout).
    pub async fn waiting(&self, id: &str) -> Result<Upload, IngestError> {
        let upload = self.get_upload(id).await?;
        match upload.status {
            UploadStatus::Waiting if now_unix() > upload.expires_at => {
                Err(IngestError::NotWaiting {
                    id: id.to_owned(),
                    status: UploadStatus::TimedOut,
                })
            }
            UploadStatus::Waiting => Ok(upload),
            status => Err(IngestError::NotWaiting {
                id: id.to_owned(),
                status,
            }),
        }
    }

    /// Makes the asset of an upload whose file was sent as the staged object `media` (and its
    /// cover image as the object `cover`, whose extension is its format): the object becomes the
    /// upload's bytes, then the upload finishes as every other does. Idempotent: a repeat (or a
    /// retry after a crash) returns the asset already made. Returns the asset id.
    pub async fn commit_objects(
        &self,
        id: &str,
        media: &str,
        cover: Option<&str>,
    ) -> Result<String, IngestError> {
        let _guard = self.lock_upload(id).await?;
        let upload = self.get_upload(id).await?;
        if let (UploadStatus::AssetCreated, Some(asset_id)) = (upload.status, &upload.asset_id) {
            return Ok(asset_id.clone());
        }
        let upload = self.waiting(id).await?;
        let cover = match cover {
            None => None,
            Some(object) => {
                let path = self.objects.path(id, object).await.ok_or_else(|| {
                    IngestError::InvalidRequest(format!("the cover ({object}) was not uploaded"))
                })?;
                let ext = object.rsplit_once('.').map_or("jpg", |(_, e)| e).to_owned();
                Some((path, ext))
            }
        };
        let staged = self.staging.path_of(id);
        match self.objects.path(id, media).await {
            // The object becomes the upload's staged bytes (a rename: no copy).
            Some(path) => {
                let dir = self.staging.dir().to_owned();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::rename(&path, &staged)?;
                    crate::storage::fs::sync_dir(&dir)
                })
                .await
                .expect("rename does not panic")?;
            }
            // Renamed by a commit that crashed before finishing.
            None if self.staging.exists(id).await => {}
            None => {
                return Err(IngestError::InvalidRequest(format!(
                    "the media file ({media}) was not uploaded"
                )))
            }
        }
        let size = tokio::fs::metadata(self.staging.path_of(id)).await?.len();
        self.check_size(size)?;
        if upload.total_size.is_none() {
            self.db.set_upload_size(id, size).await?;
        }
        self.db.commit_upload_offset(id, size).await?;
        crate::metrics::metrics().upload_bytes.inc_by(size);
        let upload = self.get_upload(id).await?;
        self.finalize_with_cover(&upload, size, cover).await?;
        self.objects.remove(id).await?;
        let upload = self.get_upload(id).await?;
        upload
            .asset_id
            .ok_or_else(|| IngestError::StagedBytesLost(id.to_owned()))
    }

    /// Times out every waiting upload whose timeout passed before `now` and removes its staged bytes.
    /// Returns how many were expired.
    pub async fn expire_uploads(&self, now: i64) -> Result<usize, IngestError> {
        let ids = self.db.list_expired_uploads(now).await?;
        let mut expired = 0;
        for id in &ids {
            // An upload that received everything is finished, not expired.
            if self.complete_if_stalled(id).await? {
                continue;
            }
            let _guard = self.lock_upload(id).await?;
            self.expire_locked(id).await?;
            expired += 1;
        }
        Ok(expired)
    }
}

/// The public URL's path with a trailing slash, so URLs we build keep a deployment's path prefix.
pub(crate) fn base_path(public_url: &url::Url) -> String {
    let path = public_url.path();
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

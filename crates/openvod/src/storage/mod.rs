//! Media bytes behind the `Store` trait: originals, and later renditions and images.
//!
//! Keys are relative, slash-separated and validated by `StoreKey::parse`; no caller input becomes a
//! path without it. Every write is durable when it returns.

pub mod fs;
pub mod s3;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub type ArcStore = Arc<dyn Store>;

/// How long a presigned read URL handed to a client lasts.
pub const PRESIGNED_SECS: u32 = 300;
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    #[error("object {0} not found")]
    NotFound(String),
    #[error("storage I/O failed on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// The object store did not answer usefully, after retries (network, 5xx): worth trying later.
    #[error("the object store is unavailable for {key}: {reason}")]
    Unavailable { key: String, reason: String },
}

impl StorageError {
    /// How an API caller sees it: a store that is down for now is 503 (come back), anything else
    /// is ours to fix. (Domains answer `NotFound` themselves where a missing object means one.)
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            StorageError::Unavailable { .. } => crate::error::ErrorKind::Unavailable,
            _ => crate::error::ErrorKind::Internal,
        }
    }
}

/// A validated object key: non-empty segments of `[A-Za-z0-9._-]`, no `.`/`..` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKey(String);

impl StoreKey {
    pub fn parse(key: &str) -> Result<StoreKey, StorageError> {
        let valid_segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        let trimmed = key.strip_suffix('/').unwrap_or(key);
        if key.len() > 512 || !trimmed.split('/').all(valid_segment) {
            return Err(StorageError::InvalidKey(key.to_owned()));
        }
        Ok(StoreKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A readable object: its total length and a stream over the requested bytes.
pub struct StoredObject {
    pub len: u64,
    pub body: ByteStream,
}

impl StoredObject {
    /// An object already in memory.
    pub fn from_bytes(bytes: Bytes) -> StoredObject {
        StoredObject {
            len: bytes.len() as u64,
            body: Box::pin(futures_util::stream::once(async { Ok(bytes) })),
        }
    }

    /// Reads the whole body into memory (one chunk, as the local store gives small objects, is
    /// not copied).
    pub async fn into_bytes(mut self) -> std::io::Result<Bytes> {
        use futures_util::StreamExt;
        let mut chunks = Vec::new();
        while let Some(chunk) = self.body.next().await {
            chunks.push(chunk?);
        }
        Ok(match chunks.len() {
            1 => chunks.pop().expect("one chunk"),
            _ => chunks.concat().into(),
        })
    }
}

/// Where ffmpeg reads an object from: a file on this machine, or a URL it reads with ranged
/// requests (so cutting seconds out of a long object never downloads all of it).
pub enum MediaInput {
    File(LocalFile),
    Url(String),
}

impl MediaInput {
    /// The input as ffmpeg's `-i` argument: a path or a URL.
    pub fn location(&self) -> &Path {
        match self {
            MediaInput::File(file) => file.path(),
            MediaInput::Url(url) => Path::new(url),
        }
    }
}

/// A file on local disk holding an object's bytes, for tools such as ffprobe that need a path.
/// A temporary copy is removed when this is dropped.
pub enum LocalFile {
    InPlace(PathBuf),
    Temporary(tempfile::TempPath),
}

impl LocalFile {
    pub fn path(&self) -> &Path {
        match self {
            LocalFile::InPlace(path) => path,
            LocalFile::Temporary(path) => path,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Moves the local file at `source` into the store under `key` (replacing any object there).
    /// Returns the object's size. Durable on return; `source` is gone afterwards.
    async fn put_file(&self, key: &StoreKey, source: &Path) -> Result<u64, StorageError>;
    /// The object's size, or `None` when it does not exist.
    async fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError>;
    /// Streams bytes `[start, end)` of the object (`end` defaults to its length).
    async fn get(
        &self,
        key: &StoreKey,
        start: u64,
        end: Option<u64>,
    ) -> Result<StoredObject, StorageError>;
    async fn local_file(&self, key: &StoreKey) -> Result<LocalFile, StorageError>;
    /// Removes the object, or every object under a key ending in `/`. Missing objects are not an error.
    async fn delete(&self, key: &StoreKey) -> Result<(), StorageError>;
    /// What ffmpeg should read the object from for a run of at most `secs` seconds that reads a
    /// part of it (a seek, a cut, a frame): a ranged URL where the store has one, else a local file.
    async fn media_input(&self, key: &StoreKey, _secs: u32) -> Result<MediaInput, StorageError> {
        Ok(MediaInput::File(self.local_file(key).await?))
    }
    /// A URL where a client may read the object itself for `secs` seconds, when the store is set
    /// to send large reads there instead of through this server; `None` otherwise.
    async fn presigned_get(
        &self,
        _key: &StoreKey,
        _secs: u32,
    ) -> Result<Option<String>, StorageError> {
        Ok(None)
    }
}

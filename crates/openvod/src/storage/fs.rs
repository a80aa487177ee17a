//! Local-filesystem store: one file per key under a root folder.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use std::io::{Read, Seek};

use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{LocalFile, StorageError, Store, StoreKey, StoredObject};

/// Spans up to this size are read into memory in one go rather than streamed (segments are ~1 MiB).
const WHOLE_READ_MAX: u64 = 4 * 1024 * 1024;

enum Opened {
    Read(bytes::Bytes),
    Stream(std::fs::File, u64),
}

pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub fn new(root: PathBuf) -> FsStore {
        FsStore { root }
    }

    fn path_of(&self, key: &StoreKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn io_err(key: &StoreKey) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        key: key.as_str().to_owned(),
        source,
    }
}

/// fsyncs a directory so a rename or create inside it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl Store for FsStore {
    async fn put_file(&self, key: &StoreKey, source: &Path) -> Result<u64, StorageError> {
        let target = self.path_of(key);
        let source = source.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let parent = target.parent().expect("store keys have a parent");
            std::fs::create_dir_all(parent)?;
            if std::fs::rename(&source, &target).is_err() {
                // Different filesystem: copy through a temporary name, then rename.
                let tmp = parent.join(format!(".incoming-{}", crate::id::random_id()));
                std::fs::copy(&source, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &target)?;
                std::fs::remove_file(&source)?;
            }
            std::fs::File::open(&target)?.sync_all()?;
            sync_dir(parent)?;
            Ok(std::fs::metadata(&target)?.len())
        })
        .await
        .expect("put_file task does not panic")
        .map_err(io_err(key))
    }

    async fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    async fn get(
        &self,
        key: &StoreKey,
        start: u64,
        end: Option<u64>,
    ) -> Result<StoredObject, StorageError> {
        // Open, size and (for small spans, the common case of HLS segments) read in one blocking
        // task: each tokio::fs call is a trip through the blocking pool, which dominated serving.
        let path = self.path_of(key);
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Opened)> {
            let mut file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            let end = end.unwrap_or(len).min(len);
            let start = start.min(end);
            file.seek(SeekFrom::Start(start))?;
            let span = end - start;
            if span <= WHOLE_READ_MAX {
                let mut bytes = vec![0; span as usize];
                file.read_exact(&mut bytes)?;
                Ok((len, Opened::Read(bytes::Bytes::from(bytes))))
            } else {
                Ok((len, Opened::Stream(file, span)))
            }
        })
        .await
        .expect("get task does not panic");
        let (len, opened) = match opened {
            Ok(opened) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => return Err(io_err(key)(e)),
        };
        Ok(match opened {
            Opened::Read(bytes) => StoredObject {
                len,
                ..StoredObject::from_bytes(bytes)
            },
            Opened::Stream(file, span) => StoredObject {
                len,
                body: Box::pin(ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file).take(span),
                    256 * 1024,
                )),
            },
        })
    }

    async fn local_file(&self, key: &StoreKey) -> Result<LocalFile, StorageError> {
        let path = self.path_of(key);
        if tokio::fs::metadata(&path).await.is_err() {
            return Err(StorageError::NotFound(key.as_str().to_owned()));
        }
        Ok(LocalFile::InPlace(path))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        let path = self.path_of(key);
        let result = if key.as_str().ends_with('/') {
            tokio::fs::remove_dir_all(&path).await
        } else {
            tokio::fs::remove_file(&path).await
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(key)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reject_traversal_and_odd_characters() {
        for bad in [
            "", "/abs", "a/../b", "..", "a//b", "a/./b", "a b", "a\\b", "a/\u{e9}",
        ] {
            assert!(StoreKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "assets/abc/original",
            "uploads/x_y-z.1/original",
            "assets/abc/",
        ] {
            assert!(StoreKey::parse(good).is_ok(), "{good:?} refused");
        }
    }
}

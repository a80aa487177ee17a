//! Local-filesystem store: one file per key under a root folder.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{LocalFile, StorageError, Store, StoreKey, StoredObject};

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
        let mut file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => return Err(io_err(key)(e)),
        };
        let len = file.metadata().await.map_err(io_err(key))?.len();
        let end = end.unwrap_or(len).min(len);
        let start = start.min(end);
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(io_err(key))?;
        let body = ReaderStream::with_capacity(file.take(end - start), 256 * 1024);
        Ok(StoredObject {
            len,
            body: Box::pin(body),
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

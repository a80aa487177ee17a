//! `KeyedLocks`: one async mutex per key, for work that must not run twice at once for the same key
//! (writes to one upload, generating one image). Entries are dropped when nobody holds them.
//! A second layer makes other processes take turns too: with a folder (`across_processes`), an
//! exclusive `flock` on one of 256 lock files there, chosen by the key (processes on one machine);
//! with a `SharedLocks` service (`shared_by`), a lock every process reaching it sees (PostgreSQL's
//! advisory locks, for processes on many machines).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;

/// Locks by name held in a service every process reaches. The returned value holds the lock until
/// it is dropped; a process that dies lets go of its locks.
#[async_trait]
pub trait SharedLocks: Send + Sync {
    async fn lock(&self, key: &str) -> Result<Box<dyn Send + Sync>, LockError>;
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock service cannot be reached for now (the database is down): try again later.
    #[error("the lock service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// The lock folder failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl LockError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            LockError::Unavailable(_) => crate::error::ErrorKind::Unavailable,
            LockError::Io(_) => crate::error::ErrorKind::Internal,
        }
    }
}

enum Shared {
    Folder(PathBuf),
    Service(Arc<dyn SharedLocks>),
}

#[derive(Default)]
pub struct KeyedLocks {
    local: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// The cross-process layer, if any.
    shared: Option<Shared>,
}

/// Held while a key's work runs; dropping it releases the lock (and the cross-process one).
pub struct KeyedGuard {
    _local: tokio::sync::OwnedMutexGuard<()>,
    _shared: Option<Box<dyn Send + Sync>>,
}

impl KeyedLocks {
    /// Locks that also serialize with every process using the same `dir`.
    pub fn across_processes(dir: PathBuf) -> KeyedLocks {
        KeyedLocks {
            local: Mutex::default(),
            shared: Some(Shared::Folder(dir)),
        }
    }

    /// Locks that also serialize with every process using the same `service`.
    pub fn shared_by(service: Arc<dyn SharedLocks>) -> KeyedLocks {
        KeyedLocks {
            local: Mutex::default(),
            shared: Some(Shared::Service(service)),
        }
    }

    /// Waits for the key: within this process first (an async mutex, no thread waits), then
    /// across processes.
    pub async fn lock(&self, key: &str) -> Result<KeyedGuard, LockError> {
        let local = self.get(key).lock_owned().await;
        let dir = match &self.shared {
            None => None,
            Some(Shared::Folder(dir)) => Some(dir.clone()),
            Some(Shared::Service(service)) => {
                return Ok(KeyedGuard {
                    _shared: Some(service.lock(key).await?),
                    _local: local,
                });
            }
        };
        let Some(dir) = dir else {
            return Ok(KeyedGuard {
                _local: local,
                _shared: None,
            });
        };
        // 256 files whatever the number of keys; two keys may share one and then take turns.
        let bucket = key
            .bytes()
            .fold(0u8, |h, b| h.wrapping_mul(31).wrapping_add(b));
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(dir.join(format!("{bucket:02x}.lock")))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
            Ok(file)
        })
        .await
        .expect("locking does not panic")?;
        Ok(KeyedGuard {
            _local: local,
            _shared: Some(Box::new(file)),
        })
    }

    /// The mutex for `key`; lock it to serialize with every other holder of the same key.
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.local.lock().expect("keyed lock map is not poisoned");
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        map.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

#[cfg(test)]
mod cross_process_tests {
    use super::*;
    use std::time::Duration;

    /// Two lock sets on one folder stand for two processes (each opens its own lock file, and
    /// `flock` locks belong to the open file): the second waits until the first lets go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_held_elsewhere_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let one = KeyedLocks::across_processes(dir.path().to_owned());
        let other = KeyedLocks::across_processes(dir.path().to_owned());
        let held = one.lock("upload-1").await.unwrap();
        let waiting = tokio::spawn(async move { other.lock("upload-1").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the key is held by the other set");
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("taken once released")
            .unwrap()
            .unwrap();
        // Without a folder, only this process's holders are waited for.
        let plain = KeyedLocks::default();
        let _a = plain.lock("k").await.unwrap();
        assert!(KeyedLocks::default().lock("k").await.is_ok());
    }
}

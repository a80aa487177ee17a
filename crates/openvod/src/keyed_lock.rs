//! `KeyedLocks`: one async mutex per key, for work that must not run twice at once for the same key
//! (writes to one upload, generating one image). Entries are dropped when nobody holds them.
//! With a folder (`across_processes`), `lock` also takes an exclusive `flock` on one of 256 lock
//! files there, chosen by the key, so processes sharing the folder take turns too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

#[derive(Default)]
pub struct KeyedLocks {
    local: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Where the lock files of the cross-process layer live.
    dir: Option<PathBuf>,
}

/// Held while a key's work runs; dropping it releases the lock (the `flock` with the file).
pub struct KeyedGuard {
    _local: tokio::sync::OwnedMutexGuard<()>,
    _file: Option<std::fs::File>,
}

impl KeyedLocks {
    /// Locks that also serialize with every process using the same `dir`.
    pub fn across_processes(dir: PathBuf) -> KeyedLocks {
        KeyedLocks {
            local: Mutex::default(),
            dir: Some(dir),
        }
    }

    /// Waits for the key: within this process first (an async mutex, no thread waits), then, with
    /// a folder, across processes.
    pub async fn lock(&self, key: &str) -> std::io::Result<KeyedGuard> {
        let local = self.get(key).lock_owned().await;
        let Some(dir) = self.dir.clone() else {
            return Ok(KeyedGuard {
                _local: local,
                _file: None,
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
            _file: Some(file),
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

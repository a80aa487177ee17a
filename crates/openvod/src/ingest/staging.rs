//! Staged upload bytes: one file per upload under `<data_dir>/staging/`.
//!
//! Invariant: the database's `committed_offset` is the truth. Bytes past it (a chunk torn by a crash,
//! or one that failed validation) are cut off before the next write, so they can never reach an asset.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::Digest;

/// Digest algorithms of the tus checksum extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algorithm: ChecksumAlgorithm) -> Hasher {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What one request body contributed to the staged file. The bytes are fsync'd but not yet committed.
#[derive(Debug)]
pub struct Appended {
    /// Bytes received in the body, including skipped ones.
    pub received: u64,
    /// Bytes written past `committed`.
    pub written: u64,
    /// The body carried more than `max_len` bytes; reading stopped there.
    pub overflowed: bool,
    /// The body stream failed (client went away) before its end.
    pub body_error: Option<String>,
    pub digest: Option<Vec<u8>>,
}

pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn new(dir: PathBuf) -> Staging {
        Staging { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of an upload's staged bytes; `upload_id` must already be validated.
    pub fn path_of(&self, upload_id: &str) -> PathBuf {
        self.dir.join(upload_id)
    }

    /// Streams `body` into the staged file starting at `committed`, first dropping the `skip` leading
    /// bytes the file already holds, and accepting at most `max_len` body bytes.
    /// The written bytes are on disk (fsync) when this returns.
    pub async fn append<S, E>(
        &self,
        upload_id: &str,
        committed: u64,
        skip: u64,
        max_len: u64,
        checksum: Option<ChecksumAlgorithm>,
        body: S,
    ) -> std::io::Result<Appended>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let path = self.path_of(upload_id);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
        // Disk writes run on a blocking thread fed through a bounded channel: the network and the disk
        // work in parallel and memory stays bounded whatever the chunk size.
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut file = open_truncated(&path, committed)?;
            let mut written = 0;
            for data in rx {
                file.write_all(&data)?;
                written += data.len() as u64;
            }
            file.sync_data()?;
            Ok(written)
        });
        let mut hasher = checksum.map(Hasher::new);
        let mut received = 0u64;
        let mut overflowed = false;
        let mut body_error = None;
        let mut writer_gone = false;
        futures_util::pin_mut!(body);
        while let Some(frame) = body.next().await {
            let mut data = match frame {
                Ok(data) => data,
                Err(e) => {
                    body_error = Some(e.to_string());
                    break;
                }
            };
            if received + data.len() as u64 > max_len {
                data.truncate((max_len - received) as usize);
                overflowed = true;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&data);
            }
            let before = received;
            received += data.len() as u64;
            if before < skip {
                let drop = (skip - before).min(data.len() as u64) as usize;
                let _ = data.split_to(drop);
            }
            if !data.is_empty() && tx.send(data).is_err() {
                writer_gone = true;
                break;
            }
            if overflowed {
                break;
            }
        }
        drop(tx);
        let written = writer.await.expect("staging writer does not panic")?;
        if writer_gone {
            return Err(std::io::Error::other("staging writer stopped early"));
        }
        Ok(Appended {
            received,
            written,
            overflowed,
            body_error,
            digest: hasher.map(Hasher::finish),
        })
    }

    /// Cuts the staged file back to `committed` bytes (discarding an unacknowledged tail).
    pub async fn truncate(&self, upload_id: &str, committed: u64) -> std::io::Result<()> {
        let path = self.path_of(upload_id);
        tokio::task::spawn_blocking(move || {
            open_truncated(&path, committed).and_then(|f| f.sync_all())
        })
        .await
        .expect("truncate task does not panic")
    }

    /// Makes sure a staged file exists (a zero-byte upload has none until finalized).
    pub async fn ensure_exists(&self, upload_id: &str) -> std::io::Result<()> {
        let path = self.path_of(upload_id);
        tokio::task::spawn_blocking(move || open_truncated(&path, 0).map(|_| ()))
            .await
            .expect("create task does not panic")
    }

    pub async fn exists(&self, upload_id: &str) -> bool {
        tokio::fs::metadata(self.path_of(upload_id)).await.is_ok()
    }

    pub async fn remove(&self, upload_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path_of(upload_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Opens (creating) the file and positions it at `len`, cutting anything beyond.
fn open_truncated(path: &Path, len: u64) -> std::io::Result<std::fs::File> {
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    if !existed {
        if let Some(dir) = path.parent() {
            crate::storage::fs::sync_dir(dir)?;
        }
    }
    let current = file.metadata()?.len();
    if current < len {
        // Never pad with zeros: that would turn lost bytes into silently corrupt media.
        return Err(std::io::Error::other(format!(
            "staged file {} holds {current} bytes but {len} were committed",
            path.display()
        )));
    }
    if current > len {
        file.set_len(len)?;
    }
    file.seek(SeekFrom::Start(len))?;
    Ok(file)
}

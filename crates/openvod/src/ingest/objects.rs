//! Named objects staged for an upload, written the way object stores take them: whole (`PUT`) or
//! in numbered parts sent in any order and joined on completion (multipart upload). Tencent VOD's
//! upload SDKs send the media file and its cover this way (`compat::tencent::cos`).
//!
//! Everything lives under `<staging>/<upload_id>.objects/`: the finished objects by name, and one
//! folder per multipart upload with its parts. Every file is written under a temporary name,
//! fsync'd and renamed into place (and its folder fsync'd) before the call returns, so an
//! acknowledged object or part survives a crash, and a crash mid-write leaves only a temporary
//! file that the next write of the same object replaces.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};

use crate::storage::fs::sync_dir;

/// Parts are numbered 1 to 10,000, as in S3 and COS.
pub const MAX_PART_NUMBER: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("no such multipart upload {0}")]
    NoSuchUpload(String),
    #[error("part {0} was not uploaded, or its ETag differs")]
    InvalidPart(u32),
    #[error("parts must be listed in ascending order of part number")]
    InvalidPartOrder,
    #[error("part numbers go from 1 to {MAX_PART_NUMBER}, got {0}")]
    InvalidPartNumber(u32),
    #[error("the object is larger than the maximum of {0} bytes")]
    TooLarge(u64),
    #[error("the body does not match Content-MD5")]
    BadDigest,
    #[error("request body ended early: {0}")]
    BodyInterrupted(String),
    #[error("staging I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored object or part: its size and MD5 (hex; an S3/COS ETag is this in quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub md5_hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub size: u64,
    pub md5_hex: String,
    pub modified_unix: i64,
}

/// An unfinished multipart upload of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub id: String,
    pub object: String,
    pub initiated_unix: i64,
}

pub struct ObjectStaging {
    dir: PathBuf,
}

/// Object names and multipart ids are ours (`media.mp4`, `cover.jpg`, random ids); anything else
/// never reaches the file system.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn modified_unix(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes `source` to `dir/name` durably: a temporary file, fsync, rename, fsync of the folder.
fn write_durably(
    dir: &Path,
    name: &str,
    source: impl FnOnce(&mut std::fs::File) -> Result<u64, ObjectError>,
) -> Result<u64, ObjectError> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    let size = match source(&mut file) {
        Ok(size) => size,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)?;
    Ok(size)
}

impl ObjectStaging {
    pub fn new(staging_dir: PathBuf) -> ObjectStaging {
        ObjectStaging { dir: staging_dir }
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.dir.join(format!("{upload_id}.objects"))
    }

    fn multipart_dir(&self, upload_id: &str, multipart_id: &str) -> PathBuf {
        self.upload_dir(upload_id)
            .join(format!("mp-{multipart_id}"))
    }

    /// The finished object's file, if there is one.
    pub async fn path(&self, upload_id: &str, object: &str) -> Option<PathBuf> {
        let path = self.upload_dir(upload_id).join(object);
        (valid_name(object) && tokio::fs::metadata(&path).await.is_ok()).then_some(path)
    }

    /// Receives a body into `dir/<name(its MD5 in hex)>`: written once to a temporary file while its MD5 is
    /// computed, checked against `content_md5`, fsync'd, then renamed into place (and the folder
    /// fsync'd). Bounded by `max`; the temporary file is removed on any failure.
    async fn receive<S, E>(
        &self,
        dir: PathBuf,
        name: impl FnOnce(&str) -> String,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        tokio::fs::create_dir_all(&dir).await?;
        let incoming = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&dir)?;
        // One blocking thread writes and hashes what a bounded channel feeds it (as
        // `Staging::append` does): network and disk work in parallel, memory stays bounded, and
        // the async threads do neither the hashing nor a blocking-pool hop per frame.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(32);
        let writer =
            tokio::task::spawn_blocking(move || -> Result<(PathBuf, String), ObjectError> {
                let (mut file, incoming) = incoming.into_parts();
                let mut md5 = Md5::new();
                for data in rx {
                    md5.update(&data);
                    file.write_all(&data)?;
                }
                file.sync_all()?;
                drop(file);
                // Kept under its temporary name until the caller has checked it.
                let kept = incoming.keep().map_err(|e| ObjectError::Io(e.error))?;
                Ok((kept, hex::encode(md5.finalize())))
            });
        let mut size = 0u64;
        let mut failure = None;
        futures_util::pin_mut!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    failure = Some(ObjectError::BodyInterrupted(e.to_string()));
                    break;
                }
            };
            size += chunk.len() as u64;
            if size > max {
                failure = Some(ObjectError::TooLarge(max));
                break;
            }
            if tx.send(chunk).is_err() {
                break;
            }
        }
        drop(tx);
        let (kept, digest) = match writer.await.expect("staging writer does not panic") {
            Ok(written) => written,
            Err(e) => return Err(failure.unwrap_or(e)),
        };
        let refused = failure.or_else(|| {
            content_md5
                .filter(|expected| hex::encode(expected) != digest)
                .map(|_| ObjectError::BadDigest)
        });
        if let Some(e) = refused {
            let _ = tokio::fs::remove_file(&kept).await;
            return Err(e);
        }
        let target = dir.join(name(&digest));
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::rename(&kept, &target)?;
            sync_dir(&dir)
        })
        .await
        .expect("staging does not panic")?;
        Ok(Written {
            size,
            md5_hex: digest,
        })
    }

    /// Stores a whole object (replacing one of the same name); `content_md5` is the request's
    /// `Content-MD5` (raw digest), checked before anything is kept.
    pub async fn put<S, E>(
        &self,
        upload_id: &str,
        object: &str,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        assert!(valid_name(object), "object names are ours");
        self.receive(
            self.upload_dir(upload_id),
            |_| object.to_owned(),
            body,
            max,
            content_md5,
        )
        .await
    }

    /// Starts a multipart upload of `object`; returns its id.
    pub async fn create_multipart(
        &self,
        upload_id: &str,
        object: &str,
    ) -> Result<String, ObjectError> {
        assert!(valid_name(object), "object names are ours");
        let id = crate::id::random_id();
        let dir = self.multipart_dir(upload_id, &id);
        let object = object.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), ObjectError> {
            write_durably(&dir, "object", |file| {
                file.write_all(object.as_bytes())?;
                Ok(object.len() as u64)
            })?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await
        .expect("staging does not panic")?;
        Ok(id)
    }

    fn read_multipart(dir: &Path, id: &str) -> Option<Multipart> {
        let object = std::fs::read_to_string(dir.join("object")).ok()?;
        let meta = std::fs::metadata(dir.join("object")).ok()?;
        Some(Multipart {
            id: id.to_owned(),
            object,
            initiated_unix: modified_unix(&meta),
        })
    }

    /// The multipart upload `multipart_id` of this upload, if it is unfinished.
    pub async fn multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<Multipart, ObjectError> {
        let missing = || ObjectError::NoSuchUpload(multipart_id.to_owned());
        if !valid_name(multipart_id) {
            return Err(missing());
        }
        let dir = self.multipart_dir(upload_id, multipart_id);
        let id = multipart_id.to_owned();
        tokio::task::spawn_blocking(move || Self::read_multipart(&dir, &id))
            .await
            .expect("staging does not panic")
            .ok_or_else(missing)
    }

    /// Every unfinished multipart upload of this upload, oldest first.
    pub async fn list_multiparts(&self, upload_id: &str) -> Result<Vec<Multipart>, ObjectError> {
        let dir = self.upload_dir(upload_id);
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_prefix("mp-") {
                    if let Some(m) = Self::read_multipart(&entry.path(), id) {
                        out.push(m);
                    }
                }
            }
            out.sort_by(|a, b| (a.initiated_unix, &a.id).cmp(&(b.initiated_unix, &b.id)));
            Ok(out)
        })
        .await
        .expect("staging does not panic")
    }

    /// Stores one part (replacing an earlier part of the same number).
    pub async fn put_part<S, E>(
        &self,
        upload_id: &str,
        multipart_id: &str,
        number: u32,
        body: S,
        max: u64,
        content_md5: Option<Vec<u8>>,
    ) -> Result<Written, ObjectError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(ObjectError::InvalidPartNumber(number));
        }
        self.multipart(upload_id, multipart_id).await?;
        let dir = self.multipart_dir(upload_id, multipart_id);
        // The part's MD5 is in its name, so listing parts reads no data.
        let written = self
            .receive(
                dir.clone(),
                |md5| format!("part-{number:05}-{md5}"),
                body,
                max,
                content_md5,
            )
            .await?;
        // An earlier version of the same part (a retry) stays until the upload completes or is
        // aborted: listing shows the newest, completing takes the one whose ETag is named.
        Ok(written)
    }

    /// The parts received so far, by number (the newest version of a part sent twice).
    pub async fn list_parts(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<Vec<Part>, ObjectError> {
        let mut parts = self.all_parts(upload_id, multipart_id).await?;
        parts.sort_by(|a, b| (a.number, b.modified_unix).cmp(&(b.number, a.modified_unix)));
        parts.dedup_by_key(|p| p.number);
        Ok(parts)
    }

    /// Every stored version of every part.
    async fn all_parts(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<Vec<Part>, ObjectError> {
        self.multipart(upload_id, multipart_id).await?;
        let dir = self.multipart_dir(upload_id, multipart_id);
        tokio::task::spawn_blocking(move || -> Result<Vec<Part>, ObjectError> {
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some((number, md5)) = name
                    .strip_prefix("part-")
                    .and_then(|rest| rest.split_once('-'))
                    .filter(|(_, md5)| {
                        md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                    .and_then(|(n, md5)| Some((n.parse::<u32>().ok()?, md5.to_owned())))
                else {
                    continue;
                };
                let meta = entry.metadata()?;
                parts.push(Part {
                    number,
                    size: meta.len(),
                    md5_hex: md5,
                    modified_unix: modified_unix(&meta),
                });
            }
            Ok(parts)
        })
        .await
        .expect("staging does not panic")
    }

    /// Joins the listed parts (ascending numbers, each with the ETag it was answered with) into
    /// the object, then forgets the multipart upload. Returns the object's size and the
    /// multipart ETag (`md5(part digests)-count`, as S3 and COS compute it).
    pub async fn complete_multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
        listed: &[(u32, String)],
    ) -> Result<(u64, String), ObjectError> {
        let multipart = self.multipart(upload_id, multipart_id).await?;
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let parts = self.all_parts(upload_id, multipart_id).await?;
        let mut files = Vec::with_capacity(listed.len());
        let mut digests = Md5::new();
        for (number, etag) in listed {
            let etag = etag.trim_matches('"').to_ascii_lowercase();
            let part = parts
                .iter()
                .find(|p| p.number == *number && p.md5_hex == etag)
                .ok_or(ObjectError::InvalidPart(*number))?;
            digests
                .update(hex::decode(&part.md5_hex).map_err(|_| ObjectError::InvalidPart(*number))?);
            files.push(
                self.multipart_dir(upload_id, multipart_id)
                    .join(format!("part-{number:05}-{}", part.md5_hex)),
            );
        }
        let etag = format!("{}-{}", hex::encode(digests.finalize()), listed.len());
        let dir = self.upload_dir(upload_id);
        let mp_dir = self.multipart_dir(upload_id, multipart_id);
        let size = tokio::task::spawn_blocking(move || -> Result<u64, ObjectError> {
            let size = concatenate(&dir, &multipart.object, &files)?;
            std::fs::remove_dir_all(&mp_dir)?;
            sync_dir(&dir)?;
            Ok(size)
        })
        .await
        .expect("staging does not panic")?;
        Ok((size, etag))
    }

    pub async fn abort_multipart(
        &self,
        upload_id: &str,
        multipart_id: &str,
    ) -> Result<(), ObjectError> {
        self.multipart(upload_id, multipart_id).await?;
        tokio::fs::remove_dir_all(self.multipart_dir(upload_id, multipart_id)).await?;
        Ok(())
    }

    /// Removes everything staged for the upload.
    pub async fn remove(&self, upload_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes the concatenation of `sources` to `dir/name` durably (the kernel copies: `io::copy`
/// between files uses `copy_file_range` on Linux); returns its size.
fn concatenate(dir: &Path, name: &str, sources: &[PathBuf]) -> Result<u64, ObjectError> {
    write_durably(dir, name, |out| {
        let mut size = 0;
        for source in sources {
            size += std::io::copy(&mut std::fs::File::open(source)?, out)?;
        }
        Ok(size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn whole_objects_and_parts_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let staging = ObjectStaging::new(dir.path().to_owned());
        let w = staging
            .put("u1", "cover.jpg", body(&[b"ab", b"c"]), 10, None)
            .await
            .unwrap();
        assert_eq!(w.size, 3);
        assert_eq!(w.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
        assert!(matches!(
            staging
                .put("u1", "cover.jpg", body(&[b"abc"]), 10, Some(vec![0; 16]))
                .await,
            Err(ObjectError::BadDigest)
        ));
        assert!(matches!(
            staging
                .put("u1", "big.bin", body(&[b"0123456789ab"]), 10, None)
                .await,
            Err(ObjectError::TooLarge(10))
        ));
        assert!(staging.path("u1", "big.bin").await.is_none());
        let kept = std::fs::read(staging.path("u1", "cover.jpg").await.unwrap()).unwrap();
        assert_eq!(kept, b"abc", "a refused write leaves the stored object");

        let mp = staging.create_multipart("u1", "media.mp4").await.unwrap();
        let second = staging
            .put_part("u1", &mp, 2, body(&[b"world"]), 100, None)
            .await
            .unwrap();
        let first = staging
            .put_part("u1", &mp, 1, body(&[b"hello "]), 100, None)
            .await
            .unwrap();
        // A part sent again with other bytes: listed once (the newest), either version completes.
        let retried = staging
            .put_part("u1", &mp, 2, body(&[b"WORLD"]), 100, None)
            .await
            .unwrap();
        assert_ne!(retried.md5_hex, second.md5_hex);
        let parts = staging.list_parts("u1", &mp).await.unwrap();
        assert_eq!(
            parts.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(),
            vec![(1, 6), (2, 5)]
        );
        assert_eq!(
            staging.list_multiparts("u1").await.unwrap()[0].object,
            "media.mp4"
        );
        let wrong = vec![(1, first.md5_hex.clone()), (2, "0".repeat(32))];
        assert!(matches!(
            staging.complete_multipart("u1", &mp, &wrong).await,
            Err(ObjectError::InvalidPart(2))
        ));
        let backwards = vec![(2, second.md5_hex.clone()), (1, first.md5_hex.clone())];
        assert!(matches!(
            staging.complete_multipart("u1", &mp, &backwards).await,
            Err(ObjectError::InvalidPartOrder)
        ));
        let listed = vec![
            (1, format!("\"{}\"", first.md5_hex)),
            (2, second.md5_hex.clone()),
        ];
        let (size, etag) = staging
            .complete_multipart("u1", &mp, &listed)
            .await
            .unwrap();
        assert_eq!(size, 11);
        assert!(etag.ends_with("-2"));
        let media = std::fs::read(staging.path("u1", "media.mp4").await.unwrap()).unwrap();
        assert_eq!(media, b"hello world");
        assert!(matches!(
            staging.list_parts("u1", &mp).await,
            Err(ObjectError::NoSuchUpload(_))
        ));
        assert!(staging.list_multiparts("u1").await.unwrap().is_empty());
        assert!(matches!(
            staging
                .put_part("u1", "../x", 1, body(&[b"x"]), 10, None)
                .await,
            Err(ObjectError::NoSuchUpload(_))
        ));

        staging.remove("u1").await.unwrap();
        assert!(staging.path("u1", "media.mp4").await.is_none());
    }
}

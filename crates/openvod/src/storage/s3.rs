//! Media in an S3-compatible object store (`[storage] url = "s3://bucket/prefix"`): AWS S3, MinIO,
//! Ceph, SeaweedFS, ... Objects are written whole or with a multipart upload of 6 MiB parts sent
//! in order (one part in memory), read as ranged GETs of bounded size streamed one after the other, and a
//! prefix is deleted by listing it. A write returns once the store has acknowledged it, which is
//! S3's durability.

use futures_util::StreamExt;
use std::path::Path;
use tokio::io::AsyncWriteExt;

use async_trait::async_trait;
use bytes::Bytes;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};

use super::{LocalFile, MediaInput, StorageError, Store, StoreKey, StoredObject};
use crate::config::StorageConfig;

/// Largest piece fetched by one ranged GET while streaming: memory stays bounded whatever is read.
const READ_PIECE: u64 = 8 << 20;
/// Size of each part of a multipart write (S3's minimum is 5 MiB; 8,534 parts for the default 50 GiB
/// upload limit, within its 10,000), and the largest single PUT. rust-s3 copies each part it sends,
/// so a part in flight costs twice this.
const WRITE_PART: u64 = 6 << 20;
/// Parts of one object being sent at once.
const PARTS_IN_FLIGHT: usize = 2;

pub struct S3Store {
    bucket: Box<Bucket>,
    /// Key prefix inside the bucket, without a leading slash, ending with `/` (or empty).
    prefix: String,
    /// Large reads go to presigned URLs (`[storage] redirect_reads`).
    redirect_reads: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    #[error("[storage] url must be s3://bucket[/prefix], got {0:?}")]
    Url(String),
    #[error("[storage] needs an endpoint for an S3-compatible server (or region for AWS)")]
    Endpoint,
    #[error("S3 credentials: {0}")]
    Credentials(String),
}

fn io(key: &StoreKey, e: impl std::fmt::Display) -> StorageError {
    StorageError::Io {
        key: key.as_str().to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// A request's final error: still transient after every retry means the store is unavailable.
fn s3(key: &StoreKey, e: S3Error) -> StorageError {
    if transient(&e) {
        StorageError::Unavailable {
            key: key.as_str().to_owned(),
            reason: e.to_string(),
        }
    } else {
        io(key, e)
    }
}

/// The next part of a file being written (empty at its end).
async fn read_part(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut part = Vec::with_capacity(WRITE_PART as usize);
    (&mut *file).take(WRITE_PART).read_to_end(&mut part).await?;
    Ok(part)
}

/// Part `number` (from 1) of the file at `source`, read again for a retry.
async fn read_part_at(source: &Path, number: u32) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncSeekExt;
    let mut file = tokio::fs::File::open(source).await?;
    file.seek(std::io::SeekFrom::Start(u64::from(number - 1) * WRITE_PART))
        .await?;
    read_part(&mut file).await
}

fn not_found(e: &S3Error) -> bool {
    matches!(e, S3Error::HttpFailWithBody(404, _))
}

/// Attempts of one request before its error is returned: a reset connection, a cut or lost
/// answer, or a busy server is tried again (each request we send is idempotent, see `retrying`).
const ATTEMPTS: u32 = 5;

/// Whether an error may pass if the same request is sent again: a failure of the network or of
/// the server, not an answer about the request itself.
fn transient(e: &S3Error) -> bool {
    match e {
        S3Error::HttpFailWithBody(status, _) => matches!(status, 408 | 429 | 500..=599),
        S3Error::HttpFail
        | S3Error::Io(_)
        | S3Error::Reqwest(_)
        | S3Error::SerdeXml(_)
        | S3Error::Utf8(_)
        | S3Error::FromUtf8(_) => true,
        _ => false,
    }
}

/// Runs `request` until it succeeds, fails for a reason a retry cannot change, or has been tried
/// `ATTEMPTS` times, waiting 100 ms, 200 ms, 400 ms, ... between tries. Only requests that give
/// the same result when repeated go through here: whole-object PUTs, part PUTs, GETs, HEADs,
/// DELETEs, listings; a repeated initiate leaves at most an unused upload id, and completion is
/// checked by `complete_multipart` when its answer was lost.
async fn retrying<T, F, Fut>(mut request: F) -> Result<T, S3Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, S3Error>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tracing::warn!(error = %e, attempt, "object store request failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 << (attempt - 1))).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// A multipart upload open on a key: its id and when it began (the server's clock), if the
/// listing said so in RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub id: String,
    pub initiated: Option<time::OffsetDateTime>,
}

impl S3Store {
    /// Aborts the uploads open on `key` that began while our initiation was being tried: from
    /// `trying` before `ours` began (by the server's clock, with a second's margin) up to it.
    /// `ours` is kept, and so is any upload begun before our first try (another writer's).
    async fn abort_leftovers(
        &self,
        key: &StoreKey,
        path: &str,
        ours: &str,
        trying: std::time::Duration,
    ) {
        let open = match self.uploads_in_progress(key).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(key = %key.as_str(), error = %e, "listing leftover uploads");
                return;
            }
        };
        let Some(began) = open.iter().find(|u| u.id == ours).and_then(|u| u.initiated) else {
            return;
        };
        let from = began - trying - std::time::Duration::from_secs(1);
        let leftovers = open
            .iter()
            .filter(|u| u.id != ours && u.initiated.is_some_and(|at| from <= at && at <= began));
        for left in leftovers {
            let _ = retrying(|| self.bucket.abort_upload(path, &left.id)).await;
        }
    }

    pub fn new(config: &StorageConfig) -> Result<S3Store, S3ConfigError> {
        let url = config.url.as_deref().unwrap_or_default();
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| S3ConfigError::Url(url.to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3ConfigError::Url(url.to_owned()));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let region_name = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let region = match &config.endpoint {
            Some(endpoint) => Region::Custom {
                region: region_name,
                endpoint: endpoint.trim_end_matches('/').to_owned(),
            },
            None => region_name.parse().map_err(|_| S3ConfigError::Endpoint)?,
        };
        // From the config, else the usual AWS environment variables and files.
        let credentials = Credentials::new(
            config.access_key_id.as_deref(),
            config.secret_access_key.as_deref(),
            None,
            None,
            None,
        )
        .map_err(|e| S3ConfigError::Credentials(e.to_string()))?;
        let mut bucket = Bucket::new(bucket, region, credentials)
            .map_err(|e| S3ConfigError::Credentials(e.to_string()))?;
        if config.path_style {
            bucket = bucket.with_path_style();
        }
        Ok(S3Store {
            bucket,
            prefix,
            redirect_reads: config.redirect_reads,
        })
    }

    /// Creates the bucket if it does not exist (for a fresh test server or a first start).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        let probe = StoreKey::parse("bucket").expect("a valid key");
        match retrying(|| self.bucket.exists()).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                let credentials = self.bucket.credentials().await.map_err(|e| io(&probe, e))?;
                let created = retrying(|| {
                    Bucket::create_with_path_style(
                        &self.bucket.name,
                        self.bucket.region.clone(),
                        credentials.clone(),
                        s3::BucketConfiguration::default(),
                    )
                })
                .await;
                match created {
                    Ok(_) => Ok(()),
                    // A create whose answer was lost, tried again: the bucket is there.
                    Err(_) if matches!(retrying(|| self.bucket.exists()).await, Ok(true)) => Ok(()),
                    Err(e) => Err(s3(&probe, e)),
                }
            }
            Err(e) => Err(s3(&probe, e)),
        }
    }

    /// Completes a multipart upload. When the answer to a completion was lost, the upload id is
    /// gone on the next try (404): the object is then checked to be there at its full size.
    async fn complete_multipart(
        &self,
        key: &StoreKey,
        path: &str,
        upload_id: &str,
        parts: Vec<s3::serde_types::Part>,
        size: u64,
    ) -> Result<(), StorageError> {
        let mut completed_once = false;
        let done = retrying(|| {
            let tried_before = std::mem::replace(&mut completed_once, true);
            let parts = parts.clone();
            async move {
                match self
                    .bucket
                    .complete_multipart_upload(path, upload_id, parts)
                    .await
                {
                    Err(e) if tried_before && not_found(&e) => Ok(None),
                    other => other.map(Some),
                }
            }
        })
        .await
        .map_err(|e| s3(key, e))?;
        if done.is_none() && self.size(key).await? != Some(size) {
            return Err(io(key, "the multipart upload vanished before completing"));
        }
        Ok(())
    }

    fn path(&self, key: &StoreKey) -> String {
        format!("/{}{}", self.prefix, key.as_str())
    }

    /// The multipart uploads open on `key` (the first 1,000, which is all a key ever has).
    /// Asked through a presigned GET and read here: rust-s3's own listing insists on a
    /// `StorageClass` that SeaweedFS and others leave out.
    pub async fn uploads_in_progress(
        &self,
        key: &StoreKey,
    ) -> Result<Vec<OpenUpload>, StorageError> {
        let name = self.path(key).trim_start_matches('/').to_owned();
        let queries = [("uploads", ""), ("prefix", name.as_str())]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let url = self
            .bucket
            .presign_get("/", 60, Some(queries))
            .await
            .map_err(|e| io(key, e))?;
        let unavailable = |reason: String| StorageError::Unavailable {
            key: key.as_str().to_owned(),
            reason,
        };
        let answer = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(e.to_string()))?
            .text()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let doc = roxmltree::Document::parse(&answer).map_err(|e| io(key, e))?;
        let child = |node: roxmltree::Node<'_, '_>, tag: &str| {
            node.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .map(str::to_owned)
        };
        Ok(doc
            .descendants()
            .filter(|n| n.has_tag_name("Upload"))
            .filter(|u| {
                child(*u, "Key")
                    .as_deref()
                    .map(|k| k.trim_start_matches('/'))
                    == Some(&name)
            })
            .filter_map(|u| {
                Some(OpenUpload {
                    id: child(u, "UploadId")?,
                    initiated: child(u, "Initiated").and_then(|at| {
                        time::OffsetDateTime::parse(
                            &at,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    }),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Store for S3Store {
    async fn put_file(&self, key: &StoreKey, source: &Path) -> Result<u64, StorageError> {
        let mut file = tokio::fs::File::open(source)
            .await
            .map_err(|e| io(key, e))?;
        let size = file.metadata().await.map_err(|e| io(key, e))?.len();
        let path = self.path(key);
        let content_type = "application/octet-stream";
        // One part in memory at a time, sent in order: memory stays bounded whatever the size.
        if size <= WRITE_PART {
            let body = read_part(&mut file).await.map_err(|e| io(key, e))?;
            retrying(|| {
                self.bucket
                    .put_object_with_content_type(&path, &body, content_type)
            })
            .await
            .map_err(|e| s3(key, e))?;
        } else {
            let mut initiations = 0;
            let trying = std::time::Instant::now();
            let upload = retrying(|| {
                initiations += 1;
                self.bucket.initiate_multipart_upload(&path, content_type)
            })
            .await
            .map_err(|e| s3(key, e))?;
            // An initiation whose answer was lost, then retried, left an upload nobody will
            // complete (its parts would cost storage until aborted): those begun while we were
            // trying are such leftovers. Only those, and only after a retry: another writer's
            // upload of the key (a fenced late worker's) is left alone.
            if initiations > 1 {
                self.abort_leftovers(key, &path, &upload.upload_id, trying.elapsed())
                    .await;
            }
            let sent = async {
                // Parts are read in order and sent `PARTS_IN_FLIGHT` at a time (as S3 clients
                // do): memory stays bounded and the link stays busy between round trips.
                let mut in_flight = futures_util::stream::FuturesUnordered::new();
                let mut parts = Vec::new();
                for number in 1.. {
                    if in_flight.len() == PARTS_IN_FLIGHT {
                        if let Some(part) = in_flight.next().await {
                            parts.push(part?);
                        }
                    }
                    let body = read_part(&mut file).await.map_err(|e| io(key, e))?;
                    if body.is_empty() {
                        break;
                    }
                    let (bucket, path, upload_id) =
                        (self.bucket.clone(), path.clone(), upload.upload_id.clone());
                    in_flight.push(async move {
                        // The first try sends the part read above; a retry reads it again from
                        // the file rather than keeping a second copy of every part in memory.
                        let mut first = Some(body);
                        retrying(|| {
                            let (bucket, path, upload_id) = (&bucket, &path, &upload_id);
                            let body = first.take();
                            async move {
                                let body = match body {
                                    Some(body) => body,
                                    None => read_part_at(source, number).await?,
                                };
                                bucket
                                    .put_multipart_chunk(
                                        body,
                                        path,
                                        number,
                                        upload_id,
                                        content_type,
                                    )
                                    .await
                            }
                        })
                        .await
                        .map_err(|e| s3(key, e))
                    });
                }
                while let Some(part) = in_flight.next().await {
                    parts.push(part?);
                }
                parts.sort_by_key(|p| p.part_number);
                self.complete_multipart(key, &path, &upload.upload_id, parts, size)
                    .await
            }
            .await;
            if let Err(e) = sent {
                // Parts already sent are not left behind (they cost storage until aborted).
                let _ = self.bucket.abort_upload(&path, &upload.upload_id).await;
                return Err(e);
            }
        }
        // As the local store does, the source is consumed.
        tokio::fs::remove_file(source)
            .await
            .map_err(|e| io(key, e))?;
        Ok(size)
    }

    async fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let path = self.path(key);
        match retrying(|| self.bucket.head_object(&path)).await {
            Ok((head, _)) => Ok(head.content_length.map(|l| l.max(0) as u64)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(s3(key, e)),
        }
    }

    async fn get(
        &self,
        key: &StoreKey,
        start: u64,
        end: Option<u64>,
    ) -> Result<StoredObject, StorageError> {
        let len = self
            .size(key)
            .await?
            .ok_or_else(|| StorageError::NotFound(key.as_str().to_owned()))?;
        let end = end.unwrap_or(len).min(len);
        let bucket = self.bucket.clone();
        let path = self.path(key);
        let key_name = key.clone();
        // One bounded ranged GET after the other, as the reader asks for more.
        let body = futures_util::stream::try_unfold(start, move |at| {
            let (bucket, path, key) = (bucket.clone(), path.clone(), key_name.clone());
            async move {
                if at >= end {
                    return Ok(None);
                }
                let last = (at + READ_PIECE).min(end) - 1;
                let data = retrying(|| bucket.get_object_range(&path, at, Some(last)))
                    .await
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", key.as_str())))?;
                let bytes = Bytes::from(data.to_vec());
                let next = at + bytes.len() as u64;
                if bytes.is_empty() {
                    return Err(std::io::Error::other("the object ended early"));
                }
                Ok(Some((bytes, next)))
            }
        });
        Ok(StoredObject {
            len,
            body: Box::pin(body),
        })
    }

    async fn local_file(&self, key: &StoreKey) -> Result<LocalFile, StorageError> {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| io(key, e))?;
        let path = self.path(key);
        let got = retrying(|| async {
            // Each try starts the file again: a cut answer leaves no partial bytes behind.
            let mut file = tokio::fs::File::create(tmp.path()).await?;
            let status = self.bucket.get_object_to_writer(&path, &mut file).await?;
            // tokio's File finishes writes in the background: without this, a reader opening
            // the path right away may see a short file.
            file.flush().await?;
            Ok(status)
        })
        .await;
        match got {
            Ok(200) => Ok(LocalFile::Temporary(tmp.into_temp_path())),
            Ok(404) => Err(StorageError::NotFound(key.as_str().to_owned())),
            Ok(status) => Err(io(key, format!("GET answered {status}"))),
            Err(e) if not_found(&e) => Err(StorageError::NotFound(key.as_str().to_owned())),
            Err(e) => Err(s3(key, e)),
        }
    }

    async fn media_input(&self, key: &StoreKey, secs: u32) -> Result<MediaInput, StorageError> {
        if self.size(key).await?.is_none() {
            return Err(StorageError::NotFound(key.as_str().to_owned()));
        }
        // SigV4 presigned URLs last at most 7 days.
        let url = self
            .bucket
            .presign_get(self.path(key), secs.clamp(60, 7 * 24 * 3600), None)
            .await
            .map_err(|e| io(key, e))?;
        Ok(MediaInput::Url(url))
    }

    async fn presigned_get(
        &self,
        key: &StoreKey,
        secs: u32,
    ) -> Result<Option<String>, StorageError> {
        if !self.redirect_reads {
            return Ok(None);
        }
        Ok(Some(
            self.bucket
                .presign_get(self.path(key), secs, None)
                .await
                .map_err(|e| io(key, e))?,
        ))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        if !key.as_str().ends_with('/') {
            let path = self.path(key);
            return match retrying(|| self.bucket.delete_object(&path)).await {
                Err(e) if !not_found(&e) => Err(s3(key, e)),
                _ => Ok(()),
            };
        }
        let prefix = format!("{}{}", self.prefix, key.as_str());
        let pages = retrying(|| self.bucket.list(prefix.clone(), None))
            .await
            .map_err(|e| s3(key, e))?;
        for object in pages.iter().flat_map(|p| &p.contents) {
            let path = format!("/{}", object.key);
            match retrying(|| self.bucket.delete_object(&path)).await {
                Err(e) if !not_found(&e) => return Err(s3(key, e)),
                _ => {}
            }
        }
        Ok(())
    }
}

//! Copies what a published recording references into a local folder: from its HTTP folder
//! (`https://HOST/presentation/RECORD_ID/`) under the outbound address policy, or from another
//! folder. Bounded parallelism, retries on transient failures, a size limit per kind of file.
//!
//! Each file is written as `NAME.part` and renamed when complete, so a file present in the target
//! is whole: a re-run into the same `--keep-assets` folder downloads only what is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::try_join_all;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::recording::{
    first_present, parse_captions, parse_deskshare, parse_shapes, DESKSHARE_FILES, MEDIA_FILES,
    OPTIONAL_FILES,
};
use super::xml::MAX_XML_BYTES;
use super::BbbError;
use crate::outbound::Outbound;

/// Downloads at once (files are fetched in batches of this size).
const PARALLEL: usize = 4;
const ATTEMPTS: u32 = 3;
const MAX_IMAGE_BYTES: u64 = 64 << 20;
const MAX_MEDIA_BYTES: u64 = 16 << 30;

pub enum Fetcher<'a> {
    Http {
        outbound: &'a Outbound,
        base: url::Url,
    },
    Local(PathBuf),
}

impl<'a> Fetcher<'a> {
    pub fn http(outbound: &'a Outbound, base: url::Url) -> Fetcher<'a> {
        Fetcher::Http { outbound, base }
    }

    pub fn local(dir: PathBuf) -> Fetcher<'static> {
        Fetcher::Local(dir)
    }

    /// Copies the first of the media files `names` the recording has (the player's order of
    /// preference); `Ok(false)` when it has none.
    async fn get_first(&self, names: &[&str], dest: &Path) -> Result<bool, BbbError> {
        if first_present(dest, names).is_some() {
            return Ok(true);
        }
        for name in names {
            if self.get(name, dest, MAX_MEDIA_BYTES).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Copies `rel` into `dest`; `Ok(false)` when the recording has no such file.
    async fn get(&self, rel: &str, dest: &Path, limit: u64) -> Result<bool, BbbError> {
        let target = dest.join(rel);
        if target.is_file() {
            return Ok(true);
        }
        let parent = target.parent().unwrap_or(dest);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| BbbError::io(parent, e))?;
        let part = target.with_file_name(format!(
            "{}.part",
            target.file_name().unwrap_or_default().to_string_lossy()
        ));
        let found = match self {
            Fetcher::Local(dir) => {
                let source = dir.join(rel);
                match tokio::fs::metadata(&source).await {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => return Err(BbbError::io(&source, e)),
                    Ok(m) if !m.is_file() => false,
                    Ok(m) if m.len() > limit => {
                        return Err(BbbError::TooLarge {
                            file: rel.to_owned(),
                            limit,
                        })
                    }
                    Ok(_) => {
                        tokio::fs::copy(&source, &part)
                            .await
                            .map_err(|e| BbbError::io(&source, e))?;
                        true
                    }
                }
            }
            Fetcher::Http { outbound, base } => {
                let url = base.join(rel).map_err(|_| BbbError::UnsafePath {
                    file: rel.to_owned(),
                    href: rel.to_owned(),
                })?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match download(outbound, &url, rel, &part, limit).await {
                        Ok(found) => break found,
                        Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                            tracing::warn!(%url, attempt, error = %e, "download failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt)))
                                .await;
                        }
                        Err(e) => {
                            let _ = tokio::fs::remove_file(&part).await;
                            return Err(e);
                        }
                    }
                }
            }
        };
        if found {
            tokio::fs::rename(&part, &target)
                .await
                .map_err(|e| BbbError::io(&target, e))?;
        }
        Ok(found)
    }
}

async fn download(
    outbound: &Outbound,
    url: &url::Url,
    rel: &str,
    part: &Path,
    limit: u64,
) -> Result<bool, BbbError> {
    let transient = |reason: String| BbbError::Download {
        url: url.to_string(),
        reason,
    };
    if !outbound.literal_ip_allowed(url) {
        return Err(BbbError::DownloadPermanent {
            url: url.to_string(),
            reason: "the address is internal, which [outbound] does not allow".to_owned(),
        });
    }
    let response = outbound
        .client()
        .get(url.clone())
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| transient(crate::assets::describe_reqwest(&e)))?;
    let status = response.status();
    if matches!(status.as_u16(), 404 | 410) {
        return Ok(false);
    }
    if !status.is_success() {
        let reason = format!("HTTP {status}");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            transient(reason)
        } else {
            BbbError::DownloadPermanent {
                url: url.to_string(),
                reason,
            }
        });
    }
    let too_large = || BbbError::TooLarge {
        file: rel.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| BbbError::io(part, e))?;
    let mut size = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| transient(crate::assets::describe_reqwest(&e)))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| BbbError::io(part, e))?;
    }
    file.sync_all().await.map_err(|e| BbbError::io(part, e))?;
    Ok(true)
}

/// Copies the recording into `dest`; returns warnings about optional files that are missing.
pub async fn fetch_recording(fetcher: &Fetcher<'_>, dest: &Path) -> Result<Vec<String>, BbbError> {
    if let Fetcher::Http { outbound, base } = fetcher {
        outbound.check_url(base.as_str()).await?;
    }
    let xml_limit = MAX_XML_BYTES as u64;
    for required in ["metadata.xml", "shapes.svg"] {
        if !fetcher.get(required, dest, xml_limit).await? {
            return Err(BbbError::Missing(required.to_owned()));
        }
    }
    for names in OPTIONAL_FILES.chunks(PARALLEL) {
        try_join_all(names.iter().map(|name| fetcher.get(name, dest, xml_limit))).await?;
    }
    let read = |name: &str| std::fs::read_to_string(dest.join(name)).ok();
    let shapes = read("shapes.svg").unwrap_or_default();
    let board = parse_shapes(&shapes)?;
    let mut warnings = Vec::new();

    if !fetcher.get_first(&MEDIA_FILES, dest).await? {
        return Err(BbbError::Missing(format!(
            "audio ({})",
            MEDIA_FILES.join(", ")
        )));
    }
    let has_deskshare = read("deskshare.xml")
        .map(|t| parse_deskshare(&t))
        .transpose()?
        .is_some_and(|periods| !periods.is_empty());
    if has_deskshare && !fetcher.get_first(&DESKSHARE_FILES, dest).await? {
        warnings.push("the screenshare video is missing; rendered without it".to_owned());
    }

    // Every bitmap the whiteboard shows is required; captions are optional.
    let images: Vec<&String> = board.images.iter().collect();
    for batch in images.chunks(PARALLEL) {
        let found = try_join_all(
            batch
                .iter()
                .map(|rel| fetcher.get(rel, dest, MAX_IMAGE_BYTES)),
        )
        .await?;
        if let Some((rel, _)) = batch.iter().zip(found).find(|(_, found)| !found) {
            return Err(BbbError::Missing((*rel).clone()));
        }
    }
    if let Some(text) = read("captions.json") {
        for caption in parse_captions(&text)? {
            if !fetcher.get(&caption.file, dest, xml_limit).await? {
                warnings.push(format!("{} is missing; skipped", caption.file));
            }
        }
    }
    Ok(warnings)
}

//! The remote worker: long-polls the server for jobs it can run, downloads their inputs, runs
//! ffmpeg, uploads the results and reports. It heartbeats while it works and stops a job whose
//! lease the server says is lost (the job was taken over); killed, it loses only its lease.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::{Assignment, ClaimRequest, FinishRequest, AUDIO_START_HEADER, LEASE_HEADER};
use crate::media::ffmpeg::Priority;
use crate::pipeline::media_playlist_segments;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the server at {0} is not reachable: {1}")]
    Unreachable(String, String),
    #[error("the server answered {0}: {1}")]
    Server(u16, String),
    #[error("the job's lease was lost")]
    LeaseLost,
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error("scratch I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct RemoteWorker {
    server: url::Url,
    token_id: String,
    token_secret: String,
    client: reqwest::Client,
    ffmpeg: PathBuf,
    scratch_dir: PathBuf,
}

impl RemoteWorker {
    /// `token` is an access token as `ID:SECRET`.
    pub fn new(
        server: url::Url,
        token: &str,
        ffmpeg: PathBuf,
        scratch_dir: PathBuf,
    ) -> Option<RemoteWorker> {
        let (id, secret) = token.split_once(':')?;
        Some(RemoteWorker {
            server,
            token_id: id.to_owned(),
            token_secret: secret.to_owned(),
            client: reqwest::Client::new(),
            ffmpeg,
            scratch_dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.server.as_str().trim_end_matches('/'))
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        lease: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, self.url(path))
            .basic_auth(&self.token_id, Some(&self.token_secret));
        if let Some(lease) = lease {
            request = request.header(LEASE_HEADER, lease);
        }
        request
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, WorkerError> {
        let response = request
            .send()
            .await
            .map_err(|e| WorkerError::Unreachable(self.server.to_string(), e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::CONFLICT {
            return Err(WorkerError::LeaseLost);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(WorkerError::Server(status.as_u16(), body));
        }
        Ok(response)
    }

    /// Runs jobs until `cancel` fires; a job still running then is dropped (its ffmpeg killed)
    /// and left to its lease.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let step = tokio::select! {
                _ = cancel.cancelled() => return,
                step = self.run_one() => step,
            };
            if let Err(e) = step {
                tracing::warn!(error = %e, "remote worker");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }

    /// Waits for one job and runs it; `Ok(false)` when none came.
    pub async fn run_one(&self) -> Result<bool, WorkerError> {
        let claim = ClaimRequest {
            kinds: crate::jobs::REMOTE_KINDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            wait_secs: 20,
        };
        let response = self
            .send(
                self.request(reqwest::Method::POST, "openvod/v1/worker-jobs/claim", None)
                    .timeout(Duration::from_secs(super::MAX_WAIT_SECS + 30))
                    .json(&claim),
            )
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(false);
        }
        #[derive(serde::Deserialize)]
        struct Data {
            data: Assignment,
        }
        let job = response
            .json::<Data>()
            .await
            .map_err(|e| WorkerError::Server(200, format!("not an assignment: {e}")))?
            .data;
        tracing::info!(job_id = job.id, kind = %job.kind, asset_id = %job.asset_id, "remote job");
        let lost = CancellationToken::new();
        let _heartbeat = {
            let (worker, lost, id, lease) =
                (self.clone(), lost.clone(), job.id, job.lease_token.clone());
            let every = Duration::from_secs_f64(job.lease_secs.max(3) as f64 / 3.0);
            AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let path = format!("openvod/v1/worker-jobs/{id}/heartbeat");
                    match worker
                        .send(worker.request(reqwest::Method::POST, &path, Some(&lease)))
                        .await
                    {
                        Ok(_) => {}
                        Err(WorkerError::LeaseLost) => {
                            lost.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(job_id = id, error = %e, "heartbeat failed"),
                    }
                }
            }))
        };
        let outcome = tokio::select! {
            _ = lost.cancelled() => Err(WorkerError::LeaseLost),
            outcome = self.work(&job) => outcome,
        };
        let error = match outcome {
            Ok(()) => None,
            Err(WorkerError::LeaseLost) => {
                tracing::warn!(job_id = job.id, "lease lost; the job is someone else's now");
                return Ok(true);
            }
            Err(e) => Some(e.to_string()),
        };
        let path = format!("openvod/v1/worker-jobs/{}/finish", job.id);
        self.send(
            self.request(reqwest::Method::POST, &path, Some(&job.lease_token))
                .timeout(Duration::from_secs(600))
                .json(&FinishRequest { error }),
        )
        .await?;
        tracing::info!(job_id = job.id, "remote job done");
        Ok(true)
    }

    async fn work(&self, job: &Assignment) -> Result<(), WorkerError> {
        std::fs::create_dir_all(&self.scratch_dir)?;
        let scratch = tempfile::Builder::new()
            .prefix("remote-")
            .tempdir_in(&self.scratch_dir)?;
        let base = format!("openvod/v1/worker-jobs/{}", job.id);
        let lease = Some(job.lease_token.as_str());
        let input = scratch.path().join("input");
        self.download(&format!("{base}/input"), lease, &input)
            .await?;
        let audio = if job.piece.plan.has_audio {
            let response = self
                .send(self.request(reqwest::Method::GET, &format!("{base}/audio"), lease))
                .await?;
            let start: f64 = response
                .headers()
                .get(AUDIO_START_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| WorkerError::Server(200, format!("no {AUDIO_START_HEADER}")))?;
            let bytes = response
                .bytes()
                .await
                .map_err(|e| WorkerError::Unreachable(self.server.to_string(), e.to_string()))?;
            let path = scratch.path().join("piece.aac");
            tokio::fs::write(&path, bytes).await?;
            Some((path, start))
        } else {
            None
        };
        let out = scratch.path().join("ladder");
        let args = job.piece.ffmpeg_args(
            &input,
            audio.as_ref().map(|(path, start)| (path.as_path(), *start)),
            &out,
        );
        crate::media::ffmpeg::run_with_priority(
            &self.ffmpeg,
            args,
            Duration::from_secs(job.piece.timeout_secs),
            Priority::Normal,
            |_| {},
        )
        .await?;
        for rung in &job.piece.rungs {
            let dir = out.join(&rung.name);
            let playlist = tokio::fs::read_to_string(dir.join("index.m3u8")).await?;
            for (file, _) in media_playlist_segments(&playlist)
                .iter()
                .take(job.piece.count)
            {
                let body = tokio::fs::File::open(dir.join(file)).await?;
                let path = format!("{base}/files/{}/{file}", rung.name);
                self.send(self.request(reqwest::Method::PUT, &path, lease).body(
                    reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(body)),
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn download(
        &self,
        path: &str,
        lease: Option<&str>,
        target: &Path,
    ) -> Result<(), WorkerError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let response = self
            .send(self.request(reqwest::Method::GET, path, lease))
            .await?;
        let mut out = tokio::fs::File::create(target).await?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| WorkerError::Unreachable(self.server.to_string(), e.to_string()))?;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(())
    }
}

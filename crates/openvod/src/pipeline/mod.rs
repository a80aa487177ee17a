//! The processing pipeline: probe → plan → encode → publish.
//!
//! Invariants: one ffmpeg process decodes the input once and encodes every rung of a pass; outputs
//! are built in a per-run scratch folder (removed on drop) and only published (moved into the store,
//! then recorded in the database) when complete, so readers never see half a rendition.
//! A streamable source is published first by remuxing, making the asset playable within about a
//! second; the encoded lower rungs are added to it afterwards.

mod adts;
pub mod encode;
pub mod plan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::assets::model::{Asset, Rendition, StaticFile, StoredOriginal};
use crate::config::MediaConfig;
use crate::error::DbError;
use crate::media::ffmpeg::Priority;
use crate::media::probe::MediaInfo;
use crate::media::MediaError;
use crate::storage::{ArcStore, LocalFile, StorageError, StoreKey};
use encode::AUDIO_RENDITION;
use plan::{Limits, Plan, PlanError, Rung};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("processing was cancelled")]
    Cancelled,
    #[error("ffmpeg produced no usable output for {0}")]
    MissingOutput(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("scratch I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl PipelineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Media(e) => e.is_retryable(),
            PipelineError::Db(_) | PipelineError::Storage(_) | PipelineError::Io(_) => true,
            PipelineError::Plan(_) | PipelineError::Cancelled | PipelineError::MissingOutput(_) => {
                false
            }
        }
    }

    /// Whether the input itself is at fault (the asset errors with `invalid_input`).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            PipelineError::Plan(_)
                | PipelineError::Media(MediaError::NotMedia(_) | MediaError::Failed { .. })
        )
    }
}

pub struct Pipeline {
    db: std::sync::Arc<dyn crate::assets::repo::AssetRepo>,
    /// Where a split encode queues its pieces.
    jobs: std::sync::Arc<dyn crate::jobs::repo::JobRepo>,
    store: ArcStore,
    media: MediaConfig,
    scratch_dir: PathBuf,
    running: Mutex<HashMap<String, CancellationToken>>,
}

/// Removes the asset's entry from `running` when a run ends, however it ends.
struct RunningGuard<'a> {
    pipeline: &'a Pipeline,
    asset_id: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.pipeline
            .running
            .lock()
            .expect("not poisoned")
            .remove(&self.asset_id);
    }
}

impl Pipeline {
    pub fn new(
        db: std::sync::Arc<dyn crate::assets::repo::AssetRepo>,
        jobs: std::sync::Arc<dyn crate::jobs::repo::JobRepo>,
        store: ArcStore,
        media: MediaConfig,
        scratch_dir: PathBuf,
    ) -> Pipeline {
        Pipeline {
            db,
            jobs,
            store,
            media,
            scratch_dir,
            running: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self, asset: &Asset) -> Limits {
        let max_rung = match asset.settings.max_resolution_tier.as_deref() {
            Some("2160p") => 2160,
            Some("1440p") => 1440,
            _ => 1080,
        };
        Limits {
            max_duration_secs: self.media.max_duration_secs,
            max_dimension: self.media.max_dimension,
            max_frames: self.media.max_frames,
            max_rung,
        }
    }

    /// Checks the input against the limits and plans its ladder (no ffmpeg run).
    pub fn plan(&self, asset: &Asset, info: &MediaInfo) -> Result<Plan, PlanError> {
        let mut plan = plan::plan(info, &self.limits(asset))?;
        if asset.settings.normalize_audio && plan.has_audio {
            plan.normalize_audio = true;
            // The source's audio cannot be published as it is.
            plan.source_streamable = false;
        }
        if let (Some(overlay), Some(video)) = (&asset.settings.overlay, &info.video) {
            let (w, h) = video.display_size();
            plan.overlay = Some(plan::OverlayPlan::new(overlay, w, h));
            // The watermark is burned in: never the source as it is.
            plan.source_streamable = false;
        }
        if asset.ingest_type == crate::assets::model::IngestType::Clip {
            // A spliced clip's stream changes parameter sets where its copied part begins, which
            // ffmpeg decodes but browsers' players may not: the ladder encodes clips.
            plan.source_streamable = false;
        }
        if asset.settings.test {
            // Ten seconds, watermarked: never the source as it is.
            plan.test = true;
            plan.source_streamable = false;
            let fps = u64::from(plan.fps);
            if fps > 0 {
                plan.frames = plan.frames.min(u64::from(plan::TEST_SECS) * fps);
            }
        }
        Ok(plan)
    }

    /// Stops a running transcode of `asset_id` in this process (its ffmpeg is killed).
    pub fn cancel(&self, asset_id: &str) {
        if let Some(token) = self.running.lock().expect("not poisoned").get(asset_id) {
            token.cancel();
        }
    }

    fn timeout(&self, info: &MediaInfo) -> Duration {
        self.media.encode_timeout(info.duration.unwrap_or(0.0))
    }

    /// Produces and publishes every output of the asset. Idempotent: a rerun after a crash skips what
    /// was already published.
    pub async fn transcode(&self, asset_id: &str) -> Result<(), PipelineError> {
        let started = std::time::Instant::now();
        let result = self.transcode_cancellable(asset_id).await;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(asset_id, seconds, ok = result.is_ok(), "transcode finished");
        result
    }

    async fn transcode_cancellable(&self, asset_id: &str) -> Result<(), PipelineError> {
        let token = CancellationToken::new();
        self.running
            .lock()
            .expect("not poisoned")
            .insert(asset_id.to_owned(), token.clone());
        let _guard = RunningGuard {
            pipeline: self,
            asset_id: asset_id.to_owned(),
        };
        tokio::select! {
            _ = token.cancelled() => Err(PipelineError::Cancelled),
            result = self.transcode_inner(asset_id) => result,
        }
    }

    /// The asset with what its probe found, its original and its plan; `None` if it is gone.
    async fn probed(
        &self,
        asset_id: &str,
    ) -> Result<Option<(Asset, MediaInfo, StoredOriginal, Plan)>, PipelineError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(None);
        };
        let (Some(info), Some(original)) = (asset.source.clone(), asset.original.clone()) else {
            return Err(PipelineError::MissingOutput(format!(
                "asset {asset_id} has not been probed"
            )));
        };
        let plan = self.plan(&asset, &info)?;
        Ok(Some((asset, info, original, plan)))
    }

    async fn transcode_inner(&self, asset_id: &str) -> Result<(), PipelineError> {
        let Some((asset, info, original, mut plan)) = self.probed(asset_id).await? else {
            return Ok(());
        };
        // The watermark image, fetched into the store when the asset was probed.
        let overlay_image = match &plan.overlay {
            Some(_) => Some(
                self.store
                    .local_file(&StoreKey::parse(&Asset::overlay_key(asset_id))?)
                    .await?,
            ),
            None => None,
        };
        if let (Some(overlay), Some(image)) = (plan.overlay.as_mut(), &overlay_image) {
            overlay.image = Some(image.path().to_path_buf());
        }
        let input = self
            .store
            .local_file(&StoreKey::parse(&original.key)?)
            .await?;
        let scratch = tempfile::Builder::new()
            .prefix("transcode-")
            .tempdir_in(&self.scratch_dir)?;
        // Renditions with every file in the store; a pending one (published from the plan before
        // it was encoded) is finished by this run.
        let mut renditions: Vec<Rendition> = asset
            .renditions
            .iter()
            .filter(|r| !r.pending)
            .cloned()
            .collect();
        let was_ready = !asset.renditions.is_empty();

        let remaining: Vec<Rung> = if plan.source_streamable {
            let video = info.video.as_ref().expect("streamable sources have video");
            let (w, h) = video.display_size();
            let source_name = format!("{}p", w.min(h));
            if !renditions.iter().any(|r| r.name == source_name) {
                let out = scratch.path().join("remux");
                let args = encode::remux_args(input.path(), plan.has_audio, &source_name, &out);
                self.ffmpeg(args, &info, asset_id, "remux", Priority::Normal)
                    .await?;
                renditions.push(self.publish_rendition(asset_id, &out, &source_name).await?);
            }
            plan.rungs
                .iter()
                .filter(|r| r.width.min(r.height) < w.min(h))
                .cloned()
                .collect()
        } else {
            plan.rungs.clone()
        };
        let remaining: Vec<Rung> = remaining
            .into_iter()
            .filter(|r| !renditions.iter().any(|done| done.name == r.name))
            .collect();

        // The rungs this run encodes, measured once they are all stored.
        let mut encoded = Vec::new();
        if plan.rungs.is_empty() {
            // Audio only: one quick encode, published whole.
            if renditions.is_empty() {
                let out = scratch.path().join("ladder");
                let args =
                    encode::ladder_args(input.path(), &plan, &[], &self.media.x264_preset, &out);
                self.ffmpeg(args, &info, asset_id, "audio", Priority::Normal)
                    .await?;
                renditions.push(
                    self.publish_rendition(asset_id, &out, AUDIO_RENDITION)
                        .await?,
                );
            }
        } else if !remaining.is_empty() {
            // Every rung the plan will produce is published now, with its final playlist; the
            // segments follow as they are encoded.
            let playlist = plan.media_playlist();
            for rung in &remaining {
                self.store_playlist(asset_id, scratch.path(), &rung.name, &playlist)
                    .await?;
            }
            let mut listed = renditions.clone();
            listed.extend(remaining.iter().map(|r| planned_rendition(&plan, r)));
            sort_renditions(&mut listed);
            // With a remuxed source (or after a crash past `ready`) the asset is ready now;
            // otherwise once the lowest rung's first segment is in the store.
            let ready_now = !renditions.is_empty() || was_ready;
            if ready_now
                && !self
                    .db
                    .publish_outputs(asset_id, &listed, &asset.static_files, false)
                    .await?
            {
                return self.abandon(asset_id).await;
            }
            let segments = plan.segment_durations();
            let pieces = self.pieces(&plan, &info);
            // Even one piece is split off when asked for (`parallel_min_secs` at most `piece_secs`):
            // it is how every encode goes to remote workers.
            if !pieces.is_empty() && !self.stored(asset_id, &remaining, 0..segments.len()).await? {
                let work = Work {
                    asset: &asset,
                    plan: &plan,
                    info: &info,
                    input: input.path(),
                    scratch: scratch.path(),
                };
                return self.split(&work, &remaining, &listed, &pieces).await;
            }
            // The full pass encodes every rung in lockstep, so its lowest rung's first segment
            // comes only after seconds of 1080p: a quick pass of that one segment alone makes the
            // asset playable first. It runs beside the full pass, which runs in the background
            // (niced), so the quick pass gets the CPU it needs and the full pass loses only what
            // the quick pass used. The quick pass owns that segment: the full pass never stores
            // its own copy (published bytes never change).
            let quick = !ready_now && remaining.len() > 1 && segments.len() > 1;
            if !self.stored(asset_id, &remaining, 0..segments.len()).await? {
                let first = async {
                    if !quick {
                        return Ok(false);
                    }
                    self.first_segment(
                        asset_id,
                        input.path(),
                        &info,
                        &plan,
                        &remaining,
                        scratch.path(),
                    )
                    .await?;
                    if !self
                        .db
                        .publish_outputs(asset_id, &listed, &asset.static_files, false)
                        .await?
                    {
                        return Ok(true);
                    }
                    tracing::info!(asset_id, "ready: every rung planned, the first segment out");
                    Ok::<bool, PipelineError>(false)
                };
                let out = scratch.path().join("ladder");
                let args = encode::ladder_args(
                    input.path(),
                    &plan,
                    &remaining,
                    &self.media.x264_preset,
                    &out,
                );
                let encoded = CancellationToken::new();
                let encode = async {
                    let result = self
                        .ffmpeg(args, &info, asset_id, "ladder", Priority::Background)
                        .await;
                    encoded.cancel();
                    result
                };
                let ready_with = (!ready_now && !quick).then_some(listed.as_slice());
                let pass = LadderPass {
                    out: &out,
                    rungs: &remaining,
                    planned: segments.len(),
                    skip_first_of_lowest: quick,
                };
                let publish = self.publish_segments(
                    asset_id,
                    &pass,
                    ready_with,
                    &asset.static_files,
                    &encoded,
                );
                let ladder = async {
                    tokio::pin!(encode, publish);
                    // The publisher is not dropped in the middle of a move when ffmpeg ends
                    // first: it makes its last pass and returns. If it fails first, ffmpeg is
                    // dropped (killed).
                    tokio::select! {
                        result = &mut encode => { result?; publish.await }
                        result = &mut publish => result,
                    }
                };
                // Either failing drops (kills) the other.
                let (deleted_first, deleted_ladder) = tokio::try_join!(first, ladder)?;
                if deleted_first || deleted_ladder {
                    return self.abandon(asset_id).await;
                }
                if !self.stored(asset_id, &remaining, 0..segments.len()).await? {
                    // The plan promised segments the encoder did not make: never leave a
                    // playlist listing them.
                    return Err(PipelineError::MissingOutput(format!(
                        "planned segments of {}",
                        remaining
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            encoded = remaining;
        }
        self.finish(&asset, &plan, &info, &encoded, renditions, scratch.path())
            .await
    }

    /// Measures the rungs just `encoded` (added to `renditions`), packages the static files and
    /// publishes everything: the asset's outputs are complete.
    async fn finish(
        &self,
        asset: &Asset,
        plan: &Plan,
        info: &MediaInfo,
        encoded: &[Rung],
        mut renditions: Vec<Rendition>,
        scratch: &Path,
    ) -> Result<(), PipelineError> {
        let asset_id = asset.id.as_str();
        let names: Vec<(String, f64)> = plan
            .segment_durations()
            .iter()
            .enumerate()
            .map(|(i, d)| (plan::segment_name(i), *d))
            .collect();
        for rung in encoded {
            // Size, codecs and rate are the plan's (forced); only the bit rates are measured.
            let (peak, average) = self.bit_rates(asset_id, &rung.name, &names).await?;
            renditions.push(Rendition {
                bandwidth: peak.max(average),
                average_bandwidth: average,
                pending: false,
                ..planned_rendition(plan, rung)
            });
        }
        sort_renditions(&mut renditions);
        let static_files = self.static_files(asset, &renditions, scratch, info).await?;
        if !self
            .db
            .publish_outputs(asset_id, &renditions, &static_files, true)
            .await?
        {
            return self.abandon(asset_id).await;
        }
        Ok(())
    }

    /// Queues a transcode of `asset_id`, which makes what its settings ask for and it lacks
    /// (static files asked for after it was ready, say); what it has is kept.
    pub async fn requeue(&self, asset_id: &str) -> Result<(), PipelineError> {
        let job = crate::jobs::Job::Transcode {
            asset_id: asset_id.to_owned(),
        };
        self.jobs.enqueue_job(&job, crate::id::now_unix()).await?;
        Ok(())
    }

    /// The pieces to split the encode of a long input into; none for a short one.
    fn pieces(&self, plan: &Plan, info: &MediaInfo) -> Vec<(usize, usize)> {
        let min = self.media.parallel_min_secs;
        // A watermark's image lives on the server, not on remote workers: encoded in one piece.
        if min == 0 || info.duration.unwrap_or(0.0) < min as f64 || plan.overlay.is_some() {
            return Vec::new();
        }
        plan.pieces(self.media.piece_secs)
    }

    /// Splits the encode of `rungs` into pieces that any worker may take (`transcode_piece`):
    /// makes the asset playable first (the quick pass), encodes the audio once for every piece to
    /// copy, and queues the pieces. The last piece to be stored publishes the outputs.
    async fn split(
        &self,
        work: &Work<'_>,
        rungs: &[Rung],
        listed: &[Rendition],
        pieces: &[(usize, usize)],
    ) -> Result<(), PipelineError> {
        let asset_id = work.asset.id.as_str();
        self.first_segment(
            asset_id,
            work.input,
            work.info,
            work.plan,
            rungs,
            work.scratch,
        )
        .await?;
        if !self
            .db
            .publish_outputs(asset_id, listed, &work.asset.static_files, false)
            .await?
        {
            return self.abandon(asset_id).await;
        }
        if work.plan.has_audio {
            let key = StoreKey::parse(&Asset::work_key(asset_id, AUDIO_ONCE))?;
            if self.store.size(&key).await?.is_none() {
                let target = work.scratch.join(AUDIO_ONCE);
                let args = encode::audio_once_args(work.input, work.plan, &target);
                self.ffmpeg(args, work.info, asset_id, "audio", Priority::Background)
                    .await?;
                self.store.put_file(&key, &target).await?;
            }
        }
        let now = crate::id::now_unix();
        for &(first, count) in pieces {
            if !self.stored(asset_id, rungs, first..first + count).await? {
                let piece = crate::jobs::Job::TranscodePiece {
                    asset_id: asset_id.to_owned(),
                    first,
                    count,
                };
                self.jobs.enqueue_job(&piece, now).await?;
            }
        }
        tracing::info!(asset_id, pieces = pieces.len(), "encode split into pieces");
        Ok(())
    }

    /// Encodes one piece of a split encode (`split`), and publishes the outputs if it was the
    /// last one to be stored.
    pub async fn transcode_piece(
        &self,
        asset_id: &str,
        first: usize,
        count: usize,
    ) -> Result<(), PipelineError> {
        let Some(spec) = self.piece_spec(asset_id, first, count).await? else {
            return Ok(());
        };
        let range = first..first + count;
        if !self.stored(asset_id, &spec.rungs, range).await? {
            let scratch = tempfile::Builder::new()
                .prefix("piece-")
                .tempdir_in(&self.scratch_dir)?;
            let input = self
                .store
                .media_input(
                    &StoreKey::parse(&spec.input_key)?,
                    spec.timeout_secs.try_into().unwrap_or(u32::MAX),
                )
                .await?;
            let audio = match spec.plan.has_audio {
                true => {
                    let (audio, start) = self.piece_audio(asset_id, &spec).await?;
                    let path = scratch.path().join("piece.aac");
                    tokio::fs::write(&path, audio).await?;
                    Some((path, start))
                }
                false => None,
            };
            let out = scratch.path().join("ladder");
            let args = spec.ffmpeg_args(
                input.location(),
                audio.as_ref().map(|(path, start)| (path.as_path(), *start)),
                &out,
            );
            crate::media::ffmpeg::run_with_priority(
                &self.media.ffmpeg_path,
                args,
                Duration::from_secs(spec.timeout_secs),
                Priority::Background,
                |_| {},
            )
            .await?;
            let pass = LadderPass {
                out: &out,
                rungs: &spec.rungs,
                planned: count,
                skip_first_of_lowest: first == 0,
            };
            self.move_finished_segments(asset_id, &pass, &mut HashMap::new())
                .await?;
        }
        self.piece_done(asset_id, &spec).await
    }

    /// What encoding segments `first..first + count` of a split encode takes, wherever it runs;
    /// `None` once there is nothing left to do (the asset is gone or its outputs published).
    pub async fn piece_spec(
        &self,
        asset_id: &str,
        first: usize,
        count: usize,
    ) -> Result<Option<PieceSpec>, PipelineError> {
        let Some((asset, info, original, plan)) = self.probed(asset_id).await? else {
            return Ok(None);
        };
        // The rungs the split left pending; none once the outputs are published.
        let rungs: Vec<Rung> = plan
            .rungs
            .iter()
            .filter(|r| {
                asset
                    .renditions
                    .iter()
                    .any(|done| done.pending && done.name == r.name)
            })
            .cloned()
            .collect();
        if rungs.is_empty() {
            return Ok(None);
        }
        let segments = plan.segment_durations().len();
        if count == 0 || first + count > segments {
            return Err(PipelineError::MissingOutput(format!(
                "piece {first}+{count} of {segments} segments"
            )));
        }
        Ok(Some(PieceSpec {
            timeout_secs: self.timeout(&info).as_secs(),
            preset: self.media.x264_preset.clone(),
            input_key: original.key,
            segments,
            plan,
            rungs,
            first,
            count,
        }))
    }

    /// Stores a segment a worker made for the piece `spec` (a file the plan lists in the
    /// piece's range for one of its rungs, nothing else); a segment already stored is kept.
    pub async fn store_piece_file(
        &self,
        asset_id: &str,
        spec: &PieceSpec,
        rendition: &str,
        file: &str,
        local: &Path,
    ) -> Result<(), PipelineError> {
        let planned = spec.rungs.iter().any(|r| r.name == rendition)
            && (spec.first..spec.first + spec.count).any(|i| plan::segment_name(i) == file);
        if !planned {
            return Err(PipelineError::MissingOutput(format!(
                "{rendition}/{file} is not a segment of this piece"
            )));
        }
        let key = StoreKey::parse(&Asset::hls_key(asset_id, rendition, file))?;
        if self.store.size(&key).await?.is_none() {
            self.store.put_file(&key, local).await?;
        }
        Ok(())
    }

    /// After a piece's segments were stored: checks they all are, and publishes the outputs if
    /// every piece is done.
    pub async fn piece_done(&self, asset_id: &str, spec: &PieceSpec) -> Result<(), PipelineError> {
        let range = spec.first..spec.first + spec.count;
        if !self.stored(asset_id, &spec.rungs, range.clone()).await? {
            return Err(PipelineError::MissingOutput(format!(
                "segments {}..{} of a piece",
                range.start, range.end
            )));
        }
        let Some((asset, info, _, plan)) = self.probed(asset_id).await? else {
            // Deleted while this piece was encoded, perhaps after its media were purged.
            return self.abandon(asset_id).await;
        };
        if !self.stored(asset_id, &spec.rungs, 0..spec.segments).await? {
            return Ok(()); // Another piece is still being encoded; the last one publishes.
        }
        let renditions = asset
            .renditions
            .iter()
            .filter(|r| !r.pending)
            .cloned()
            .collect();
        let scratch = tempfile::Builder::new()
            .prefix("finish-")
            .tempdir_in(&self.scratch_dir)?;
        self.finish(
            &asset,
            &plan,
            &info,
            &spec.rungs,
            renditions,
            scratch.path(),
        )
        .await?;
        self.store
            .delete(&StoreKey::parse(&Asset::work_key(asset_id, ""))?)
            .await?;
        Ok(())
    }

    /// The piece's share of the audio encoded once (`split`), and when it starts relative to
    /// the piece.
    pub async fn piece_audio(
        &self,
        asset_id: &str,
        spec: &PieceSpec,
    ) -> Result<(Vec<u8>, f64), PipelineError> {
        let whole = self
            .store
            .local_file(&StoreKey::parse(&Asset::work_key(asset_id, AUDIO_ONCE))?)
            .await?;
        let data = tokio::fs::read(whole.path()).await?;
        let last = spec.first + spec.count == spec.segments;
        adts::piece(&data, (spec.first, spec.count), last).ok_or_else(|| {
            PipelineError::MissingOutput("the audio encoded once (not ADTS)".to_owned())
        })
    }

    /// Encodes and stores the first segment of the lowest of `rungs` on its own (see
    /// `encode::first_segment_args`), unless an earlier run already did.
    async fn first_segment(
        &self,
        asset_id: &str,
        input: &Path,
        info: &MediaInfo,
        plan: &Plan,
        rungs: &[Rung],
        scratch: &Path,
    ) -> Result<(), PipelineError> {
        let lowest = std::slice::from_ref(rungs.last().expect("rungs are not empty"));
        if self.stored(asset_id, lowest, 0..1).await? {
            return Ok(());
        }
        let out = scratch.join("first");
        let args =
            encode::first_segment_args(input, plan, &lowest[0], &self.media.x264_preset, &out);
        self.ffmpeg(args, info, asset_id, "first segment", Priority::Normal)
            .await?;
        let pass = LadderPass {
            out: &out,
            rungs: lowest,
            planned: 1,
            skip_first_of_lowest: false,
        };
        self.move_finished_segments(asset_id, &pass, &mut HashMap::new())
            .await?;
        if !self.stored(asset_id, lowest, 0..1).await? {
            return Err(PipelineError::MissingOutput(format!(
                "first segment of {}",
                lowest[0].name
            )));
        }
        Ok(())
    }

    /// Whether the planned segments `segments` of every one of `rungs` are in the store.
    async fn stored(
        &self,
        asset_id: &str,
        rungs: &[Rung],
        segments: std::ops::Range<usize>,
    ) -> Result<bool, PipelineError> {
        for rung in rungs {
            for i in segments.clone() {
                let key = StoreKey::parse(&Asset::hls_key(
                    asset_id,
                    &rung.name,
                    &plan::segment_name(i),
                ))?;
                if self.store.size(&key).await?.is_none() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Moves into the store the planned segments ffmpeg has finished (those its playlists list)
    /// that are not there yet; `moved` counts, per rung, the listed segments already handled.
    async fn move_finished_segments(
        &self,
        asset_id: &str,
        pass: &LadderPass<'_>,
        moved: &mut HashMap<String, usize>,
    ) -> Result<(), PipelineError> {
        for rung in pass.rungs {
            let dir = pass.out.join(&rung.name);
            let Ok(playlist) = tokio::fs::read_to_string(dir.join("index.m3u8")).await else {
                continue;
            };
            let listed = media_playlist_segments(&playlist);
            let done = moved.entry(rung.name.clone()).or_default();
            // Anything past the plan is listed by no playlist: not stored.
            let listed = &listed[..listed.len().min(pass.planned)];
            let lowest = pass.rungs.last().map(|r| r.name.as_str()) == Some(rung.name.as_str());
            for (i, (file, _)) in listed.iter().enumerate().skip(*done) {
                if i == 0 && lowest && pass.skip_first_of_lowest {
                    continue;
                }
                let key = StoreKey::parse(&Asset::hls_key(asset_id, &rung.name, file))?;
                // A segment an earlier run stored stays: its bytes may have been served.
                if self.store.size(&key).await?.is_none() {
                    self.store.put_file(&key, &dir.join(file)).await?;
                }
            }
            *done = (*done).max(listed.len());
        }
        Ok(())
    }

    /// While the ladder is encoded, moves each finished segment into the store (where waiting
    /// readers find it); with `ready_with`, makes the asset ready with those renditions once the
    /// lowest rung's first segment is there. Returns after a last pass once `encoded` is
    /// cancelled; `Ok(true)` if the asset was deleted meanwhile.
    async fn publish_segments(
        &self,
        asset_id: &str,
        pass: &LadderPass<'_>,
        mut ready_with: Option<&[Rendition]>,
        static_files: &[StaticFile],
        encoded: &CancellationToken,
    ) -> Result<bool, PipelineError> {
        let mut moved = HashMap::new();
        let lowest = pass
            .rungs
            .last()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        loop {
            let last_pass = encoded.is_cancelled();
            self.move_finished_segments(asset_id, pass, &mut moved)
                .await?;
            if let Some(listed) = ready_with {
                if moved.get(&lowest).copied().unwrap_or(0) > 0 {
                    if !self
                        .db
                        .publish_outputs(asset_id, listed, static_files, false)
                        .await?
                    {
                        return Ok(true);
                    }
                    tracing::info!(asset_id, "ready: every rung planned, the first segment out");
                    ready_with = None;
                }
            }
            if last_pass {
                return Ok(false);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = encoded.cancelled() => {}
            }
        }
    }

    /// The asset was deleted while we worked: remove what we stored for it.
    async fn abandon(&self, asset_id: &str) -> Result<(), PipelineError> {
        self.store
            .delete(&StoreKey::parse(&Asset::media_prefix(asset_id))?)
            .await?;
        Ok(())
    }

    async fn ffmpeg(
        &self,
        args: Vec<std::ffi::OsString>,
        info: &MediaInfo,
        asset_id: &str,
        what: &'static str,
        priority: Priority,
    ) -> Result<(), PipelineError> {
        let duration = info.duration.unwrap_or(0.0).max(0.001);
        let started = std::time::Instant::now();
        let mut last_logged = 0.0;
        crate::media::ffmpeg::run_with_priority(
            &self.media.ffmpeg_path,
            args,
            self.timeout(info),
            priority,
            |seconds| {
                let fraction = (seconds / duration).min(1.0);
                if fraction - last_logged >= 0.25 {
                    last_logged = fraction;
                    tracing::debug!(asset_id, what, progress = fraction, "ffmpeg progress");
                }
            },
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(asset_id, what, seconds, "ffmpeg finished");
        Ok(())
    }

    /// Peak (per segment) and average bit rate of a rendition's segments in the store.
    async fn bit_rates(
        &self,
        asset_id: &str,
        name: &str,
        segments: &[(String, f64)],
    ) -> Result<(u64, u64), PipelineError> {
        let mut peak = 0u64;
        let (mut total_bytes, mut total_secs) = (0u64, 0f64);
        for (file, secs) in segments {
            let bytes = self
                .store
                .size(&StoreKey::parse(&Asset::hls_key(asset_id, name, file))?)
                .await?
                .ok_or_else(|| PipelineError::MissingOutput(format!("{name}/{file}")))?;
            total_bytes += bytes;
            total_secs += secs;
            if *secs > 0.5 {
                peak = peak.max((bytes as f64 * 8.0 / secs) as u64);
            }
        }
        let average = (total_bytes as f64 * 8.0 / total_secs.max(0.001)) as u64;
        Ok((peak, average))
    }

    /// Measures a rendition from its segments in the store.
    async fn measure_rendition(
        &self,
        asset_id: &str,
        name: &str,
        segments: &[(String, f64)],
    ) -> Result<Rendition, PipelineError> {
        let key = |file: &str| StoreKey::parse(&Asset::hls_key(asset_id, name, file));
        let first = segments
            .first()
            .ok_or_else(|| PipelineError::MissingOutput(name.to_owned()))?;
        let probe_timeout = Duration::from_secs(self.media.probe_timeout_secs);
        let local = self.store.local_file(&key(&first.0)?).await?;
        let info =
            crate::media::probe::probe(&self.media.ffprobe_path, local.path(), probe_timeout)
                .await?;
        let (peak, average) = self.bit_rates(asset_id, name, segments).await?;
        let mut codecs = Vec::new();
        if let Some(v) = &info.video {
            codecs.push(plan::avc_codec_string(v.profile.as_deref(), v.level));
        }
        if let Some(a) = info.audio.first() {
            codecs.push(plan::aac_codec_string(a.profile.as_deref()).to_owned());
        }
        let (width, height) = info.video.as_ref().map_or((0, 0), |v| v.display_size());
        Ok(Rendition {
            name: name.to_owned(),
            width,
            height,
            bandwidth: peak.max(average),
            average_bandwidth: average,
            codecs: codecs.join(","),
            frame_rate: info.video.as_ref().and_then(|v| v.frame_rate),
            pending: false,
        })
    }

    /// Writes `text` as the rendition's playlist in the store.
    async fn store_playlist(
        &self,
        asset_id: &str,
        dir: &Path,
        name: &str,
        text: &str,
    ) -> Result<(), PipelineError> {
        let tmp = dir.join(".playlist.tmp");
        tokio::fs::write(&tmp, text).await?;
        self.store
            .put_file(
                &StoreKey::parse(&Asset::hls_key(asset_id, name, "index.m3u8"))?,
                &tmp,
            )
            .await?;
        Ok(())
    }

    /// Moves one finished rendition's files from `out/<name>/` into the store and measures it.
    async fn publish_rendition(
        &self,
        asset_id: &str,
        out: &Path,
        name: &str,
    ) -> Result<Rendition, PipelineError> {
        let dir = out.join(name);
        let playlist = tokio::fs::read_to_string(dir.join("index.m3u8"))
            .await
            .map_err(|_| PipelineError::MissingOutput(name.to_owned()))?;
        let segments = media_playlist_segments(&playlist);
        // Segments first, the playlist last: a playlist in the store only names segments already there.
        for (file, _) in &segments {
            self.store
                .put_file(
                    &StoreKey::parse(&Asset::hls_key(asset_id, name, file))?,
                    &dir.join(file),
                )
                .await?;
        }
        let rendition = self.measure_rendition(asset_id, name, &segments).await?;
        // ffmpeg writes EVENT playlists; the finished one is VOD.
        let playlist = playlist.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD");
        self.store_playlist(asset_id, &dir, name, &playlist).await?;
        Ok(rendition)
    }

    /// A playlist in `dir` that ffmpeg can read the published rendition `name` from: its segment
    /// lines point at local files (the store's own files when it is a folder, copies in `dir`
    /// when it is a bucket). The returned files must live as long as the playlist is read.
    async fn local_rendition(
        &self,
        asset_id: &str,
        name: &str,
        dir: &Path,
    ) -> Result<(PathBuf, Vec<LocalFile>), PipelineError> {
        let key = |file: &str| StoreKey::parse(&Asset::hls_key(asset_id, name, file));
        let stored = self.store.local_file(&key("index.m3u8")?).await?;
        let text = tokio::fs::read_to_string(stored.path()).await?;
        let mut playlist = String::with_capacity(text.len() * 2);
        let mut segments = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                playlist.push_str(line);
            } else {
                // A segment name as we wrote it; `key` refuses anything else (`..`, `/`).
                let segment = self.store.local_file(&key(line.trim())?).await?;
                let path = match &segment {
                    LocalFile::InPlace(path) => path.clone(),
                    // ffmpeg's HLS reader wants a segment extension: copy under its own name.
                    LocalFile::Temporary(temp) => {
                        let copy = dir.join(line.trim());
                        tokio::fs::copy(temp, &copy).await?;
                        copy
                    }
                };
                playlist.push_str(&path.to_string_lossy());
                segments.push(segment);
            }
            playlist.push('\n');
        }
        let path = dir.join("index.m3u8");
        tokio::fs::write(&path, playlist).await?;
        Ok((path, segments))
    }

    /// Packages the requested static files from published renditions (no second encode).
    async fn static_files(
        &self,
        asset: &Asset,
        renditions: &[Rendition],
        scratch: &Path,
        info: &MediaInfo,
    ) -> Result<Vec<StaticFile>, PipelineError> {
        let wanted = wanted_static_files(asset, renditions);
        let mut files = asset.static_files.clone();
        for (file_name, rendition, audio_only) in wanted {
            if files.iter().any(|f| f.name == file_name) {
                continue;
            }
            let Some(source) = renditions.iter().find(|r| r.name == rendition) else {
                continue;
            };
            let local = scratch.join("static").join(&source.name);
            tokio::fs::create_dir_all(&local).await?;
            let (playlist, _segments) = self
                .local_rendition(&asset.id, &source.name, &local)
                .await?;
            let target = local.join(&file_name);
            self.ffmpeg(
                encode::static_file_args(&playlist, audio_only, &target),
                info,
                &asset.id,
                "static",
                Priority::Background,
            )
            .await?;
            let filesize = tokio::fs::metadata(&target).await?.len();
            let duration = info.duration.unwrap_or(1.0).max(0.001);
            self.store
                .put_file(
                    &StoreKey::parse(&Asset::static_key(&asset.id, &file_name))?,
                    &target,
                )
                .await?;
            files.push(StaticFile {
                name: file_name,
                width: if audio_only { 0 } else { source.width },
                height: if audio_only { 0 } else { source.height },
                bitrate: (filesize as f64 * 8.0 / duration) as u64,
                filesize,
            });
        }
        Ok(files)
    }
}

/// What a worker needs to encode one piece of a split encode (`Pipeline::piece_spec`); remote
/// workers get it as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PieceSpec {
    pub plan: Plan,
    /// The rungs to encode.
    pub rungs: Vec<Rung>,
    pub first: usize,
    pub count: usize,
    /// Segments in the whole encode.
    pub segments: usize,
    pub preset: String,
    pub timeout_secs: u64,
    /// Where the input is in the store (for workers that reach the store).
    pub input_key: String,
}

impl PieceSpec {
    /// The ffmpeg run, given the input and the piece's audio (and when it starts) as local files.
    pub fn ffmpeg_args(
        &self,
        input: &Path,
        audio: Option<(&Path, f64)>,
        out: &Path,
    ) -> Vec<std::ffi::OsString> {
        encode::piece_args(
            input,
            audio.map(|(path, _)| path),
            audio.map_or(0.0, |(_, start)| start),
            &self.plan,
            &self.rungs,
            (self.first, self.count),
            &self.preset,
            out,
        )
    }
}

/// The audio of a split encode, encoded once (`Asset::work_key`).
const AUDIO_ONCE: &str = "audio.aac";

/// What a transcode works from.
struct Work<'a> {
    asset: &'a Asset,
    plan: &'a Plan,
    info: &'a MediaInfo,
    input: &'a Path,
    scratch: &'a Path,
}

/// One encode of pending rungs: where ffmpeg writes them, and how many segments each will have.
struct LadderPass<'a> {
    out: &'a Path,
    rungs: &'a [Rung],
    planned: usize,
    /// The lowest rung's first segment is the quick pass's to store.
    skip_first_of_lowest: bool,
}

/// A rung as the master playlist lists it before it is encoded: its planned size and codecs,
/// its rate cap as bandwidth until measured.
fn planned_rendition(plan: &Plan, rung: &Rung) -> Rendition {
    let bandwidth = plan.estimated_bandwidth(rung);
    Rendition {
        name: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        bandwidth,
        average_bandwidth: bandwidth * 3 / 5,
        codecs: plan.codecs(rung),
        frame_rate: Some(f64::from(plan.fps)),
        pending: true,
    }
}

/// Highest first (the master playlist's order before its own reordering).
fn sort_renditions(renditions: &mut [Rendition]) {
    renditions.sort_by(|a, b| {
        (b.height.min(b.width), b.bandwidth).cmp(&(a.height.min(a.width), a.bandwidth))
    });
}

/// The names of the static files the asset's settings ask for, given its renditions.
pub fn wanted_static_file_names(asset: &Asset) -> Vec<String> {
    wanted_static_files(asset, &asset.renditions)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

/// `(file name, rendition to package, audio only)` for every static file the asset asked for.
fn wanted_static_files(asset: &Asset, renditions: &[Rendition]) -> Vec<(String, String, bool)> {
    let Some(top) = renditions.first() else {
        return Vec::new();
    };
    let mut wanted = Vec::new();
    let settings = &asset.settings;
    for resolution in &settings.static_renditions {
        match resolution.as_str() {
            "highest" => wanted.push(("highest.mp4".to_owned(), top.name.clone(), false)),
            "audio-only" => wanted.push(("audio.m4a".to_owned(), top.name.clone(), true)),
            other => {
                if renditions.iter().any(|r| r.name == other) {
                    wanted.push((format!("{other}.mp4"), other.to_owned(), false));
                }
            }
        }
    }
    let mp4 = settings.mp4_support.as_deref().unwrap_or("none");
    if mp4 == "standard" {
        let video: Vec<&Rendition> = renditions.iter().filter(|r| r.height > 0).collect();
        if let Some(high) = video.first() {
            wanted.push(("high.mp4".to_owned(), high.name.clone(), false));
        }
        if video.len() >= 3 {
            wanted.push((
                "medium.mp4".to_owned(),
                video[video.len() / 2].name.clone(),
                false,
            ));
        }
        if video.len() >= 2 {
            wanted.push((
                "low.mp4".to_owned(),
                video[video.len() - 1].name.clone(),
                false,
            ));
        }
    }
    if mp4.split(',').any(|m| m == "capped-1080p") {
        wanted.push(("capped-1080p.mp4".to_owned(), top.name.clone(), false));
    }
    if mp4.split(',').any(|m| m == "audio-only") {
        wanted.push(("audio.m4a".to_owned(), top.name.clone(), true));
    }
    wanted.dedup_by(|a, b| a.0 == b.0);
    wanted
}

/// `(segment file, duration)` pairs of an ffmpeg-written media playlist.
pub fn media_playlist_segments(playlist: &str) -> Vec<(String, f64)> {
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            pending = rest.split(',').next().and_then(|d| d.parse().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(duration) = pending.take() {
                segments.push((line.to_owned(), duration));
            }
        }
    }
    segments
}

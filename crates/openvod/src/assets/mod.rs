//! Assets: creation from uploads and URLs, reads, updates, deletion, playback ids, master access,
//! and the background jobs that fill an asset in (fetch input, probe, purge media).
//!
//! Invariant: an asset never stays `preparing` because of a failure: every job that gives up on an
//! asset errors it with a message (`job_failed`).

pub mod http;
pub mod model;
pub mod recent;
pub mod repo;
pub mod subtitles;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::{MediaConfig, OutboundConfig};
use crate::error::DbError;
use crate::error::ErrorKind;
use crate::id::{is_valid_id, now_unix, random_id};
use crate::ingest::capability::{CapabilityError, UrlSigner};
use crate::jobs::Job;
use crate::keyed_lock::KeyedLocks;
use crate::media::MediaError;
use crate::outbound::{Outbound, OutboundError};
use crate::pipeline::{Pipeline, PipelineError};
use crate::processing::run::{RunError, TaskRunner};
use crate::processing::{OutputRequest, ProcessingTask};
use crate::storage::{ArcStore, StorageError, StoreKey, StoredObject};
use model::{
    Asset, AssetChange, AssetErrors, AssetFilter, AssetMeta, AssetSettings, AssetStatus,
    IngestType, PlaybackId, PlaybackPolicy, StoredOriginal, Track, TrackInput, TrackKind,
    TrackStatus,
};

/// Largest watermark image taken.
const MAX_OVERLAY_BYTES: u64 = 16 * 1024 * 1024;

/// Most text tracks one asset may have.
pub const MAX_TRACKS_PER_KIND: usize = 32;

/// How long a master (original download) URL stays valid once `temporary` access is granted.
pub const MASTER_ACCESS_SECS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("asset {0} not found")]
    NotFound(String),
    #[error("playback id {0} not found")]
    PlaybackIdNotFound(String),
    #[error("track {0} not found")]
    TrackNotFound(String),
    /// The input (a clip's source, a watermark) cannot be used: the asset errors as invalid input.
    #[error("{0}")]
    InputRefused(String),
    #[error("master access is not enabled for asset {0}, or has expired")]
    MasterNotAvailable(String),
    #[error("master URL refused: {0}")]
    Capability(#[from] CapabilityError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("input download failed: {0}")]
    Download(String),
    #[error("input download failed: {0}")]
    DownloadPermanent(String),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Task(#[from] RunError),
    #[error(transparent)]
    Bbb(#[from] crate::bbb::BbbError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Lock(#[from] crate::keyed_lock::LockError),
}

impl AssetError {
    pub fn kind(&self) -> ErrorKind {
        use AssetError::*;
        match self {
            NotFound(_) | PlaybackIdNotFound(_) | TrackNotFound(_) | MasterNotAvailable(_) => {
                ErrorKind::NotFound
            }
            Capability(_) => ErrorKind::Forbidden,
            Bbb(e) => e.kind(),
            Invalid(_) | Outbound(_) | InputRefused(_) => ErrorKind::Invalid,
            Db(e) => e.kind(),
            Storage(e) => e.kind(),
            Lock(e) => e.kind(),
            Download(_) | DownloadPermanent(_) | Media(_) | Pipeline(_) | Task(_) | Io(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// Whether a job failing with this error should be tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            AssetError::Media(e) => e.is_retryable(),
            AssetError::Pipeline(e) => e.is_retryable(),
            AssetError::Task(_) => true,
            AssetError::Bbb(e) => e.is_retryable(),
            AssetError::Download(_)
            | AssetError::Db(_)
            | AssetError::Storage(_)
            | AssetError::Lock(_)
            | AssetError::Io(_) => true,
            _ => false,
        }
    }
}

/// A new FileId: 18 random decimal digits, not starting with 0.
pub fn new_file_id() -> String {
    use rand::Rng;
    rand::thread_rng()
        .gen_range(100_000_000_000_000_000u64..1_000_000_000_000_000_000)
        .to_string()
}

/// A new `preparing` asset with one playback id per requested policy.
/// How long a test asset (`test: true`) lives.
pub const TEST_ASSET_SECS_TO_LIVE: i64 = 24 * 3600;

pub fn new_asset(
    settings: &AssetSettings,
    ingest_type: IngestType,
    upload_id: Option<String>,
    input_url: Option<String>,
    original: Option<StoredOriginal>,
    now: i64,
) -> Asset {
    let mut settings = settings.clone();
    if settings.test && settings.expire_at.is_none() {
        // Mux's test assets: gone after a day.
        settings.expire_at = Some(now + TEST_ASSET_SECS_TO_LIVE);
    }
    // The text tracks asked for become the asset's own, each fetched by a job queued with it.
    let tracks = std::mem::take(&mut settings.tracks)
        .into_iter()
        .map(|input| Track {
            id: random_id(),
            input,
            status: TrackStatus::Preparing,
            error: None,
        })
        .collect();
    Asset {
        id: random_id(),
        file_id: new_file_id(),
        status: AssetStatus::Preparing,
        created_at: now,
        upload_id,
        passthrough: settings.passthrough.clone(),
        settings: settings.clone(),
        ingest_type,
        input_url,
        source: None,
        errors: None,
        original,
        master_access_until: None,
        renditions: Vec::new(),
        static_files: Vec::new(),
        tracks,
        outputs_complete: false,
        playback_ids: settings
            .playback_policies
            .iter()
            .map(|policy| PlaybackId {
                id: random_id(),
                policy: *policy,
            })
            .collect(),
    }
}

/// Seconds after a clip's start searched for the keyframe where copying can begin; a source
/// with longer GOPs is encoded from the exact frame to the end instead.
const SPLICE_WINDOW_SECS: f64 = 20.0;

/// How a clip is cut out of its source.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ClipCut {
    /// The cut starts on a keyframe: every packet copied.
    Copy,
    /// Between keyframes: the frames up to the next keyframe (this time) encoded, the rest copied.
    Splice(f64),
    /// Encoded whole from the exact frame (another codec, or no keyframe soon enough).
    Encode,
}

pub struct AssetService {
    db: std::sync::Arc<dyn crate::assets::repo::AssetRepo>,
    store: ArcStore,
    signer: UrlSigner,
    public_url: url::Url,
    media: MediaConfig,
    outbound: Arc<Outbound>,
    fetch: OutboundConfig,
    scratch_dir: PathBuf,
    pipeline: Arc<Pipeline>,
    tasks: Arc<TaskRunner>,
    /// Outputs made automatically for every new file (a task flow); empty for none.
    procedure: Vec<OutputRequest>,
    /// The old BigBlueButton server (`[bbb]`), asked for fresh token URLs of protected recordings.
    bbb_server: Option<crate::bbb::api::Server>,
    recent: Arc<recent::RecentPlaybackIds>,
    /// One cut per Tencent `exper` preview, across the processes these locks reach.
    preview_locks: KeyedLocks,
}

impl AssetService {
    #[allow(clippy::too_many_arguments)] // Wiring of independent collaborators, done once in `app`.
    pub fn new(
        db: std::sync::Arc<dyn crate::assets::repo::AssetRepo>,
        store: ArcStore,
        signer: UrlSigner,
        public_url: url::Url,
        media: MediaConfig,
        outbound: Arc<Outbound>,
        fetch: OutboundConfig,
        scratch_dir: PathBuf,
        pipeline: Arc<Pipeline>,
        tasks: Arc<TaskRunner>,
    ) -> AssetService {
        AssetService {
            db,
            store,
            signer,
            public_url,
            media,
            outbound,
            fetch,
            scratch_dir,
            pipeline,
            tasks,
            procedure: Vec::new(),
            bbb_server: None,
            recent: Arc::default(),
            preview_locks: KeyedLocks::default(),
        }
    }

    pub fn with_preview_locks(mut self, locks: KeyedLocks) -> AssetService {
        self.preview_locks = locks;
        self
    }

    /// The playback lookups to forget when an asset or playback id is deleted.
    pub fn with_recent_playback_ids(
        mut self,
        recent: Arc<recent::RecentPlaybackIds>,
    ) -> AssetService {
        self.recent = recent;
        self
    }

    /// The old BigBlueButton server migrated recordings come from.
    pub fn with_bbb_server(mut self, server: Option<crate::bbb::api::Server>) -> AssetService {
        self.bbb_server = server;
        self
    }

    /// Runs `outputs` as a processing task on every new file.
    pub fn with_procedure(mut self, outputs: Vec<OutputRequest>) -> AssetService {
        self.procedure = outputs;
        self
    }

    /// Creates an asset whose input is pulled from `input_url` by a background job.
    pub async fn create_from_url(
        &self,
        input_url: &str,
        settings: &AssetSettings,
    ) -> Result<Asset, AssetError> {
        let url = self.outbound.check_url(input_url).await?;
        self.create_from_input(url.as_str(), settings, |asset_id| Job::FetchInput {
            asset_id,
        })
        .await
    }

    /// Creates a clip of another asset (Mux's `mux://assets/{id}` input with `start_time` and
    /// `end_time`); its original is cut from the source's by a background job.
    pub async fn create_clip(
        &self,
        input_url: &str,
        settings: &AssetSettings,
    ) -> Result<Asset, AssetError> {
        let source_id = input_url
            .strip_prefix(model::CLIP_URL_PREFIX)
            .filter(|id| is_valid_id(id))
            .ok_or_else(|| {
                AssetError::Invalid(format!(
                    "input: {input_url:?}: a mux:// input names an asset, as mux://assets/{{asset_id}}"
                ))
            })?;
        let source = match self.get(source_id).await {
            Err(AssetError::NotFound(_)) => {
                return Err(AssetError::Invalid(format!(
                    "input: asset {source_id} does not exist"
                )))
            }
            other => other?,
        };
        let duration = match (&source.status, &source.original, &source.source) {
            (AssetStatus::Errored, _, _) => None,
            (_, Some(_), Some(info)) => info.duration,
            _ => None,
        }
        .ok_or_else(|| {
            AssetError::Invalid(format!(
                "input: asset {source_id} cannot be clipped until it is ready"
            ))
        })?;
        let range = settings.clip.unwrap_or_default();
        let start = range.start_secs.unwrap_or(0.0);
        let end = range.end_secs.unwrap_or(duration).min(duration);
        if !(start >= 0.0 && start < duration) {
            return Err(AssetError::Invalid(format!(
                "input[0].start_time: {start} must be at least 0 and before the end of the {duration:.3} s source"
            )));
        }
        if end - start < 0.1 {
            return Err(AssetError::Invalid(format!(
                "input[0].end_time: {end} must be at least 0.1 s after start_time ({start})"
            )));
        }
        let mut settings = settings.clone();
        settings.clip = Some(model::ClipRange {
            start_secs: Some(start),
            end_secs: Some(end),
        });
        self.check_tracks(&settings).await?;
        let now = now_unix();
        let asset = new_asset(
            &settings,
            IngestType::Clip,
            None,
            Some(format!("{}{source_id}", model::CLIP_URL_PREFIX)),
            None,
            now,
        );
        let job = Job::ClipInput {
            asset_id: asset.id.clone(),
        };
        self.db.create_asset(&asset, Some(&job), now).await?;
        Ok(asset)
    }

    /// The clip's job: cuts its range out of the source asset's original (packets copied when the
    /// cut starts on a keyframe of a streamable source, else encoded from the exact frame), stores
    /// it as the clip's original and probes it.
    async fn clip_input(&self, asset_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(());
        };
        if asset.original.is_none() {
            let source_id = asset
                .clip_source()
                .ok_or_else(|| AssetError::Invalid(format!("asset {asset_id} is not a clip")))?;
            let gone =
                || AssetError::InputRefused(format!("the source asset {source_id} was deleted"));
            let source = self.db.get_asset(source_id).await?.ok_or_else(gone)?;
            let (original, info) = source
                .original
                .as_ref()
                .zip(source.source.as_ref())
                .ok_or_else(gone)?;
            let range = asset.settings.clip.unwrap_or_default();
            let start = range.start_secs.unwrap_or(0.0);
            let duration = range.end_secs.map(|end| end - start);
            let secs = duration.unwrap_or(info.duration.unwrap_or(0.0));
            let timeout = self.media.encode_timeout(secs);
            let local = self
                .store
                .media_input(
                    &StoreKey::parse(&original.key)?,
                    timeout.as_secs().try_into().unwrap_or(u32::MAX),
                )
                .await?;
            let probe_timeout = Duration::from_secs(self.media.probe_timeout_secs);
            // The keyframes around the cut: is it on one, and which is the first after it?
            let keyframes = match start == 0.0 {
                true => vec![0.0],
                false => {
                    crate::media::probe::keyframe_times(
                        &self.media.ffprobe_path,
                        local.location(),
                        Some(((start - 1.0).max(0.0), start + SPLICE_WINDOW_SECS)),
                        probe_timeout,
                    )
                    .await?
                }
            };
            let on_keyframe = keyframes.iter().any(|k| (k - start).abs() < 0.001);
            let end = range.end_secs;
            let next_keyframe = keyframes
                .iter()
                .copied()
                .find(|k| *k > start + 0.001 && end.is_none_or(|e| *k < e - 0.001));
            // Packets an MP4 takes as they are, and that the ladder remuxes or encodes as usual;
            // a splice's encoded head must also match the copied tail's picture format.
            let h264_aac = info.video.as_ref().is_some_and(|v| v.codec == "h264")
                && info.audio.iter().all(|a| a.codec == "aac");
            let yuv420p = info
                .video
                .as_ref()
                .is_some_and(|v| v.pix_fmt.as_deref() == Some("yuv420p"));
            let out = tempfile::Builder::new()
                .suffix(".mp4")
                .tempfile_in(&self.scratch_dir)?
                .into_temp_path();
            let cut = match (h264_aac, on_keyframe, next_keyframe) {
                (true, true, _) => ClipCut::Copy,
                (true, false, Some(keyframe)) if yuv420p => ClipCut::Splice(keyframe),
                _ => ClipCut::Encode,
            };
            match cut {
                ClipCut::Splice(keyframe) => {
                    self.splice_clip(
                        local.location(),
                        !info.audio.is_empty(),
                        start,
                        keyframe,
                        end,
                        timeout,
                        &out,
                    )
                    .await?
                }
                _ => {
                    crate::media::ffmpeg::run(
                        &self.media.ffmpeg_path,
                        crate::pipeline::encode::clip_args(
                            local.location(),
                            start,
                            duration,
                            cut == ClipCut::Copy,
                            &self.media.x264_preset,
                            &out,
                        ),
                        timeout,
                        |_| {},
                    )
                    .await?;
                }
            }
            tracing::info!(asset_id, source_id, start, ?cut, "clip cut");
            let size = std::fs::metadata(&out)?.len();
            let key = StoreKey::parse(&Asset::original_key(asset_id))?;
            self.store_original(asset_id, &key, &out, size).await?;
        }
        self.probe(asset_id).await
    }

    /// Writes the clip `[start, end)` of `input` to `out`, encoding only `[start, keyframe)` and
    /// copying the video packets from `keyframe` on and all the audio packets.
    #[allow(clippy::too_many_arguments)]
    async fn splice_clip(
        &self,
        input: &std::path::Path,
        has_audio: bool,
        start: f64,
        keyframe: f64,
        end: Option<f64>,
        timeout: Duration,
        out: &std::path::Path,
    ) -> Result<(), AssetError> {
        use crate::pipeline::encode::splice;
        let parts = tempfile::Builder::new()
            .prefix("splice-")
            .tempdir_in(&self.scratch_dir)?;
        let (head, tail) = (parts.path().join("head.ts"), parts.path().join("tail.ts"));
        let audio = has_audio.then(|| parts.path().join("audio.mp4"));
        let list = parts.path().join("parts.txt");
        let head_args = splice::head_args(input, start, keyframe, &self.media.x264_preset, &head);
        let mut runs = vec![head_args, splice::tail_args(input, keyframe, end, &tail)];
        if let Some(audio) = &audio {
            runs.push(splice::audio_args(input, start, end, audio));
        }
        for args in runs {
            crate::media::ffmpeg::run(&self.media.ffmpeg_path, args, timeout, |_| {}).await?;
        }
        tokio::fs::write(&list, splice::list(&head, &tail)).await?;
        let join = splice::join_args(&list, audio.as_deref(), out);
        crate::media::ffmpeg::run(&self.media.ffmpeg_path, join, timeout, |_| {}).await?;
        Ok(())
    }

    /// Creates an asset rendered from a BigBlueButton recording (`source`: a playback or published
    /// folder URL) by a background job.
    pub async fn create_from_bbb(
        &self,
        source: &str,
        settings: &AssetSettings,
    ) -> Result<Asset, AssetError> {
        if let crate::bbb::source::Source::Http { base, .. } =
            crate::bbb::source::Source::parse_url(source)?
        {
            self.outbound.check_url(base.as_str()).await?;
        }
        self.create_from_input(source, settings, |asset_id| Job::RenderBbb { asset_id })
            .await
    }

    /// A `preparing` asset with its input URL and the job that fills it in, in one transaction.
    async fn create_from_input(
        &self,
        input_url: &str,
        settings: &AssetSettings,
        job: impl FnOnce(String) -> Job,
    ) -> Result<Asset, AssetError> {
        self.check_tracks(settings).await?;
        let now = now_unix();
        let asset = new_asset(
            settings,
            IngestType::Url,
            None,
            Some(input_url.to_owned()),
            None,
            now,
        );
        let job = job(asset.id.clone());
        self.db.create_asset(&asset, Some(&job), now).await?;
        Ok(asset)
    }

    /// Checks the tracks a new asset asks for (their URLs under the outbound policy), before
    /// anything is stored.
    pub async fn check_tracks(&self, settings: &AssetSettings) -> Result<(), AssetError> {
        for (i, track) in settings.tracks.iter().enumerate() {
            track.validate().map_err(|e| {
                AssetError::Invalid(format!("{} track {i}: {e}", track.kind.as_str()))
            })?;
            self.outbound.check_url(&track.url).await?;
        }
        for kind in [TrackKind::Text, TrackKind::Audio] {
            if settings.tracks.iter().filter(|t| t.kind == kind).count() > MAX_TRACKS_PER_KIND {
                return Err(AssetError::Invalid(format!(
                    "input: at most {MAX_TRACKS_PER_KIND} {} tracks",
                    kind.as_str()
                )));
            }
        }
        if let Some(overlay) = &settings.overlay {
            self.outbound.check_url(&overlay.url).await?;
        }
        Ok(())
    }

    /// Fetches the asset's watermark image into the store (once) and checks that it is a picture.
    async fn fetch_overlay(&self, asset: &Asset) -> Result<(), AssetError> {
        let Some(overlay) = &asset.settings.overlay else {
            return Ok(());
        };
        let key = StoreKey::parse(&Asset::overlay_key(&asset.id))?;
        if self.store.size(&key).await?.is_some() {
            return Ok(());
        }
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
        let deadline = Duration::from_secs(self.fetch.fetch_timeout_secs);
        tokio::time::timeout(
            deadline,
            self.download_limited(&self.outbound, &overlay.url, &tmp, MAX_OVERLAY_BYTES),
        )
        .await
        .map_err(|_| AssetError::DownloadPermanent(format!("took longer than {deadline:?}")))??;
        let timeout = Duration::from_secs(self.media.probe_timeout_secs);
        let picture = crate::media::probe::probe(&self.media.ffprobe_path, &tmp, timeout)
            .await
            .ok()
            .and_then(|info| info.video)
            .filter(|v| v.width > 0 && v.height > 0);
        if picture.is_none() {
            return Err(AssetError::InputRefused(
                "the overlay_settings image is not a picture ffmpeg can read".to_owned(),
            ));
        }
        self.store.put_file(&key, &tmp).await?;
        Ok(())
    }

    /// Adds a subtitle or audio track (Mux's `POST /video/v1/assets/{id}/tracks`); its file is
    /// fetched, checked and converted (to WebVTT, or to AAC segments) by a job.
    pub async fn add_track(&self, asset_id: &str, input: TrackInput) -> Result<Track, AssetError> {
        input.validate().map_err(AssetError::Invalid)?;
        self.outbound.check_url(&input.url).await?;
        let asset = self.get(asset_id).await?;
        if asset.status == AssetStatus::Errored {
            return Err(AssetError::Invalid(format!(
                "asset {asset_id} is errored; tracks cannot be added to it"
            )));
        }
        if asset
            .tracks
            .iter()
            .filter(|t| t.input.kind == input.kind)
            .count()
            >= MAX_TRACKS_PER_KIND
        {
            return Err(AssetError::Invalid(format!(
                "asset {asset_id} already has {MAX_TRACKS_PER_KIND} {} tracks",
                input.kind.as_str()
            )));
        }
        let track = Track {
            id: random_id(),
            input,
            status: TrackStatus::Preparing,
            error: None,
        };
        self.db
            .add_track(asset_id, &track, now_unix())
            .await?
            .ok_or_else(|| AssetError::NotFound(asset_id.to_owned()))?;
        self.recent.forget_asset(asset_id);
        Ok(track)
    }

    /// Removes a track and its files.
    pub async fn delete_track(&self, asset_id: &str, track_id: &str) -> Result<(), AssetError> {
        if !is_valid_id(asset_id) || !is_valid_id(track_id) {
            return Err(AssetError::TrackNotFound(track_id.to_owned()));
        }
        let track = self
            .db
            .delete_track(asset_id, track_id)
            .await?
            .ok_or_else(|| AssetError::TrackNotFound(track_id.to_owned()))?;
        self.recent.forget_asset(asset_id);
        let key = match track.input.kind {
            TrackKind::Text => Asset::text_key(asset_id, track_id),
            TrackKind::Audio => Asset::audio_track_key(asset_id, track_id, ""),
        };
        self.store.delete(&StoreKey::parse(&key)?).await?;
        Ok(())
    }

    /// The job of a new text track: downloads its file (bounded), parses it as WebVTT or SRT and
    /// stores it as WebVTT; a file that is not subtitles errors the track, not the asset.
    async fn fetch_text_track(&self, asset_id: &str, track_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(());
        };
        let Some(track) = asset.tracks.iter().find(|t| t.id == track_id) else {
            return Ok(()); // Deleted meanwhile.
        };
        if track.status != TrackStatus::Preparing {
            return Ok(());
        }
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
        let deadline = Duration::from_secs(self.fetch.fetch_timeout_secs);
        tokio::time::timeout(
            deadline,
            self.download_limited(
                &self.outbound,
                &track.input.url,
                &tmp,
                subtitles::MAX_SUBTITLE_BYTES,
            ),
        )
        .await
        .map_err(|_| AssetError::DownloadPermanent(format!("took longer than {deadline:?}")))??;
        let bytes = tokio::fs::read(&tmp).await?;
        let cues = match subtitles::parse(&bytes) {
            Ok(cues) => cues,
            Err(e) => {
                self.db
                    .finish_track(
                        asset_id,
                        track_id,
                        TrackStatus::Errored,
                        Some(&e.to_string()),
                    )
                    .await?;
                self.recent.forget_asset(asset_id);
                return Ok(());
            }
        };
        tokio::fs::write(&tmp, subtitles::to_vtt(&cues)).await?;
        self.store
            .put_file(
                &StoreKey::parse(&Asset::text_key(asset_id, track_id))?,
                &tmp,
            )
            .await?;
        self.db
            .finish_track(asset_id, track_id, TrackStatus::Ready, None)
            .await?;
        self.recent.forget_asset(asset_id);
        Ok(())
    }

    /// The job of an audio track, once its asset is probed: downloads the file (bounded as an
    /// input is), checks it holds sound and encodes it into the track's HLS rendition, as long as
    /// the asset; a file without sound errors the track, not the asset.
    async fn fetch_audio_track(&self, asset_id: &str, track_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(());
        };
        let Some(track) = asset.tracks.iter().find(|t| t.id == track_id) else {
            return Ok(()); // Deleted meanwhile.
        };
        let Some(source) = asset
            .source
            .as_ref()
            .filter(|_| track.status == TrackStatus::Preparing)
        else {
            return Ok(());
        };
        let refuse = |reason: String| async move {
            self.db
                .finish_track(asset_id, track_id, TrackStatus::Errored, Some(&reason))
                .await?;
            self.recent.forget_asset(asset_id);
            Ok::<(), AssetError>(())
        };
        let mut secs = source.duration.unwrap_or(0.0);
        if asset.settings.test {
            secs = secs.min(f64::from(crate::pipeline::plan::TEST_SECS));
        }
        if secs <= 0.0 {
            return refuse("the asset has no duration to play this audio track along".into()).await;
        }
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
        let deadline = Duration::from_secs(self.fetch.fetch_timeout_secs);
        tokio::time::timeout(
            deadline,
            self.download(&self.outbound, &track.input.url, &tmp),
        )
        .await
        .map_err(|_| AssetError::DownloadPermanent(format!("took longer than {deadline:?}")))??;
        let timeout = Duration::from_secs(self.media.probe_timeout_secs);
        let channels =
            match crate::media::probe::probe(&self.media.ffprobe_path, &tmp, timeout).await {
                Ok(info) => match info.audio.first() {
                    Some(audio) => audio.channels.clamp(1, 2),
                    None => return refuse("the file holds no audio stream".into()).await,
                },
                Err(MediaError::NotMedia(reason)) => {
                    return refuse(format!("the file is not audio ffmpeg can read: {reason}")).await
                }
                Err(e) => return Err(e.into()),
            };
        let out = tempfile::tempdir_in(&self.scratch_dir)?;
        crate::media::ffmpeg::run(
            &self.media.ffmpeg_path,
            crate::pipeline::encode::audio_track_args(
                &tmp,
                secs,
                channels,
                asset.settings.normalize_audio,
                out.path(),
            ),
            self.media.encode_timeout(secs),
            |_| {},
        )
        .await?;
        // Segments first, the playlist last: a listed segment is always stored.
        let mut files = Vec::new();
        let mut entries = tokio::fs::read_dir(out.path()).await?;
        while let Some(entry) = entries.next_entry().await? {
            if let Ok(name) = entry.file_name().into_string() {
                if name.starts_with("seg_") && name.ends_with(".ts") {
                    files.push(name);
                }
            }
        }
        files.sort();
        files.push("index.m3u8".to_owned());
        for name in &files {
            let key = StoreKey::parse(&Asset::audio_track_key(asset_id, track_id, name))?;
            self.store.put_file(&key, &out.path().join(name)).await?;
        }
        self.db
            .finish_track(asset_id, track_id, TrackStatus::Ready, None)
            .await?;
        self.recent.forget_asset(asset_id);
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Asset, AssetError> {
        if !is_valid_id(id) {
            return Err(AssetError::NotFound(id.to_owned()));
        }
        self.db
            .get_asset(id)
            .await?
            .ok_or_else(|| AssetError::NotFound(id.to_owned()))
    }

    /// A page of the assets matching `filter` (upload id, `meta.external_id`, `meta.creator_id`),
    /// newest first, by page number or by an opaque `cursor` from a previous page; also the cursor
    /// of the next page when there may be one.
    pub async fn list(
        &self,
        limit: u32,
        page: u32,
        filter: &AssetFilter,
        cursor: Option<&str>,
    ) -> Result<(Vec<Asset>, Option<String>), AssetError> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let decoded = engine
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let parsed =
                    decoded
                        .as_deref()
                        .and_then(|d| d.split_once(':'))
                        .and_then(|(t, id)| {
                            Some((t.parse::<i64>().ok()?, id.to_owned()))
                                .filter(|(_, id)| is_valid_id(id))
                        });
                Some(parsed.ok_or_else(|| {
                    AssetError::Invalid(format!("cursor {c:?} is not a cursor from this API"))
                })?)
            }
        };
        let offset = limit.saturating_mul(page.saturating_sub(1));
        let assets = self
            .db
            .list_assets(
                limit,
                offset,
                filter,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
            )
            .await?;
        let next = (assets.len() as u32 == limit)
            .then(|| {
                assets
                    .last()
                    .map(|a| engine.encode(format!("{}:{}", a.created_at, a.id)))
            })
            .flatten();
        Ok((assets, next))
    }

    /// Deletes the asset now; its media is removed by a job queued in the same transaction.
    pub async fn delete(&self, id: &str) -> Result<(), AssetError> {
        let asset = self.get(id).await?;
        let job = Job::PurgeAssetMedia {
            asset_id: asset.id.clone(),
            original_key: asset.original.map(|o| o.key),
        };
        if !self.db.delete_asset(id, &job, now_unix()).await? {
            return Err(AssetError::NotFound(id.to_owned()));
        }
        self.pipeline.cancel(id);
        self.recent.forget_asset(id);
        Ok(())
    }

    /// Sets the meta fields that `meta` gives: `Some("")` clears a field, `None` keeps it (what
    /// Mux's `PATCH` does). One transaction, which also writes `video.asset.updated`. The asset as it
    /// is afterwards; `None` when there is no such asset.
    pub async fn set_meta(&self, id: &str, meta: AssetMeta) -> Result<Option<Asset>, AssetError> {
        self.update(
            id,
            &AssetChange {
                meta: Some(meta),
                ..AssetChange::default()
            },
        )
        .await
    }

    /// Sets `passthrough` when given and the meta fields `meta` gives (as `set_meta`), together in
    /// one transaction with one `video.asset.updated`. `None` when there is no such asset.
    pub async fn update(
        &self,
        id: &str,
        change: &AssetChange,
    ) -> Result<Option<Asset>, AssetError> {
        if let Some(meta) = &change.meta {
            meta.validate()
                .map_err(|e| AssetError::Invalid(format!("meta.{e}")))?;
        }
        if !is_valid_id(id) {
            return Ok(None);
        }
        Ok(self.db.update_asset(id, change).await?)
    }

    /// Sets which static files the asset has (Mux's static-renditions API and `mp4-support`):
    /// files no longer asked for are unpublished and removed from the store; new ones are made
    /// from the renditions by a queued job, the outputs counting as incomplete meanwhile.
    pub async fn set_static_files(
        &self,
        id: &str,
        static_renditions: Vec<String>,
        mp4_support: Option<String>,
    ) -> Result<Option<Asset>, AssetError> {
        if !is_valid_id(id) {
            return Ok(None);
        }
        let change = AssetChange {
            static_renditions: Some(static_renditions),
            mp4_support: Some(mp4_support),
            ..AssetChange::default()
        };
        let Some(asset) = self.db.update_asset(id, &change).await? else {
            return Ok(None);
        };
        let wanted = crate::pipeline::wanted_static_file_names(&asset);
        let (kept, dropped): (Vec<_>, Vec<_>) = asset
            .static_files
            .iter()
            .cloned()
            .partition(|f| wanted.contains(&f.name));
        let missing = !asset.renditions.is_empty()
            && wanted.iter().any(|w| !kept.iter().any(|k| &k.name == w));
        if (!dropped.is_empty() || missing)
            && !self
                .db
                .publish_outputs(
                    id,
                    &asset.renditions,
                    &kept,
                    asset.outputs_complete && !missing,
                )
                .await?
        {
            return Ok(None);
        }
        for file in &dropped {
            self.store
                .delete(&StoreKey::parse(&Asset::static_key(id, &file.name))?)
                .await?;
        }
        if missing {
            self.pipeline.requeue(id).await?;
        }
        Ok(self.db.get_asset(id).await?)
    }

    /// Stores `image` (JPEG, PNG, GIF or WebP, told by its first bytes) as the asset's cover and
    /// applies `change` with it, in one update. `None` when there is no such asset.
    pub async fn set_cover(
        &self,
        id: &str,
        image: &[u8],
        mut change: AssetChange,
    ) -> Result<Option<Asset>, AssetError> {
        let ext = match image {
            [0xff, 0xd8, 0xff, ..] => "jpg",
            [0x89, b'P', b'N', b'G', ..] => "png",
            [b'G', b'I', b'F', b'8', ..] => "gif",
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "webp",
            _ => {
                return Err(AssetError::Invalid(
                    "the cover must be a JPEG, PNG, GIF or WebP image".to_owned(),
                ))
            }
        };
        if !is_valid_id(id) || self.db.get_asset(id).await?.is_none() {
            return Ok(None);
        }
        let key = StoreKey::parse(&format!("{}cover.{ext}", Asset::media_prefix(id)))?;
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?;
        tokio::fs::write(tmp.path(), image).await?;
        self.store.put_file(&key, tmp.path()).await?;
        change.cover_key = Some(key.as_str().to_owned());
        self.update(id, &change).await
    }

    /// Deletes the assets whose expiry (`expire_at`) has come; returns how many.
    pub async fn delete_expired(&self, now: i64) -> Result<usize, AssetError> {
        let ids = self.db.list_expired_assets(now).await?;
        let mut deleted = 0;
        for id in &ids {
            match self.delete(id).await {
                Ok(()) => deleted += 1,
                Err(AssetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    pub async fn create_playback_id(
        &self,
        asset_id: &str,
        policy: PlaybackPolicy,
    ) -> Result<PlaybackId, AssetError> {
        let playback_id = PlaybackId {
            id: random_id(),
            policy,
        };
        if !is_valid_id(asset_id)
            || !self
                .db
                .create_playback_id(asset_id, &playback_id, now_unix())
                .await?
        {
            return Err(AssetError::NotFound(asset_id.to_owned()));
        }
        Ok(playback_id)
    }

    pub async fn get_playback_id(
        &self,
        asset_id: &str,
        playback_id: &str,
    ) -> Result<PlaybackId, AssetError> {
        self.get(asset_id)
            .await?
            .playback_ids
            .into_iter()
            .find(|p| p.id == playback_id)
            .ok_or_else(|| AssetError::PlaybackIdNotFound(playback_id.to_owned()))
    }

    /// The asset known by a (Tencent-style) FileId.
    pub async fn get_by_file_id(&self, file_id: &str) -> Result<Asset, AssetError> {
        if file_id.is_empty() || !file_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AssetError::NotFound(file_id.to_owned()));
        }
        self.db
            .get_asset_by_file_id(file_id)
            .await?
            .ok_or_else(|| AssetError::NotFound(file_id.to_owned()))
    }

    /// The asset owning a playback id.
    pub async fn find_playback_id(
        &self,
        playback_id: &str,
    ) -> Result<(String, PlaybackId), AssetError> {
        let not_found = || AssetError::PlaybackIdNotFound(playback_id.to_owned());
        if !is_valid_id(playback_id) {
            return Err(not_found());
        }
        let (asset_id, policy) = self
            .db
            .find_playback_id(playback_id)
            .await?
            .ok_or_else(not_found)?;
        Ok((
            asset_id,
            PlaybackId {
                id: playback_id.to_owned(),
                policy,
            },
        ))
    }

    pub async fn delete_playback_id(
        &self,
        asset_id: &str,
        playback_id: &str,
    ) -> Result<(), AssetError> {
        self.get(asset_id).await?;
        if !is_valid_id(playback_id) || !self.db.delete_playback_id(asset_id, playback_id).await? {
            return Err(AssetError::PlaybackIdNotFound(playback_id.to_owned()));
        }
        self.recent.forget_playback_id(playback_id);
        Ok(())
    }

    /// `temporary` grants a download URL of the original for `MASTER_ACCESS_SECS`; otherwise revokes it.
    pub async fn set_master_access(&self, id: &str, temporary: bool) -> Result<Asset, AssetError> {
        let until = temporary.then(|| now_unix() + MASTER_ACCESS_SECS);
        if !is_valid_id(id) || !self.db.set_master_access(id, until).await? {
            return Err(AssetError::NotFound(id.to_owned()));
        }
        self.get(id).await
    }

    /// The master download URL, while access is granted and the original is stored.
    pub fn master_url(&self, asset: &Asset) -> Option<String> {
        let until = asset.master_access_until.filter(|u| *u > now_unix())?;
        asset.original.as_ref()?;
        let token = self.signer.sign("master", &asset.id, until);
        let mut url = self.public_url.clone();
        url.set_path(&format!(
            "{}master/{}/original",
            crate::ingest::base_path(&self.public_url),
            asset.id
        ));
        url.set_query(Some(&format!("token={token}")));
        Some(url.to_string())
    }

    fn vod_key(asset: &Asset, name: &str) -> Result<StoreKey, AssetError> {
        let not_found = || AssetError::NotFound(format!("{}/{name}", asset.file_id));
        // Tencent-style URLs carry no token: an asset that is only playable with signed tokens
        // keeps its files private here too.
        let signed_only = !asset.playback_ids.is_empty()
            && asset
                .playback_ids
                .iter()
                .all(|p| p.policy == PlaybackPolicy::Signed);
        if signed_only {
            return Err(not_found());
        }
        if name.starts_with("src.") {
            let original = asset.original.as_ref().ok_or_else(not_found)?;
            return Ok(StoreKey::parse(&original.key)?);
        }
        if name.starts_with("cover.") {
            let cover = asset.settings.cover_key.as_ref().ok_or_else(not_found)?;
            return Ok(StoreKey::parse(cover)?);
        }
        StoreKey::parse(&crate::processing::run::output_key(&asset.id, name))
            .map_err(|_| not_found())
    }

    /// The name of the first `secs` seconds of the MP4 `name` of an asset (Tencent's `exper`
    /// preview), cut without re-encoding the first time it is asked for and kept with the asset's
    /// outputs (so deleted with it). Requests that find it missing take turns: one cuts, the
    /// others find it stored.
    pub async fn vod_preview(
        &self,
        file_id: &str,
        name: &str,
        secs: u32,
    ) -> Result<String, AssetError> {
        let asset = self.get_by_file_id(file_id).await?;
        let source = Self::vod_key(&asset, name)?;
        let preview = format!("preview-{secs}s-{name}");
        let key = StoreKey::parse(&crate::processing::run::output_key(&asset.id, &preview))
            .map_err(|_| AssetError::NotFound(format!("{file_id}/{name}")))?;
        if self.store.size(&key).await?.is_some() {
            return Ok(preview);
        }
        let _guard = self.preview_locks.lock(key.as_str()).await?;
        if self.store.size(&key).await?.is_some() {
            return Ok(preview);
        }
        let local = match self.store.media_input(&source, 120).await {
            Err(StorageError::NotFound(_)) => {
                return Err(AssetError::NotFound(format!("{file_id}/{name}")))
            }
            other => other?,
        };
        let out = tempfile::Builder::new()
            .suffix(".mp4")
            .tempfile_in(&self.scratch_dir)?
            .into_temp_path();
        // From 0, a keyframe: packets are copied as they are.
        crate::media::ffmpeg::run(
            &self.media.ffmpeg_path,
            crate::pipeline::encode::clip_args(
                local.location(),
                0.0,
                Some(f64::from(secs)),
                true,
                &self.media.x264_preset,
                &out,
            ),
            Duration::from_secs(120),
            |_| {},
        )
        .await?;
        self.store.put_file(&key, &out).await?;
        Ok(preview)
    }

    /// A Tencent-style media file of an asset (see `assets::http`), whole.
    pub async fn open_vod_file(
        &self,
        file_id: &str,
        name: &str,
    ) -> Result<StoredObject, AssetError> {
        let asset = self.get_by_file_id(file_id).await?;
        match self.store.get(&Self::vod_key(&asset, name)?, 0, None).await {
            Err(StorageError::NotFound(_)) => {
                Err(AssetError::NotFound(format!("{file_id}/{name}")))
            }
            other => Ok(other?),
        }
    }

    pub async fn open_vod_file_range(
        &self,
        file_id: &str,
        name: &str,
        start: u64,
        end: u64,
    ) -> Result<StoredObject, AssetError> {
        let asset = self.get_by_file_id(file_id).await?;
        Ok(self
            .store
            .get(&Self::vod_key(&asset, name)?, start, Some(end))
            .await?)
    }

    /// Opens the original bytes of an asset for a holder of a valid master URL.
    pub async fn open_master(
        &self,
        asset_id: &str,
        token: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> Result<StoredObject, AssetError> {
        let key = self.master_key(asset_id, token).await?;
        Ok(self.store.get(&key, start, end).await?)
    }

    /// The original's key, for a holder of a valid master URL while master access lasts.
    async fn master_key(
        &self,
        asset_id: &str,
        token: Option<&str>,
    ) -> Result<StoreKey, AssetError> {
        if !is_valid_id(asset_id) {
            return Err(AssetError::NotFound(asset_id.to_owned()));
        }
        self.signer.verify("master", asset_id, token, now_unix())?;
        let asset = self.get(asset_id).await?;
        let original = asset
            .original
            .filter(|_| asset.master_access_until.is_some_and(|u| u > now_unix()))
            .ok_or_else(|| AssetError::MasterNotAvailable(asset_id.to_owned()))?;
        Ok(StoreKey::parse(&original.key)?)
    }

    /// Where the holder of a valid master URL may download the original straight from the
    /// store, when the store redirects large reads.
    pub async fn master_location(
        &self,
        asset_id: &str,
        token: Option<&str>,
    ) -> Result<Option<String>, AssetError> {
        let key = self.master_key(asset_id, token).await?;
        Ok(self
            .store
            .presigned_get(&key, crate::storage::PRESIGNED_SECS)
            .await?)
    }

    /// Where a Tencent-style media file may be fetched straight from the store, when the store
    /// redirects large reads.
    pub async fn vod_file_location(
        &self,
        file_id: &str,
        name: &str,
    ) -> Result<Option<String>, AssetError> {
        let asset = self.get_by_file_id(file_id).await?;
        Ok(self
            .store
            .presigned_get(
                &Self::vod_key(&asset, name)?,
                crate::storage::PRESIGNED_SECS,
            )
            .await?)
    }

    /// Runs one job. Errors tell the worker whether to retry (`is_retryable`).
    pub async fn run_job(&self, job: &Job) -> Result<(), AssetError> {
        match job {
            Job::ProbeAsset { asset_id } => self.probe(asset_id).await,
            Job::FetchInput { asset_id } => self.fetch_input(asset_id).await,
            Job::RenderBbb { asset_id } => self.render_bbb(asset_id).await,
            Job::Transcode { asset_id } => Ok(self.pipeline.transcode(asset_id).await?),
            Job::TranscodePiece {
                asset_id,
                first,
                count,
            } => Ok(self
                .pipeline
                .transcode_piece(asset_id, *first, *count)
                .await?),
            Job::Process { task_id } => Ok(self.tasks.run(task_id).await?),
            Job::FetchTextTrack { asset_id, track_id } => {
                self.fetch_text_track(asset_id, track_id).await
            }
            Job::FetchAudioTrack { asset_id, track_id } => {
                self.fetch_audio_track(asset_id, track_id).await
            }
            Job::ClipInput { asset_id } => self.clip_input(asset_id).await,
            Job::PurgeAssetMedia {
                asset_id,
                original_key,
            } => {
                self.store
                    .delete(&StoreKey::parse(&Asset::media_prefix(asset_id))?)
                    .await?;
                if let Some(key) = original_key {
                    self.store.delete(&StoreKey::parse(key)?).await?;
                }
                Ok(())
            }
        }
    }

    /// Called when a job gives up for good: the asset it was preparing becomes `errored`.
    pub async fn job_failed(&self, job: &Job, error: &AssetError) -> Result<(), AssetError> {
        let asset_id = match job {
            Job::ProbeAsset { asset_id }
            | Job::FetchInput { asset_id }
            | Job::RenderBbb { asset_id }
            | Job::ClipInput { asset_id }
            | Job::Transcode { asset_id }
            | Job::TranscodePiece { asset_id, .. } => asset_id,
            Job::PurgeAssetMedia { .. } => return Ok(()),
            // A track that cannot be fetched errors, not its asset.
            Job::FetchTextTrack { asset_id, track_id }
            | Job::FetchAudioTrack { asset_id, track_id } => {
                let what = match job {
                    Job::FetchTextTrack { .. } => "subtitle file could not be downloaded",
                    _ => "audio file could not be downloaded or encoded",
                };
                self.db
                    .finish_track(
                        asset_id,
                        track_id,
                        TrackStatus::Errored,
                        Some(&format!("The {what}: {error}")),
                    )
                    .await?;
                self.recent.forget_asset(asset_id);
                return Ok(());
            }
            Job::Process { task_id } => {
                self.tasks.give_up(task_id, &error.to_string()).await?;
                return Ok(());
            }
        };
        let errors = match error {
            AssetError::Media(MediaError::NotMedia(reason)) => AssetErrors {
                kind: "invalid_input".to_owned(),
                messages: vec![format!(
                    "The input file is not a media file that can be processed: {reason}"
                )],
            },
            AssetError::InputRefused(_) => AssetErrors {
                kind: "invalid_input".to_owned(),
                messages: vec![error.to_string()],
            },
            AssetError::Pipeline(e) if e.is_input_error() => AssetErrors {
                kind: "invalid_input".to_owned(),
                messages: vec![format!("The input file could not be processed: {e}")],
            },
            AssetError::Bbb(e) => AssetErrors {
                kind: if matches!(
                    e,
                    crate::bbb::BbbError::Download { .. }
                        | crate::bbb::BbbError::DownloadPermanent { .. }
                        | crate::bbb::BbbError::Outbound(_)
                ) {
                    "download_failed".to_owned()
                } else {
                    "invalid_input".to_owned()
                },
                messages: vec![format!("The recording could not be rendered: {e}")],
            },
            AssetError::Outbound(_)
            | AssetError::Download(_)
            | AssetError::DownloadPermanent(_) => AssetErrors {
                kind: "download_failed".to_owned(),
                messages: vec![format!("The input URL could not be downloaded: {error}")],
            },
            other => AssetErrors {
                kind: "internal_error".to_owned(),
                messages: vec![format!("Processing failed: {other}")],
            },
        };
        self.db.set_asset_errored(asset_id, &errors).await?;
        Ok(())
    }

    async fn probe(&self, asset_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(()); // Deleted meanwhile.
        };
        self.fetch_overlay(&asset).await?;
        let Some(original) = asset.original else {
            return Err(AssetError::Invalid(format!(
                "asset {asset_id} has no stored input"
            )));
        };
        let local = self
            .store
            .local_file(&StoreKey::parse(&original.key)?)
            .await?;
        let timeout = Duration::from_secs(self.media.probe_timeout_secs);
        let info =
            crate::media::probe::probe(&self.media.ffprobe_path, local.path(), timeout).await?;
        let next = Job::Transcode {
            asset_id: asset_id.to_owned(),
        };
        // The procedure named at upload, else the configured one (Tencent VOD's task flow), runs
        // on every new file.
        let (outputs, context) = match &asset.settings.procedure {
            Some(p) if !p.outputs.is_empty() => (p.outputs.clone(), p.context.clone()),
            Some(p) => (self.procedure.clone(), p.context.clone()),
            None => (
                self.procedure.clone(),
                serde_json::json!({"TasksNotifyMode": "Finish"}),
            ),
        };
        let task = (!outputs.is_empty() && asset.source.is_none()).then(|| ProcessingTask {
            id: crate::processing::new_task_id(),
            asset_id: asset_id.to_owned(),
            status: crate::processing::TaskStatus::Waiting,
            outputs,
            results: Vec::new(),
            created_at_ms: crate::id::now_unix_ms(),
            begin_ms: None,
            finish_ms: None,
            error: None,
            context,
            session_id: None,
        });
        self.db
            .set_asset_source(asset_id, &info, Some(&next), task.as_ref(), now_unix())
            .await?;
        Ok(())
    }

    async fn fetch_input(&self, asset_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(());
        };
        if asset.original.is_none() {
            let url = asset
                .input_url
                .as_deref()
                .ok_or_else(|| AssetError::Invalid(format!("asset {asset_id} has no input URL")))?;
            let key = StoreKey::parse(&Asset::original_key(asset_id))?;
            let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
            let deadline = Duration::from_secs(self.fetch.fetch_timeout_secs);
            let size = tokio::time::timeout(deadline, self.download(&self.outbound, url, &tmp))
                .await
                .map_err(|_| {
                    AssetError::DownloadPermanent(format!("took longer than {deadline:?}"))
                })??;
            self.store_original(asset_id, &key, &tmp, size).await?;
        }
        self.probe(asset_id).await
    }

    /// Moves a fetched or rendered input into the store and records it as the asset's original.
    async fn store_original(
        &self,
        asset_id: &str,
        key: &StoreKey,
        file: &std::path::Path,
        size: u64,
    ) -> Result<(), AssetError> {
        self.store.put_file(key, file).await?;
        self.db
            .set_asset_original(
                asset_id,
                &StoredOriginal {
                    key: key.as_str().to_owned(),
                    size,
                },
            )
            .await?;
        Ok(())
    }

    /// Renders the recording into the scratch folder (or downloads a BBB "video" playback's file),
    /// stores it as the original, then probes it. A
    /// rerun after a crash starts the render again (its scratch folder died with the process);
    /// once the original is stored it is not rendered twice.
    async fn render_bbb(&self, asset_id: &str) -> Result<(), AssetError> {
        let Some(asset) = self.db.get_asset(asset_id).await? else {
            return Ok(());
        };
        if asset.original.is_none() {
            let url = asset.input_url.as_deref().ok_or_else(|| {
                AssetError::Invalid(format!("asset {asset_id} has no recording URL"))
            })?;
            // One cookie jar per recording: Scalelite's protected recordings grant their files
            // to the session that consumed the token.
            let session = self.outbound.session();
            let url =
                crate::bbb::source::open_playback(&session, url, self.bbb_server.as_ref()).await?;
            // A "video" playback is already a video: downloaded as it is.
            if crate::bbb::source::is_video_playback(&url) {
                let file = crate::bbb::source::video_file_url(&session, &url).await?;
                let key = StoreKey::parse(&Asset::original_key(asset_id))?;
                let tmp = tempfile::NamedTempFile::new_in(&self.scratch_dir)?.into_temp_path();
                let size = self.download(&session, file.as_str(), &tmp).await?;
                self.store_original(asset_id, &key, &tmp, size).await?;
                return self.probe(asset_id).await;
            }
            let source = crate::bbb::source::Source::parse_url(&url)?;
            let work = tempfile::Builder::new()
                .prefix("bbb-job-")
                .tempdir_in(&self.scratch_dir)?;
            let output = work.path().join("render.mp4");
            let opts = crate::bbb::render::RenderOptions {
                ffmpeg: self.media.ffmpeg_path.clone(),
                ffprobe: self.media.ffprobe_path.clone(),
                probe_timeout: Duration::from_secs(self.media.probe_timeout_secs),
                x264_preset: self.media.x264_preset.clone(),
                ..crate::bbb::render::RenderOptions::default()
            };
            let rendered = crate::bbb::render::render_source(
                &source,
                &output,
                None,
                work.path(),
                &session,
                &opts,
                None,
            )
            .await?;
            for warning in &rendered.warnings {
                tracing::warn!(asset_id, %warning, "bbb render");
            }
            let size = std::fs::metadata(&output)?.len();
            let key = StoreKey::parse(&Asset::original_key(asset_id))?;
            self.store_original(asset_id, &key, &output, size).await?;
        }
        self.probe(asset_id).await
    }

    async fn download(
        &self,
        outbound: &Outbound,
        url: &str,
        target: &std::path::Path,
    ) -> Result<u64, AssetError> {
        self.download_limited(outbound, url, target, self.fetch.fetch_max_bytes)
            .await
    }

    /// Downloads `url` into `target`, refusing more than `max` bytes.
    async fn download_limited(
        &self,
        outbound: &Outbound,
        url: &str,
        target: &std::path::Path,
        max: u64,
    ) -> Result<u64, AssetError> {
        outbound.check_url(url).await?;
        let response = outbound
            .client()
            .get(url)
            .send()
            .await
            .map_err(|e| AssetError::Download(describe_reqwest(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("{url} answered HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                AssetError::Download(message)
            } else {
                AssetError::DownloadPermanent(message)
            });
        }
        if response.content_length().is_some_and(|len| len > max) {
            return Err(AssetError::DownloadPermanent(format!(
                "input is larger than the {max}-byte limit"
            )));
        }
        let mut file = tokio::fs::File::create(target).await?;
        let mut size = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| AssetError::Download(describe_reqwest(&e)))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(AssetError::DownloadPermanent(format!(
                    "input is larger than the {max}-byte limit"
                )));
            }
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok(size)
    }
}

/// reqwest's top-level message hides the cause (e.g. the address policy); include the chain.
pub(crate) fn describe_reqwest(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

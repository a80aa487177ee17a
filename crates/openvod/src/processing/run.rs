//! Running a processing task: MP4 outputs from one ffmpeg process, then snapshots and covers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Digest;

use super::{OutputFile, OutputRequest, OutputResult, ProcessingTask, TaskStatus};
use crate::assets::model::Asset;
use crate::config::MediaConfig;
use crate::error::DbError;
use crate::id::now_unix_ms;
use crate::media::probe::MediaInfo;
use crate::media::MediaError;
use crate::storage::{ArcStore, StorageError, StoreKey};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("scratch I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

pub struct TaskRunner {
    db: std::sync::Arc<dyn crate::processing::repo::TaskRunStore>,
    store: ArcStore,
    media: MediaConfig,
    scratch_dir: PathBuf,
}

/// Where a task output is stored, below the asset's folder; also its public name.
pub fn output_key(asset_id: &str, name: &str) -> String {
    format!("assets/{asset_id}/vod/{name}")
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

impl TaskRunner {
    pub fn new(
        db: std::sync::Arc<dyn crate::processing::repo::TaskRunStore>,
        store: ArcStore,
        media: MediaConfig,
        scratch_dir: PathBuf,
    ) -> TaskRunner {
        TaskRunner {
            db,
            store,
            media,
            scratch_dir,
        }
    }

    /// Runs the task to its end. Output failures are recorded in the task's results (the task still
    /// finishes); only infrastructure failures are errors, and the job is retried.
    pub async fn run(&self, task_id: &str) -> Result<(), RunError> {
        let Some(mut task) = self.db.get_task(task_id).await? else {
            return Ok(());
        };
        if task.status == TaskStatus::Finish {
            return Ok(());
        }
        let asset = self.db.get_asset(&task.asset_id).await?;
        let source = asset
            .as_ref()
            .and_then(|a| a.source.clone().zip(a.original.clone()));
        let (Some(asset), Some((info, original))) = (asset, source) else {
            task.error = Some("the media no longer exists or has no readable source".to_owned());
            return self.finish(task).await;
        };
        task.status = TaskStatus::Processing;
        task.begin_ms = Some(now_unix_ms());
        self.changed(&task).await?;
        let input = self
            .store
            .local_file(&StoreKey::parse(&original.key)?)
            .await?;
        let scratch = tempfile::Builder::new()
            .prefix("task-")
            .tempdir_in(&self.scratch_dir)?;
        let mut results = Vec::new();
        let mp4s: Vec<&OutputRequest> = task
            .outputs
            .iter()
            .filter(|o| matches!(o, OutputRequest::Mp4 { .. }))
            .collect();
        if !mp4s.is_empty() {
            results.extend(
                self.mp4_outputs(&asset, &info, input.path(), &mp4s, scratch.path())
                    .await?,
            );
        }
        let images: Vec<OutputRequest> = task
            .outputs
            .iter()
            .filter(|o| !matches!(o, OutputRequest::Mp4 { .. }))
            .cloned()
            .collect();
        for request in &images {
            if !results.is_empty() {
                task.results = results.clone();
                self.changed(&task).await?;
            }
            results.push(
                self.image_outputs(&asset, &info, input.path(), request, scratch.path())
                    .await?,
            );
        }
        task.results = results;
        self.finish(task).await
    }

    /// Saves progress; with `TasksNotifyMode: Change`, also as an event.
    async fn changed(&self, task: &ProcessingTask) -> Result<(), RunError> {
        if task.context.get("TasksNotifyMode").and_then(|m| m.as_str()) == Some("Change") {
            self.db.save_task_with_event(task).await?;
        } else {
            self.db.save_task(task).await?;
        }
        Ok(())
    }

    /// Ends a task whose job gave up, recording why.
    pub async fn give_up(&self, task_id: &str, error: &str) -> Result<(), RunError> {
        if let Some(mut task) = self.db.get_task(task_id).await? {
            if task.status != TaskStatus::Finish {
                task.error = Some(error.to_owned());
                return self.finish(task).await;
            }
        }
        Ok(())
    }

    async fn finish(&self, mut task: ProcessingTask) -> Result<(), RunError> {
        task.status = TaskStatus::Finish;
        task.finish_ms = Some(now_unix_ms());
        if task.context.get("TasksNotifyMode").and_then(|m| m.as_str()) == Some("None") {
            self.db.save_task(&task).await?;
        } else {
            self.db.save_task_with_event(&task).await?;
        }
        Ok(())
    }

    async fn ffmpeg(&self, args: Vec<OsString>, info: &MediaInfo) -> Result<(), MediaError> {
        crate::media::ffmpeg::run(
            &self.media.ffmpeg_path,
            args,
            self.media.encode_timeout(info.duration.unwrap_or(0.0)),
            |_| {},
        )
        .await
    }

    async fn mp4_outputs(
        &self,
        asset: &Asset,
        info: &MediaInfo,
        input: &Path,
        requests: &[&OutputRequest],
        scratch: &Path,
    ) -> Result<Vec<OutputResult>, RunError> {
        let begin_ms = now_unix_ms();
        let has_audio = !info.audio.is_empty();
        let mut args: Vec<OsString> = vec!["-i".into(), input.into()];
        let video = info.video.as_ref().map(|v| v.display_size());
        if let Some((w, h)) = video {
            let n = requests.len();
            let mut graph = format!("[0:v:0]format=yuv420p,split={n}");
            for i in 0..n {
                graph.push_str(&format!("[s{i}]"));
            }
            for (i, request) in requests.iter().enumerate() {
                let OutputRequest::Mp4 { height, fps, .. } = request else {
                    unreachable!("only MP4 requests")
                };
                // The template's height applies to the shorter side; never upscale.
                let side = (*height).min(w.min(h));
                let (ow, oh) = if w >= h {
                    (even(side as f64 * w as f64 / h as f64), even(side as f64))
                } else {
                    (even(side as f64), even(side as f64 * h as f64 / w as f64))
                };
                graph.push_str(&format!(";[s{i}]fps={fps},scale={ow}:{oh},setsar=1[v{i}]"));
            }
            args.push("-filter_complex".into());
            args.push(graph.into());
        }
        let mut targets = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let OutputRequest::Mp4 {
                preset,
                video_kbps,
                audio_kbps,
                hls,
                ..
            } = request
            else {
                unreachable!("only MP4 requests")
            };
            if video.is_some() {
                args.push("-map".into());
                args.push(format!("[v{i}]").into());
                for a in [
                    "-c:v",
                    "libx264",
                    "-preset",
                    &self.media.x264_preset,
                    "-profile:v",
                    "high",
                ] {
                    args.push(a.into());
                }
                args.push("-b:v".into());
                args.push(format!("{video_kbps}k").into());
                args.push("-maxrate".into());
                args.push(format!("{}k", video_kbps * 3 / 2).into());
                args.push("-bufsize".into());
                args.push(format!("{}k", video_kbps * 2).into());
            }
            if has_audio {
                for a in [
                    "-map", "0:a:0", "-c:a", "aac", "-ar", "44100", "-ac", "2", "-b:a",
                ] {
                    args.push(a.into());
                }
                args.push(format!("{audio_kbps}k").into());
            }
            let target = if *hls {
                for a in [
                    "-f",
                    "hls",
                    "-hls_time",
                    "10",
                    "-hls_playlist_type",
                    "vod",
                    "-hls_segment_filename",
                ] {
                    args.push(a.into());
                }
                args.push(scratch.join(format!("v.f{preset}_%d.ts")).into());
                scratch.join(format!("v.f{preset}.m3u8"))
            } else {
                for a in ["-movflags", "+faststart", "-f", "mp4"] {
                    args.push(a.into());
                }
                scratch.join(format!("v.f{preset}.mp4"))
            };
            args.push(target.clone().into());
            targets.push(target);
        }
        let outcome = self.ffmpeg(args, info).await;
        let mut results = Vec::new();
        for (request, target) in requests.iter().zip(targets) {
            let result = match &outcome {
                Ok(()) => match self.publish_output(asset, &target).await {
                    Ok(file) => Ok(file),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            results.push(self.result((*request).clone(), result.map(|f| vec![f]), begin_ms));
        }
        Ok(results)
    }

    fn result(
        &self,
        request: OutputRequest,
        files: Result<Vec<OutputFile>, String>,
        begin_ms: i64,
    ) -> OutputResult {
        let (ok, error, files) = match files {
            Ok(files) => (true, None, files),
            Err(e) => (false, Some(e), Vec::new()),
        };
        OutputResult {
            request,
            ok,
            error,
            files,
            begin_ms,
            finish_ms: now_unix_ms(),
        }
    }

    async fn image_outputs(
        &self,
        asset: &Asset,
        info: &MediaInfo,
        input: &Path,
        request: &OutputRequest,
        scratch: &Path,
    ) -> Result<OutputResult, RunError> {
        let begin_ms = now_unix_ms();
        let duration = info.duration.unwrap_or(0.0);
        let (times, prefix): (Vec<f64>, &str) = match request {
            OutputRequest::Snapshots { times, .. } => {
                (times.clone(), "snapshotByTimeOffset/snapshotByTimeOffset")
            }
            OutputRequest::Cover { time, .. } => (vec![*time], "coverBySnapshot/coverBySnapshot"),
            OutputRequest::Mp4 { .. } => unreachable!("MP4 outputs are made in one pass"),
        };
        if info.video.is_none() {
            return Ok(self.result(
                request.clone(),
                Err("the media has no video to take a picture of".to_owned()),
                begin_ms,
            ));
        }
        let mut files = Vec::new();
        for (i, time) in times.iter().enumerate() {
            let at = time.clamp(0.0, (duration - 0.05).max(0.0));
            let target = scratch.join(format!("img-{}-{i}.jpg", request.preset()));
            let args: Vec<OsString> = vec![
                "-ss".into(),
                format!("{at:.3}").into(),
                "-i".into(),
                input.into(),
                "-frames:v".into(),
                "1".into(),
                "-q:v".into(),
                "3".into(),
                "-f".into(),
                "image2".into(),
                target.clone().into(),
            ];
            if let Err(e) = self.ffmpeg(args, info).await {
                return Ok(self.result(request.clone(), Err(e.to_string()), begin_ms));
            }
            let name = format!("{prefix}_{}_{i}.jpg", request.preset());
            match self
                .publish(asset, &target, &name, Some((at * 1000.0) as i64))
                .await
            {
                Ok(file) => files.push(file),
                Err(e) => return Ok(self.result(request.clone(), Err(e.to_string()), begin_ms)),
            }
        }
        Ok(self.result(request.clone(), Ok(files), begin_ms))
    }

    /// Publishes an MP4, or an HLS playlist with its segments (its size then counts them all, as
    /// Tencent reports it).
    async fn publish_output(&self, asset: &Asset, target: &Path) -> Result<OutputFile, RunError> {
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".m3u8") {
            return self.publish(asset, target, &name, None).await;
        }
        let playlist = tokio::fs::read_to_string(target).await?;
        let dir = target.parent().expect("outputs live in a folder");
        let segments: Vec<String> = crate::pipeline::media_playlist_segments(&playlist)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        let first = segments
            .first()
            .ok_or_else(|| std::io::Error::other("the HLS output has no segment"))?;
        // Measure the stream from its first segment, then move every segment before the playlist.
        let measured = self.publish(asset, &dir.join(first), first, None).await?;
        let mut size = measured.size;
        for segment in &segments[1..] {
            size += self
                .publish(asset, &dir.join(segment), segment, None)
                .await?
                .size;
        }
        let duration = crate::pipeline::media_playlist_segments(&playlist)
            .iter()
            .map(|(_, d)| d)
            .sum::<f64>();
        let mut file = self.publish(asset, target, &name, None).await?;
        size += file.size;
        file.size = size;
        file.duration = duration;
        file.bitrate = if duration > 0.0 {
            (size as f64 * 8.0 / duration) as u64
        } else {
            0
        };
        file.container = "hls,applehttp".to_owned();
        (file.width, file.height, file.video_codec, file.fps) = (
            measured.width,
            measured.height,
            measured.video_codec,
            measured.fps,
        );
        (file.audio_codec, file.sample_rate) = (measured.audio_codec, measured.sample_rate);
        Ok(file)
    }

    /// Measures a finished output file and moves it into the store.
    async fn publish(
        &self,
        asset: &Asset,
        path: &Path,
        name: &str,
        time_offset_ms: Option<i64>,
    ) -> Result<OutputFile, RunError> {
        let md5 = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || -> std::io::Result<String> {
                use std::io::Read;
                let mut file = std::fs::File::open(path)?;
                let mut hasher = md5::Md5::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                Ok(hex::encode(hasher.finalize()))
            })
            .await
            .expect("hashing does not panic")?
        };
        let size = tokio::fs::metadata(path).await?.len();
        let timeout = Duration::from_secs(self.media.probe_timeout_secs);
        let probe = crate::media::probe::probe(&self.media.ffprobe_path, path, timeout)
            .await
            .ok();
        let mut file = OutputFile {
            name: name.to_owned(),
            size,
            md5,
            time_offset_ms,
            ..OutputFile::default()
        };
        if let Some(p) = probe {
            file.container = p.format_name.clone();
            file.duration = p.duration.unwrap_or(0.0);
            file.bitrate = if file.duration > 0.0 {
                (size as f64 * 8.0 / file.duration) as u64
            } else {
                0
            };
            if let Some(v) = &p.video {
                let (w, h) = v.display_size();
                file.width = w;
                file.height = h;
                file.video_codec = Some(v.codec.clone());
                file.video_bitrate = v.bit_rate.unwrap_or(0);
                file.fps = v.frame_rate.unwrap_or(0.0);
            }
            if let Some(a) = p.audio.first() {
                file.audio_codec = Some(a.codec.clone());
                file.sample_rate = a.sample_rate.unwrap_or(0);
            }
        }
        self.store
            .put_file(&StoreKey::parse(&output_key(&asset.id, name))?, path)
            .await?;
        Ok(file)
    }
}

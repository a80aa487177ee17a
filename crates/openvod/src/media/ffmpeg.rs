//! Running ffmpeg: `-nostdin`, progress from `-progress pipe:1`, a wall-clock timeout, the tail of
//! stderr kept for error messages, and the child killed when the future is dropped.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::MediaError;

/// Parses one `-progress` line; `Some(seconds)` for `out_time_us`/`out_time_ms` (both are µs).
pub(crate) fn parse_progress_line(line: &str) -> Option<f64> {
    let (key, value) = line.trim().split_once('=')?;
    match key {
        "out_time_us" | "out_time_ms" => value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(|us| us as f64 / 1e6),
        _ => None,
    }
}

/// Global flags for every run; `-nostdin` (no interactive commands) except when stdin is an input.
fn global_args(fed: bool) -> impl Iterator<Item = &'static str> {
    let nostdin = (!fed).then_some("-nostdin");
    nostdin.into_iter().chain([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
    ])
}

/// How the child competes for the CPU with the server and with other encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Normal,
    /// Niceness 10 above the server's: long encodes yield to request handling and to short, latency-bound runs
    /// (a first segment, an on-demand image) and still take every idle cycle.
    Background,
}

fn spawn(
    ffmpeg: &Path,
    args: &[OsString],
    fed: bool,
    priority: Priority,
) -> Result<Child, MediaError> {
    let mut command = Command::new(ffmpeg);
    if priority == Priority::Background {
        // A group of its own, so the niceness set below reaches every thread of the child,
        // including any started before it was set (later ones inherit it).
        command.process_group(0);
    }
    command
        .args(global_args(fed))
        .args(args)
        .stdin(if fed { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| MediaError::Spawn(ffmpeg.to_path_buf(), e))
        .inspect(|child| {
            if priority == Priority::Background {
                lower_priority(child);
            }
        })
}

fn lower_priority(child: &Child) {
    use rustix::process::{getpriority_process, setpriority_pgrp, Pid};
    let group = child.id().and_then(|id| Pid::from_raw(id as i32));
    let lowered = getpriority_process(None)
        .and_then(|ours| group.map_or(Ok(()), |g| setpriority_pgrp(Some(g), (ours + 10).min(19))));
    if let Err(e) = lowered {
        // Only politeness is lost: the encode runs as fast as before.
        tracing::warn!(error = %e, "could not lower ffmpeg's CPU priority");
    }
}

/// Reads progress until ffmpeg exits (or the timeout kills it) and checks its status.
async fn finish(
    ffmpeg: &Path,
    child: Child,
    timeout: Duration,
    on_progress: impl FnMut(f64) + Send,
) -> Result<(), MediaError> {
    let started = std::time::Instant::now();
    let result = finish_timed(ffmpeg, child, timeout, on_progress).await;
    crate::metrics::metrics()
        .ffmpeg_seconds
        .inc_by(started.elapsed().as_secs_f64());
    result
}

async fn finish_timed(
    ffmpeg: &Path,
    mut child: Child,
    timeout: Duration,
    mut on_progress: impl FnMut(f64) + Send,
) -> Result<(), MediaError> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    let work = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(seconds) = parse_progress_line(&line) {
                on_progress(seconds);
            }
        }
        child.wait().await
    };
    let status = match tokio::time::timeout(timeout, work).await {
        Ok(status) => status.map_err(|e| MediaError::Spawn(ffmpeg.to_path_buf(), e))?,
        Err(_) => return Err(MediaError::Timeout(ffmpeg.to_path_buf(), timeout)),
    };
    let stderr = stderr_task.await.unwrap_or_default();
    if !status.success() {
        return Err(MediaError::Failed {
            command: ffmpeg.to_path_buf(),
            stderr: super::stderr_tail(&stderr),
        });
    }
    Ok(())
}

/// Runs ffmpeg with `args` (inputs and outputs; global flags are added here). `on_progress` gets the
/// output time in seconds as ffmpeg reports it.
pub async fn run(
    ffmpeg: &Path,
    args: Vec<OsString>,
    timeout: Duration,
    on_progress: impl FnMut(f64) + Send,
) -> Result<(), MediaError> {
    run_with_priority(ffmpeg, args, timeout, Priority::Normal, on_progress).await
}

/// `run` at the given CPU priority.
pub async fn run_with_priority(
    ffmpeg: &Path,
    args: Vec<OsString>,
    timeout: Duration,
    priority: Priority,
    on_progress: impl FnMut(f64) + Send,
) -> Result<(), MediaError> {
    let child = spawn(ffmpeg, &args, false, priority)?;
    finish(ffmpeg, child, timeout, on_progress).await
}

/// How a fed run failed: ffmpeg itself, or the code writing its input.
#[derive(Debug)]
pub enum FedError<E> {
    Media(MediaError),
    Feed(E),
}

/// Runs ffmpeg like `run`, with `feed` writing its stdin (`-i pipe:0` in `args`) on a blocking
/// thread. When ffmpeg fails its error wins (the feeder then only saw a broken pipe); when the
/// feeder fails, its stdin closes and its error is returned.
pub async fn run_fed<E: Send + 'static>(
    ffmpeg: &Path,
    args: Vec<OsString>,
    timeout: Duration,
    feed: impl FnOnce(std::fs::File) -> Result<(), E> + Send + 'static,
    on_progress: impl FnMut(f64) + Send,
) -> Result<(), FedError<E>> {
    let mut child = spawn(ffmpeg, &args, true, Priority::Normal).map_err(FedError::Media)?;
    let stdin = child
        .stdin
        .take()
        .expect("stdin is piped")
        .into_owned_fd()
        .map_err(|e| FedError::Media(MediaError::Spawn(ffmpeg.to_path_buf(), e)))?;
    let feeder = tokio::task::spawn_blocking(move || feed(std::fs::File::from(stdin)));
    let (fed, ran) = tokio::join!(feeder, finish(ffmpeg, child, timeout, on_progress));
    ran.map_err(FedError::Media)?;
    match fed {
        Ok(result) => result.map_err(FedError::Feed),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for ffmpeg that waits a moment (so the priority is set by then), then writes
    /// its niceness to the file named by its last argument.
    fn niceness_reporter(dir: &Path) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("report-niceness");
        std::fs::write(
            &script,
            "#!/bin/sh\nsleep 0.3\nfor last; do :; done\nnice > \"$last\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[tokio::test]
    async fn background_runs_are_niced_ten_above_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let script = niceness_reporter(dir.path());
        let ours = rustix::process::getpriority_process(None).unwrap();
        for (priority, expected) in [
            (Priority::Normal, ours),
            (Priority::Background, (ours + 10).min(19)),
        ] {
            let out = dir.path().join(format!("{priority:?}"));
            let args = vec![out.clone().into_os_string()];
            run_with_priority(&script, args, Duration::from_secs(10), priority, |_| {})
                .await
                .unwrap();
            let reported: i32 = std::fs::read_to_string(&out)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(reported, expected, "{priority:?}");
        }
    }

    #[test]
    fn progress_lines() {
        assert_eq!(parse_progress_line("out_time_us=1500000"), Some(1.5));
        assert_eq!(parse_progress_line("out_time_ms=2000000"), Some(2.0));
        assert_eq!(parse_progress_line("out_time_us=N/A"), None);
        assert_eq!(
            parse_progress_line("out_time_us=-9223372036854775807"),
            None
        );
        assert_eq!(parse_progress_line("progress=end"), None);
        assert_eq!(parse_progress_line("garbage"), None);
    }
}

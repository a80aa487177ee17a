//! The only place that runs ffmpeg and ffprobe.
//!
//! Children are started with `kill_on_drop`, so dropping a future (timeout, cancellation, shutdown)
//! kills the process. This module knows nothing of the database or HTTP.

pub mod ffmpeg;
pub mod probe;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("required command {0} could not be started; install ffmpeg (Debian package `ffmpeg`) or set [media] paths: {1}")]
    Spawn(PathBuf, #[source] std::io::Error),
    #[error("{0} timed out after {1:?}")]
    Timeout(PathBuf, Duration),
    #[error("{command} failed: {stderr}")]
    Failed { command: PathBuf, stderr: String },
    #[error("could not read {0} output: {1}")]
    Output(PathBuf, String),
    #[error("the input is not a media file: {0}")]
    NotMedia(String),
}

impl MediaError {
    /// Whether the same input could succeed on a later try (a spawn failure or timeout may be transient;
    /// an input ffprobe rejects will be rejected again).
    pub fn is_retryable(&self) -> bool {
        matches!(self, MediaError::Spawn(..) | MediaError::Timeout(..))
    }
}

/// Runs `program args…` to completion with stdin closed, returning stdout; a non-zero exit is `Failed`
/// carrying the tail of stderr.
pub(crate) async fn run_to_completion<I, S>(
    program: &Path,
    args: I,
    timeout: Duration,
) -> Result<Vec<u8>, MediaError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| MediaError::Spawn(program.to_path_buf(), e))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| MediaError::Timeout(program.to_path_buf(), timeout))?
        .map_err(|e| MediaError::Spawn(program.to_path_buf(), e))?;
    if !output.status.success() {
        return Err(MediaError::Failed {
            command: program.to_path_buf(),
            stderr: stderr_tail(&output.stderr),
        });
    }
    Ok(output.stdout)
}

fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join("; ")
}

//! BigBlueButton recordings: turning a published "presentation" recording (slides, whiteboard,
//! cursor, screenshare, webcams, chat, captions) into one video file, offline.
//!
//! - `source`: what the user points at (playback URL, published folder URL, local folder).
//! - `fetch`: downloads what a recording references into a local folder (bounded, retried).
//! - `recording`: parses the published files into one `Recording` timeline model.
//! - `tldraw`: BBB >= 2.6 whiteboard shapes (tldraw v1 and v2) as SVG fragments.
//! - `compose`: draws each distinct frame once (resvg/tiny-skia, no browser).
//! - `mkv`: the minimal Matroska writer that hands frames and their timestamps to ffmpeg.
//! - `render`: the whole run (parse, compose, ffmpeg for overlays, audio and muxing).
//! - `api`: the old server's getRecordings (checksum, paging, streaming parse).
//! - `moodle`: who owns a recording, from the Moodle database (PostgreSQL or MySQL).
//! - `migrate`: `bbb list` and `bbb migrate` (Pod's flags, selection, CSV).
//!
//! This module knows nothing of the database or HTTP: the CLI and the render job both call
//! `render::render_source`.

pub mod api;
pub mod compose;
pub mod fetch;
pub mod migrate;
pub mod mkv;
pub mod moodle;
pub mod recording;
pub mod render;
pub mod source;
pub mod timeline;
pub mod tldraw;
mod xml;

use crate::error::ErrorKind;
use crate::media::MediaError;
use crate::outbound::OutboundError;

#[derive(Debug, thiserror::Error)]
pub enum BbbError {
    #[error("{0}")]
    InvalidSource(String),
    #[error("the recording has no {0}, which is required")]
    Missing(String),
    #[error("{file} is invalid: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file} references {href:?}, which is not a file inside the recording")]
    UnsafePath { file: String, href: String },
    #[error("downloading {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("downloading {url} failed: {reason}")]
    DownloadPermanent { url: String, reason: String },
    #[error("{file} is larger than the {limit}-byte limit")]
    TooLarge { file: String, limit: u64 },
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("Moodle database {server}: {reason}")]
    Moodle { server: String, reason: String },
    #[error("rendering failed: {0}")]
    Render(String),
    #[error("I/O failed on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl BbbError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BbbError::InvalidSource(_) | BbbError::Outbound(_) => ErrorKind::Invalid,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether a later try could succeed (a server error or a dropped connection while downloading,
    /// local I/O, an ffmpeg spawn failure or timeout); a broken recording stays broken.
    pub fn is_retryable(&self) -> bool {
        match self {
            BbbError::Download { .. } | BbbError::Io { .. } => true,
            BbbError::Media(e) => e.is_retryable(),
            _ => false,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> BbbError {
        BbbError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Validates a path taken from a recording (an `xlink:href`, a caption locale, a file name): it must
/// be relative and stay inside the recording. Returns the normalized relative path.
pub fn recording_path(file: &str, href: &str) -> Result<String, BbbError> {
    let trimmed = href.trim();
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    match crate::storage::StoreKey::parse(trimmed) {
        Ok(_) if !trimmed.ends_with('/') => Ok(trimmed.to_owned()),
        _ => Err(BbbError::UnsafePath {
            file: file.to_owned(),
            href: href.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::recording_path;

    #[test]
    fn recording_paths_stay_inside() {
        assert_eq!(
            recording_path("shapes.svg", "presentation/abc-1/slide-1.png").unwrap(),
            "presentation/abc-1/slide-1.png"
        );
        assert_eq!(
            recording_path("shapes.svg", "./presentation/logo.png").unwrap(),
            "presentation/logo.png"
        );
        for bad in [
            "../secret",
            "/etc/passwd",
            "presentation/../../x",
            "http://evil/x.png",
            "file:///etc/passwd",
            "a\\b",
            "",
            "dir/",
            "a//b",
            "%2e%2e/x",
        ] {
            assert!(recording_path("shapes.svg", bad).is_err(), "{bad}");
        }
    }
}

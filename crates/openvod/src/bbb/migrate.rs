//! `openvod bbb migrate` and `openvod bbb list`: what Esup-Pod's `migrate_bbb_recordings` does,
//! with its flags, on the listing of the old server.
//!
//! Here: the listing (getRecordings through `api`, saved to the cache file), the selection and
//! the CSV Pod writes; the run itself, which needs the database, is `crate::migration::run`.
//! Ranges index the listing order, 1-based, as Pod does; every output line names the recordID
//! so one recording can be rerun with `--record-id`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::api::{self, Checksum, ListedRecording, Server};
use super::BbbError;
use crate::config::BbbConfig;
use crate::outbound::Outbound;

/// Pod's CSV header (`Moodle_owners` is appended when Moodle lookups are on).
pub const CSV_HEADER: [&str; 13] = [
    "meeting_name",
    "recording_name",
    "start_date",
    "origin",
    "origin_server_name",
    "origin_version",
    "origin_context",
    "origin_id",
    "origin_label",
    "description",
    "published",
    "state",
    "source_url",
];

/// Which recordings of the listing a run handles.
#[derive(Debug, Clone)]
pub struct Selection {
    /// 1-based, inclusive, in listing order.
    pub min: u64,
    pub max: u64,
    pub record_id: Option<String>,
}

impl Selection {
    pub fn includes(&self, index: u64, rec: &ListedRecording) -> bool {
        (self.min..=self.max).contains(&index)
            && self
                .record_id
                .as_ref()
                .is_none_or(|id| *id == rec.record_id)
    }
}

/// One CSV row, as Pod's `Generic_recording.as_list()`.
pub fn csv_row(rec: &ListedRecording, playback_url_23: bool) -> Vec<String> {
    let meta = |key: &str| rec.meta(key).unwrap_or_default().to_owned();
    vec![
        rec.name.trim().to_owned(),
        meta("bbb-recording-name"),
        rec.start_date(),
        meta("bbb-origin"),
        meta("bbb-origin-server-name"),
        meta("bbb-origin-version"),
        meta("bbb-context"),
        meta("bbb-context-id"),
        meta("bbb-context-label"),
        meta("bbb-recording-description"),
        rec.published.trim().to_owned(),
        rec.state.trim().to_owned(),
        rec.source_url(playback_url_23).unwrap_or_default(),
    ]
}

/// A CSV writer with Pod's dialect: `;`, `"` only where needed, CRLF (Python's `csv` default).
pub fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .delimiter(b';')
        .quote(b'"')
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// The old server, from `[bbb]`.
pub fn server(config: &BbbConfig) -> Result<Server, BbbError> {
    let url = config.server_url.as_deref().ok_or_else(|| {
        BbbError::InvalidSource("[bbb] server_url is not set in the config file".to_owned())
    })?;
    let secret = config.secret.as_deref().ok_or_else(|| {
        BbbError::InvalidSource("[bbb] secret is not set in the config file".to_owned())
    })?;
    Server::new(url, secret, Checksum::parse(&config.checksum)?)
}

/// The old server when `[bbb] server_url` is set (a protected recording's fresh token is asked
/// of it); an error if it is set but unusable.
pub fn configured_server(config: &BbbConfig) -> Result<Option<Server>, BbbError> {
    config
        .server_url
        .as_ref()
        .map(|_| server(config))
        .transpose()
}

/// The saved listing; a dry run's lives in a temporary folder removed on drop.
pub struct Listing {
    pub path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// Makes the listing available in the cache file: calls the server (which also proves the
/// secret and checksum are right) unless `use_cache` says to read the saved one. A dry run
/// writes nothing: its listing goes to a temporary file.
pub async fn load_listing(
    config: &BbbConfig,
    outbound: &Outbound,
    dry: bool,
) -> Result<Listing, BbbError> {
    if config.use_cache {
        let path = config.cache_file.clone();
        if !path.is_file() {
            return Err(BbbError::Missing(format!(
                "cache file {} ([bbb] use_cache = true)",
                path.display()
            )));
        }
        return Ok(Listing { path, _temp: None });
    }
    let server = server(config)?;
    let (path, temp) = if dry {
        let temp = tempfile::tempdir().map_err(|e| BbbError::io(Path::new("temp"), e))?;
        (temp.path().join("getRecordings.xml"), Some(temp))
    } else {
        (config.cache_file.clone(), None)
    };
    api::fetch_listing(outbound, &server, &path).await?;
    Ok(Listing { path, _temp: temp })
}

/// `openvod bbb list`: a table of the listing (number, recordID, date, state, origin, name).
pub fn list_table(cache: &Path, mut out: impl Write) -> Result<u64, BbbError> {
    let io = |e| BbbError::io(Path::new("stdout"), e);
    writeln!(
        out,
        "{:>5}  {:<54}  {:<10}  {:<11}  {:<24}  name",
        "#", "recordID", "date", "state", "origin server"
    )
    .map_err(io)?;
    let mut n = 0;
    api::read_listing(cache, |rec| {
        n += 1;
        writeln!(
            out,
            "{:>5}  {:<54}  {:<10}  {:<11}  {:<24}  {}",
            n,
            rec.record_id,
            rec.start_date(),
            rec.state,
            rec.meta("bbb-origin-server-name").unwrap_or("-"),
            rec.name.trim()
        )
        .map_err(io)
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_dialect_quotes_only_where_needed() {
        let mut out = Vec::new();
        {
            let mut w = csv_writer(&mut out);
            w.write_record(["a;b", "plain", "say \"hi\"", "", "l1\nl2"])
                .unwrap();
            w.flush().unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a;b\";plain;\"say \"\"hi\"\"\";;\"l1\nl2\"\r\n"
        );
    }

    #[test]
    fn selection_is_one_based_and_inclusive() {
        let rec = ListedRecording {
            record_id: "r2".to_owned(),
            ..ListedRecording::default()
        };
        let s = Selection {
            min: 2,
            max: 3,
            record_id: None,
        };
        assert!(
            !s.includes(1, &rec)
                && s.includes(2, &rec)
                && s.includes(3, &rec)
                && !s.includes(4, &rec)
        );
        let only = Selection {
            record_id: Some("r1".to_owned()),
            ..s
        };
        assert!(!only.includes(2, &rec));
    }
}

//! The old server's API: `getRecordings` on BigBlueButton or Scalelite, with its checksum, its
//! pagination, and a streaming parse of the answer (so 10,000 recordings list in constant memory).
//!
//! The raw answer is saved to the cache file first (several pages are wrapped in one
//! `<responses>` element), then read back with a streaming parser; `use_cache` reads that file
//! without calling the server.

use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use quick_xml::events::Event;
use sha1::Digest as _;

use super::BbbError;
use crate::outbound::Outbound;

/// Recordings asked per page (BBB >= 2.6 caps `limit` at 100).
pub const PAGE_SIZE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Checksum {
    pub fn parse(name: &str) -> Result<Checksum, BbbError> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Ok(Checksum::Sha1),
            "sha256" => Ok(Checksum::Sha256),
            "sha384" => Ok(Checksum::Sha384),
            "sha512" => Ok(Checksum::Sha512),
            other => Err(BbbError::InvalidSource(format!(
                "[bbb] checksum {other:?}: use sha1, sha256, sha384 or sha512"
            ))),
        }
    }

    /// `HEX(HASH(call + query + secret))`, over the exact query bytes sent.
    pub fn sign(self, call: &str, query: &str, secret: &str) -> String {
        let input = [call.as_bytes(), query.as_bytes(), secret.as_bytes()].concat();
        match self {
            Checksum::Sha1 => hex::encode(sha1::Sha1::digest(&input)),
            Checksum::Sha256 => hex::encode(sha2::Sha256::digest(&input)),
            Checksum::Sha384 => hex::encode(sha2::Sha384::digest(&input)),
            Checksum::Sha512 => hex::encode(sha2::Sha512::digest(&input)),
        }
    }
}

/// How to reach the old server's API.
#[derive(Debug, Clone)]
pub struct Server {
    /// Base URL, ending with `/` (`https://bbb.example.org/`).
    pub base: url::Url,
    pub secret: String,
    pub checksum: Checksum,
}

impl Server {
    /// `base` may be the server's root or, as `bbb-conf --secret` prints it, its
    /// `…/bigbluebutton/` or `…/bigbluebutton/api` URL: the API path is added once.
    pub fn new(base: &str, secret: &str, checksum: Checksum) -> Result<Server, BbbError> {
        let mut url = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                BbbError::InvalidSource(format!("[bbb] server_url {base:?} is not an http(s) URL"))
            })?;
        url.set_query(None);
        url.set_fragment(None);
        let path = url.path().trim_end_matches('/');
        let root = path
            .strip_suffix("/bigbluebutton/api")
            .or_else(|| path.strip_suffix("/bigbluebutton"))
            .unwrap_or(path);
        let root = format!("{root}/");
        url.set_path(&root);
        let base = url;
        Ok(Server {
            base,
            secret: secret.to_owned(),
            checksum,
        })
    }

    /// `BASE/bigbluebutton/api/CALL?QUERY&checksum=...`; the checksum covers `query` as written.
    pub fn call_url(&self, call: &str, query: &str) -> url::Url {
        let checksum = self.checksum.sign(call, query, &self.secret);
        let sep = if query.is_empty() { "" } else { "&" };
        let mut url = self
            .base
            .join(&format!("bigbluebutton/api/{call}"))
            .expect("a relative path joins");
        url.set_query(Some(&format!("{query}{sep}checksum={checksum}")));
        url
    }
}

/// One `<playback><format>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Playback {
    pub kind: String,
    pub url: String,
}

/// One `<recording>` of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedRecording {
    pub record_id: String,
    pub meeting_id: String,
    /// `internalMeetingID`, or the record id when the server omits it (old servers do).
    pub internal_meeting_id: String,
    pub name: String,
    pub published: String,
    pub state: String,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    pub metadata: BTreeMap<String, String>,
    pub playbacks: Vec<Playback>,
    /// Scalelite's protected recordings: every playback URL is a one-time token URL.
    pub protected: bool,
    /// The `<recording>` element as listed (re-serialized, whitespace trimmed), kept in the
    /// migration's state so nothing the old server said is lost.
    pub raw: String,
}

impl ListedRecording {
    /// A metadata value, also under its legacy `bn-*` name (`bbb-origin` ← `bn-origin`).
    pub fn meta(&self, key: &str) -> Option<&str> {
        let legacy = key.strip_prefix("bbb-").map(|k| format!("bn-{k}"));
        self.metadata
            .get(key)
            .or_else(|| legacy.and_then(|l| self.metadata.get(&l)))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn playback(&self, kind: &str) -> Option<&str> {
        self.playbacks
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.url.as_str())
    }

    /// The presentation link, rewritten from the 2.0 player to the 2.3 one when asked (as Pod).
    pub fn presentation_url(&self, rewrite_23: bool) -> Option<String> {
        let url = self.playback("presentation")?;
        if rewrite_23 && url.contains("/2.0/playback.html") {
            return Some(url.replace(
                "/2.0/playback.html",
                &format!("/2.3/{}", self.internal_meeting_id),
            ));
        }
        Some(url.to_owned())
    }

    pub fn video_url(&self) -> Option<&str> {
        self.playback("video")
    }

    /// What an import fetches: the video playback if there is one, else the presentation.
    pub fn source_url(&self, rewrite_23: bool) -> Option<String> {
        self.video_url()
            .map(str::to_owned)
            .or_else(|| self.presentation_url(rewrite_23))
    }

    /// `YYYY-MM-DD` of the start time (UTC).
    pub fn start_date(&self) -> String {
        self.start_time_ms
            .map(|ms| crate::id::iso8601_micros(ms)[..10].to_owned())
            .unwrap_or_default()
    }
}

/// What a response said besides its recordings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseSummary {
    pub returncode: String,
    pub message_key: Option<String>,
    pub message: Option<String>,
    /// `totalElements` (directly under `<response>` or in `<pagination>`), when paginated.
    pub total: Option<u64>,
    pub recordings: u64,
}

fn xml_error(file: &str, e: impl std::fmt::Display) -> BbbError {
    BbbError::Invalid {
        file: file.to_owned(),
        reason: e.to_string(),
    }
}

impl ResponseSummary {
    /// A `FAILED` answer as an error naming its `messageKey` (e.g. `checksumError`).
    fn require_success(&self, server: &Server) -> Result<(), BbbError> {
        if self.returncode == "SUCCESS" {
            return Ok(());
        }
        Err(BbbError::DownloadPermanent {
            url: server.base.to_string(),
            reason: format!(
                "getRecordings answered {} ({}): {}",
                self.returncode,
                self.message_key.as_deref().unwrap_or("no messageKey"),
                self.message.as_deref().unwrap_or("")
            ),
        })
    }
}

/// Streams the `<recording>`s of a getRecordings answer (or of a cache file of several) to
/// `on_recording`; returns the summary of the last `<response>`. DTDs and unknown entities are
/// refused (quick-xml never expands them).
pub fn parse_listing(
    input: impl BufRead,
    mut on_recording: impl FnMut(ListedRecording) -> Result<(), BbbError>,
) -> Result<ResponseSummary, BbbError> {
    const FILE: &str = "getRecordings";
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut summary = ResponseSummary::default();
    let mut current: Option<ListedRecording> = None;
    let mut format = Playback::default();
    let mut text = String::new();
    let mut raw = quick_xml::Writer::new(Vec::new());
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(FILE, e))?;
        let keep = |raw: &mut quick_xml::Writer<Vec<u8>>, event: &Event<'_>| {
            raw.write_event(event.borrow())
                .map_err(|e| xml_error(FILE, e))
        };
        match &event {
            Event::Start(e)
                if current.is_none()
                    && e.local_name().as_ref() == b"recording"
                    && path.last().is_some_and(|p| p == "recordings") =>
            {
                raw.get_mut().clear();
                keep(&mut raw, &event)?;
            }
            Event::Start(_)
            | Event::End(_)
            | Event::Text(_)
            | Event::CData(_)
            | Event::Empty(_)
                if current.is_some() =>
            {
                keep(&mut raw, &event)?
            }
            _ => {}
        }
        match event {
            Event::DocType(_) => return Err(xml_error(FILE, "a DTD is not allowed")),
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "recording" && path.last().is_some_and(|p| p == "recordings") {
                    current = Some(ListedRecording::default());
                }
                if name == "format" {
                    format = Playback::default();
                }
                if name == "response" {
                    summary = ResponseSummary::default();
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(_) => {}
            Event::Text(t) => text.push_str(&t.unescape().map_err(|e| xml_error(FILE, e))?),
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c.into_inner())),
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(xml_error(FILE, "unbalanced end tag"));
                };
                let parent = path.last().map(String::as_str).unwrap_or_default();
                let value = std::mem::take(&mut text).trim().to_owned();
                if let Some(rec) = current.as_mut() {
                    match (parent, name.as_str()) {
                        ("recording", "recordID") => rec.record_id = value,
                        ("recording", "meetingID") => rec.meeting_id = value,
                        ("recording", "internalMeetingID") => rec.internal_meeting_id = value,
                        ("recording", "name") => rec.name = value,
                        ("recording", "published") => rec.published = value,
                        ("recording", "state") => rec.state = value,
                        ("recording", "startTime") => rec.start_time_ms = value.parse().ok(),
                        ("recording", "endTime") => rec.end_time_ms = value.parse().ok(),
                        ("recording", "protected") => rec.protected = value == "true",
                        ("metadata", key) => {
                            rec.metadata.insert(key.to_owned(), value);
                        }
                        ("format", "type") => format.kind = value,
                        ("format", "url") => format.url = value,
                        ("playback", "format") => rec.playbacks.push(std::mem::take(&mut format)),
                        (_, "recording") => {
                            let mut rec = current.take().expect("inside a recording");
                            rec.raw = String::from_utf8_lossy(raw.get_ref()).into_owned();
                            if rec.internal_meeting_id.is_empty() {
                                rec.internal_meeting_id = rec.record_id.clone();
                            }
                            summary.recordings += 1;
                            if !rec.record_id.is_empty() {
                                on_recording(rec)?;
                            }
                        }
                        _ => {}
                    }
                } else {
                    match (parent, name.as_str()) {
                        ("response", "returncode") => summary.returncode = value,
                        ("response", "messageKey") => summary.message_key = Some(value),
                        ("response", "message") => summary.message = Some(value),
                        ("response" | "pagination", "totalElements") => {
                            summary.total = value.parse().ok()
                        }
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if summary.returncode.is_empty() {
        return Err(xml_error(
            FILE,
            "no <returncode>: not a BigBlueButton API answer",
        ));
    }
    Ok(summary)
}

/// Calls getRecordings page by page (offset/limit; a server that ignores them answers once
/// with everything and no total) and writes every answer into `cache`. Each answer goes to disk
/// as it arrives and is parsed from there, so even an unpaginated server's listing of thousands
/// of recordings is never held in memory. Nothing is left behind on failure.
pub async fn fetch_listing(
    outbound: &Outbound,
    server: &Server,
    cache: &Path,
) -> Result<ResponseSummary, BbbError> {
    // The server's address is under the same policy as every other URL (the resolver refuses
    // internal names; a literal IP never reaches it).
    outbound.check_url(server.base.as_str()).await?;
    let partial = cache.with_extension("partial");
    let page_path = cache.with_extension("page");
    let fetched = fetch_pages(outbound, server, &partial, &page_path).await;
    let _ = std::fs::remove_file(&page_path);
    match fetched {
        Ok(listed) => {
            std::fs::rename(&partial, cache).map_err(|e| BbbError::io(cache, e))?;
            Ok(listed)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

async fn fetch_pages(
    outbound: &Outbound,
    server: &Server,
    partial: &Path,
    page_path: &Path,
) -> Result<ResponseSummary, BbbError> {
    let io = |e| BbbError::io(partial, e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(partial).map_err(io)?);
    writeln!(out, "<responses>").map_err(io)?;
    let mut offset = 0usize;
    let mut listed = ResponseSummary::default();
    let download = |e: reqwest::Error| BbbError::Download {
        url: server.base.to_string(),
        reason: crate::assets::describe_reqwest(&e),
    };
    loop {
        let query = format!("state=any&offset={offset}&limit={PAGE_SIZE}");
        let response = outbound
            .client()
            .get(server.call_url("getRecordings", &query))
            // bbb-web reads every metadata.xml before answering: be patient.
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(download)?;
        let status = response.status();
        let page_io = |e| BbbError::io(page_path, e);
        let mut page =
            tokio::io::BufWriter::new(tokio::fs::File::create(page_path).await.map_err(page_io)?);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            tokio::io::AsyncWriteExt::write_all(&mut page, &chunk.map_err(download)?)
                .await
                .map_err(page_io)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut page)
            .await
            .map_err(page_io)?;
        drop(page);
        let reader = || -> Result<_, BbbError> {
            Ok(std::io::BufReader::new(
                std::fs::File::open(page_path).map_err(page_io)?,
            ))
        };
        let summary =
            parse_listing(reader()?, |_| Ok(())).map_err(|e| BbbError::DownloadPermanent {
                url: server.base.to_string(),
                reason: format!("HTTP {status}, and the answer is not usable: {e}"),
            })?;
        summary.require_success(server)?;
        // Keep the answer without its XML declaration, so pages nest in one document.
        let mut page = reader()?;
        let head = page.fill_buf().map_err(page_io)?;
        let trimmed = head.len() - head.trim_ascii_start().len();
        let skip = if head[trimmed..].starts_with(b"<?xml") {
            head.windows(2)
                .position(|w| w == b"?>")
                .map_or(0, |end| end + 2)
        } else {
            0
        };
        page.consume(skip);
        std::io::copy(&mut page, &mut out).map_err(io)?;
        listed.recordings += summary.recordings;
        listed.returncode = summary.returncode.clone();
        listed.total = summary.total.or(listed.total);
        if summary.total.is_none() || summary.recordings == 0 {
            break;
        }
        offset += summary.recordings as usize;
    }
    writeln!(out, "</responses>").map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(listed)
}

/// The playback URL of type `kind` the old server gives now for one recording
/// (`getRecordings?recordID=`): for Scalelite's protected recordings, a fresh one-time token URL,
/// since the one a listing gave expires (Pod's `search_internal_recording`).
pub async fn current_playback_url(
    outbound: &Outbound,
    server: &Server,
    record_id: &str,
    kind: &str,
) -> Result<String, BbbError> {
    outbound.check_url(server.base.as_str()).await?;
    let url = server.call_url("getRecordings", &format!("recordID={record_id}&state=any"));
    let failed = |reason: String| BbbError::DownloadPermanent {
        url: server.base.to_string(),
        reason,
    };
    let download = |e: reqwest::Error| BbbError::Download {
        url: server.base.to_string(),
        reason: crate::assets::describe_reqwest(&e),
    };
    let response = outbound
        .client()
        .get(url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(download)?;
    let status = response.status();
    if status.is_server_error() {
        return Err(BbbError::Download {
            url: server.base.to_string(),
            reason: format!("getRecordings answered HTTP {status}"),
        });
    }
    // One recording's answer is small; refuse what is not.
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(download)?);
        if body.len() > super::xml::MAX_XML_BYTES {
            return Err(failed("the getRecordings answer is too large".to_owned()));
        }
    }
    let mut found = None;
    let summary = parse_listing(body.as_slice(), |rec| {
        if rec.record_id == record_id && found.is_none() {
            found = Some(rec.playback(kind).map(str::to_owned));
        }
        Ok(())
    })
    .map_err(|e| failed(format!("HTTP {status}, and the answer is not usable: {e}")))?;
    summary.require_success(server)?;
    match found {
        Some(Some(url)) => Ok(url),
        Some(None) => Err(failed(format!(
            "recording {record_id} no longer has a {kind} playback"
        ))),
        None => Err(failed(format!(
            "the server no longer lists recording {record_id}"
        ))),
    }
}

/// Streams the recordings saved in `cache`, in the server's order.
pub fn read_listing(
    cache: &Path,
    on_recording: impl FnMut(ListedRecording) -> Result<(), BbbError>,
) -> Result<ResponseSummary, BbbError> {
    let file = std::fs::File::open(cache).map_err(|e| BbbError::io(cache, e))?;
    parse_listing(std::io::BufReader::new(file), on_recording)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The traps of bigbluebutton-api-php's fixture (../shared/samples/bbb): names in CDATA, empty
    /// CDATA values, a newline before a CDATA, legacy `bn-origin`, no `internalMeetingID`, 0.9.0
    /// playback links.
    const SAMPLE: &str = r#"<response>
    <returncode>SUCCESS</returncode>
    <recordings>
        <recording>
            <recordID>f71d810b6e90a4a34ae02b8c7143e8733178578e-1462807897120</recordID>
            <meetingID>9d287cf50490ca856ca5273bd303a7e321df6051-4-119[0]</meetingID>
            <name><![CDATA[SAT- Writing-Humanities (All participants)]]></name>
            <published>true</published>
            <state>published</state>
            <startTime>1462807897120</startTime>
            <endTime>1462812873004</endTime>
            <metadata>
                <bn-origin><![CDATA[Moodle]]></bn-origin>
                <bbb-origin-server-common-name><![CDATA[]]></bbb-origin-server-common-name>
                <bbb-origin-server-name><![CDATA[planetinteractive.us]]></bbb-origin-server-name>
                <bbb-recording-name>
                    <![CDATA[SAT- Writing-Humanities]]></bbb-recording-name>
            </metadata>
            <playback>
                <format>
                    <type>podcast</type>
                    <url>https://test-install.blindsidenetworks.com/podcast/f71d810b6e90a4a34ae02b8c7143e8733178578e-1462807897120/audio.ogg</url>
                </format>
                <format>
                    <type>presentation</type>
                    <url>https://test-install.blindsidenetworks.com/playback/presentation/0.9.0/playback.html?meetingId=f71d810b6e90a4a34ae02b8c7143e8733178578e-1462807897120</url>
                    <preview><images><image alt="Welcome" height="136" width="176">https://x/thumb-1.png</image></images></preview>
                </format>
            </playback>
        </recording>
        <recording>
            <recordID>c8b3bb3bbf5b7de5bde4bbe1b6e2c9e7ab6b2e7a-1462893041230</recordID>
            <meetingID>m2</meetingID>
            <name>Second &amp; last</name>
            <published>false</published>
            <state>unpublished</state>
            <startTime>1462893041230</startTime>
            <endTime>1462893541230</endTime>
            <metadata/>
            <playback><format><type>video</type><url>https://h/playback/video/c8b3/</url></format></playback>
        </recording>
    </recordings>
</response>"#;

    #[test]
    fn checksums_cover_the_exact_query() {
        let server = Server::new("https://bbb.example/", "secret", Checksum::Sha1).unwrap();
        let url = server.call_url("getRecordings", "state=any&offset=0&limit=100");
        let expected = hex::encode(sha1::Sha1::digest(
            b"getRecordingsstate=any&offset=0&limit=100secret",
        ));
        assert_eq!(
            url.as_str(),
            format!("https://bbb.example/bigbluebutton/api/getRecordings?state=any&offset=0&limit=100&checksum={expected}")
        );
        for same in [
            "https://bbb.example",
            "https://bbb.example/bigbluebutton/",
            "https://bbb.example/bigbluebutton",
            "https://bbb.example/bigbluebutton/api",
            "https://bbb.example/bigbluebutton/api/",
        ] {
            let server = Server::new(same, "secret", Checksum::Sha1).unwrap();
            assert_eq!(server.base.as_str(), "https://bbb.example/", "{same}");
        }
        // A server under a path of its own keeps it; an `api` folder elsewhere is not BBB's.
        let nested = Server::new(
            "https://h.example/scalelite/bigbluebutton/",
            "s",
            Checksum::Sha1,
        )
        .unwrap();
        assert_eq!(nested.base.as_str(), "https://h.example/scalelite/");
        let other = Server::new("https://h.example/api", "s", Checksum::Sha1).unwrap();
        assert_eq!(other.base.as_str(), "https://h.example/api/");
        assert!(Server::new("ftp://h.example/", "s", Checksum::Sha1).is_err());
        assert!(Server::new("not a url", "s", Checksum::Sha1).is_err());
        assert_eq!(Checksum::Sha256.sign("a", "", "b").len(), 64);
        assert_eq!(Checksum::Sha384.sign("a", "", "b").len(), 96);
        assert_eq!(Checksum::Sha512.sign("a", "", "b").len(), 128);
        assert!(Checksum::parse("md5").is_err());
    }

    #[test]
    fn parses_the_api_php_fixture() {
        let mut all = Vec::new();
        let summary = parse_listing(SAMPLE.as_bytes(), |r| {
            all.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(summary.returncode, "SUCCESS");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].name, "Second & last");
        assert_eq!(
            all[1].source_url(true).unwrap(),
            "https://h/playback/video/c8b3/"
        );
        let first = &all[0];
        assert_eq!(
            first.record_id,
            "f71d810b6e90a4a34ae02b8c7143e8733178578e-1462807897120"
        );
        // No internalMeetingID in this fixture: the record id stands in.
        assert_eq!(first.internal_meeting_id, first.record_id);
        assert_eq!(first.name, "SAT- Writing-Humanities (All participants)");
        assert_eq!(first.meta("bbb-origin"), Some("Moodle"));
        assert_eq!(first.meta("bbb-origin-server-common-name"), None);
        assert_eq!(first.start_date(), "2016-05-09");
        assert_eq!(
            first.presentation_url(true).unwrap(),
            "https://test-install.blindsidenetworks.com/playback/presentation/0.9.0/playback.html?meetingId=f71d810b6e90a4a34ae02b8c7143e8733178578e-1462807897120"
        );
        assert!(all.iter().all(|r| !r.playbacks.is_empty()));
        assert_eq!(
            first.meta("bbb-recording-name"),
            Some("SAT- Writing-Humanities")
        );

        // The real fixture, when the shared samples are beside the checkout.
        let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/samples/bbb/bbb-api-php_get_recordings.xml");
        if let Ok(text) = std::fs::read_to_string(shared) {
            let mut n = 0;
            parse_listing(text.as_bytes(), |r| {
                assert_eq!(r.internal_meeting_id, r.record_id);
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 6);
        }
    }

    #[test]
    fn empty_failed_and_hostile_answers() {
        let empty =
            "<response><returncode>SUCCESS</returncode><messageKey>noRecordings</messageKey>\
                     <message>No recordings found</message><recordings/></response>";
        let summary = parse_listing(empty.as_bytes(), |_| panic!("no recordings")).unwrap();
        assert_eq!(summary.message_key.as_deref(), Some("noRecordings"));
        let failed = "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>bad</message></response>";
        let summary = parse_listing(failed.as_bytes(), |_| Ok(())).unwrap();
        assert_eq!(summary.returncode, "FAILED");
        assert_eq!(summary.message_key.as_deref(), Some("checksumError"));
        let dtd = "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><response><returncode>&x;</returncode></response>";
        assert!(parse_listing(dtd.as_bytes(), |_| Ok(())).is_err());
        assert!(parse_listing("<html>404</html>".as_bytes(), |_| Ok(())).is_err());
        let paged = "<response><returncode>SUCCESS</returncode><recordings/><pagination><totalElements>57</totalElements></pagination></response>";
        assert_eq!(
            parse_listing(paged.as_bytes(), |_| Ok(())).unwrap().total,
            Some(57)
        );
        // 2.0 links are rewritten to the 2.3 player.
        let rec = ListedRecording {
            internal_meeting_id: "abc-1".to_owned(),
            playbacks: vec![Playback {
                kind: "presentation".to_owned(),
                url: "https://h/playback/presentation/2.0/playback.html?meetingId=abc-1".to_owned(),
            }],
            ..ListedRecording::default()
        };
        assert_eq!(
            rec.presentation_url(true).unwrap(),
            "https://h/playback/presentation/2.3/abc-1?meetingId=abc-1"
        );
        assert_eq!(rec.source_url(false).unwrap(), rec.playbacks[0].url);
    }

    /// Property: random edits of a real answer never panic the parser.
    #[test]
    fn mutated_answers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces = [
            "<",
            ">",
            "</",
            "/>",
            "&",
            "&amp;",
            "<![CDATA[",
            "]]>",
            "recording",
            "\"",
            " ",
        ];
        for _ in 0..3000 {
            let mut text = SAMPLE.to_owned();
            for _ in 0..rng.gen_range(1..5) {
                let mut at = rng.gen_range(0..=text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + rng.gen_range(0..10)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, pieces[rng.gen_range(0..pieces.len())]);
            }
            let _ = parse_listing(text.as_bytes(), |_| Ok(()));
        }
    }
}

//! `openvod bbb list` and `openvod bbb migrate --use-export-csv` against a fake BigBlueButton
//! server that checks every checksum algorithm and paginates like BBB >= 2.6 (or not at all, like
//! Scalelite).

use std::path::Path;
use std::sync::Arc;

use sha1::Digest as _;

#[derive(Clone)]
pub struct FakeBbb {
    pub secret: String,
    /// Recordings per page at most (the server's own cap); `None`: no pagination, no total.
    pub page_cap: Option<usize>,
    pub recordings: Arc<Vec<String>>,
    /// Every other path is served from this folder (`DIR/index.html` for `DIR/`): the playbacks.
    pub files: Option<Arc<std::path::PathBuf>>,
    /// Scalelite's protected recordings: `@TOKEN@` in a listed URL becomes a fresh one-time token
    /// at every getRecordings call, and the files are served only to the cookie it grants.
    pub protected: Option<Arc<Protection>>,
}

#[derive(Default)]
pub struct Protection {
    tokens: std::sync::Mutex<std::collections::HashSet<String>>,
    cookies: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tokens consumed, and file requests refused for want of the cookie.
    pub consumed: std::sync::atomic::AtomicUsize,
    pub refused: std::sync::atomic::AtomicUsize,
}

impl Protection {
    /// Every token minted so far stops working (Scalelite's expire after 60 min).
    pub fn expire_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }

    fn mint(&self, page: &str) -> String {
        let mut out = String::new();
        let mut parts = page.split("@TOKEN@");
        out.push_str(parts.next().unwrap_or_default());
        for part in parts {
            let token = hex::encode(rand::random::<[u8; 32]>());
            self.tokens.lock().unwrap().insert(token.clone());
            out.push_str(&token);
            out.push_str(part);
        }
        out
    }

    /// `/recording/ID/FORMAT?token=T`: a valid token sets the cookie and redirects to the player.
    fn consume(&self, rest: &str, query: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut segments = rest.split('/').skip(1);
        let (Some(id), Some(format)) = (segments.next(), segments.next()) else {
            return axum::http::StatusCode::NOT_FOUND.into_response();
        };
        let token = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .unwrap_or_default();
        if !self.tokens.lock().unwrap().remove(token) {
            return axum::http::StatusCode::NOT_FOUND.into_response();
        }
        self.consumed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cookie = hex::encode(rand::random::<[u8; 16]>());
        self.cookies
            .lock()
            .unwrap()
            .insert(format!("recording_{id}={cookie}"));
        let location = match format {
            "video" => format!("/playback/video/{id}/"),
            _ => format!("/playback/presentation/2.3/{id}"),
        };
        (
            axum::http::StatusCode::FOUND,
            [
                (axum::http::header::LOCATION, location),
                (
                    axum::http::header::SET_COOKIE,
                    format!("recording_{id}={cookie}; Path=/; HttpOnly"),
                ),
            ],
        )
            .into_response()
    }

    /// Whether the request's cookies grant the recording the path names.
    fn grants(&self, path: &str, cookie_header: &str) -> bool {
        let granted = self.cookies.lock().unwrap();
        let ok = cookie_header.split(';').map(str::trim).any(|pair| {
            granted.contains(pair)
                && pair
                    .strip_prefix("recording_")
                    .and_then(|p| p.split_once('='))
                    .is_some_and(|(id, _)| path.contains(id))
        });
        if !ok {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        ok
    }
}

fn recording_xml(i: usize) -> String {
    let id = format!(
        "{:040x}-{}",
        i * 7919,
        1_600_000_000_000u64 + i as u64 * 86_400_000
    );
    // Recording 2 has no internalMeetingID; 3 a name needing quotes; 4 a video playback.
    let internal = if i == 2 {
        String::new()
    } else {
        format!("<internalMeetingID>{id}</internalMeetingID>")
    };
    let name = match i {
        3 => "Algebra; \"week 3\"".to_owned(),
        _ => format!("Course {i}"),
    };
    let playback = if i == 4 {
        format!("<format><type>video</type><url>https://old.example/playback/video/{id}/</url></format>")
    } else {
        format!("<format><type>presentation</type><url>https://old.example/playback/presentation/2.0/playback.html?meetingId={id}</url></format>")
    };
    format!(
        "<recording><recordID>{id}</recordID><meetingID>m{i}</meetingID>{internal}\
         <name><![CDATA[{name}]]></name><published>true</published><state>published</state>\
         <startTime>{}</startTime><endTime>0</endTime><metadata>\
         <bn-origin><![CDATA[Moodle]]></bn-origin><bbb-origin-server-name>moodle.example.org</bbb-origin-server-name>\
         <bbb-context-id>{i}</bbb-context-id><bbb-recording-tags><![CDATA[]]></bbb-recording-tags></metadata>\
         <playback>{playback}</playback></recording>",
        1_600_000_000_000u64 + i as u64 * 86_400_000
    )
}

fn record_id(i: usize) -> String {
    format!(
        "{:040x}-{}",
        i * 7919,
        1_600_000_000_000u64 + i as u64 * 86_400_000
    )
}

pub async fn serve(fake: FakeBbb) -> String {
    use axum::extract::{RawQuery, State};
    let app = axum::Router::new()
        .route(
            "/bigbluebutton/api/getRecordings",
            axum::routing::get(
                |State(fake): State<FakeBbb>, RawQuery(query): RawQuery| async move {
                    let query = query.unwrap_or_default();
                    // As Scalelite: strip `checksum=` textually, hash exactly the rest.
                    let (rest, checksum) = match query.rsplit_once("checksum=") {
                        Some((rest, sum)) => (rest.trim_end_matches('&').to_owned(), sum.to_owned()),
                        None => (query.clone(), String::new()),
                    };
                    let input = format!("getRecordings{rest}{}", fake.secret);
                    let expected = match checksum.len() {
                        40 => hex::encode(sha1::Sha1::digest(input.as_bytes())),
                        64 => hex::encode(sha2::Sha256::digest(input.as_bytes())),
                        96 => hex::encode(sha2::Sha384::digest(input.as_bytes())),
                        128 => hex::encode(sha2::Sha512::digest(input.as_bytes())),
                        _ => String::new(),
                    };
                    if expected.is_empty() || expected != checksum {
                        return "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>\
                                <message>Checksums do not match</message></response>"
                            .to_owned();
                    }
                    let param = |name: &str| {
                        rest.split('&')
                            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                            .and_then(|v| v.parse::<usize>().ok())
                    };
                    let record_id = rest
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("recordID="));
                    let recordings: Vec<&String> = fake
                        .recordings
                        .iter()
                        .filter(|r| {
                            record_id.is_none_or(|id| r.contains(&format!("<recordID>{id}</recordID>")))
                        })
                        .collect();
                    let all = recordings.len();
                    let (page, total) = match fake.page_cap {
                        Some(cap) => {
                            let offset = param("offset").unwrap_or(0).min(all);
                            let limit = param("limit").unwrap_or(all).min(cap);
                            let end = (offset + limit).min(all);
                            (
                                recordings[offset..end].iter().map(|r| r.as_str()).collect::<String>(),
                                format!("<totalElements>{all}</totalElements>"),
                            )
                        }
                        None => (recordings.iter().map(|r| r.as_str()).collect::<String>(), String::new()),
                    };
                    let page = match &fake.protected {
                        Some(protection) => protection.mint(&page),
                        None => page,
                    };
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><returncode>SUCCESS</returncode>\
                         <recordings>{page}</recordings>{total}</response>"
                    )
                },
            ),
        )
        .fallback(|State(fake): State<FakeBbb>, headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
            use axum::response::IntoResponse;
            let not_found = axum::http::StatusCode::NOT_FOUND.into_response();
            let (Some(root), Some(rest)) = (fake.files, uri.path().strip_prefix('/')) else {
                return not_found;
            };
            if rest.split('/').any(|s| s == "..") {
                return not_found;
            }
            if let Some(protection) = &fake.protected {
                if rest.starts_with("recording/") {
                    return protection.consume(rest, uri.query().unwrap_or_default());
                }
                let cookies = headers
                    .get(axum::http::header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !protection.grants(rest, cookies) {
                    return axum::http::StatusCode::FORBIDDEN.into_response();
                }
                if rest.starts_with("playback/presentation/") {
                    return "<html>bbb-playback</html>".into_response();
                }
            }
            let mut path = root.join(rest);
            if rest.ends_with('/') || rest.is_empty() {
                path = path.join("index.html");
            }
            match tokio::fs::read(path).await {
                Ok(bytes) => bytes.into_response(),
                Err(_) => not_found,
            }
        })
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

pub fn config(dir: &Path, server: &str, secret: &str, checksum: &str) -> std::path::PathBuf {
    let path = dir.join(format!("openvod-{checksum}.toml"));
    std::fs::write(
        &path,
        format!(
            "[outbound]\nallow_private_addresses = true\n[bbb]\nserver_url = \"{server}\"\n\
             secret = \"{secret}\"\nchecksum = \"{checksum}\"\ncache_file = \"{}\"\n",
            dir.join("getRecordings.xml").display()
        ),
    )
    .unwrap();
    path
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub async fn openvod(dir: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"))
        .env_remove("OPENVOD_CONFIG")
        .current_dir(dir)
        .args(args)
        .output()
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const HEADER: &str = "meeting_name;recording_name;start_date;origin;origin_server_name;origin_version;origin_context;origin_id;origin_label;description;published;state;source_url\r\n";

fn expected_row(i: usize) -> String {
    let id = record_id(i);
    let date = [
        "2020-09-14",
        "2020-09-15",
        "2020-09-16",
        "2020-09-17",
        "2020-09-18",
    ][i - 1];
    let name = if i == 3 {
        "\"Algebra; \"\"week 3\"\"\"".to_owned()
    } else {
        format!("Course {i}")
    };
    let source = if i == 4 {
        format!("https://old.example/playback/video/{id}/")
    } else {
        // 2.0 links are rewritten to the 2.3 player (internalMeetingID, else the recordID).
        format!("https://old.example/playback/presentation/2.3/{id}?meetingId={id}")
    };
    format!("{name};;{date};Moodle;moodle.example.org;;;{i};;;true;published;{source}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_csv_lists_every_page_and_writes_pods_csv() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBbb {
        secret: "s3cret".to_owned(),
        page_cap: Some(2),
        files: None,
        protected: None,
        recordings: Arc::new((1..=5).map(recording_xml).collect()),
    };
    let url = serve(fake.clone()).await;
    let cfg = config(dir.path(), &url, "s3cret", "sha256");
    let cfg = cfg.to_str().unwrap();

    let run = openvod(
        dir.path(),
        &["bbb", "migrate", "--config", cfg, "--use-export-csv"],
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let all: String = (1..=5).map(expected_row).collect();
    assert_eq!(
        csv,
        format!("{HEADER}{all}"),
        "five recordings over three pages, once each"
    );
    for i in 1..=5 {
        assert!(
            run.stderr.contains(&record_id(i)),
            "each line names its recordID"
        );
    }
    assert!(
        run.stderr
            .contains("listed 5, in range 5, done 5, skipped as already done 0, failed 0"),
        "{}",
        run.stderr
    );
    assert!(
        dir.path().join("getRecordings.xml").is_file(),
        "the raw listing is kept"
    );

    // Ranges are 1-based and inclusive, in listing order; Pod's underscore spelling works.
    let run = openvod(
        dir.path(),
        &[
            "bbb",
            "migrate",
            "--config",
            cfg,
            "--use_export_csv",
            "--min-value-record-process",
            "2",
            "--max-value-record-process",
            "3",
            "--output",
            "range.csv",
        ],
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let csv = std::fs::read_to_string(dir.path().join("range.csv")).unwrap();
    assert_eq!(
        csv,
        format!("{HEADER}{}{}", expected_row(2), expected_row(3))
    );

    // One recording by id; a dry run prints its rows and writes nothing.
    std::fs::remove_file(dir.path().join("getRecordings.xml")).unwrap();
    let run = openvod(
        dir.path(),
        &[
            "bbb",
            "migrate",
            "--config",
            cfg,
            "--use-export-csv",
            "--dry",
            "--record-id",
            &record_id(4),
            "--output",
            "dry.csv",
        ],
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{HEADER}{}", expected_row(4)));
    assert!(!dir.path().join("dry.csv").exists());
    assert!(
        !dir.path().join("getRecordings.xml").exists(),
        "a dry run writes no cache either"
    );

    // Exactly one mode.
    let none = openvod(dir.path(), &["bbb", "migrate", "--config", cfg]).await;
    assert!(
        !none.ok && none.stderr.contains("--use-"),
        "{}",
        none.stderr
    );
    let two = openvod(
        dir.path(),
        &[
            "bbb",
            "migrate",
            "--config",
            cfg,
            "--use-export-csv",
            "--use-import-video",
        ],
    )
    .await;
    assert!(!two.ok, "{}", two.stderr);

    // A wrong secret fails the pre-flight, naming BBB's messageKey; nothing is written.
    let bad = config(dir.path(), &url, "wrong", "sha1");
    let run = openvod(
        dir.path(),
        &[
            "bbb",
            "migrate",
            "--config",
            bad.to_str().unwrap(),
            "--use-export-csv",
            "--output",
            "bad.csv",
        ],
    )
    .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("checksumError"), "{}", run.stderr);
    assert!(!dir.path().join("bad.csv").exists());
    for leftover in [
        "getRecordings.partial",
        "getRecordings.page",
        "bad.csv.partial",
    ] {
        assert!(
            !dir.path().join(leftover).exists(),
            "{leftover} left behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_works_with_every_checksum_and_without_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBbb {
        secret: "k".to_owned(),
        page_cap: None,
        files: None,
        protected: None,
        recordings: Arc::new((1..=3).map(recording_xml).collect()),
    };
    let url = serve(fake).await;
    for checksum in ["sha1", "sha256", "sha384", "sha512"] {
        let cfg = config(dir.path(), &url, "k", checksum);
        let run = openvod(
            dir.path(),
            &["bbb", "list", "--config", cfg.to_str().unwrap()],
        )
        .await;
        assert!(run.ok, "{checksum}: {}", run.stderr);
        // Header plus one line per recording: a server without pagination is asked once.
        assert_eq!(run.stdout.lines().count(), 4, "{checksum}: {}", run.stdout);
        assert!(
            run.stdout.contains(&record_id(2)),
            "the one without internalMeetingID is listed"
        );
        assert!(run.stderr.contains("3 recordings"));
    }
    let cfg = config(dir.path(), &url, "k", "md5");
    let run = openvod(
        dir.path(),
        &["bbb", "list", "--config", cfg.to_str().unwrap(), "--csv"],
    )
    .await;
    assert!(!run.ok && run.stderr.contains("checksum"), "{}", run.stderr);
}

//! `TestApp`: a real server on a port-0 listener with a temporary data dir, workers off unless asked,
//! plus generated media clips.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openvod::app::App;
use openvod::config::Config;
use openvod::http::AppState;
use openvod::jobs::{Outcome, Worker};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub token_id: String,
    pub token_secret: String,
    pub worker: Worker,
    pub dispatcher: std::sync::Arc<openvod::events::dispatch::Dispatcher>,
    pub state: AppState,
    pub config: Config,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("OPENVOD_TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("debug,sqlx=warn,hyper=info")
                .init();
        }
    });
}

/// Whether this run is the scale-out one (`OPENVOD_TEST_BACKEND=postgres-s3`, the second pass of
/// `scripts/test`): every test server then keeps its metadata in a fresh PostgreSQL database and
/// its media under a fresh prefix of the test S3 bucket, instead of SQLite and a folder.
pub fn scale_out() -> bool {
    match std::env::var("OPENVOD_TEST_BACKEND").as_deref() {
        Ok("postgres-s3") => true,
        Ok("embedded") | Err(_) => false,
        Ok(other) => panic!("OPENVOD_TEST_BACKEND={other:?}: expected embedded or postgres-s3"),
    }
}

/// The environment that points an `openvod` process at `database` and `storage`.
pub fn backend_env(
    database: &openvod::config::DatabaseConfig,
    storage: &openvod::config::StorageConfig,
) -> Vec<(&'static str, String)> {
    [
        ("OPENVOD_DATABASE__URL", database.url.clone()),
        ("OPENVOD_STORAGE__URL", storage.url.clone()),
        ("OPENVOD_STORAGE__ENDPOINT", storage.endpoint.clone()),
        ("OPENVOD_STORAGE__REGION", storage.region.clone()),
        (
            "OPENVOD_STORAGE__PATH_STYLE",
            Some(storage.path_style.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect()
}

/// The database and store of the servers a test starts as processes on `data_dir`: the data
/// folder itself on the embedded pass; on the scale-out pass a database and bucket prefix of
/// their own, the same for every process started on that folder.
pub async fn backend_for(
    data_dir: &Path,
) -> (
    openvod::config::DatabaseConfig,
    openvod::config::StorageConfig,
) {
    use std::collections::HashMap;
    use std::sync::LazyLock;
    type Backend = (
        openvod::config::DatabaseConfig,
        openvod::config::StorageConfig,
    );
    static MADE: LazyLock<tokio::sync::Mutex<HashMap<PathBuf, Backend>>> =
        LazyLock::new(Default::default);
    if !scale_out() {
        return Default::default();
    }
    let mut made = MADE.lock().await;
    if let Some(backend) = made.get(data_dir) {
        return backend.clone();
    }
    let backend = (
        openvod::config::DatabaseConfig {
            url: Some(openvod::db::postgres::scratch_database_url().await),
            ..Default::default()
        },
        test_bucket(&format!("proc-{}", openvod::id::random_id())),
    );
    made.insert(data_dir.to_owned(), backend.clone());
    backend
}

/// A plain connection to the metadata database of a server with `database` and `data_dir`, for
/// tests that look at rows directly: the SQLite file (read-only) or the PostgreSQL database.
pub async fn raw_db(database: &openvod::config::DatabaseConfig, data_dir: &Path) -> sqlx::AnyPool {
    open_raw_db(database, data_dir, "ro").await
}

/// As `raw_db`, writable: for a test that plays another process changing rows.
pub async fn raw_db_writable(
    database: &openvod::config::DatabaseConfig,
    data_dir: &Path,
) -> sqlx::AnyPool {
    open_raw_db(database, data_dir, "rw").await
}

async fn open_raw_db(
    database: &openvod::config::DatabaseConfig,
    data_dir: &Path,
    sqlite_mode: &str,
) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match &database.url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}?mode={sqlite_mode}",
            data_dir.join("openvod.db").display()
        ),
    };
    sqlx::AnyPool::connect(&url)
        .await
        .expect("connect to the metadata database")
}

/// Media under `prefix` of the test S3 server's bucket (`OPENVOD_TEST_S3_ENDPOINT`, credentials
/// in the AWS_* variables; `scripts/test` starts it). A missing server is a failure, never a skip.
pub fn test_bucket(prefix: &str) -> openvod::config::StorageConfig {
    let endpoint = std::env::var("OPENVOD_TEST_S3_ENDPOINT").expect(
        "OPENVOD_TEST_S3_ENDPOINT names the test S3 server (scripts/test starts one); \
         a missing server is a failure, never a skip",
    );
    openvod::config::StorageConfig {
        url: Some(format!("s3://openvod-test/{prefix}")),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        path_style: true,
        ..Default::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(0, |_| {}).await
    }

    /// Starts a server with `workers` in-process workers after `adjust` edits the config.
    pub async fn spawn_with(workers: usize, adjust: impl FnOnce(&mut Config)) -> TestApp {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            workers: Some(workers),
            ..Config::default()
        };
        config.outbound.allow_private_addresses = true;
        if scale_out() {
            config.database.url = Some(openvod::db::postgres::scratch_database_url().await);
            config.storage = test_bucket(&format!("app-{}", openvod::id::random_id()));
        }
        adjust(&mut config);
        let app = App::build(config.clone()).await.expect("app builds");
        let base_url = app
            .public_url()
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let state = app.state();
        let worker = app.worker();
        let dispatcher = app.dispatcher();
        let token = state.tokens.create("tests").await.expect("token");
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(shutdown.clone(), workers));
        TestApp {
            base_url,
            client: reqwest::Client::new(),
            token_id: token.id,
            token_secret: token.secret,
            worker,
            dispatcher,
            state,
            config,
            shutdown,
            _dir: dir,
        }
    }

    pub async fn run_jobs_until_idle(&self) {
        for _ in 0..1000 {
            if self.worker.run_one().await.expect("job queue works") == Outcome::Idle {
                return;
            }
        }
        panic!("jobs never went idle");
    }

    /// Runs the webhook dispatcher until nothing is due.
    pub async fn deliver_webhooks(&self) {
        while self.dispatcher.run_once().await.expect("outbox works") > 0 {}
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth(&self.token_id, Some(&self.token_secret))
    }

    pub async fn api_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.api(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    /// Creates a direct upload and returns its `data`.
    pub async fn create_upload(&self, body: Value) -> Value {
        let (status, json) = self
            .api_json(reqwest::Method::POST, "/video/v1/uploads", Some(body))
            .await;
        assert_eq!(status, 201, "{json}");
        json["data"].clone()
    }

    pub async fn get_upload(&self, id: &str) -> Value {
        let (status, json) = self
            .api_json(
                reqwest::Method::GET,
                &format!("/video/v1/uploads/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{json}");
        json["data"].clone()
    }

    pub async fn get_asset(&self, id: &str) -> Value {
        let (status, json) = self
            .api_json(
                reqwest::Method::GET,
                &format!("/video/v1/assets/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{json}");
        json["data"].clone()
    }

    /// Grants master access and downloads the original bytes.
    pub async fn download_master(&self, asset_id: &str) -> Vec<u8> {
        let (status, json) = self
            .api_json(
                reqwest::Method::PUT,
                &format!("/video/v1/assets/{asset_id}/master-access"),
                Some(serde_json::json!({"master_access": "temporary"})),
            )
            .await;
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["data"]["master"]["status"], "ready", "{json}");
        let url = json["data"]["master"]["url"].as_str().expect("master url");
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    }

    /// The bytes stored under `key` in this server's media store (folder or bucket), if any.
    pub async fn stored(&self, key: &str) -> Option<Vec<u8>> {
        let store = openvod::app::open_store(&self.config).await.unwrap();
        let key = openvod::storage::StoreKey::parse(key).unwrap();
        match store.local_file(&key).await {
            Ok(local) => Some(std::fs::read(local.path()).unwrap()),
            Err(openvod::storage::StorageError::NotFound(_)) => None,
            Err(e) => panic!("reading {key:?} from the store: {e}"),
        }
    }

    /// The environment that points an `openvod` command at this server's database and store.
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        backend_env(&self.config.database, &self.config.storage)
    }

    /// The local media folder; a server with media in a bucket has none (see `scale_out`).
    pub fn media_dir(&self) -> PathBuf {
        assert!(
            self.config.storage.url.is_none(),
            "this server keeps media in a bucket"
        );
        self.config.media_dir()
    }
}

/// Sends bytes `[start, end)` of `data` as one UpChunk-style chunk.
pub async fn put_chunk(
    client: &reqwest::Client,
    url: &str,
    data: &[u8],
    start: usize,
    end: usize,
) -> reqwest::Response {
    client
        .put(url)
        .header(
            "content-range",
            format!("bytes {}-{}/{}", start, end - 1, data.len()),
        )
        .body(data[start..end].to_vec())
        .send()
        .await
        .expect("chunk sent")
}

/// Makes `name` with ffmpeg (`args` are inputs and options; the output path is appended), once per
/// process and name.
pub fn generate(name: &str, args: &[&str]) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> =
        OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap();
    if let Some(path) = made.get(name) {
        return path.clone();
    }
    let path = generate_uncached(name, args);
    made.insert(name.to_owned(), path.clone());
    path
}

fn generate_uncached(name: &str, args: &[&str]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("clip dir"));
    let path = dir.path().join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(&path)
        .status()
        .expect("ffmpeg runs (install the Debian package ffmpeg)");
    assert!(status.success(), "ffmpeg failed to generate {name}");
    path
}

/// A 2 s 160x120 H.264/AAC MP4 made by ffmpeg once per test process.
pub fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| h264_clip("clip.mp4", "160x120", 15, 2, &[]))
}

/// An H.264 (x264 ultrafast, 4:2:0: streamable) clip with an AAC tone, made once; `extra`
/// options go before the output (`-ac 1`, `-af volume=0.05`, ...).
pub fn h264_clip(name: &str, size: &str, rate: u32, secs: u32, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    ];
    args.extend_from_slice(extra);
    lavfi_clip(name, (size, rate, secs), &args)
}

/// The URIs of a playlist (lines that are not tags), and those of `URI="..."` attributes.
pub fn playlist_uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines() {
        if let Some(at) = line.find("URI=\"") {
            let rest = &line[at + 5..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

pub fn clip_bytes() -> Vec<u8> {
    std::fs::read(clip()).expect("clip readable")
}

/// Polls `check` (a server-side condition driven by in-process workers) for up to 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Asserts that `r` is a 503 in Mux's error shape, telling the client to come back in a second,
/// with a message that contains `says`.
pub async fn assert_unavailable(r: reqwest::Response, says: &str) {
    assert_eq!(r.status(), 503, "{:?}", r.headers());
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unavailable", "{body}");
    assert!(
        body["error"]["messages"][0]
            .as_str()
            .unwrap()
            .contains(says),
        "{body}"
    );
}

/// ffprobe's JSON for bytes, written to a temporary file first.
pub fn ffprobe_bytes(bytes: &[u8]) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    ffprobe(file.path())
}

/// The container's duration in ffprobe's JSON, in seconds.
pub fn probed_duration(probed: &serde_json::Value) -> f64 {
    probed["format"]["duration"]
        .as_str()
        .expect("a duration")
        .parse()
        .expect("a number")
}

/// ffprobe's JSON for a file (streams and format).
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

impl TestApp {
    /// Uploads `path` through a direct upload with `settings` as `new_asset_settings`; returns the asset id.
    pub async fn upload_file(&self, path: &Path, settings: Value) -> String {
        let upload = self
            .create_upload(serde_json::json!({"new_asset_settings": settings}))
            .await;
        let data = std::fs::read(path).unwrap();
        let r = self
            .client
            .put(upload["url"].as_str().unwrap())
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        self.get_upload(upload["id"].as_str().unwrap()).await["asset_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// GETs an absolute or server-relative URL without credentials.
    pub async fn fetch(&self, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base_url)
        };
        self.client.get(url).send().await.unwrap()
    }
}

/// An `openvod serve` process (no workers) on `app`'s database, store and data folder, with the
/// config keys `env` on top.
pub async fn serve_process(app: &TestApp, env: &[(&str, &str)]) -> Spawned {
    serve_on(
        &app.config.database,
        &app.config.storage,
        &app.config.data_dir,
        0,
        env,
    )
    .await
}

/// An `openvod serve` process with `workers` in-process workers on `database`, `storage` and
/// `data_dir`, with the config keys `env` on top.
pub async fn serve_on(
    database: &openvod::config::DatabaseConfig,
    storage: &openvod::config::StorageConfig,
    data_dir: &Path,
    workers: usize,
    env: &[(&str, &str)],
) -> Spawned {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openvod"));
    command
        .env_remove("OPENVOD_CONFIG")
        .envs(backend_env(database, storage))
        .env("OPENVOD_LOG", "warn")
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers"])
        .arg(workers.to_string())
        .arg("--data-dir")
        .arg(data_dir);
    spawn_announcing(command, "openvod listening on ").await
}

/// The most memory process `pid` has held (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib / 1024.0
}

/// A child process whose stdout is collected line by line.
pub struct Spawned {
    pub child: tokio::process::Child,
    /// The text after `prefix` on its first line (a server announcing its URL).
    pub announced: String,
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `command` (stdout piped, killed on drop), waits for a first line starting with `prefix`,
/// then collects the rest of stdout in the background.
pub async fn spawn_announcing(mut command: tokio::process::Command, prefix: &str) -> Spawned {
    use tokio::io::AsyncBufReadExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the process starts");
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out
        .next_line()
        .await
        .unwrap()
        .expect("the process announces itself");
    let announced = first
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Spawned {
        child,
        announced,
        lines,
    }
}

/// A 12 s 960x540 MPEG-4 Part 2 clip: not streamable, so the whole ladder is encoded (a few seconds).
pub fn slow_clip() -> PathBuf {
    mpeg4_clip("960x540", 30, 12)
}

/// An MPEG-4 Part 2 clip with a tone (not streamable: every rung is encoded), made once.
pub fn mpeg4_clip(size: &str, rate: u32, secs: u32) -> PathBuf {
    lavfi_clip(
        &format!("mpeg4-{size}-{rate}-{secs}.mp4"),
        (size, rate, secs),
        &["-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac", "-shortest"],
    )
}

/// A test picture with a tone, `size` at `rate` for `secs`, encoded with `codec_args`.
fn lavfi_clip(name: &str, (size, rate, secs): (&str, u32, u32), codec_args: &[&str]) -> PathBuf {
    let video = format!("testsrc2=size={size}:rate={rate}:duration={secs}");
    let audio = format!("sine=frequency=440:duration={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio];
    args.extend_from_slice(codec_args);
    generate(name, &args)
}

//! Typed configuration and its layering: compiled defaults < TOML file < `OPENVOD_*` env < CLI flags.
//!
//! The merged value is deserialized once and passed down explicitly; nothing reads a global config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP listener binds to.
    pub listen: SocketAddr,
    /// Holds the SQLite file (`openvod.db`), staged upload bytes and the local media store.
    pub data_dir: PathBuf,
    /// Base for every URL handed out; derived from the bound address when absent.
    pub public_url: Option<String>,
    /// In-process job workers run by `serve`; `None` means one per core.
    pub workers: Option<usize>,
    pub uploads: UploadsConfig,
    pub limits: LimitsConfig,
    pub outbound: OutboundConfig,
    pub media: MediaConfig,
    pub jobs: JobsConfig,
    pub webhooks: WebhooksConfig,
    pub tencent: TencentConfig,
    pub bbb: BbbConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
}

/// Where metadata and the job queue live: a SQLite file in `data_dir` (the default), or a
/// PostgreSQL database that many `openvod` processes share.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host/db`; absent: `<data_dir>/openvod.db`.
    pub url: Option<String>,
    /// How long work waits for the database (a PostgreSQL connection while the server cannot be
    /// reached; SQLite's write lock while another process holds it) before it gives up: a
    /// request then gets 503 with `Retry-After`, a job is retried.
    pub acquire_timeout_secs: u64,
    /// PostgreSQL: how long a session may stay idle in the middle of a transaction before the
    /// server ends it and frees its locks (a process that stalled or lost its network mid-way).
    pub idle_in_transaction_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            url: None,
            acquire_timeout_secs: 10,
            idle_in_transaction_secs: 60,
        }
    }
}

impl DatabaseConfig {
    pub fn acquire_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.acquire_timeout_secs.max(1))
    }

    pub fn idle_in_transaction(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_in_transaction_secs.max(1))
    }
}

/// Where media live: the local media folder (the default), or an S3-compatible bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `s3://bucket[/prefix]`; absent: `<data_dir>/media`.
    pub url: Option<String>,
    /// The S3 server's URL (MinIO, Ceph, SeaweedFS, ...); absent: AWS for `region`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Credentials; absent: the usual AWS environment variables and files.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Send large reads (static MP4s, master downloads, Tencent-style files) to a presigned URL
    /// of the bucket (302) instead of streaming them through openvod; segments and playlists
    /// are always served by openvod.
    pub redirect_reads: bool,
}

/// The old BigBlueButton (or Scalelite) server to migrate from; Esup-Pod's constants.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BbbConfig {
    /// Base URL of the old BBB or Scalelite server (`https://bbb.example.org/`).
    pub server_url: Option<String>,
    /// Its shared secret (Scalelite: `LOADBALANCER_SECRET`).
    pub secret: Option<String>,
    /// Checksum algorithm of API calls: `sha1`, `sha256`, `sha384` or `sha512`.
    pub checksum: String,
    /// Rewrite 2.0 presentation links to the 2.3 player.
    pub playback_url_23: bool,
    /// Username owning recordings no Moodle moderator is found for.
    pub admin_owner: Option<String>,
    /// `bbb-origin-server-name`s never looked up in Moodle.
    pub ignored_servers: Vec<String>,
    /// HTML appended once to the Moodle activity's intro when recordings are imported.
    pub inform_message: Option<String>,
    /// Where the raw getRecordings XML is saved.
    pub cache_file: PathBuf,
    /// Read `cache_file` instead of calling the server.
    pub use_cache: bool,
    /// Moodle databases by `bbb-origin-server-name`, with a `default`.
    pub moodle: std::collections::BTreeMap<String, MoodleDatabase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoodleDatabase {
    /// `postgres://...` or `mysql://...`.
    pub url: String,
    #[serde(default = "default_table_prefix")]
    pub table_prefix: String,
}

fn default_table_prefix() -> String {
    "mdl_".to_owned()
}

impl Default for BbbConfig {
    fn default() -> Self {
        BbbConfig {
            server_url: None,
            secret: None,
            checksum: "sha1".to_owned(),
            playback_url_23: true,
            admin_owner: None,
            ignored_servers: Vec::new(),
            inform_message: None,
            cache_file: PathBuf::from("getRecordings.xml"),
            use_cache: false,
            moodle: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TencentConfig {
    /// Transcoding template ids (MP4 presets, e.g. 100010, 100020) run on every new file, as a VOD
    /// task flow; reported by ProcedureStateChanged.
    pub procedure: Vec<u32>,
    /// Task flows an upload may name (ApplyUpload's `Procedure`): name = [MP4 template ids].
    pub procedures: std::collections::BTreeMap<String, Vec<u32>>,
    /// With a key, `/vod/...` media URLs need Key Hotlink Protection signatures (`t`, `sign`).
    pub hotlink_key: Option<String>,
    /// A header your reverse proxy sets to the viewer's address (`X-Real-IP`), counted for
    /// `rlimit`; without it, the connection's peer address is.
    pub hotlink_viewer_header: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Delay before each attempt: the first entry before the first attempt, then one per retry.
    /// Durations like `0s`, `5s`, `5m`, `2h`. After the last entry the delivery is given up.
    pub retry_schedule: Vec<String>,
    /// A delivery succeeds on any 2xx answered within this many seconds.
    pub timeout_secs: u64,
    /// An endpoint whose every delivery has failed for this long is disabled.
    pub disable_after_secs: u64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Endpoints declared here are created (or updated) at start.
    pub endpoints: Vec<ConfiguredEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredEndpoint {
    pub url: String,
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// Event types to deliver; all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Signing secret; generated once (and kept) when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

fn default_webhook_format() -> String {
    "mux".to_owned()
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_schedule: ["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"]
                .map(str::to_owned)
                .to_vec(),
            timeout_secs: 15,
            disable_after_secs: 5 * 24 * 3600,
            concurrency: 64,
            endpoints: Vec::new(),
        }
    }
}

impl WebhooksConfig {
    /// The retry schedule as durations (validated by `Config::load`).
    pub fn schedule(&self) -> Vec<std::time::Duration> {
        self.retry_schedule
            .iter()
            .filter_map(|d| crate::id::parse_duration(d))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// A claimed job's lease, renewed by a heartbeat every third of it. After a crash, its jobs are
    /// taken over once the lease runs out.
    pub lease_secs: u64,
    /// Job kinds this process's workers (and `openvod worker` on the database) leave to remote
    /// workers (`openvod worker --server`); only `transcode_piece` can be.
    pub remote_only: Vec<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            lease_secs: 60,
            remote_only: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Largest accepted upload in bytes (413 above it).
    pub max_size_bytes: u64,
    /// Timeout used for tus uploads created without one, in seconds.
    pub default_timeout_secs: u64,
    /// How often waiting uploads past their timeout are expired, in seconds.
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Allow URLs that resolve to loopback, private or link-local addresses (tests, trusted LANs).
    pub allow_private_addresses: bool,
    /// Largest input file pulled from a URL, in bytes.
    pub fetch_max_bytes: u64,
    /// Time limit for pulling one input URL, in seconds.
    pub fetch_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub ffprobe_path: PathBuf,
    pub ffmpeg_path: PathBuf,
    /// Time limit for one ffprobe run, in seconds.
    pub probe_timeout_secs: u64,
    /// An ffmpeg run may take this many times the input's duration (at least two minutes).
    pub transcode_timeout_factor: f64,
    /// x264 preset for the ladder.
    pub x264_preset: String,
    /// Inputs longer than this are refused (the asset errors).
    pub max_duration_secs: u64,
    /// Inputs wider or taller than this many pixels are refused.
    pub max_dimension: u32,
    /// Inputs with more video frames than this are refused.
    pub max_frames: u64,
    /// How long a request for a planned segment not yet encoded waits before a 503.
    pub segment_wait_secs: u64,
    /// Memory for recently served segments (immutable once published), served without touching
    /// the disk; 0 turns the cache off.
    pub segment_cache_mib: u64,
    /// Inputs at least this long (seconds) are encoded in pieces that any worker may take, so
    /// several workers share one long video; 0 turns this off.
    pub parallel_min_secs: u64,
    /// Length of one piece in seconds (rounded down to whole segments, at least one).
    pub piece_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: None,
            workers: None,
            uploads: UploadsConfig::default(),
            limits: LimitsConfig::default(),
            outbound: OutboundConfig::default(),
            media: MediaConfig::default(),
            jobs: JobsConfig::default(),
            webhooks: WebhooksConfig::default(),
            tencent: TencentConfig::default(),
            bbb: BbbConfig::default(),
            storage: StorageConfig::default(),
            database: DatabaseConfig::default(),
        }
    }
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            max_size_bytes: 50 * 1024 * 1024 * 1024,
            default_timeout_secs: 3600,
            sweep_interval_secs: 60,
        }
    }
}

/// What one server takes on at once (over a limit: 429 with `Retry-After`), and how long it
/// waits for a slow client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Upload requests carrying bytes (chunks, tus PATCHes, COS parts) in flight at once; 0: no limit.
    pub concurrent_uploads: usize,
    /// Sustained API requests per second per access token (or Tencent SecretId); 0: no limit.
    pub requests_per_second_per_token: u32,
    /// Requests a token may make at once above that rate (at least the rate).
    pub request_burst_per_token: u32,
    /// Largest JSON request body, in bytes (upload bodies are limited by `uploads.max_size_bytes`).
    pub max_json_body_bytes: usize,
    /// Seconds a client may take to send a request's headers (slow-loris clients are cut off).
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without a byte before the request is abandoned (a stalled
    /// client never holds an upload's lock or a slot for longer).
    pub body_idle_timeout_secs: u64,
    /// Seconds a Mux or Tencent API call (not an upload, a playback or a long poll) may take
    /// before it is answered 503 with `Retry-After` (Tencent: `InternalError`): a database or
    /// bucket that stopped answering mid-call never leaves the caller hanging.
    pub api_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            concurrent_uploads: 512,
            requests_per_second_per_token: 0,
            request_burst_per_token: 0,
            max_json_body_bytes: 1024 * 1024,
            header_timeout_secs: 20,
            body_idle_timeout_secs: 60,
            api_timeout_secs: 30,
        }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_private_addresses: false,
            fetch_max_bytes: 50 * 1024 * 1024 * 1024,
            fetch_timeout_secs: 6 * 3600,
        }
    }
}

impl MediaConfig {
    /// How long an ffmpeg run over `secs` of media may take.
    pub fn encode_timeout(&self, secs: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64((secs * self.transcode_timeout_factor).max(120.0))
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ffprobe_path: PathBuf::from("ffprobe"),
            ffmpeg_path: PathBuf::from("ffmpeg"),
            probe_timeout_secs: 60,
            transcode_timeout_factor: 20.0,
            x264_preset: "veryfast".to_owned(),
            max_duration_secs: 12 * 3600,
            max_dimension: 4096,
            max_frames: 12 * 3600 * 60,
            segment_wait_secs: 20,
            segment_cache_mib: 64,
            parallel_min_secs: 600,
            piece_secs: 120,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("public_url {0:?} is not an absolute http(s) URL")]
    PublicUrl(String),
    #[error("webhooks.retry_schedule: {0:?} is not a duration like 5s, 5m or 2h (and the schedule may not be empty)")]
    RetrySchedule(String),
    /// Names only the scheme: the URL may hold a password.
    #[error("database.url must be a postgres:// URL, not {0:?} (leave it out for the SQLite file in data_dir)")]
    DatabaseUrl(String),
    #[error("jobs.remote_only: {0:?} is not a job a remote worker runs (only transcode_piece is)")]
    RemoteKind(String),
    #[error("limits.{0} must be at least 1")]
    ZeroLimit(&'static str),
    #[error("tencent.hotlink_viewer_header {0:?} is not a header name")]
    ViewerHeader(String),
}

impl Config {
    /// Merges the layers. `file` falls back to `OPENVOD_CONFIG`; a named file that is missing is an error.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("OPENVOD_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = Env::prefixed("OPENVOD_").split("__").filter(|key| {
            // Variables that are not config keys: the config path, the log filter, a remote
            // worker's token (a flag's value), test switches.
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && key != "log" && key != "worker_token" && !key.starts_with("test")
        });
        figment = figment
            .merge(env)
            .merge(Serialized::defaults(overrides.clone()));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.tencent.hotlink_viewer_header {
            if axum::http::HeaderName::try_from(h.as_str()).is_err() {
                return Err(ConfigError::ViewerHeader(h.clone()));
            }
        }
        if self.webhooks.retry_schedule.is_empty() {
            return Err(ConfigError::RetrySchedule(String::new()));
        }
        if let Some(bad) = self
            .webhooks
            .retry_schedule
            .iter()
            .find(|d| crate::id::parse_duration(d).is_none())
        {
            return Err(ConfigError::RetrySchedule(bad.clone()));
        }
        if let Some(kind) = self
            .jobs
            .remote_only
            .iter()
            .find(|k| !crate::jobs::REMOTE_KINDS.contains(&k.as_str()))
        {
            return Err(ConfigError::RemoteKind(kind.clone()));
        }
        for (name, value) in [
            ("header_timeout_secs", self.limits.header_timeout_secs),
            ("body_idle_timeout_secs", self.limits.body_idle_timeout_secs),
            (
                "max_json_body_bytes",
                self.limits.max_json_body_bytes as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if let Some(url) = &self.database.url {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
                return Err(ConfigError::DatabaseUrl(format!("{scheme}://…")));
            }
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|_| ConfigError::PublicUrl(url.clone()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::PublicUrl(url.clone()));
            }
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("openvod.db")
    }

    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("staging")
    }
}

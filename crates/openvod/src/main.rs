//! The `openvod` binary: parses the command line, loads the config and dispatches to a subcommand.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use openvod::app::{open_db, App};
use openvod::bbb::migrate;
use openvod::bbb::render::{render_source, stderr_progress, RenderOptions};
use openvod::bbb::source::Source;
use openvod::config::{Config, Overrides};
use openvod::outbound::Outbound;
use openvod::tokens::TokenService;

#[derive(Parser)]
#[command(
    name = "openvod",
    version,
    about = "Self-hosted video on demand with Mux-compatible APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML config file (also OPENVOD_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Folder holding the SQLite database and media (default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server with in-process workers.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Base of every URL handed out (default: from the listen address).
        #[arg(long)]
        public_url: Option<String>,
        /// In-process job workers (default: number of cores).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Run job workers only: against the same database and media store, or, with --server, as a
    /// remote worker that takes jobs from a server over HTTP (no database or store needed).
    Worker {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        workers: Option<usize>,
        /// The server's URL: work as a remote worker for it.
        #[arg(long)]
        server: Option<String>,
        /// The remote worker's access token, as ID:SECRET (`openvod tokens create` on the server).
        #[arg(long, env = "OPENVOD_WORKER_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Manage API access tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Manage console accounts (people; programs use tokens).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Run Tencent VOD's event-notification receipt service (reads the demo's config.json).
    TencentReceiver {
        /// The receiver's config.json (secret_id, secret_key, region, subappid, definitions, endpoint).
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on (default 127.0.0.1:9000).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
    },
    /// BigBlueButton recordings.
    Bbb {
        #[command(subcommand)]
        command: BbbCommand,
    },
    /// Show configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the OpenAPI document of the Mux-compatible API (the one `/openapi.json` serves).
    Openapi {
        /// Print the README's table of the API instead.
        #[arg(long)]
        readme_table: bool,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token; prints {"id": ..., "secret": ...} (the secret is shown only once).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a token.
    Revoke {
        #[command(flatten)]
        common: Common,
        id: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account. Prints a generated one-time password, or reads one from stdin with
    /// --password-stdin.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
        /// admin, staff or user.
        #[arg(long, default_value = "user")]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (generated and printed unless --password-stdin); unlocks it and
    /// ends its sessions. Works for accounts the BBB migration knows as Moodle moderators once
    /// they are created here with their Moodle username.
    SetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of an account.
    RevokeSessions {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
    },
    /// List accounts (never their passwords).
    List {
        #[command(flatten)]
        common: Common,
    },
}

/// The first line of stdin, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[derive(Subcommand)]
enum BbbCommand {
    /// Render a "presentation" recording to one video file, offline and faster than real time.
    ///
    /// SOURCE: https://HOST/playback/presentation/2.3/RECORD_ID,
    /// https://HOST/playback/presentation/2.0/playback.html?meetingId=RECORD_ID,
    /// https://HOST/presentation/RECORD_ID/ or a local published recording folder.
    /// Prints one JSON line on success: output, duration_s, width, height, render_s, speed_x.
    Render {
        #[command(flatten)]
        common: Common,
        source: String,
        /// Output file: .mp4 (H.264 + AAC) or .webm (VP9 + Opus).
        #[arg(short = 'o', long)]
        output: PathBuf,
        #[arg(long, default_value_t = 1280)]
        width: u32,
        #[arg(long, default_value_t = 720)]
        height: u32,
        /// Leave the webcams out (their audio is kept).
        #[arg(long)]
        no_webcams: bool,
        /// Leave the chat panel out.
        #[arg(long)]
        no_chat: bool,
        /// Do not draw the presenter's cursor.
        #[arg(long)]
        no_cursor: bool,
        /// Keep the downloaded recording files in DIR (a backup of the published recording).
        #[arg(long, value_name = "DIR")]
        keep_assets: Option<PathBuf>,
    },
    /// List the old server's recordings ([bbb] in the config file) without doing anything.
    List {
        #[command(flatten)]
        common: Common,
        /// Print Pod's CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Migrate the old server's recordings, with Esup-Pod's flags (exactly one mode).
    #[command(group(clap::ArgGroup::new("mode").required(true).multiple(false)
        .args(["use_manual_claim", "use_import_video", "use_export_csv"])))]
    Migrate {
        #[command(flatten)]
        common: Common,
        /// Every recording becomes an asset waiting in a claim queue.
        #[arg(long = "use-manual-claim")]
        use_manual_claim: bool,
        /// An external recording per owner, imported on request.
        #[arg(long = "use-import-video")]
        use_import_video: bool,
        /// Write Pod's CSV of the recordings (also spelled --use_export_csv).
        #[arg(long = "use-export-csv", alias = "use_export_csv")]
        use_export_csv: bool,
        /// Find each recording's moderators in Moodle ([bbb.moodle.*]).
        #[arg(long = "use-database-moodle")]
        use_database_moodle: bool,
        /// First recording handled, 1-based in listing order.
        #[arg(long = "min-value-record-process", default_value_t = 1)]
        min: u64,
        /// Last recording handled, inclusive.
        #[arg(long = "max-value-record-process", default_value_t = 10000)]
        max: u64,
        /// Print what would be done; write nothing anywhere.
        #[arg(long)]
        dry: bool,
        /// Only this recording.
        #[arg(long = "record-id")]
        record_id: Option<String>,
        /// The CSV file of --use-export-csv.
        #[arg(long, default_value = "out.csv")]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the merged effective configuration.
    Show {
        #[command(flatten)]
        common: Common,
    },
}

fn load(common: &Common, overrides: Overrides) -> anyhow::Result<Config> {
    let overrides = Overrides {
        data_dir: common.data_dir.clone(),
        ..overrides
    };
    Ok(Config::load(common.config.as_deref(), &overrides)?)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENVOD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// One-shot commands keep stderr for their own progress: only warnings are logged.
fn init_cli_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENVOD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// `openvod worker --server`: `workers` loops taking jobs from the server over HTTP.
async fn run_remote_worker(
    config: &openvod::config::Config,
    server: &str,
    token: Option<&str>,
    workers: usize,
) -> anyhow::Result<()> {
    let url = url::Url::parse(server)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| format!("--server {server:?} is not an http(s) URL"))?;
    let token =
        token.context("a remote worker needs --token ID:SECRET (or OPENVOD_WORKER_TOKEN)")?;
    let scratch = openvod::app::prepare_scratch_dir(&config.data_dir.join("tmp"))
        .with_context(|| format!("preparing {}", config.data_dir.join("tmp").display()))?;
    let worker = openvod::remote::client::RemoteWorker::new(
        url,
        token,
        config.media.ffmpeg_path.clone(),
        scratch,
    )
    .context("--token is ID:SECRET")?;
    eprintln!("openvod remote worker for {server}, {workers} at once");
    let shutdown = shutdown_token();
    let mut handles = Vec::new();
    for _ in 0..workers {
        handles.push(tokio::spawn(worker.clone().run(shutdown.child_token())));
    }
    for handle in handles {
        handle.await.context("worker task failed")?;
    }
    Ok(())
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("openvod: error: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            common,
            listen,
            public_url,
            workers,
        } => {
            init_tracing();
            let config = load(
                &common,
                Overrides {
                    listen,
                    public_url,
                    workers,
                    ..Overrides::default()
                },
            )?;
            let workers = config.workers.unwrap_or_else(default_workers);
            let data_dir = config.data_dir.clone();
            let app = App::build(config).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "openvod listening on {}", app.public_url())?;
            writeln!(
                out,
                "create an API token with: openvod tokens create --name NAME --data-dir {}",
                data_dir.display()
            )?;
            out.flush()?;
            drop(out);
            app.run(shutdown_token(), workers).await?;
        }
        Command::Worker {
            common,
            workers,
            server,
            token,
        } => {
            init_tracing();
            let config = load(
                &common,
                Overrides {
                    workers,
                    ..Overrides::default()
                },
            )?;
            let workers = config.workers.unwrap_or_else(default_workers);
            if workers == 0 {
                bail!("--workers must be at least 1");
            }
            if let Some(server) = server {
                return run_remote_worker(&config, &server, token.as_deref(), workers).await;
            }
            if config.public_url.is_none() {
                bail!("`openvod worker` needs public_url (in the config file or OPENVOD_PUBLIC_URL): the URLs it puts in events must point at the server");
            }
            let mut config = config;
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let app = App::build(config).await?;
            let shutdown = shutdown_token();
            let mut handles = Vec::new();
            for _ in 0..workers {
                handles.push(tokio::spawn(app.worker().run(shutdown.child_token())));
            }
            let dispatcher = app.dispatcher();
            let cancel = shutdown.child_token();
            handles.push(tokio::spawn(async move { dispatcher.run(cancel).await }));
            for handle in handles {
                handle.await.context("worker task failed")?;
            }
        }
        Command::Tokens { command } => {
            let (common, action) = match &command {
                TokensCommand::Create { common, .. }
                | TokensCommand::List { common }
                | TokensCommand::Revoke { common, .. } => (common, &command),
            };
            let config = load(common, Overrides::default())?;
            let tokens = TokenService::open(open_db(&config).await?).await?;
            match action {
                TokensCommand::Create { name, .. } => {
                    let created = tokens.create(name).await?;
                    println!(
                        "{}",
                        serde_json::json!({"id": created.id, "secret": created.secret})
                    );
                }
                TokensCommand::List { .. } => {
                    for token in tokens.list().await? {
                        println!(
                            "{}",
                            serde_json::json!({"id": token.id, "name": token.name,
                                "created_at": token.created_at, "revoked": token.revoked_at.is_some()})
                        );
                    }
                }
                TokensCommand::Revoke { id, .. } => {
                    if !tokens.revoke(id).await? {
                        bail!("no active token with id {id}");
                    }
                    eprintln!("token {id} revoked");
                }
            }
        }
        Command::Users { command } => {
            use openvod::accounts::{model::Role, AccountService};
            let common = match &command {
                UsersCommand::Create { common, .. }
                | UsersCommand::SetPassword { common, .. }
                | UsersCommand::RevokeSessions { common, .. }
                | UsersCommand::List { common } => common,
            };
            let config = load(common, Overrides::default())?;
            let accounts = AccountService::new(open_db(&config).await?).await;
            match &command {
                UsersCommand::Create {
                    username,
                    role,
                    password_stdin,
                    ..
                } => {
                    let role = Role::parse(role)
                        .with_context(|| format!("--role {role}: expected admin, staff or user"))?;
                    let given = password_stdin.then(password_from_stdin).transpose()?;
                    let password = accounts
                        .create_user(username, role, given.as_deref())
                        .await?;
                    if given.is_none() {
                        println!("{password}");
                    }
                    eprintln!("user {username} created ({})", role.as_str());
                }
                UsersCommand::SetPassword {
                    username,
                    password_stdin,
                    ..
                } => {
                    let given = password_stdin.then(password_from_stdin).transpose()?;
                    let password = accounts.set_password(username, given.as_deref()).await?;
                    if given.is_none() {
                        println!("{password}");
                    }
                    eprintln!("password of {username} set; its sessions ended");
                }
                UsersCommand::RevokeSessions { username, .. } => {
                    let n = accounts.revoke_sessions(username).await?;
                    eprintln!("{n} session(s) of {username} ended");
                }
                UsersCommand::List { .. } => {
                    for user in accounts.list_users().await? {
                        println!(
                            "{}",
                            serde_json::json!({"username": user.username, "role": user.role,
                                "created_at": user.created_at,
                                "can_log_in": user.password_hash.is_some(),
                                "locked_until": user.locked_until})
                        );
                    }
                }
            }
        }
        Command::TencentReceiver { config, listen } => {
            init_tracing();
            let config = openvod::compat::tencent::receiver::ReceiverConfig::load(&config)?;
            openvod::compat::tencent::receiver::run(config, listen, shutdown_token()).await?;
        }
        Command::Bbb {
            command:
                BbbCommand::Render {
                    common,
                    source,
                    output,
                    width,
                    height,
                    no_webcams,
                    no_chat,
                    no_cursor,
                    keep_assets,
                },
        } => {
            init_cli_tracing();
            let config = load(&common, Overrides::default())?;
            // A session of its own: a Scalelite protected URL's token sets the cookie that
            // grants the recording's files.
            let outbound = Outbound::new(&config.outbound).session();
            let source = if openvod::bbb::source::protected_playback(&source).is_some() {
                let server = openvod::bbb::migrate::configured_server(&config.bbb)?;
                openvod::bbb::source::open_playback(&outbound, &source, server.as_ref()).await?
            } else {
                source
            };
            let source = Source::parse(&source)?;
            let opts = RenderOptions {
                width,
                height,
                webcams: !no_webcams,
                chat: !no_chat,
                cursor: !no_cursor,
                ffmpeg: config.media.ffmpeg_path.clone(),
                ffprobe: config.media.ffprobe_path.clone(),
                probe_timeout: std::time::Duration::from_secs(config.media.probe_timeout_secs),
                x264_preset: config.media.x264_preset.clone(),
                ..RenderOptions::default()
            };
            // Intermediate files go beside the output: same filesystem, and not a small /tmp.
            let scratch = match output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !scratch.is_dir() {
                bail!("the output folder {} does not exist", scratch.display());
            }
            let rendered = render_source(
                &source,
                &output,
                keep_assets.as_deref(),
                &scratch,
                &outbound,
                &opts,
                Some(stderr_progress()),
            )
            .await;
            eprintln!();
            let rendered = rendered?;
            for warning in &rendered.warnings {
                eprintln!("openvod: warning: {warning}");
            }
            println!(
                "{}",
                serde_json::json!({
                    "output": rendered.output,
                    "duration_s": rendered.duration_s,
                    "width": rendered.width,
                    "height": rendered.height,
                    "render_s": (rendered.render_s * 1000.0).round() / 1000.0,
                    "speed_x": (rendered.speed_x * 100.0).round() / 100.0,
                    "frames": rendered.frames,
                    "captions": rendered.captions,
                })
            );
        }
        Command::Bbb {
            command: BbbCommand::List { common, csv },
        } => {
            init_cli_tracing();
            let config = load(&common, Overrides::default())?;
            let outbound = Outbound::new(&config.outbound);
            let listing = migrate::load_listing(&config.bbb, &outbound, true).await?;
            let cache = &listing.path;
            let stdout = std::io::stdout().lock();
            if csv {
                let all = migrate::Selection {
                    min: 1,
                    max: u64::MAX,
                    record_id: None,
                };
                let opts = openvod::migration::run::RunOptions {
                    selection: all,
                    dry: true,
                    playback_url_23: config.bbb.playback_url_23,
                    admin_owner: None,
                    inform_message: None,
                };
                openvod::migration::run::run(
                    cache,
                    openvod::migration::run::Action::ExportCsv(stdout),
                    &opts,
                    None,
                    None,
                    |_| {},
                    |_| {},
                )
                .await?;
            } else {
                let n = migrate::list_table(cache, stdout)?;
                eprintln!("{n} recordings");
            }
        }
        Command::Bbb {
            command:
                BbbCommand::Migrate {
                    common,
                    use_manual_claim,
                    use_import_video,
                    use_export_csv,
                    use_database_moodle,
                    min,
                    max,
                    dry,
                    record_id,
                    output,
                },
        } => {
            init_cli_tracing();
            let config = load(&common, Overrides::default())?;
            if min == 0 || min > max {
                bail!("--min-value-record-process must be at least 1 and at most --max-value-record-process");
            }
            let selection = migrate::Selection {
                min,
                max,
                record_id,
            };
            run_migration(
                &config,
                selection,
                if use_manual_claim {
                    MigrateMode::ManualClaim
                } else if use_import_video {
                    MigrateMode::ImportVideo
                } else {
                    debug_assert!(use_export_csv);
                    MigrateMode::ExportCsv(output)
                },
                use_database_moodle,
                dry,
            )
            .await?;
        }
        Command::Config {
            command: ConfigCommand::Show { common },
        } => {
            let config = load(&common, Overrides::default())?;
            println!("{}", toml_like(&config)?);
        }
        Command::Openapi { readme_table } => {
            let document = openvod::http::openapi::document();
            if readme_table {
                print!("{}", openvod::http::openapi::readme_table(&document));
            } else {
                let json = openvod::http::openapi::to_json(&document);
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
        }
    }
    Ok(())
}

enum MigrateMode {
    ManualClaim,
    ImportVideo,
    ExportCsv(PathBuf),
}

/// `openvod bbb migrate`: pre-flight (the old server answers with a valid checksum, each Moodle
/// database connects, the admin owner is usable), then the run over the listing.
async fn run_migration(
    config: &Config,
    selection: migrate::Selection,
    mode: MigrateMode,
    use_moodle: bool,
    dry: bool,
) -> anyhow::Result<()> {
    use openvod::migration::run::{self, Action, RunOptions};
    use std::io::IsTerminal;

    let bbb = &config.bbb;
    if let Some(admin) = &bbb.admin_owner {
        if !openvod::accounts::valid_username(admin) {
            bail!("pre-flight: [bbb] admin_owner {admin:?} is not a username (letters, digits, _ - . @)");
        }
    } else if matches!(mode, MigrateMode::ImportVideo) && !use_moodle {
        bail!("pre-flight: --use-import-video needs an owner for every recording: set [bbb] admin_owner, or use --use-database-moodle");
    }
    if dry {
        eprintln!("dry run: nothing is written anywhere");
    }
    let outbound = Outbound::new(&config.outbound);
    let listing = migrate::load_listing(bbb, &outbound, dry)
        .await
        .context("pre-flight: the BigBlueButton server")?;
    let moodles = if use_moodle {
        let m = openvod::bbb::moodle::Moodles::connect(&bbb.moodle, &bbb.ignored_servers)
            .await
            .context("pre-flight: Moodle")?;
        eprintln!(
            "Moodle databases: {}",
            m.names().collect::<Vec<_>>().join(", ")
        );
        Some(m)
    } else {
        None
    };
    // A dry run reads the state to say what is already done, but never creates the database.
    let csv = matches!(mode, MigrateMode::ExportCsv(_));
    let no_database_yet = config.database.url.is_none() && !config.database_path().is_file();
    let db = if csv || (dry && no_database_yet) {
        None
    } else {
        Some(openvod::app::open_db(config).await?)
    };
    let service = db.map(|db| openvod::migration::MigrationService::new(db));
    let opts = RunOptions {
        selection,
        dry,
        playback_url_23: bbb.playback_url_23,
        admin_owner: bbb.admin_owner.clone(),
        inform_message: bbb.inform_message.clone().filter(|m| !m.trim().is_empty()),
    };
    let tty = std::io::stderr().is_terminal();
    let progress = |s: &run::Summary| {
        if tty {
            eprint!(
                "\r\x1b[2K[{}] in range {} done {} skipped {} failed {}",
                "#".repeat((s.in_range % 40) as usize),
                s.in_range,
                s.done,
                s.skipped,
                s.failed
            );
        }
    };
    let line = |l: String| {
        if tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{l}");
    };
    let cache = listing.path.clone();
    let result = match mode {
        MigrateMode::ExportCsv(output) if !dry => {
            let partial = output.with_extension("csv.partial");
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let r = run::run(
                &cache,
                Action::ExportCsv(&mut out),
                &opts,
                moodles.as_ref(),
                None,
                line,
                progress,
            )
            .await;
            let r = r.and_then(|s| {
                out.flush()
                    .map_err(|e| run::RunError::Csv(e.to_string()))
                    .map(|()| s)
            });
            if r.is_ok() {
                drop(out);
                std::fs::rename(&partial, &output)?;
                eprintln!("wrote {}", output.display());
            } else {
                drop(out);
                let _ = std::fs::remove_file(&partial);
            }
            r
        }
        MigrateMode::ExportCsv(_) => {
            run::run(
                &cache,
                Action::ExportCsv(std::io::stdout().lock()),
                &opts,
                moodles.as_ref(),
                None,
                line,
                progress,
            )
            .await
        }
        MigrateMode::ManualClaim | MigrateMode::ImportVideo => {
            let action = if matches!(mode, MigrateMode::ManualClaim) {
                Action::<std::io::Sink>::ManualClaim
            } else {
                Action::ImportVideo
            };
            run::run(
                &cache,
                action,
                &opts,
                moodles.as_ref(),
                service.as_ref(),
                line,
                progress,
            )
            .await
        }
    };
    if let Some(m) = &moodles {
        m.close().await;
    }
    if tty {
        eprintln!();
    }
    let summary = result?;
    eprintln!("{summary}");
    if summary.presentations > 0 {
        eprintln!("presentations are rendered by the jobs of `openvod serve` (or `openvod worker`) on this data dir");
    }
    if summary.failed > 0 {
        bail!(
            "{} recording(s) failed; rerun with --record-id to retry one",
            summary.failed
        );
    }
    Ok(())
}

fn toml_like(config: &Config) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(config)?)
}

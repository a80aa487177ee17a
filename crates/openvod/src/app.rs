//! Wiring: `App::build` opens the database and store, binds the listener and assembles the services;
//! `App::run` serves HTTP and runs workers and maintenance until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use crate::assets::AssetService;
use crate::compat::EventRenderer;
use crate::config::Config;
use crate::db::postgres::{AdvisoryLocks, PgDb};
use crate::db::sqlite::SqliteDb;
use crate::db::{ArcDb, DbError};
use crate::events::dispatch::Dispatcher;
use crate::events::EventService;
use crate::http::AppState;
use crate::ingest::capability::UrlSigner;
use crate::ingest::staging::Staging;
use crate::ingest::IngestService;
use crate::jobs::Worker;
use crate::keyed_lock::{KeyedLocks, SharedLocks};
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::playback::PlaybackService;
use crate::processing::run::TaskRunner;
use crate::processing::ProcessingService;
use crate::storage::fs::FsStore;
use crate::storage::ArcStore;
use crate::tokens::TokenService;

/// How long running tasks get to finish after a shutdown signal.
const EXIT_DEADLINE: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("could not prepare data directory {0}: {1}")]
    DataDir(std::path::PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("could not listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error(transparent)]
    Tokens(#[from] crate::tokens::TokenError),
    #[error("invalid [tencent] procedure: {0}")]
    Procedure(String),
    #[error("invalid [webhooks] endpoints: {0}")]
    Webhooks(#[source] crate::events::EventsError),
    #[error("media storage: {0}")]
    Storage(String),
}

pub struct App {
    config: Config,
    dispatcher: Arc<Dispatcher>,
    listener: TcpListener,
    public_url: url::Url,
    db: ArcDb,
    state: AppState,
}

/// Opens (creating and migrating) the metadata database named by the config.
pub async fn open_db(config: &Config) -> Result<ArcDb, AppError> {
    Ok(match &config.database.url {
        Some(url) => Arc::new(
            PgDb::open(
                url,
                config.database.acquire_timeout(),
                config.database.idle_in_transaction(),
            )
            .await?,
        ),
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| AppError::DataDir(config.data_dir.clone(), e))?;
            Arc::new(
                SqliteDb::open(&config.database_path(), config.database.acquire_timeout()).await?,
            )
        }
    })
}

/// Opens the media store named by the config (creating the bucket if needed).
pub async fn open_store(config: &Config) -> Result<ArcStore, AppError> {
    Ok(match config.storage.url {
        None => Arc::new(FsStore::new(config.media_dir())),
        Some(_) => {
            let s3 = crate::storage::s3::S3Store::new(&config.storage)
                .map_err(|e| AppError::Storage(e.to_string()))?;
            s3.ensure_bucket()
                .await
                .map_err(|e| AppError::Storage(e.to_string()))?;
            Arc::new(s3)
        }
    })
}

impl App {
    pub async fn build(config: Config) -> Result<App, AppError> {
        let db = open_db(&config).await?;
        for dir in [config.media_dir(), config.staging_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| AppError::DataDir(dir.clone(), e))?;
        }
        let scratch_dir = prepare_scratch_dir(&config.data_dir.join("tmp"))
            .map_err(|e| AppError::DataDir(config.data_dir.join("tmp"), e))?;

        let mut fresh_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh_key);
        let signer = UrlSigner::new(db.get_or_create_secret("url_signing", &fresh_key).await?);
        let vod_upload_signer = signer.clone();

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| AppError::Bind(config.listen, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| AppError::Bind(config.listen, e))?;
        let public_url = match &config.public_url {
            Some(url) => url::Url::parse(url).expect("validated by Config::load"),
            None => {
                url::Url::parse(&format!("http://{local}/")).expect("a socket address makes a URL")
            }
        };

        let store = open_store(&config).await?;
        let outbound = Arc::new(Outbound::new(&config.outbound));
        let renderer = Arc::new(EventRenderer {
            public_url: public_url.clone(),
        });
        let events = Arc::new(EventService::new(db.clone(), outbound.clone(), renderer));
        events
            .apply_configured(&config.webhooks.endpoints)
            .await
            .map_err(AppError::Webhooks)?;
        // Who else takes turns on an upload or an image: the processes sharing this data folder,
        // or with PostgreSQL every process on the database, whatever machine it runs on.
        let shared_locks: Option<Arc<dyn SharedLocks>> = match &config.database.url {
            Some(url) => Some(Arc::new(AdvisoryLocks::connect(
                url,
                64,
                config.database.acquire_timeout(),
            )?)),
            None => None,
        };
        let locks = |dir: std::path::PathBuf| match &shared_locks {
            Some(shared) => KeyedLocks::shared_by(shared.clone()),
            None => KeyedLocks::across_processes(dir),
        };
        let ingest = Arc::new(IngestService::new(
            db.clone(),
            store.clone(),
            Staging::new(config.staging_dir()),
            locks(config.staging_dir().join("locks")),
            signer.clone(),
            config.uploads.clone(),
            public_url.clone(),
        ));
        let pipeline: Arc<Pipeline> = Arc::new(Pipeline::new(
            db.clone(),
            db.clone(),
            store.clone(),
            config.media.clone(),
            scratch_dir.clone(),
        ));
        let recent_playback_ids = Arc::new(crate::assets::recent::RecentPlaybackIds::default());
        let assets = Arc::new(
            AssetService::new(
                db.clone(),
                store.clone(),
                signer.clone(),
                public_url.clone(),
                config.media.clone(),
                outbound.clone(),
                config.outbound.clone(),
                scratch_dir.clone(),
                pipeline.clone(),
                Arc::new(TaskRunner::new(
                    db.clone(),
                    store.clone(),
                    config.media.clone(),
                    scratch_dir.clone(),
                )),
            )
            .with_procedure(
                crate::compat::tencent::templates::procedure(&config.tencent.procedure)
                    .map_err(AppError::Procedure)?,
            )
            .with_bbb_server(bbb_server(&config.bbb))
            .with_recent_playback_ids(recent_playback_ids.clone())
            .with_preview_locks(locks(config.data_dir.join("locks"))),
        );
        let playback = Arc::new(
            PlaybackService::new(
                db.clone(),
                store.clone(),
                signer,
                public_url.clone(),
                config.media.clone(),
                scratch_dir.clone(),
                recent_playback_ids,
            )
            // An image is rendered once, whichever process is asked for it.
            .with_image_locks(locks(config.data_dir.join("locks"))),
        );
        let dispatcher = Arc::new(Dispatcher::new(
            db.clone(),
            outbound,
            events.render.clone(),
            &config.webhooks,
        ));
        let remote = Arc::new(crate::remote::RemoteJobs::new(
            db.clone(),
            pipeline,
            assets.clone(),
            store,
            scratch_dir,
            config.jobs.lease_secs,
        ));
        let state = AppState {
            remote,
            jobs: db.clone(),
            ingest,
            assets,
            playback,
            events,
            processing: Arc::new(ProcessingService::new(db.clone())),
            migration: Arc::new(crate::migration::MigrationService::new(db.clone())),
            public_url: public_url.clone(),
            tokens: Arc::new(
                TokenService::open(db.clone())
                    .await
                    .map_err(AppError::Tokens)?,
            ),
            accounts: Arc::new(crate::accounts::AccountService::new(db.clone()).await),
            vod_uploads: Arc::new(
                crate::compat::tencent::upload::VodUploads::new(
                    vod_upload_signer,
                    &config.tencent.procedures,
                )
                .map_err(AppError::Procedure)?,
            ),
            vod_hotlink: crate::compat::tencent::hotlink::Protection::from_config(&config.tencent)
                .map(Arc::new),
            limits: Arc::new(crate::http::limits::Limits::new(&config.limits)),
        };
        Ok(App {
            config,
            dispatcher,
            listener,
            public_url,
            db,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn public_url(&self) -> &url::Url {
        &self.public_url
    }

    pub fn db(&self) -> ArcDb {
        self.db.clone()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The webhook dispatcher (tests drive it with `run_once`).
    pub fn dispatcher(&self) -> Arc<Dispatcher> {
        self.dispatcher.clone()
    }

    pub fn worker(&self) -> Worker {
        Worker::new(
            self.db.clone(),
            self.state.assets.clone(),
            self.config.jobs.lease_secs,
        )
        .leaving(&self.config.jobs.remote_only)
    }

    /// Serves until `shutdown` is cancelled, with `workers` in-process job workers.
    ///
    /// Teardown order: stop accepting and drain HTTP requests; cancel workers (a running job's ffmpeg is
    /// killed and the job is left to its lease); stop maintenance; wait for tasks up to `EXIT_DEADLINE`.
    pub async fn run(self, shutdown: CancellationToken, workers: usize) -> Result<(), AppError> {
        let tracker = TaskTracker::new();
        let requeued = self.db.requeue_stale_jobs(crate::id::now_unix()).await?;
        if requeued > 0 {
            tracing::info!(requeued, "requeued jobs whose lease expired");
        }
        for _ in 0..workers {
            tracker.spawn(self.worker().run(shutdown.child_token()));
        }
        // Background work runs only with workers; with none (tests), callers drive it themselves.
        if workers > 0 {
            let dispatcher = self.dispatcher.clone();
            let cancel = shutdown.child_token();
            tracker.spawn(async move { Dispatcher::run(&dispatcher, cancel).await });
        }
        tracker.spawn(maintenance(
            self.state.limits.clone(),
            self.state.ingest.clone(),
            self.state.assets.clone(),
            self.db.clone(),
            self.config.data_dir.join("tmp"),
            // Often enough that a dead worker's job is taken over soon after its lease runs out.
            Duration::from_secs(
                self.config
                    .uploads
                    .sweep_interval_secs
                    .min(self.config.jobs.lease_secs / 2)
                    .max(1),
            ),
            shutdown.child_token(),
        ));
        let router = crate::http::router(self.state.clone());
        crate::http::server::serve(
            self.listener,
            router,
            &self.config.limits,
            shutdown.clone(),
            EXIT_DEADLINE,
        )
        .await;
        shutdown.cancel();
        tracker.close();
        if tokio::time::timeout(EXIT_DEADLINE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within {EXIT_DEADLINE:?}; leaving them to their leases");
        }
        Ok(())
    }
}

/// Makes this process's scratch folder `<tmp>/<pid>` and removes those of processes that are gone
/// (killed mid-job): scratch files are never referenced across restarts.
pub fn prepare_scratch_dir(tmp: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(tmp)?;
    remove_dead_scratch(tmp)?;
    let mine = tmp.join(std::process::id().to_string());
    std::fs::create_dir_all(&mine)?;
    Ok(mine)
}

/// Removes the scratch folders of processes that no longer run. Called at start and again on every
/// maintenance round: an ffmpeg child of a process killed with -9 outlives it until its next progress
/// write fails, and what it writes meanwhile (or while the first removal runs) is caught by the next round.
fn remove_dead_scratch(tmp: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let name = entry.file_name();
        let alive = name
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
        if !alive {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::debug!(path = %path.display(), error = %e, "dead scratch not removed yet");
            }
        }
    }
    Ok(())
}

/// The longest upkeep waits for the database to requeue jobs whose lease ran out.
const UPKEEP_DB_BOUND: Duration = Duration::from_secs(60);

/// Periodic upkeep: remove dead processes' scratch, forget idle rate-limit buckets, expire idle uploads, delete media past their expire time, and return jobs with
/// expired leases to the queue.
async fn maintenance(
    limits: Arc<crate::http::limits::Limits>,
    ingest: Arc<IngestService>,
    assets: Arc<AssetService>,
    db: ArcDb,
    scratch_root: std::path::PathBuf,
    every: Duration,
    cancel: CancellationToken,
) {
    // Dropped (aborted) when upkeep stops.
    let mut expiring: Option<AbortOnDropHandle<()>> = None;
    loop {
        let now = crate::id::now_unix();
        let root = scratch_root.clone();
        match tokio::task::spawn_blocking(move || remove_dead_scratch(&root)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "scratch sweep failed"),
            Err(e) => tracing::warn!(error = %e, "scratch sweep did not run"),
        }
        // Job leases first, bounded: a database that stopped answering (see `error::within`)
        // costs one bound, and nothing else here can hold them back.
        let requeue = crate::error::within(UPKEEP_DB_BOUND, db.requeue_stale_jobs(now));
        if let Err(e) = requeue.await {
            tracing::warn!(error = %e, "job lease reclaim failed");
        }
        // Expiry can take long (finishing a stalled upload writes it to the store), so it runs on
        // its own and the next round starts it again only once it is done.
        if expiring.as_ref().is_none_or(|task| task.is_finished()) {
            let (ingest, assets) = (ingest.clone(), assets.clone());
            expiring = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                match ingest.expire_uploads(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "timed out idle uploads"),
                    Err(e) => tracing::warn!(error = %e, "upload expiry failed"),
                }
                match assets.delete_expired(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "deleted media past their expire time"),
                    Err(e) => tracing::warn!(error = %e, "media expiry failed"),
                }
            })));
        }
        limits.forget_idle();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// The old BigBlueButton server, when `[bbb]` names one; a bad setting is reported by the
/// migration's pre-flight, and here only means protected recordings cannot get fresh tokens.
fn bbb_server(config: &crate::config::BbbConfig) -> Option<crate::bbb::api::Server> {
    crate::bbb::migrate::configured_server(config)
        .inspect_err(|e| tracing::warn!(error = %e, "[bbb] server is not usable"))
        .ok()
        .flatten()
}

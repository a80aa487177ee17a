//! What operators scrape at `GET /metrics` (Prometheus text format, behind an access token):
//! HTTP requests by route and status, upload and playback bytes, ffmpeg seconds, webhook
//! deliveries by outcome (counters kept in this process), and jobs by kind and state with the
//! queue depth (read from the database at each scrape, so every process reports the same).

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's pattern (`/video/v1/assets/{id}`), never the raw path: bounded cardinality.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub upload_bytes: Counter,
    pub playback_bytes: Counter,
    pub ffmpeg_seconds: Counter<f64, AtomicU64>,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    jobs: Family<JobLabels, Gauge>,
    queue_depth: Gauge,
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("openvod");
        let m = Metrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            upload_bytes: Counter::default(),
            playback_bytes: Counter::default(),
            ffmpeg_seconds: Counter::default(),
            webhook_deliveries: Family::default(),
            jobs: Family::default(),
            queue_depth: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "upload_bytes",
            "Upload bytes stored (acknowledged)",
            m.upload_bytes.clone(),
        );
        registry.register(
            "playback_bytes",
            "Bytes of media files sent to players",
            m.playback_bytes.clone(),
        );
        registry.register(
            "ffmpeg_seconds",
            "Wall-clock seconds of ffmpeg runs",
            m.ffmpeg_seconds.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            m.webhook_deliveries.clone(),
        );
        registry.register("jobs", "Jobs by kind and state", m.jobs.clone());
        registry.register(
            "queue_depth",
            "Jobs queued and due or running",
            m.queue_depth.clone(),
        );
        Metrics { registry, ..m }
    })
}

impl Metrics {
    /// The text exposition, with the job figures as `jobs` gives them (kind, state, count).
    pub fn render(&self, jobs: &[(String, String, i64)]) -> String {
        self.jobs.clear();
        let mut depth = 0;
        for (kind, state, count) in jobs {
            self.jobs
                .get_or_create(&JobLabels {
                    kind: kind.clone(),
                    state: state.clone(),
                })
                .set(*count);
            if state == "queued" || state == "running" {
                depth += count;
            }
        }
        self.queue_depth.set(depth);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

/// Counts every answered request by its route pattern.
pub async fn count_requests(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    metrics()
        .http_requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

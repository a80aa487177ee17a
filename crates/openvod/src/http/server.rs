//! The HTTP listener: the router on hyper, with the timeouts `axum::serve` does not set. A client
//! gets `limits.header_timeout_secs` to send its request headers (a slow-loris client is cut off
//! instead of holding a connection for ever), and a request body that goes quiet for
//! `limits.body_idle_timeout_secs` fails its request, so a stalled upload never holds an upload's
//! lock or an upload slot for longer.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish for up to `drain` before dropping their connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let idle = Duration::from_secs(limits.body_idle_timeout_secs);
    let service = tower::ServiceBuilder::new()
        .map_request(super::normalize_path)
        .map_request(move |request: Request| with_idle_timeout(request, idle))
        .service(router);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs));
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: the listener stays; back off a little.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // The client's address, for handlers that need it (`rlimit` of Tencent hotlink URLs).
        let service = service
            .clone()
            .map_request(move |r: Request<hyper::body::Incoming>| {
                let mut r = r.map(Body::new);
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; dropping them");
    }
}

/// A body that fails once no byte has come for `idle` (requests without a body are left alone).
fn with_idle_timeout(request: Request, idle: Duration) -> Request {
    use axum::body::HttpBody as _;
    if request.body().is_end_stream() {
        return request;
    }
    request.map(|body| {
        let chunks =
            futures_util::stream::unfold(Some(body.into_data_stream()), move |state| async move {
                let mut chunks = state?;
                match tokio::time::timeout(idle, chunks.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
                    Ok(Some(Err(error))) => Some((Err(std::io::Error::other(error)), None)),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no request body byte for {} s", idle.as_secs()),
                        )),
                        None,
                    )),
                }
            });
        Body::from_stream(chunks)
    })
}

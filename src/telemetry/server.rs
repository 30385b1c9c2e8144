use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Metrics, Readiness, TelemetryError};

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// A bound but not yet serving telemetry listener. Binding first lets callers (and tests
/// using port 0) learn the real address before serving starts.
#[derive(Debug)]
pub struct TelemetryServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl TelemetryServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, TelemetryError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        Ok(TelemetryServer {
            listener,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown` resolves.
    pub async fn serve(
        self,
        metrics: Arc<Metrics>,
        readiness: Readiness,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), TelemetryError> {
        tracing::info!(addr = %self.local_addr, "serving metrics and health endpoints");
        axum::serve(self.listener, router(metrics, readiness))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(TelemetryError::Serve)
    }
}

/// Binds `addr` and serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TelemetryError> {
    TelemetryServer::bind(addr)
        .await?
        .serve(metrics, readiness, shutdown)
        .await
}

fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_handler))
        .with_state(AppState { metrics, readiness })
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn readyz_handler(State(state): State<AppState>) -> Response {
    match state.readiness.status() {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_health_readiness_and_metrics() {
        let metrics = Metrics::new();
        let readiness = Readiness::new(false);
        let server = TelemetryServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(metrics.clone(), readiness.clone(), async {
            let _ = stopped.await;
        }));

        let healthz = get(addr, "/healthz").await;
        assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
        assert!(healthz.ends_with("ok"));

        let not_ready = get(addr, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.ends_with("caches not synced"));

        readiness.mark_caches_synced();
        let ready = get(addr, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

        let scrape = get(addr, "/metrics").await;
        assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
        assert!(scrape.contains(OPENMETRICS_CONTENT_TYPE));
        assert!(scrape.contains("causeway_build_info"));

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn bind_failure_is_an_error() {
        let first = TelemetryServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let taken = first.local_addr();
        let err = TelemetryServer::bind(taken).await.unwrap_err();
        assert!(matches!(err, TelemetryError::Bind { .. }), "{err}");
    }
}

//! The inference server: HTTP routes over the worker pool, with Prometheus metrics and a
//! graceful shutdown that Kubernetes rollouts and scale-downs can rely on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cpu::{Burner, touch_ballast};
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::pool::{Pool, Rejected};

/// Largest `n` one `/enqueue` call accepts.
pub const MAX_ENQUEUE_PER_CALL: u64 = 100_000;

/// Flags of the `inference-server` binary; each can also come from the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "inference-server",
    version,
    about = "Simulated ML inference server"
)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// CPU milliseconds each inference costs (real computation, calibrated at start).
    #[arg(long, env = "CPU_MS", default_value_t = 20.0, value_parser = non_negative)]
    pub cpu_ms: f64,
    /// Resident memory (MiB) allocated and touched at start.
    #[arg(long, env = "BALLAST_MIB", default_value_t = 0)]
    pub ballast_mib: u64,
    /// Worker threads, i.e. inferences that run at once.
    #[arg(long, env = "WORKERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Requests that may wait for a worker; beyond that /predict answers 503.
    #[arg(long, env = "QUEUE_CAPACITY", default_value_t = 64)]
    pub queue_capacity: usize,
    /// After SIGTERM, seconds allowed for in-flight requests before the process exits anyway.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub shutdown_grace_seconds: f64,
    /// After SIGTERM, seconds to keep serving while /readyz reports not ready, so endpoints
    /// are removed before new connections are refused. Counts against the grace.
    #[arg(long, env = "SHUTDOWN_DELAY_SECONDS", default_value_t = 0.0, value_parser = non_negative)]
    pub shutdown_delay_seconds: f64,
}

/// Non-negative and at most 10⁹ (milliseconds or seconds), so durations built from it fit.
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && (0.0..=1e9).contains(&value) => Ok(value),
        _ => Err(format!("`{text}` is not a number between 0 and 1e9")),
    }
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("starting the worker threads failed: {0}")]
    Workers(#[source] std::io::Error),
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(Debug)]
struct AppState {
    pool: Pool,
    metrics: Arc<Metrics>,
    shutting_down: AtomicBool,
    cpu_ms: f64,
}

/// Runs the server on `listener` until `shutdown` resolves, then drains as configured.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Kept alive (and resident) until the server returns.
    let ballast = touch_ballast(config.ballast_mib);
    let burner = Burner::calibrate();
    info!(
        cpu_ms = config.cpu_ms,
        matrix_products_per_cpu_ms = burner.units_per_ms(),
        ballast_mib = config.ballast_mib,
        workers = config.workers,
        queue_capacity = config.queue_capacity,
        "calibrated"
    );
    let metrics = Arc::new(Metrics::new());
    let pool = Pool::start(
        usize::from(config.workers),
        config.queue_capacity,
        Duration::from_secs_f64(config.cpu_ms / 1e3),
        burner,
        Arc::clone(&metrics),
    )
    .map_err(ServerError::Workers)?;
    let state = Arc::new(AppState {
        pool: pool.clone(),
        metrics,
        shutting_down: AtomicBool::new(false),
        cpu_ms: config.cpu_ms,
    });

    let grace = Duration::from_secs_f64(config.shutdown_grace_seconds);
    let delay = Duration::from_secs_f64(config.shutdown_delay_seconds).min(grace);
    let (grace_started_tx, grace_started_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_state = Arc::clone(&state);
    let stop_accepting = async move {
        shutdown.await;
        signal_state.shutting_down.store(true, Ordering::SeqCst);
        let _ = grace_started_tx.send(());
        if !delay.is_zero() {
            info!(?delay, "shutting down: not ready, still serving");
            tokio::time::sleep(delay).await;
        }
        info!("shutting down: refusing new connections, draining in-flight requests");
    };
    let grace_expired = async move {
        match grace_started_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server finished on its own; this branch must never win then.
            Err(_) => std::future::pending().await,
        }
    };

    let server = axum::serve(listener, router(Arc::clone(&state)))
        .with_graceful_shutdown(stop_accepting)
        .into_future();
    tokio::select! {
        result = server => result.map_err(ServerError::Serve)?,
        () = grace_expired => warn!(?grace, "shutdown grace expired with requests still open"),
    }
    pool.stop();
    drop(ballast);
    info!("stopped");
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/predict", post(predict))
        // The exercise's own load (`wget -q -O- http://fraud-detector-api`) asks the root:
        // a model server's default endpoint, one inference per GET as per POST.
        .route("/", get(predict).post(predict))
        .route("/enqueue", post(enqueue))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(
    State(state): State<Arc<AppState>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .count_request(&route, response.status().as_u16());
    response
}

async fn predict(State(state): State<Arc<AppState>>) -> Response {
    let arrived = Instant::now();
    let done = match state.pool.submit() {
        Ok(done) => done,
        Err(rejected) => return refuse(rejected),
    };
    if done.await.is_err() {
        return refuse(Rejected::ShuttingDown);
    }
    let latency = arrived.elapsed();
    state.metrics.latency.observe(latency.as_secs_f64());
    Json(json!({
        "cpu_ms": state.cpu_ms,
        "latency_ms": latency.as_secs_f64() * 1e3,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct EnqueueParams {
    n: Option<u64>,
}

async fn enqueue(
    State(state): State<Arc<AppState>>,
    Query(params): Query<EnqueueParams>,
) -> Response {
    let jobs = params.n.unwrap_or(1);
    if !(1..=MAX_ENQUEUE_PER_CALL).contains(&jobs) {
        return (
            StatusCode::BAD_REQUEST,
            format!("n must be between 1 and {MAX_ENQUEUE_PER_CALL}\n"),
        )
            .into_response();
    }
    match state.pool.enqueue(jobs) {
        Ok(pending) => (
            StatusCode::ACCEPTED,
            Json(json!({ "enqueued": jobs, "pending": pending })),
        )
            .into_response(),
        Err(rejected) => refuse(rejected),
    }
}

fn refuse(rejected: Rejected) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{rejected}\n")).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.shutting_down.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

//! Live probes: one per success criterion. Each applies the relevant part of a
//! submission into a test namespace, drives it, records a timeline and hands the
//! judging to pure functions.

use std::future::Future;
use std::time::{Duration, Instant};

/// For APIs that cannot be watched (metrics.k8s.io): asks again every `every` until
/// `attempt` yields something or `budget` runs out.
pub async fn poll_until<T, F, Fut>(budget: Duration, every: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + budget;
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        if Instant::now() + every > deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

pub mod gpu_pool;
pub mod hpa_cpu;
pub mod metrics_server;
pub mod pdb;
pub mod quota_limits;

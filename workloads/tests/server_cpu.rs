//! Each /predict costs the configured CPU time, measured from outside with getrusage on the
//! server process (its start-up cost measured by an idle twin and subtracted).

mod common;

use std::time::Duration;

use common::{Server, http};

const CPU_MS: f64 = 20.0;
const REQUESTS: usize = 40;

/// CPU time (user + system) of all children this process has waited for.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let time = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs a server, sends `requests` predictions (4 at a time), stops it; returns its CPU time.
async fn server_cpu(requests: usize) -> Duration {
    let before = children_cpu();
    let mut server = Server::start(&["--cpu-ms", &CPU_MS.to_string(), "--workers", "2"]).await;
    for _ in 0..requests / 4 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let url = server.url("/predict");
            batch.spawn(async move { http("POST", &url).await });
        }
        while let Some(result) = batch.join_next().await {
            assert_eq!(result.unwrap().unwrap().0, 200);
        }
    }
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    children_cpu() - before
}

#[tokio::test]
async fn cpu_time_per_request_is_the_configured_cost() {
    let idle = server_cpu(0).await;
    let loaded = server_cpu(REQUESTS).await;
    let per_request_ms = (loaded.saturating_sub(idle)).as_secs_f64() * 1e3 / REQUESTS as f64;
    let error = per_request_ms / CPU_MS - 1.0;
    eprintln!(
        "idle server {idle:?}, with {REQUESTS} requests {loaded:?}: {per_request_ms:.2} ms CPU per \
         request for --cpu-ms {CPU_MS} ({:+.1} %)",
        error * 100.0
    );
    assert!(
        error.abs() <= 0.20,
        "CPU per request {per_request_ms:.2} ms vs {CPU_MS} ms"
    );
}

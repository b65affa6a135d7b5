//! The load generator against the inference server on loopback: it holds its rate, stops at
//! its bounds, reports a dead target as errors and stops early on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, closed_port, loadgen, sample, scrape, summary};
use workloads::loadgen::{StopReason, Summary};

fn assert_accounted(summary: &Summary) {
    assert_eq!(
        summary.ok + summary.error_total,
        summary.scheduled,
        "every scheduled request is either ok or an error: {summary:?}"
    );
}

/// Counts only: the rate's accuracy is a speed goal, measured by `make bench-load` (a timed
/// assertion here failed on a loaded 2-core machine without anything being wrong).
#[tokio::test]
async fn sends_every_scheduled_request_at_200_rps_and_the_server_counts_them() {
    let server = Server::start(&["--cpu-ms", "1", "--workers", "2"]).await;
    let url = server.url("/predict");
    let (output, wall) = loadgen(&["--url", &url, "--rate", "200", "--duration", "5s", "--json"]);
    let summary = summary(&output);
    eprintln!(
        "loadgen: sent {} in {:.3} s of sending ({:.3} s wall), achieved {:.2} rps, send lag p99 {:.2} ms, latency p99 {:.2} ms",
        summary.sent,
        summary.send_seconds,
        wall.as_secs_f64(),
        summary.achieved_rate_rps,
        summary.send_lag_ms.p99,
        summary.latency_ms.p99
    );
    assert_eq!(summary.stopped_by, StopReason::Schedule);
    assert_eq!(summary.scheduled, 1000);
    assert_eq!(summary.sent, 1000);
    assert_eq!(summary.ok, 1000, "errors: {:?}", summary.errors);
    assert_accounted(&summary);
    // And seen by the server.
    let served = sample(
        &scrape(&server).await,
        "http_requests_total",
        &[("route", "/predict"), ("code", "200")],
    );
    assert_eq!(served, Some(1000.0));
    assert!(summary.latency_ms.p50 > 0.0 && summary.latency_ms.max >= summary.latency_ms.p99);
}

#[tokio::test]
async fn stops_at_max_requests() {
    let server = Server::start(&["--cpu-ms", "0"]).await;
    let url = server.url("/predict");
    let (output, wall) = loadgen(&[
        "--url",
        &url,
        "--rate",
        "100",
        "--duration",
        "60s",
        "--max-requests",
        "25",
        "--json",
    ]);
    let summary = summary(&output);
    assert_eq!(summary.stopped_by, StopReason::MaxRequests);
    assert_eq!((summary.sent, summary.ok), (25, 25));
    assert_accounted(&summary);
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
    let served = sample(
        &scrape(&server).await,
        "http_requests_total",
        &[("route", "/predict"), ("code", "200")],
    );
    assert_eq!(served, Some(25.0));
}

#[tokio::test]
async fn stops_at_the_end_of_its_stages() {
    let server = Server::start(&["--cpu-ms", "0"]).await;
    let url = server.url("/predict");
    // 0.5 s at 40 rps, then a 0.5 s ramp 0 → 80 rps: 20 + 20 requests.
    let (output, wall) = loadgen(&["--url", &url, "--stages", "500ms@40,500ms@0->80", "--json"]);
    let summary = summary(&output);
    assert_eq!(summary.stopped_by, StopReason::Schedule);
    assert_eq!((summary.sent, summary.ok), (40, 40));
    assert_accounted(&summary);
    assert!(
        wall >= Duration::from_millis(950),
        "finished early: {wall:?}"
    );
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
}

#[tokio::test]
async fn refuses_to_start_without_bounds() {
    let (output, _) = loadgen(&["--url", "http://127.0.0.1:9/", "--rate", "10"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without bounds"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_dead_target_yields_errors_not_a_hang() {
    let url = format!("http://127.0.0.1:{}/predict", closed_port());
    let (output, wall) = loadgen(&["--url", &url, "--rate", "50", "--duration", "1s", "--json"]);
    let summary = summary(&output);
    assert_eq!(summary.sent, 50);
    assert_eq!(summary.ok, 0);
    assert_eq!(
        summary.errors.get("connect"),
        Some(&50),
        "{:?}",
        summary.errors
    );
    assert_accounted(&summary);
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
}

#[tokio::test]
async fn sigterm_stops_the_run_early_with_a_summary() {
    let server = Server::start(&["--cpu-ms", "0"]).await;
    let url = server.url("/predict");
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--url", &url, "--rate", "50", "--duration", "60s", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let summary = summary(&output);
    assert_eq!(summary.stopped_by, StopReason::Signal);
    assert!((30..=80).contains(&summary.sent), "sent {}", summary.sent);
    assert_eq!(summary.ok, summary.sent);
    assert_accounted(&summary);
}

#[tokio::test]
async fn the_concurrency_cap_delays_requests_and_latency_counts_the_delay() {
    // One worker at 100 ms per request serves 10 rps; at 20 rps with 2 connections the sender
    // falls behind. Latency runs from the due time, so it shows the backlog instead of
    // hiding it (no coordinated omission), and what could not leave in time is reported.
    let server = Server::start(&["--cpu-ms", "100", "--workers", "1"]).await;
    let url = server.url("/predict");
    let (output, _) = loadgen(&[
        "--url",
        &url,
        "--rate",
        "20",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--json",
    ]);
    let summary = summary(&output);
    assert_accounted(&summary);
    assert!(
        summary.errors.get("not_sent").copied().unwrap_or(0) > 0,
        "{:?}",
        summary.errors
    );
    assert!(
        summary.achieved_rate_rps < 19.0,
        "{}",
        summary.achieved_rate_rps
    );
    // The last requests that left waited hundreds of ms for a connection.
    assert!(summary.latency_ms.max > 400.0, "{:?}", summary.latency_ms);
    assert!(summary.send_lag_ms.max > 300.0, "{:?}", summary.send_lag_ms);
}

//! The load generator keeps connections alive and reopens them after --connection-lifetime,
//! counted by a loopback server that sees every accepted connection.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use axum::serve::ListenerExt;
use workloads::loadgen::Summary;

/// Serves `POST /` on loopback; returns its URL and the count of accepted connections.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let counter = Arc::clone(&accepted);
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let app = Router::new().route("/", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, accepted)
}

async fn loadgen(args: Vec<String>) -> Summary {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["--url", url, "--rate", "50", "--duration", "1s", "--json"]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_every_request_while_it_is_young() {
    let (url, accepted) = counting_server().await;
    let summary = loadgen(args(&url, &["--concurrency", "1"])).await;
    assert_eq!(summary.ok, 50);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reopened_after_their_lifetime() {
    let (url, accepted) = counting_server().await;
    let summary = loadgen(args(
        &url,
        &["--concurrency", "1", "--connection-lifetime", "200ms"],
    ))
    .await;
    assert_eq!(summary.ok, 50);
    assert_eq!(summary.error_total, 0, "{:?}", summary.errors);
    // One second of sending with 200 ms connections: about five of them.
    let opened = accepted.load(Ordering::SeqCst);
    assert!((4..=7).contains(&opened), "{opened} connections");
}

/// With --wait-reachable the schedule starts only once the target accepts connections:
/// a server that comes up late loses no request, and the wait is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_waits_for_a_late_target_to_accept_connections() {
    let (reserved, address) = closed_port();
    let url = format!("http://{address}/");
    let run = tokio::spawn(loadgen(args(&url, &["--wait-reachable", "10s"])));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    reserved.listen(128).unwrap();
    let listener = std::net::TcpListener::from(reserved);
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let app = Router::new().route("/", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let summary = run.await.unwrap();
    assert_eq!(summary.ok, 50, "{:?}", summary.errors);
    let waited = summary
        .reachable_after_ms
        .expect("the target became reachable");
    assert!(
        waited >= 500,
        "reported {waited} ms for a target that came up after 700 ms"
    );
}

/// The wait is bounded: a target that never comes up does not hold the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_for_a_target_is_bounded() {
    let (_reserved, address) = closed_port();
    let url = format!("http://{address}/");
    let summary = loadgen(args(&url, &["--wait-reachable", "500ms"])).await;
    assert_eq!(summary.reachable_after_ms, None);
    assert_eq!(summary.ok, 0);
    assert!(
        summary.errors.contains_key("connect"),
        "{:?}",
        summary.errors
    );
}

/// A loopback port that refuses connections and stays this test's: bound, not listening.
/// (A port freed by dropping its listener can be handed to a test running beside this
/// one, which then answers for it.)
fn closed_port() -> (socket2::Socket, std::net::SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let address = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, address)
}

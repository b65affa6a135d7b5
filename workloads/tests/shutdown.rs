//! Graceful shutdown: in-flight requests complete, new connections are refused, /readyz turns
//! 503 during the optional delay, and the grace bounds the exit.

mod common;

use std::time::{Duration, Instant};

use common::{Server, http, sample, scrape};

/// Waits until `inference_in_flight` reaches `value`.
async fn wait_in_flight(server: &Server, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&scrape(server).await, "inference_in_flight", &[]) != Some(value) {
        assert!(Instant::now() < deadline, "in_flight never reached {value}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn in_flight_requests_complete_and_new_ones_are_refused() {
    let mut server = Server::start(&["--cpu-ms", "400", "--workers", "1"]).await;
    let url = server.url("/predict");
    let in_flight = tokio::spawn(async move { http("POST", &url).await });
    wait_in_flight(&server, 1.0).await;

    server.terminate();
    // The listener closes at once: a new connection is refused. The bound is generous:
    // on a loaded 2-core machine the signal may take a while to be handled.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await {
            Err(error) => break error,
            Ok(_) => {
                assert!(Instant::now() < deadline, "still accepting after SIGTERM");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // A SYN that races the listener's close is answered with a reset instead of a refusal:
    // either way the connection was not taken.
    assert!(
        matches!(
            refusal.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
        ),
        "{refusal}"
    );
    let (status, body) = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
}

#[tokio::test]
async fn readyz_fails_but_requests_are_served_during_the_shutdown_delay() {
    let mut server = Server::start(&["--cpu-ms", "1", "--shutdown-delay-seconds", "1.5"]).await;
    assert_eq!(http("GET", &server.url("/readyz")).await.unwrap().0, 200);
    let signalled = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http("GET", &server.url("/readyz")).await.unwrap().0, 503);
    assert_eq!(http("GET", &server.url("/healthz")).await.unwrap().0, 200);
    assert_eq!(http("POST", &server.url("/predict")).await.unwrap().0, 200);
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(signalled.elapsed() >= Duration::from_millis(1400));
}

#[tokio::test]
async fn the_grace_bounds_the_exit_even_with_work_in_flight() {
    // A 3 s inference cannot finish within a 0.5 s grace: the process leaves anyway.
    let mut server = Server::start(&[
        "--cpu-ms",
        "3000",
        "--workers",
        "1",
        "--shutdown-grace-seconds",
        "0.5",
    ])
    .await;
    let url = server.url("/predict");
    let in_flight = tokio::spawn(async move { http("POST", &url).await });
    wait_in_flight(&server, 1.0).await;
    let signalled = Instant::now();
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(3)), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert!(
        in_flight.await.unwrap().is_err(),
        "the unfinished request cannot succeed"
    );
}

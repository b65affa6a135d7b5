//! The inference server's metrics count what it served, exactly, read back through a
//! Prometheus exposition parser.

mod common;

use std::time::{Duration, Instant};

use common::{Server, http, sample, scrape};

#[tokio::test]
async fn metrics_report_exactly_the_requests_served() {
    let server = Server::start(&["--cpu-ms", "1", "--workers", "2"]).await;
    // Start-up polled /healthz; count from here.
    let healthz_before = sample(
        &scrape(&server).await,
        "http_requests_total",
        &[("route", "/healthz"), ("code", "200")],
    )
    .unwrap_or(0.0);
    const PREDICTS: usize = 37;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..PREDICTS {
        let url = server.url("/predict");
        requests.spawn(async move { http("POST", &url).await });
    }
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.expect("task").expect("request");
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..3 {
        assert_eq!(http("GET", &server.url("/healthz")).await.unwrap().0, 200);
    }
    assert_eq!(
        http("GET", &server.url("/no-such-route")).await.unwrap().0,
        404
    );

    let metrics = scrape(&server).await;
    let count = |route: &str, code: &str| {
        sample(
            &metrics,
            "http_requests_total",
            &[("route", route), ("code", code)],
        )
    };
    assert_eq!(count("/predict", "200"), Some(PREDICTS as f64));
    assert_eq!(count("/healthz", "200"), Some(healthz_before + 3.0));
    assert_eq!(count("/metrics", "200"), Some(1.0));
    assert_eq!(count("unmatched", "404"), Some(1.0));
    assert_eq!(count("/predict", "503"), None);
    let histogram = metrics
        .samples
        .iter()
        .find(|sample| sample.metric == "inference_latency_seconds")
        .expect("the latency histogram is exported");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("inference_latency_seconds is not a histogram");
    };
    let infinite = buckets
        .iter()
        .find(|bucket| bucket.less_than.is_infinite())
        .expect("+Inf bucket");
    assert_eq!(infinite.count, PREDICTS as f64);
    assert_eq!(
        sample(&metrics, "inference_latency_seconds_count", &[]),
        Some(PREDICTS as f64)
    );
    assert_eq!(sample(&metrics, "inference_queue_length", &[]), Some(0.0));
    assert_eq!(sample(&metrics, "inference_in_flight", &[]), Some(0.0));
}

#[tokio::test]
async fn requests_beyond_workers_and_queue_get_503_and_are_counted() {
    // One worker busy for 200 ms, one request waiting: the other three are refused.
    let server =
        Server::start(&["--cpu-ms", "200", "--workers", "1", "--queue-capacity", "1"]).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let url = server.url("/predict");
        requests.spawn(async move { http("POST", &url).await });
    }
    let mut codes = Vec::new();
    while let Some(result) = requests.join_next().await {
        codes.push(result.expect("task").expect("request").0);
    }
    codes.sort_unstable();
    assert_eq!(codes, [200, 200, 503, 503, 503]);
    let metrics = scrape(&server).await;
    let count = |code: &str| {
        sample(
            &metrics,
            "http_requests_total",
            &[("route", "/predict"), ("code", code)],
        )
    };
    assert_eq!(count("200"), Some(2.0));
    assert_eq!(count("503"), Some(3.0));
    assert_eq!(
        sample(&metrics, "inference_latency_seconds_count", &[]),
        Some(2.0)
    );
}

#[tokio::test]
async fn enqueued_batch_jobs_show_in_the_queue_gauge_and_drain() {
    let server = Server::start(&["--cpu-ms", "20", "--workers", "1"]).await;
    let (status, body) = http("POST", &server.url("/enqueue?n=10")).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["enqueued"], 10);
    let queued = sample(&scrape(&server).await, "inference_queue_length", &[]).unwrap();
    assert!((1.0..=10.0).contains(&queued), "queue length {queued}");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = scrape(&server).await;
        let queue = sample(&metrics, "inference_queue_length", &[]).unwrap();
        let in_flight = sample(&metrics, "inference_in_flight", &[]).unwrap();
        if queue == 0.0 && in_flight == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the batch queue never drained: {queue} left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for bad in ["/enqueue?n=0", "/enqueue?n=100001", "/enqueue?n=many"] {
        assert_eq!(
            http("POST", &server.url(bad)).await.unwrap().0,
            400,
            "{bad}"
        );
    }
    assert_eq!(http("GET", &server.url("/readyz")).await.unwrap().0, 200);
    assert_eq!(http("GET", &server.url("/predict")).await.unwrap().0, 405);
    // The exercise's `wget -q -O- http://service` is one inference, counted on `/`.
    let (status, body) = http("GET", &server.url("/")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("cpu_ms"), "{body}");
    assert_eq!(
        sample(
            &scrape(&server).await,
            "http_requests_total",
            &[("route", "/"), ("code", "200")]
        ),
        Some(1.0)
    );
}

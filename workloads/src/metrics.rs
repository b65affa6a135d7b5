//! The inference server's Prometheus metrics. Names and labels are an interface: the
//! prometheus-adapter rules and KEDA queries of the exercise select on them (see README.md).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of `http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteCode {
    /// The matched route, e.g. `/predict`; `unmatched` for unknown paths.
    pub route: String,
    /// The HTTP status code, e.g. `200`.
    pub code: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `http_requests_total{route,code}`.
    pub http_requests: Family<RouteCode, Counter>,
    /// `inference_latency_seconds`: arrival to completion of a successful `/predict`,
    /// queueing included.
    pub latency: Histogram,
    /// `inference_queue_length`: pending batch jobs plus queued `/predict` requests.
    pub queue_length: Gauge,
    /// `inference_in_flight`: inferences executing on a worker right now.
    pub in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<RouteCode, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register(
            "http_requests",
            "HTTP requests served, by matched route and status code",
            http_requests.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "inference_latency_seconds",
            "Time from arrival to completion of a successful /predict request, queueing included",
            latency.clone(),
        );
        let queue_length = Gauge::default();
        registry.register(
            "inference_queue_length",
            "Pending batch jobs plus /predict requests waiting for a worker",
            queue_length.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "inference_in_flight",
            "Inferences (requests and batch jobs) executing on a worker",
            in_flight.clone(),
        );
        Self {
            registry,
            http_requests,
            latency,
            queue_length,
            in_flight,
        }
    }

    /// Counts one served request.
    pub fn count_request(&self, route: &str, code: u16) {
        self.http_requests
            .get_or_create(&RouteCode {
                route: route.to_owned(),
                code: code.to_string(),
            })
            .inc();
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

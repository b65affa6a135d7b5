//! Open-loop HTTP load generator.
//!
//! Requests leave on the [`Schedule`], whatever the responses do; latency runs from the
//! moment a request was *due*, so a slow target cannot hide its slowness by slowing the
//! sender down (no coordinated omission). A concurrency cap bounds open connections: when
//! every connection is busy the next request leaves late, and the wait counts in its latency.
//! Every run is bounded by a duration and a request count and stops by itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Uri};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

mod plan;

pub use plan::{LoadgenArgs, Plan, PlanError};

use crate::resolve::Resolver;

/// Why the sender stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The schedule ran to its end (the duration bound).
    Schedule,
    /// `--max-requests` were sent.
    MaxRequests,
    /// SIGTERM or SIGINT.
    Signal,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn from_micros(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1e3;
        Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1e3,
        }
    }
}

/// The result of a run (printed with `--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub url: String,
    pub method: String,
    pub schedule: String,
    /// Requests due before the sender stopped (capped by `max_requests`).
    pub scheduled: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Failures by kind: `connect`, `timeout`, `io`, `status_<code>`, `not_sent` (due but
    /// not sent: the concurrency cap held it past the end) and `cancelled` (no answer when
    /// the run ended). `ok` plus these add up to `scheduled`.
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    /// The first error message seen for each kind (for diagnosis).
    #[serde(default)]
    pub error_examples: BTreeMap<String, String>,
    pub stopped_by: StopReason,
    /// Mean rate the schedule planned.
    pub target_rate_rps: f64,
    /// Requests sent per second of sending (never above plan: nothing leaves early).
    pub achieved_rate_rps: f64,
    /// 2xx responses per second over the whole run.
    pub ok_throughput_rps: f64,
    /// Seconds spent sending.
    pub send_seconds: f64,
    /// Seconds for the whole run, draining included.
    pub elapsed_seconds: f64,
    /// Latency of 2xx responses, from the moment each request was due.
    pub latency_ms: Percentiles,
    /// How late requests left compared to the schedule.
    pub send_lag_ms: Percentiles,
    /// With `--wait-reachable`: how long the target took to accept a connection
    /// (`None`: it did not within the bound, or no wait was asked for).
    #[serde(default)]
    pub reachable_after_ms: Option<u64>,
}

/// What one connection worker saw.
#[derive(Debug)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
    error_examples: BTreeMap<String, String>,
    latency_micros: Histogram<u64>,
    send_lag_micros: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            latency_micros: micros_histogram(),
            send_lag_micros: micros_histogram(),
        }
    }

    fn record(&mut self, outcome: Result<Duration, Failure>) {
        match outcome {
            Ok(latency) => {
                self.ok += 1;
                self.latency_micros
                    .saturating_record(latency.as_micros() as u64);
            }
            Err(Failure { kind, message }) => {
                self.error_examples.entry(kind.clone()).or_insert(message);
                *self.errors.entry(kind).or_default() += 1;
            }
        }
    }

    fn record_many(&mut self, kind: &str, count: u64, message: &str) {
        self.error_examples
            .entry(kind.to_owned())
            .or_insert_with(|| message.to_owned());
        *self.errors.entry(kind.to_owned()).or_default() += count;
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, message) in other.error_examples {
            self.error_examples.entry(kind).or_insert(message);
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_micros.add(&other.latency_micros);
        let _ = self.send_lag_micros.add(&other.send_lag_micros);
    }
}

/// A failed request: its kind (the key in `errors`) and what went wrong.
#[derive(Debug)]
struct Failure {
    kind: String,
    message: String,
}

impl Failure {
    fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
        }
    }
}

fn micros_histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 3 significant digits; saturating_record clamps anything beyond.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// Live counters for the progress bar and the final accounting.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What every connection worker shares.
#[derive(Debug)]
struct Run {
    plan: Plan,
    host: String,
    port: u16,
    /// `Host` header value.
    authority: HeaderValue,
    /// Path and query, sent in origin form.
    target: Uri,
    resolver: Resolver,
    start: Instant,
    end: Instant,
    total: u64,
    /// Index of the next request any worker may claim.
    next: AtomicU64,
    counters: Counters,
}

/// Runs `plan` until its schedule ends, `max_requests` are sent, or `stop` turns true.
/// `progress`, when given, is updated a few times a second.
///
/// Each of `concurrency` workers owns one HTTP/1.1 keep-alive connection. A worker claims the
/// next request index, sleeps until that request is due, sends it and waits for the answer,
/// then claims the next one; when every worker is busy, the next request leaves late and its
/// latency (from the due time) says so. Connections are reopened after
/// `connection_lifetime`, so replicas added behind a Service get their share.
pub async fn run(
    plan: &Plan,
    stop: watch::Receiver<bool>,
    progress: Option<ProgressBar>,
) -> Summary {
    let planned = plan.schedule.total_requests();
    let total = planned.min(plan.max_requests);
    let host = plan.url.host().unwrap_or_default().to_owned();
    let port = plan.url.port_u16().unwrap_or(80);
    let resolver = Resolver::from_system();
    let reachable_after_ms = match plan.wait_reachable {
        Some(bound) => wait_reachable(&resolver, &host, port, bound, stop.clone()).await,
        None => None,
    };
    let start = Instant::now();
    let run = Arc::new(Run::new(plan, host, port, resolver, start, total));
    let ticker = progress.map(|bar| {
        bar.set_length(total);
        spawn_progress(bar, Arc::clone(&run))
    });
    let mut ended = join_workers(&run, stop).await;
    if ended.stopped_by != StopReason::Signal && total < planned {
        ended.stopped_by = StopReason::MaxRequests;
    }
    let elapsed = start.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    summarize(&run, ended, elapsed, reachable_after_ms)
}

impl Run {
    fn new(
        plan: &Plan,
        host: String,
        port: u16,
        resolver: Resolver,
        start: Instant,
        total: u64,
    ) -> Run {
        Run {
            plan: plan.clone(),
            host,
            port,
            authority: plan
                .url
                .authority()
                .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
                .unwrap_or_else(|| HeaderValue::from_static("localhost")),
            target: plan.url.path_and_query().map_or_else(
                || Uri::from_static("/"),
                |path| {
                    path.as_str()
                        .parse()
                        .unwrap_or_else(|_| Uri::from_static("/"))
                },
            ),
            resolver,
            start,
            end: start + plan.schedule.duration(),
            total,
            next: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }
}

/// How the workers ended: what they tallied, why, and when the last request left.
struct Ended {
    tally: Tally,
    stopped_by: StopReason,
    send_elapsed: Duration,
    stopped_at: Duration,
}

/// Starts the workers and collects their tallies until they are done.
async fn join_workers(run: &Arc<Run>, stop: watch::Receiver<bool>) -> Ended {
    let plan = &run.plan;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..plan.concurrency {
        let run = Arc::clone(run);
        let stop = stop.clone();
        workers.spawn(connection_worker(run, worker, stop));
    }
    let mut ended = Ended {
        tally: Tally::new(),
        stopped_by: StopReason::Schedule,
        send_elapsed: Duration::ZERO,
        stopped_at: Duration::ZERO,
    };
    // Workers stop sending at the end of the schedule or on the signal; each open request
    // then ends within its timeout. The deadline below only guards against the unexpected.
    let mut deadline: Option<Instant> = None;
    let mut stop_watch = stop.clone();
    loop {
        let next = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, workers.join_next()).await,
                None => Ok(workers.join_next().await),
            }
        };
        tokio::select! {
            joined = next => match joined {
                Ok(Some(Ok((worker_tally, last_send)))) => {
                    ended.send_elapsed = ended.send_elapsed.max(last_send);
                    ended.tally.merge(worker_tally);
                }
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    workers.abort_all();
                    break;
                }
            },
            () = stop_requested(&mut stop_watch), if deadline.is_none() => {
                ended.stopped_by = StopReason::Signal;
                ended.stopped_at = run.start.elapsed();
                deadline = Some(Instant::now() + plan.timeout + Duration::from_secs(2));
            }
        }
    }
    ended
}

/// The run's summary: counts, rates (over the window requests were due in) and latencies.
fn summarize(
    run: &Run,
    ended: Ended,
    elapsed: Duration,
    reachable_after_ms: Option<u64>,
) -> Summary {
    let Ended {
        mut tally,
        stopped_by,
        send_elapsed,
        stopped_at,
    } = ended;
    let plan = &run.plan;
    let total = run.total;
    let sent = run.counters.sent.load(Ordering::SeqCst);
    let scheduled = match stopped_by {
        StopReason::Signal => plan.schedule.due_by(stopped_at).min(total).max(sent),
        StopReason::Schedule | StopReason::MaxRequests => total,
    };
    let answered =
        run.counters.ok.load(Ordering::SeqCst) + run.counters.failed.load(Ordering::SeqCst);
    let cancelled = sent.saturating_sub(answered);
    if cancelled > 0 {
        tally.record_many(
            "cancelled",
            cancelled,
            "still waiting for a response when the run ended",
        );
    }
    let not_sent = scheduled.saturating_sub(sent);
    if not_sent > 0 {
        tally.record_many(
            "not_sent",
            not_sent,
            "due before the run ended but every connection was busy (or the signal came)",
        );
    }
    // Nothing leaves before it is due, so sending the first `sent` requests takes at least
    // until the next one is due (or the schedule ends); only lateness lowers the rate.
    let planned_window = plan
        .schedule
        .due_at(sent)
        .unwrap_or_else(|| plan.schedule.duration())
        .min(plan.schedule.duration());
    let send_window = send_elapsed.max(planned_window);
    let per_second = |count: u64, window: Duration| {
        if window.is_zero() {
            0.0
        } else {
            count as f64 / window.as_secs_f64()
        }
    };
    Summary {
        url: plan.url.to_string(),
        method: plan.method.to_string(),
        schedule: plan.schedule.to_string(),
        scheduled,
        sent,
        ok: tally.ok,
        error_total: tally.errors.values().sum(),
        errors: tally.errors.clone(),
        error_examples: tally.error_examples.clone(),
        stopped_by,
        target_rate_rps: plan.schedule.mean_rps(),
        achieved_rate_rps: per_second(sent, send_window),
        ok_throughput_rps: per_second(tally.ok, elapsed),
        send_seconds: send_window.as_secs_f64(),
        elapsed_seconds: elapsed.as_secs_f64(),
        latency_ms: Percentiles::from_micros(&tally.latency_micros),
        send_lag_ms: Percentiles::from_micros(&tally.send_lag_micros),
        reachable_after_ms,
    }
}

/// Resolves once `stop` is true; never if its sender is gone.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One connection's loop; returns its tally and when (since the start) it last sent.
async fn connection_worker(
    run: Arc<Run>,
    worker: u32,
    mut stop: watch::Receiver<bool>,
) -> (Tally, Duration) {
    let mut tally = Tally::new();
    let mut last_send = Duration::ZERO;
    let mut connection: Option<(Connection, Instant)> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let index = run.next.fetch_add(1, Ordering::SeqCst);
        if index >= run.total {
            break;
        }
        let Some(offset) = run.plan.schedule.due_at(index) else {
            break;
        };
        let due = run.start + offset;
        if due >= run.end {
            break;
        }
        if due > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stop_requested(&mut stop) => break,
            }
        } else if Instant::now() >= run.end {
            // Behind schedule when the run's time is up: the duration bound wins.
            break;
        }
        let now = Instant::now();
        tally
            .send_lag_micros
            .saturating_record(now.saturating_duration_since(due).as_micros() as u64);
        last_send = now - run.start;
        run.counters.sent.fetch_add(1, Ordering::SeqCst);

        let fresh = |opened: &Instant| opened.elapsed() < run.plan.connection_lifetime;
        let reusable = match connection.take() {
            Some((mut sender, opened)) if fresh(&opened) => {
                // A connection the server closed while idle is replaced, not reported.
                sender.ready().await.ok().map(|()| (sender, opened))
            }
            _ => None,
        };
        let outcome = tokio::time::timeout(run.plan.timeout, async {
            let (mut sender, opened) = match reusable {
                Some(open) => open,
                None => (connect(&run, worker).await?, Instant::now()),
            };
            let status = exchange(&run, &mut sender).await?;
            connection = Some((sender, opened));
            Ok(status)
        })
        .await;
        let outcome = match outcome {
            Err(_) => Err(Failure::new(
                "timeout",
                format!("no complete response within {:?}", run.plan.timeout),
            )),
            Ok(Err(failure)) => Err(failure),
            Ok(Ok(status)) if status.is_success() => Ok(due.elapsed()),
            Ok(Ok(status)) => Err(Failure::new(
                &format!("status_{}", status.as_u16()),
                format!("HTTP {status}"),
            )),
        };
        let counter = if outcome.is_ok() {
            &run.counters.ok
        } else {
            &run.counters.failed
        };
        tally.record(outcome);
        counter.fetch_add(1, Ordering::SeqCst);
    }
    (tally, last_send)
}

/// A SYN that gets no answer is given up after this long and the next attempt opens a
/// fresh connection: one dropped before a Service's forwarding rules existed stays in
/// conntrack un-forwarded, so retransmitting it never reaches the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Tries a TCP connection to the target every 200 ms until one succeeds, `bound`
/// passes or the stop signal comes. Returns the milliseconds it took, if it did.
async fn wait_reachable(
    resolver: &Resolver,
    host: &str,
    port: u16,
    bound: Duration,
    mut stop: watch::Receiver<bool>,
) -> Option<u64> {
    let started = Instant::now();
    let deadline = started + bound;
    while Instant::now() < deadline {
        if let Ok(addresses) = resolver.resolve(host, port).await
            && let Some(address) = addresses.first()
            && let Ok(Ok(_)) =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address)).await
        {
            return Some(started.elapsed().as_millis() as u64);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = stop_requested(&mut stop) => return None,
        }
    }
    None
}

/// Opens a keep-alive HTTP/1.1 connection to the target.
async fn connect(run: &Run, worker: u32) -> Result<Connection, Failure> {
    let addresses = run
        .resolver
        .resolve(&run.host, run.port)
        .await
        .map_err(|error| Failure::new("connect", error.to_string()))?;
    // Spread workers over the addresses of a name with several (e.g. a headless Service).
    let address = addresses[worker as usize % addresses.len()];
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| {
            Failure::new(
                "connect",
                format!("tcp connect to {address}: no answer within {CONNECT_TIMEOUT:?}"),
            )
        })?
        .map_err(|error| Failure::new("connect", format!("tcp connect to {address}: {error}")))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| Failure::new("connect", describe(&error)))?;
    tokio::spawn(async move {
        // Ends when the connection closes; errors surface on the request side.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response, so the connection can carry the next.
async fn exchange(run: &Run, sender: &mut Connection) -> Result<hyper::StatusCode, Failure> {
    let mut request = Request::new(Full::new(run.plan.body.clone().unwrap_or_default()));
    *request.method_mut() = run.plan.method.clone();
    *request.uri_mut() = run.target.clone();
    request.headers_mut().insert(HOST, run.authority.clone());
    if run.plan.body.is_some() {
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| Failure::new("io", describe(&error)))?;
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|error| Failure::new("io", describe(&error)))?;
    Ok(status)
}

/// The full error chain: the top level alone rarely says what failed.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn spawn_progress(bar: ProgressBar, run: Arc<Run>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let counters = &run.counters;
            bar.set_position(counters.sent.load(Ordering::Relaxed));
            bar.set_message(format!(
                "ok {}  errors {}",
                counters.ok.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed)
            ));
        }
    })
}

impl Summary {
    /// Human-readable lines for a terminal.
    pub fn to_text(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(kind, count)| format!("{kind}={count}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "{method} {url}  schedule {schedule}  stopped by {stopped:?}\n\
             sent {sent}/{scheduled}  ok {ok}  errors {error_total} ({errors})\n\
             {examples}\
             rate: target {target:.1}/s  achieved {achieved:.1}/s  ok throughput {throughput:.1}/s\n\
             latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}\n",
            method = self.method,
            url = self.url,
            schedule = self.schedule,
            stopped = self.stopped_by,
            sent = self.sent,
            scheduled = self.scheduled,
            ok = self.ok,
            error_total = self.error_total,
            target = self.target_rate_rps,
            achieved = self.achieved_rate_rps,
            throughput = self.ok_throughput_rps,
            examples = self
                .error_examples
                .iter()
                .map(|(kind, message)| format!("  {kind}: {message}\n"))
                .collect::<String>(),
            p50 = self.latency_ms.p50,
            p90 = self.latency_ms.p90,
            p99 = self.latency_ms.p99,
            max = self.latency_ms.max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> LoadgenArgs {
        let mut argv = vec!["loadgen", "--url", "http://127.0.0.1:9/predict"];
        argv.extend_from_slice(extra);
        LoadgenArgs::try_parse_from(argv).expect("flags parse")
    }

    #[test]
    fn refuses_to_start_without_bounds() {
        assert!(matches!(args(&[]).plan(), Err(PlanError::Unbounded)));
        assert!(matches!(
            args(&["--rate", "10"]).plan(),
            Err(PlanError::Unbounded)
        ));
    }

    #[test]
    fn max_requests_defaults_to_rate_times_duration() {
        let plan = args(&["--rate", "50", "--duration", "3s"]).plan().unwrap();
        assert_eq!(plan.max_requests, 150);
        let plan = args(&["--rate", "50", "--max-requests", "20"])
            .plan()
            .unwrap();
        assert_eq!(plan.schedule.duration(), Duration::from_millis(400));
        assert_eq!(plan.max_requests, 20);
    }

    #[test]
    fn stages_are_cut_by_duration() {
        let plan = args(&["--stages", "2s@10,2s@20", "--duration", "3s"])
            .plan()
            .unwrap();
        assert_eq!(plan.max_requests, 40);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(matches!(
            args(&["--rate", "0", "--duration", "1s"]).plan(),
            Err(PlanError::Rate(_))
        ));
        let https = LoadgenArgs::try_parse_from([
            "loadgen",
            "--url",
            "https://example.invalid/",
            "--rate",
            "1",
            "--duration",
            "1s",
        ])
        .unwrap();
        assert!(matches!(https.plan(), Err(PlanError::Url { .. })));
        assert!(matches!(
            args(&["--rate", "1", "--duration", "1s", "--max-requests", "0"]).plan(),
            Err(PlanError::MaxRequests)
        ));
        assert!(
            LoadgenArgs::try_parse_from([
                "loadgen",
                "--url",
                "http://x/",
                "--rate",
                "1",
                "--stages",
                "1s@1"
            ])
            .is_err()
        );
    }
}

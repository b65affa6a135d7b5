//! What a run is asked to do: the `loadgen` flags, checked into a [`Plan`].

use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, Uri};

use crate::schedule::{Schedule, ScheduleError};

/// Flags of the `loadgen` binary; each can also come from the environment (for Jobs).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "loadgen", version, about = "Open-loop HTTP load generator")]
pub struct LoadgenArgs {
    /// Target URL (http only), e.g. http://127.0.0.1:8080/predict.
    #[arg(long, env = "LOADGEN_URL")]
    pub url: String,
    /// Constant rate in requests per second (needs --duration or --max-requests).
    #[arg(long, env = "LOADGEN_RATE", conflicts_with = "stages")]
    pub rate: Option<f64>,
    /// Stages instead of a constant rate: `30s@50,60s@200,1m@200->400` (DURATION@RPS or
    /// DURATION@FROM->TO for a linear ramp).
    #[arg(long, env = "LOADGEN_STAGES")]
    pub stages: Option<String>,
    /// How long to send (humantime: 60s, 2m, 1m30s). With --stages, cuts the stages short.
    #[arg(long, env = "LOADGEN_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Most requests to send; defaults to what the schedule plans (rate × duration).
    #[arg(long, env = "LOADGEN_MAX_REQUESTS")]
    pub max_requests: Option<u64>,
    /// Most requests open at once (one keep-alive connection each).
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 256)]
    pub concurrency: u32,
    /// HTTP method.
    #[arg(long, env = "LOADGEN_METHOD", default_value = "POST")]
    pub method: String,
    /// Request body (sent as application/json).
    #[arg(long, env = "LOADGEN_BODY")]
    pub body: Option<String>,
    /// Connections are reopened after this long, so that replicas added behind a Service
    /// (which balances per connection) get their share of the load.
    #[arg(long, env = "LOADGEN_CONNECTION_LIFETIME", default_value = "5s", value_parser = humantime::parse_duration)]
    pub connection_lifetime: Duration,
    /// Per-request timeout, from the moment it is sent (connecting included).
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Before the schedule starts, wait at most this long for the target to accept a TCP
    /// connection (a Service whose forwarding rules are still being written drops the
    /// first SYNs); the schedule then starts either way.
    #[arg(long, env = "LOADGEN_WAIT_REACHABLE", value_parser = humantime::parse_duration)]
    pub wait_reachable: Option<Duration>,
    /// Print the summary as JSON on stdout.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: bool,
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "refusing to start without bounds: give --rate with --duration (or --max-requests), or --stages"
    )]
    Unbounded,
    #[error("--rate must be a positive number of requests per second, not {0}")]
    Rate(f64),
    #[error("invalid schedule: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("--max-requests must be at least 1")]
    MaxRequests,
    #[error("--concurrency must be at least 1")]
    Concurrency,
    #[error("invalid --url `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("invalid --method `{0}`")]
    Method(String),
}

/// A validated run: what to send, on which schedule, within which bounds.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Uri,
    pub method: Method,
    pub body: Option<Bytes>,
    pub schedule: Schedule,
    pub max_requests: u64,
    pub concurrency: u32,
    pub timeout: Duration,
    pub connection_lifetime: Duration,
    pub wait_reachable: Option<Duration>,
}

impl LoadgenArgs {
    /// Checks the flags and derives the bounds.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let schedule = match (&self.stages, self.rate) {
            (Some(stages), _) => {
                let schedule = Schedule::parse(stages)?;
                match self.duration {
                    Some(limit) => schedule.truncated(limit)?,
                    None => schedule,
                }
            }
            (None, Some(rate)) => {
                if !rate.is_finite() || rate <= 0.0 {
                    return Err(PlanError::Rate(rate));
                }
                let duration = match (self.duration, self.max_requests) {
                    (Some(duration), _) => duration,
                    // Just long enough for the requested count at the requested rate.
                    (None, Some(count)) => Duration::from_secs_f64(count as f64 / rate),
                    (None, None) => return Err(PlanError::Unbounded),
                };
                Schedule::constant(rate, duration)?
            }
            (None, None) => return Err(PlanError::Unbounded),
        };
        let max_requests = self.max_requests.unwrap_or(schedule.total_requests());
        if max_requests == 0 {
            return Err(PlanError::MaxRequests);
        }
        if self.concurrency == 0 {
            return Err(PlanError::Concurrency);
        }
        let url = parse_url(&self.url)?;
        let method = Method::from_bytes(self.method.to_uppercase().as_bytes())
            .map_err(|_| PlanError::Method(self.method.clone()))?;
        Ok(Plan {
            url,
            method,
            body: self.body.clone().map(Bytes::from),
            schedule,
            max_requests,
            concurrency: self.concurrency,
            timeout: self.timeout,
            connection_lifetime: self.connection_lifetime,
            wait_reachable: self.wait_reachable,
        })
    }
}

fn parse_url(url: &str) -> Result<Uri, PlanError> {
    let invalid = |reason: &str| PlanError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|error: hyper::http::uri::InvalidUri| invalid(&error.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// URLs are supported"));
    }
    if uri.host().is_none() {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

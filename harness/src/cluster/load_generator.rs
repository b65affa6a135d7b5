//! The project's load generator as an in-cluster Job aimed at a Service: a
//! [`LoadGenerator`] runs one [`LoadSpec`] and reads back its [`LoadSummary`].
//!
//! Traffic never leaves the cluster: the URL is a Service DNS name in the test
//! namespace. Every run is bounded three ways: `--duration`, `--max-requests`
//! and the Job's `activeDeadlineSeconds`.

use super::PROBE_NAMESPACE_LABEL;
use super::error::EnvironmentError;
use super::namespace::TestNamespace;
use super::wait::{describe_pod, wait_for};
use super::{FIELD_MANAGER, LOADGEN_IMAGE};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a load generator pod may stay Pending for want of the node's capacity
/// before the probe reports an environment error.
pub const CAPACITY_WAIT: Duration = Duration::from_secs(240);

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `http://<service>.<namespace>.svc.cluster.local[:port]/predict`.
    pub url: String,
    pub rate_rps: f64,
    pub duration: Duration,
    pub concurrency: u32,
}

impl LoadSpec {
    /// A URL to a Service of the test namespace, by DNS name.
    pub fn service_url(service: &str, namespace: &str, port: i32, path: &str) -> String {
        let port = if port == 80 {
            String::new()
        } else {
            format!(":{port}")
        };
        format!("http://{service}.{namespace}.svc.cluster.local{port}{path}")
    }

    /// The hard request cap: the schedule's count plus 10 %.
    pub fn max_requests(&self) -> u64 {
        (self.rate_rps * self.duration.as_secs_f64() * 1.1).ceil() as u64 + 1
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--url".into(),
            self.url.clone(),
            "--rate".into(),
            format!("{}", self.rate_rps),
            "--duration".into(),
            format!("{}s", self.duration.as_secs().max(1)),
            "--max-requests".into(),
            self.max_requests().to_string(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            // A Service created moments ago may not forward yet: the run starts once it does.
            "--wait-reachable".into(),
            "30s".into(),
            "--json".into(),
        ]
    }
}

/// The loadgen's JSON summary (the fields the suite reads; the rest is kept raw).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub ok: u64,
    #[serde(default)]
    pub error_total: u64,
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    #[serde(default)]
    pub achieved_rate_rps: f64,
    #[serde(default)]
    pub elapsed_seconds: f64,
    #[serde(default)]
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    #[serde(default)]
    pub p50: f64,
    #[serde(default)]
    pub p99: f64,
}

/// Finds the summary object in a log that may also carry log lines: the first
/// line starting with `{` from which a whole JSON object parses.
pub fn parse_summary(log: &str) -> Option<LoadSummary> {
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        if line.trim_start().starts_with('{') {
            let mut stream =
                serde_json::Deserializer::from_str(&log[offset..]).into_iter::<LoadSummary>();
            if let Some(Ok(summary)) = stream.next() {
                return Some(summary);
            }
        }
        offset += line.len();
    }
    None
}

/// The load generator running as a Job of the test namespace.
pub struct LoadGenerator {
    pub name: String,
    jobs: Api<Job>,
    pods: Api<Pod>,
    pub spec: LoadSpec,
}

impl LoadGenerator {
    /// Creates the Job; it tolerates nothing, so it runs on a real (untainted) node.
    pub async fn start(
        namespace: &TestNamespace,
        name: &str,
        spec: LoadSpec,
    ) -> Result<LoadGenerator, EnvironmentError> {
        let deadline = spec.duration.as_secs() + 120;
        let serves = namespace.serves.as_deref().unwrap_or(&namespace.name);
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "loadgen", "autoscale-conformance/load": name}},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline,
                "template": {
                    "metadata": {"labels": {
                        "app.kubernetes.io/name": "loadgen",
                        "autoscale-conformance/load": name,
                        PROBE_NAMESPACE_LABEL: serves,
                    }},
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{
                            "name": "loadgen",
                            "image": LOADGEN_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "args": spec.args(),
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}
                        }]
                    }
                }
            }
        }))
        .map_err(|e| EnvironmentError::NotReady { what: "load Job".into(), detail: e.to_string() })?;
        let jobs: Api<Job> = namespace.api();
        jobs.create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &job,
        )
        .await
        .map_err(EnvironmentError::api(format!("creating load Job {name}")))?;
        Ok(LoadGenerator {
            name: name.into(),
            jobs,
            pods: namespace.api(),
            spec,
        })
    }

    /// Waits until the load generator's pod is Running (the load has begun): the Job's
    /// pod within `budget`, then its start within `budget` or [`CAPACITY_WAIT`],
    /// whichever is longer.
    pub async fn wait_running(&self, budget: Duration) -> Result<(), EnvironmentError> {
        use backon::{ConstantBuilder, Retryable};
        // The pod's name is not known before the Job controller creates it: wait on the
        // Job's status, then on the pod it made.
        wait_for(
            &self.jobs,
            &self.name,
            "the load Job to start a pod",
            budget,
            |job: Option<&Job>| {
                job.and_then(|j| j.status.as_ref()).is_some_and(|s| {
                    s.active.unwrap_or(0) + s.succeeded.unwrap_or(0) + s.failed.unwrap_or(0) > 0
                })
            },
            |job| format!("{:?}", job.and_then(|j| j.status.as_ref())),
        )
        .await?;
        let selector = format!("autoscale-conformance/load={}", self.name);
        let find = || async {
            let list = self
                .pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| e.to_string())?;
            list.items
                .first()
                .and_then(|p| p.metadata.name.clone())
                .ok_or_else(|| "no load pod listed yet".to_string())
        };
        let pod = find
            .retry(
                ConstantBuilder::default()
                    .with_delay(Duration::from_millis(500))
                    .with_max_times(10),
            )
            .await
            .map_err(|detail| EnvironmentError::NotReady {
                what: format!("load Job {}", self.name),
                detail,
            })?;
        // The load runs in a namespace of its own, so only the node's capacity can hold
        // its pod Pending: CPU other namespaces (other probes, other gradings) request for
        // a few minutes. Wait that out rather than call the environment broken at once.
        wait_for(
            &self.pods,
            &pod,
            "the load generator pod to run",
            budget.max(CAPACITY_WAIT),
            |pod: Option<&Pod>| {
                pod.and_then(|p| p.status.as_ref())
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(|p| p != "Pending")
            },
            describe_pod,
        )
        .await?;
        Ok(())
    }

    /// Waits for the Job to end by itself (bounded by its duration) and returns the summary.
    pub async fn finish(&self) -> Result<LoadSummary, EnvironmentError> {
        let budget = self.spec.duration + Duration::from_secs(90);
        wait_for(
            &self.jobs,
            &self.name,
            "the load Job to finish",
            budget,
            |job: Option<&Job>| {
                job.and_then(|j| j.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                        })
                    })
            },
            |job| format!("{:?}", job.and_then(|j| j.status.as_ref())),
        )
        .await?;
        self.summary().await
    }

    /// Reads the summary from the pod's log (retried: the log can lag the Job status).
    pub async fn summary(&self) -> Result<LoadSummary, EnvironmentError> {
        use backon::{ConstantBuilder, Retryable};
        let selector = format!("autoscale-conformance/load={}", self.name);
        let read = || async {
            let list = self
                .pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| e.to_string())?;
            let pod = list
                .items
                .first()
                .and_then(|p| p.metadata.name.clone())
                .ok_or("no load pod")?;
            let log = self
                .pods
                .logs(&pod, &LogParams::default())
                .await
                .map_err(|e| e.to_string())?;
            parse_summary(&log)
                .ok_or_else(|| format!("no JSON summary in the log of {pod}: {}", tail(&log)))
        };
        read.retry(
            ConstantBuilder::default()
                .with_delay(Duration::from_secs(2))
                .with_max_times(5),
        )
        .await
        .map_err(|detail| EnvironmentError::NotReady {
            what: format!("load Job {}", self.name),
            detail,
        })
    }

    /// Ends the load early: deleting the Job sends the generator SIGTERM, and it stops.
    pub async fn stop(&self) -> Result<(), EnvironmentError> {
        match self
            .jobs
            .delete(&self.name, &DeleteParams::foreground())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(EnvironmentError::Api {
                context: format!("stopping load Job {}", self.name),
                source: e,
            }),
        }
    }
}

fn tail(log: &str) -> String {
    let start = log.len().saturating_sub(400);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(log.len());
    log[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_summary_among_log_lines() {
        let log = "2026-01-01T00:00:00Z INFO starting {not json\n{\n  \"url\": \"http://x\",\n  \"sent\": 10,\n  \"ok\": 9,\n  \"errors\": {\"timeout\": 1},\n  \"error_total\": 1,\n  \"achieved_rate_rps\": 5.0,\n  \"latency_ms\": {\"p50\": 3.5, \"p90\": 4, \"p99\": 9.25, \"max\": 10, \"mean\": 4}\n}\ntrailing\n";
        let summary = parse_summary(log).unwrap();
        assert_eq!((summary.sent, summary.ok, summary.error_total), (10, 9, 1));
        assert_eq!(summary.errors["timeout"], 1);
        assert_eq!(summary.latency_ms.p99, 9.25);
        assert!(parse_summary("no summary here\n").is_none());
    }

    #[test]
    fn every_run_is_bounded_and_stays_in_the_cluster() {
        let spec = LoadSpec {
            url: LoadSpec::service_url("api", "ac-x", 80, "/predict"),
            rate_rps: 20.0,
            duration: Duration::from_secs(60),
            concurrency: 16,
        };
        assert_eq!(spec.url, "http://api.ac-x.svc.cluster.local/predict");
        assert_eq!(spec.max_requests(), 1321);
        let args = spec.args().join(" ");
        assert!(
            args.contains("--duration 60s")
                && args.contains("--max-requests 1321")
                && args.contains("--json"),
            "{args}"
        );
        assert_eq!(
            LoadSpec::service_url("api", "ns", 8080, "/"),
            "http://api.ns.svc.cluster.local:8080/"
        );
    }
}

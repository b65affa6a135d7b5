//! Live probe of `hpa-custom`: apply the HPA and what it scales (workload, Services),
//! hand the submission's adapter rules to the cluster's prometheus-adapter under the
//! cluster-wide Lease, wait for the metric to be served for the pods, drive load at a
//! rate that by the HPA's own target needs a known number of replicas, stop it, wait
//! for the way back, and judge the recorded timeline and metric values.

use super::ID;
use super::budget::Pipeline;
use super::judge::{
    ADAPTER_CONFIGURED, CustomSpec, LoadOutcome, MetricRecording, MetricSample, MetricTarget, judge,
};
use super::rules::{self, ClusterRules, ExposingRule, MetricKind};
use crate::cluster::custom_metrics::{
    ADAPTER_LOCK, Adapter, AdapterLock, ConfigureError, CustomMetrics, PodsAnswer, selector_string,
};
use crate::cluster::load_generator::{LoadGenerator, LoadSpec};
use crate::cluster::{Prometheus, TestNamespace, wait_for};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::hpa_cpu::budget::MAX_PROBE;
use crate::criteria::hpa_cpu::judge::Subject;
use crate::criteria::hpa_cpu::probe::objects_for;
use crate::criteria::hpa_cpu::scaling::ScalingSpec;
use crate::criteria::{ProbeContext, Stop, verdict_of_run};
use crate::observe::Recorder;
use crate::submission::quantity::parse_quantity;
use crate::submission::{Submission, Typed};
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most CPU the probe's load may ask of the node, in cores of request work.
const MAX_LOAD_CORES: f64 = 0.8;
/// The most requests per second the probe drives (one load generator pod).
const MAX_RATE_RPS: f64 = 600.0;
/// How often the metric is read (the metrics APIs cannot be watched).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const LOCK_LOST: &str = "the adapter lock was lost during the run (its Lease was not renewed in time): another grading may have reconfigured the adapter";

/// Without the lock another grading may have rewritten the adapter's rules under this
/// one: a failure can no longer be laid at the submission's door, so it becomes an
/// environment error (grade again). A pass stands, with the note: the submission's
/// metric was served and the HPA scaled on it.
fn blame_the_lost_lock(verdict: &mut Verdict) {
    if verdict.outcome == Outcome::Fail {
        verdict.outcome = Outcome::Error;
        verdict.message = format!(
            "{LOCK_LOST}, so this failure may not be the submission's (grade again): {}",
            verdict.message
        );
    }
}

/// Waiting for the adapter lock queues behind other gradings at most this long.
const LOCK_BUDGET: Duration = MAX_PROBE;
/// The adapter's rollout on new rules and its APIService Available.
const ADAPTER_BUDGET: Duration = Duration::from_secs(150);

/// Runs the probe on the submission's first HPA with a Pods metric its rules expose.
pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let subject = match UnderTest::pick(context.submission, &namespace.name) {
        Ok(subject) => subject,
        Err(stop) => return vec![stop.verdict(&[], &MetricRecording::default(), None)],
    };
    let intervals = namespace.cluster.intervals;
    if let Err(message) =
        subject
            .spec
            .pipeline
            .within_cap(&intervals, &subject.spec.scaling, subject.spec.expected)
    {
        return vec![Stop::fail(message).verdict(&[], &MetricRecording::default(), None)];
    }
    let adapter = Adapter::new(namespace.client());
    if !adapter.installed().await {
        return vec![Verdict::new(
            ID,
            Outcome::Error,
            "prometheus-adapter is not installed or its APIService v1beta1.custom.metrics.k8s.io is not Available (monitoring/prometheus-adapter)",
            Vec::new(),
        )];
    }
    let name = namespace.name.clone();
    let recorder = Recorder::start(namespace, &name, context.timelines);
    let recording = Arc::new(Mutex::new(MetricRecording {
        metric: subject.spec.metric.clone(),
        ..Default::default()
    }));
    let mut notes = subject.rules.notes.clone();
    let mut load_namespace = None;
    let mut lock = None;
    let mut original_config = None;
    let driven = drive(
        namespace,
        context.submission,
        &subject,
        &recorder,
        &recording,
        &mut notes,
        (&mut lock, &mut original_config, &mut load_namespace),
    )
    .await;
    let timeline = recorder.finish();
    // Give the adapter back its configuration, then the lock.
    if let Some(config) = original_config
        && let Err(e) = adapter.restore(&config).await
    {
        notes.push(format!(
            "could not restore the adapter's configuration: {e}"
        ));
    }

    let mut lock_lost = false;
    if let Some(mut lock) = lock {
        lock_lost = !lock.held();
        if lock_lost {
            notes.push(LOCK_LOST.into());
        }
        lock.release().await;
    }
    let recording = recording.lock().map(|r| r.clone()).unwrap_or_default();
    let saved = save_recording(context.timelines, &name, &recording);
    let judged = driven.map(|()| {
        judge(
            &subject.spec,
            subject.names(),
            &timeline,
            &recording,
            &intervals,
        )
    });
    let saved = saved.map(|path| format!("metric values saved to {path}"));
    let mut verdict = verdict_of_run(judged, &notes, &timeline, saved, |stop| {
        stop.verdict(&notes, &recording, Some(&timeline))
    });
    if lock_lost {
        blame_the_lost_lock(&mut verdict);
    }
    drop(load_namespace);
    vec![verdict]
}

/// What the probe drives.
#[derive(Debug)]
struct UnderTest {
    hpa: String,
    target: String,
    objects: Vec<Value>,
    /// The target's pod selector (`app=x`).
    selector: String,
    spec: CustomSpec,
    rules: ClusterRules,
    rule: ExposingRule,
    /// CPU request per pod (cores) and CPU ms per request (`CPU_MS`).
    cpu_request: f64,
    cpu_ms: f64,
}

impl UnderTest {
    fn names(&self) -> Subject<'_> {
        Subject {
            target: &self.target,
            hpa: &self.hpa,
        }
    }

    fn pick(submission: &Submission, namespace: &str) -> Result<UnderTest, Stop> {
        let hpas: Vec<_> = submission
            .objects
            .iter()
            .filter_map(|o| match &o.typed {
                Typed::HorizontalPodAutoscaler(h) => Some((o, h)),
                _ => None,
            })
            .collect();
        let pods_metrics = |h: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler| {
            h.spec
                .metrics
                .iter()
                .flatten()
                .filter_map(|m| m.pods.as_ref())
                .map(|p| (p.metric.name.clone(), p.target.average_value.clone()))
                .collect::<Vec<_>>()
        };
        let Some(_) = hpas.iter().find(|(_, h)| !pods_metrics(h).is_empty()) else {
            return Err(Stop::fail(
                "expected an autoscaling/v2 HPA with a `type: Pods` custom metric; found none"
                    .into(),
            ));
        };
        let cluster_rules = rules::for_cluster(submission, namespace).map_err(Stop::fail)?;
        // Prefer a rate metric (the load sizes it exactly), then any exposed one.
        let mut candidates = Vec::new();
        for (object, hpa) in &hpas {
            for (metric, average) in pods_metrics(hpa) {
                let rule = rules::exposing(&cluster_rules.rules, &metric);
                candidates.push((object, hpa, metric, average, rule));
            }
        }
        let chosen = candidates
            .iter()
            .find(|c| c.4.as_ref().is_some_and(|r| r.kind == MetricKind::Rate))
            .or_else(|| candidates.iter().find(|c| c.4.is_some()));
        let Some((object, hpa, metric, average, Some(rule))) = chosen else {
            let (object, _, metric, ..) = &candidates[0];
            let exposed: Vec<String> = exposed_names(&cluster_rules.rules);
            return Err(Stop::fail(format!(
                "{} scales on the Pods metric `{metric}`, which none of the submission's prometheus-adapter rules exposes (they expose: {}), so custom.metrics.k8s.io will never serve it",
                object.describe(),
                if exposed.is_empty() {
                    "nothing the probe can name".into()
                } else {
                    exposed.join(", ")
                }
            )));
        };
        let Some(target_average) = average
            .as_ref()
            .and_then(|q| parse_quantity(&q.0).ok())
            .filter(|v| *v > 0.0)
        else {
            return Err(Stop::fail(format!(
                "{} scales on `{metric}` without a positive target averageValue per pod",
                object.describe()
            )));
        };
        let pipeline = Pipeline::new(rule.window);
        if let Some(problem) = pipeline.window_problem() {
            return Err(Stop::fail(format!(
                "the adapter rule exposing `{metric}`: {problem}"
            )));
        }
        let (objects, target) = objects_for(submission, object).map_err(Stop::fail)?;
        let workload = objects
            .iter()
            .find(|o| {
                o.pointer("/metadata/name").and_then(Value::as_str) == Some(target.as_str())
                    && o.get("kind").and_then(Value::as_str) != Some("Service")
                    && o.get("kind").and_then(Value::as_str) != Some("HorizontalPodAutoscaler")
            })
            .cloned()
            .unwrap_or_default();
        let labels: BTreeMap<String, String> = workload
            .pointer("/spec/selector/matchLabels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let (cpu_request, cpu_ms) = container_cpu(&workload);
        let scaling = ScalingSpec::from_hpa(hpa);
        let targets = hpa
            .spec
            .metrics
            .iter()
            .flatten()
            .filter_map(|m| {
                if let Some(r) = &m.resource {
                    return r.target.average_utilization.map(|u| MetricTarget {
                        name: r.name.clone(),
                        utilization: true,
                        value: f64::from(u),
                    });
                }
                let p = m.pods.as_ref()?;
                Some(MetricTarget {
                    name: p.metric.name.clone(),
                    utilization: false,
                    value: parse_quantity(&p.target.average_value.as_ref()?.0).ok()?,
                })
            })
            .collect();
        let expected = (scaling.min_replicas + 1).min(scaling.max_replicas);
        Ok(UnderTest {
            hpa: object.name.clone(),
            target,
            objects,
            selector: selector_string(&labels),
            spec: CustomSpec {
                scaling,
                metric: metric.clone(),
                target_average,
                kind: rule.kind,
                expected,
                pipeline,
                targets,
            },
            rules: cluster_rules.clone(),
            rule: rule.clone(),
            cpu_request: cpu_request.unwrap_or(0.1),
            cpu_ms,
        })
    }
}

fn exposed_names(rules: &[Value]) -> Vec<String> {
    rules
        .iter()
        .filter_map(|r| {
            let series = r.get("seriesQuery")?.as_str()?;
            let name = regex::Regex::new(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)")
                .ok()?
                .captures(series)?[1]
                .to_string();
            let matches = r
                .pointer("/name/matches")
                .and_then(Value::as_str)
                .unwrap_or(".*");
            let regex = regex::Regex::new(matches).ok()?;
            let default_as = if regex.captures_len() > 1 { "$1" } else { "$0" };
            let name_as = r
                .pointer("/name/as")
                .and_then(Value::as_str)
                .unwrap_or(default_as);
            Some(regex.replace(&name, name_as).into_owned())
        })
        .collect()
}

/// CPU request per pod (cores, summed over containers) and `CPU_MS` of the first container.
fn container_cpu(workload: &Value) -> (Option<f64>, f64) {
    let containers = workload
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let requests: Vec<f64> = containers
        .iter()
        .filter_map(|c| c.pointer("/resources/requests/cpu"))
        .filter_map(|q| {
            q.as_str()
                .map(str::to_string)
                .or_else(|| q.as_f64().map(|n| n.to_string()))
        })
        .filter_map(|q| parse_quantity(&q).ok())
        .collect();
    let request = (!requests.is_empty()).then(|| requests.iter().sum());
    let cpu_ms = containers
        .first()
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some("CPU_MS"))
        })
        .and_then(|e| e.get("value").and_then(Value::as_str))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    (request, cpu_ms)
}

/// What the probe's pods request at its peak: the target at one replica more than its
/// load calls for (a noisy sample may overshoot by one), within maxReplicas, and the
/// load generator.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let Ok(subject) = UnderTest::pick(submission, "capacity") else {
        return CpuDemand::NONE;
    };
    let replicas = (subject.spec.expected + 1).min(subject.spec.scaling.max_replicas);
    demand::target_pods(submission, &subject.target, i64::from(replicas)) + demand::LOAD_GENERATOR
}

/// The load for `spec`: by its own target, `expected` replicas are needed for a rate
/// metric at `target x (expected - 0.5)` req/s (the HPA's ceil lands on `expected`,
/// outside its 10 % tolerance); other metrics get the most the caps allow.
pub fn plan_rate(spec: &CustomSpec, cpu_ms: f64) -> Result<f64, String> {
    let seconds = (cpu_ms / 1000.0).max(0.0005);
    let cap = MAX_RATE_RPS.min(MAX_LOAD_CORES / seconds);
    match spec.kind {
        MetricKind::Rate => {
            let wanted = spec.target_average * (f64::from(spec.expected) - 0.5);
            if wanted > cap {
                return Err(format!(
                    "by its target of {} per pod, `{}` needs {wanted:.0} req/s to call for {} replicas, more than the probe drives ({cap:.0} req/s: at most {MAX_RATE_RPS} req/s and {MAX_LOAD_CORES} cores of CPU_MS={cpu_ms} requests)",
                    spec.target_average, spec.metric, spec.expected
                ));
            }
            Ok(wanted.max(1.0))
        }
        MetricKind::Latency | MetricKind::Other => Ok(cap.round().max(1.0)),
    }
}

impl Stop {
    fn verdict(
        self,
        notes: &[String],
        recording: &MetricRecording,
        timeline: Option<&Timeline>,
    ) -> Verdict {
        let mut evidence = Vec::new();
        evidence.extend(Evidence::notes(notes));
        if !recording.discovery.is_empty() || !recording.promql.is_empty() {
            evidence.push(Evidence::Note {
                text: format!(
                    "custom.metrics.k8s.io discovery: {}\nPromQL the adapter runs for the pods: {}",
                    recording.discovery.join(", "),
                    recording.promql
                ),
            });
        }
        if let Some(timeline) = timeline {
            evidence.extend(timeline.stop_evidence());
        }
        Verdict::new(ID, self.outcome, self.message, evidence)
    }
}

/// The probe's run; what it holds is left in `held` for `run` to give back.
async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    subject: &UnderTest,
    recorder: &Recorder,
    recording: &Arc<Mutex<MetricRecording>>,
    notes: &mut Vec<String>,
    held: (
        &mut Option<AdapterLock>,
        &mut Option<String>,
        &mut Option<TestNamespace>,
    ),
) -> Result<(), Stop> {
    let (lock_slot, original_config, load_namespace) = held;
    let intervals = namespace.cluster.intervals;
    let client = namespace.client();
    let rate = plan_rate(&subject.spec, subject.cpu_ms).map_err(Stop::fail)?;
    let fit = match namespace.cluster.unrequested_cpu().await {
        Some(free) if subject.cpu_request > 0.0 => {
            Some((free / subject.cpu_request).floor() as i32)
        }
        _ => None,
    };
    if let Some(fit) = fit
        && fit < subject.spec.expected
    {
        return Err(Stop::error(format!(
            "the node has room for {fit} pods of {:.0}m CPU request, fewer than the {} replicas the probe needs to see a scale-up",
            subject.cpu_request * 1000.0,
            subject.spec.expected
        )));
    }
    // The cluster-wide lock, then the adapter on the submission's rules.
    let lock = AdapterLock::acquire(&client, ADAPTER_LOCK, &namespace.name, LOCK_BUDGET)
        .await
        .map_err(|e| Stop::error(e.to_string()))?;
    notes.push(format!(
        "held the adapter lock (Lease monitoring/{}) as {} after {:.0}s in the queue",
        crate::cluster::custom_metrics::LOCK_LEASE,
        lock.holder,
        lock.waited.as_secs_f64()
    ));
    let lock = lock_slot.insert(lock);
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&subject.objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes.iter().cloned());
    let adapter = Adapter::new(client.clone());
    *original_config = Some(
        adapter
            .config()
            .await
            .map_err(|e| Stop::error(e.to_string()))?,
    );
    match adapter
        .configure(lock, &subject.rules.config(), ADAPTER_BUDGET)
        .await
    {
        Ok(()) => {}
        Err(ConfigureError::Rejected { message }) => {
            return Err(Stop::fail(format!(
                "prometheus-adapter rejected the submission's rules: {message}"
            )));
        }
        Err(ConfigureError::Environment(e)) => return Err(Stop::error(e.to_string())),
    }
    // The target at minReplicas, all Ready.
    let deployments: Api<Deployment> = namespace.api();
    let min = subject.spec.scaling.min_replicas;
    wait_for(
        &deployments,
        &subject.target,
        "the target's pods at minReplicas and Ready",
        intervals.pod_ready * 3 + intervals.hpa_sync_period * 2,
        move |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                d.status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0)
                    >= min
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    .map_err(|e| Stop::fail(format!("the target's pods did not become Ready: {e}")))?;
    recorder.mark(ADAPTER_CONFIGURED);

    // Record the metric from here on.
    let sampler = Sampler {
        metrics: CustomMetrics::new(client.clone()),
        prometheus: Prometheus::new(client.clone()),
        pods: namespace.api(),
        namespace: namespace.name.clone(),
        selector: subject.selector.clone(),
        rule: subject.rule.clone(),
        recording: recording.clone(),
        started: tokio::time::Instant::now() - Duration::from_secs_f64(recorder.now()),
    };
    let sampling = tokio::spawn(sampler.clone().run());
    let result = drive_load(
        namespace,
        subject,
        recorder,
        recording,
        &sampler,
        rate,
        notes,
        load_namespace,
    )
    .await;
    sampling.abort();
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive_load(
    namespace: &TestNamespace,
    subject: &UnderTest,
    recorder: &Recorder,
    recording: &Arc<Mutex<MetricRecording>>,
    sampler: &Sampler,
    rate: f64,
    notes: &mut Vec<String>,
    load_namespace: &mut Option<TestNamespace>,
) -> Result<(), Stop> {
    let intervals = namespace.cluster.intervals;
    let spec = &subject.spec;
    recorder.mark("baseline");
    // (2)-(3) load sized by the HPA's own target.
    let Some((service, port)) = service_port(&subject.objects) else {
        return Err(Stop::fail(format!(
            "no Service selects the pods of {}: nothing to send load to",
            subject.target
        )));
    };
    let duration = spec
        .pipeline
        .load(&intervals, &spec.scaling, spec.expected)
        .min(MAX_PROBE);
    let load_spec = LoadSpec {
        url: LoadSpec::service_url(&service, &namespace.name, port, "/predict"),
        rate_rps: rate.round().max(1.0),
        duration,
        concurrency: 64,
    };
    notes.push(format!(
        "load: {} req/s of CPU_MS={} to {} for {}s; by the target of {} per pod `{}` needs {} replicas",
        load_spec.rate_rps,
        subject.cpu_ms,
        load_spec.url,
        duration.as_secs(),
        spec.target_average,
        spec.metric,
        spec.expected
    ));
    let own = namespace
        .load_namespace()
        .await
        .map_err(|e| Stop::error(format!("no namespace for the load generator: {e}")))?;
    let own = load_namespace.insert(own);
    let load = LoadGenerator::start(own, "custom-load", load_spec.clone())
        .await
        .map_err(|e| Stop::error(format!("could not start the load: {e}")))?;
    load.wait_running(intervals.pod_ready * 2)
        .await
        .map_err(|e| Stop::error(format!("the load generator did not start: {e}")))?;
    recorder.mark("load-start");
    // (1) the metric served for the pods, within its budget of the load starting (a
    // rule may count only /predict, whose series the load creates). Waits past the
    // judge's budget (by a minute) so that a late metric is judged late, not missing.
    let visible_budget = spec.pipeline.visible(&intervals) + Duration::from_secs(60);
    let served = crate::cluster::poll_until(visible_budget, Duration::from_secs(5), || async {
        recording
            .lock()
            .ok()
            .and_then(|r| r.samples.iter().any(|s| !s.values.is_empty()).then_some(()))
    })
    .await
    .is_some();
    if !served {
        let _ = load.stop().await;
        recorder.mark("load-stop");
        // One more sample, and what matched nothing, for the judge's evidence.
        sampler.sample().await;
        let unmatched = sampler.unmatched().await;
        if let Ok(mut r) = recording.lock() {
            r.unmatched = unmatched;
        }
        return Ok(());
    }
    let summary = load.finish().await;
    recorder.mark("load-stop");
    match summary {
        Ok(summary) => {
            if let Ok(mut r) = recording.lock() {
                r.load = Some(LoadOutcome {
                    asked_rps: load_spec.rate_rps,
                    achieved_rps: summary.achieved_rate_rps,
                    ok: summary.ok,
                    errors: summary.error_total,
                });
            }
        }
        Err(e) => {
            let _ = load.stop().await;
            notes.push(format!("no load summary: {e}"));
        }
    }
    // (5) the way back to minReplicas.
    let deployments: Api<Deployment> = namespace.api();
    let min = spec.scaling.min_replicas;
    let peak = recorder
        .snapshot()
        .replicas(&subject.target)
        .iter()
        .map(|(_, r, _)| *r)
        .max()
        .unwrap_or(min);
    let down = (crate::criteria::hpa_cpu::budget::scale_down(
        &spec.pipeline.as_intervals(&intervals),
        &spec.scaling,
        peak,
    ) + intervals.observation_slack)
        .min(MAX_PROBE);
    if peak > min {
        let _ = wait_for(
            &deployments,
            &subject.target,
            "the target back at minReplicas",
            down,
            move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(1) <= min),
            |d| format!("replicas {:?}", d.map(|d| d.spec.replicas)),
        )
        .await;
        let target = subject.target.clone();
        let _ = recorder
            .caught_up(intervals.observation_slack, move |t| {
                t.replicas(&target)
                    .last()
                    .is_some_and(|(_, r, _)| *r <= min)
            })
            .await;
    }
    Ok(())
}

/// Reads the metric every [`SAMPLE_EVERY`] into the recording.
#[derive(Clone)]
struct Sampler {
    metrics: CustomMetrics,
    prometheus: Prometheus,
    pods: Api<Pod>,
    namespace: String,
    selector: String,
    rule: ExposingRule,
    recording: Arc<Mutex<MetricRecording>>,
    started: tokio::time::Instant,
}

impl Sampler {
    async fn run(self) {
        loop {
            self.sample().await;
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    async fn pod_names(&self) -> Vec<String> {
        self.pods
            .list(&ListParams::default().labels(&self.selector))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| p.metadata.name)
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn sample(&self) {
        let t = self.started.elapsed().as_secs_f64();
        let mut sample = MetricSample {
            t,
            ..Default::default()
        };
        match self
            .metrics
            .pods_metric(&self.namespace, &self.rule.metric, &self.selector)
            .await
        {
            Ok(PodsAnswer::Values(values)) => sample.values = values,
            Ok(PodsAnswer::NoValue(why)) => sample.no_value = Some(why),
            Err(e) => sample.no_value = Some(e.to_string()),
        }
        let pods = self.pod_names().await;
        let promql = rules::render(&self.rule, &self.namespace, &pods).ok();
        if let Some(promql) = &promql
            && !pods.is_empty()
            && let Ok(result) = self.prometheus.query(promql).await
            && !result.is_empty()
        {
            sample.promql_sum = Some(result.iter().map(|s| s.value).sum());
        }
        let window = self
            .rule
            .window
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(30));
        let server = format!(
            "sum(rate(http_requests_total{{namespace=\"{}\",route=\"/predict\"}}[{}s]))",
            self.namespace,
            window.as_secs()
        );
        if let Ok(result) = self.prometheus.query(&server).await {
            sample.server_rate = result.first().map(|s| s.value).filter(|v| v.is_finite());
        }
        let discovery = self.metrics.discovery().await.ok();
        if let Ok(mut recording) = self.recording.lock() {
            recording.samples.push(sample);
            if let Some(promql) = promql {
                recording.promql = promql;
            }
            if let Some(discovery) = discovery {
                recording.discovery = discovery;
            }
        }
    }

    /// The selectors on the way from the pods to the metric that matched nothing.
    async fn unmatched(&self) -> Vec<String> {
        let mut out = Vec::new();
        let series_query = self
            .rule
            .rule
            .get("seriesQuery")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns_selector = format!("{}{{namespace=\"{}\"}}", self.rule.series, self.namespace);
        for selector in [series_query, ns_selector] {
            if let Ok(series) = self.prometheus.series(&selector).await
                && series.is_empty()
            {
                out.push(format!("`{selector}` (no series)"));
            }
        }
        let pods = self.pod_names().await;
        if let Ok(promql) = rules::render(&self.rule, &self.namespace, &pods)
            && let Ok(result) = self.prometheus.query(&promql).await
            && result.is_empty()
        {
            out.push(format!("`{promql}` (empty result)"));
        }
        let up = format!("up{{namespace=\"{}\"}}", self.namespace);
        if let Ok(result) = self.prometheus.query(&up).await
            && result.is_empty()
        {
            out.push(format!("`{up}` (Prometheus scrapes no target in the namespace: no scrape annotations or monitor select the pods)"));
        }
        out
    }
}

fn service_port(objects: &[Value]) -> Option<(String, i32)> {
    objects
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some("Service"))
        .map(|s| {
            let name = s
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let port = s
                .pointer("/spec/ports/0/port")
                .and_then(Value::as_i64)
                .unwrap_or(80) as i32;
            (name, port)
        })
}

fn save_recording(
    dir: &std::path::Path,
    name: &str,
    recording: &MetricRecording,
) -> Option<String> {
    let path = dir.join(format!("{name}-custom-metric.json"));
    std::fs::create_dir_all(dir).ok()?;
    let text = serde_json::to_string_pretty(recording).ok()?;
    std::fs::write(&path, text).ok()?;
    Some(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn a_failure_without_the_lock_is_an_environment_error() {
        let mut failed = Verdict::new(ID, Outcome::Fail, "the HPA never scaled", Vec::new());
        blame_the_lost_lock(&mut failed);
        assert_eq!(failed.outcome, Outcome::Error);
        assert!(
            failed.message.contains("lock was lost"),
            "{}",
            failed.message
        );
        assert!(
            failed.message.ends_with("the HPA never scaled"),
            "{}",
            failed.message
        );

        let mut passed = Verdict::new(ID, Outcome::Pass, "scaled", Vec::new());
        blame_the_lost_lock(&mut passed);
        assert_eq!(passed.outcome, Outcome::Pass);
    }

    #[test]
    fn the_fixtures_are_picked_sized_and_fit_the_cap() {
        for relative in ["hpa_custom/fast", "submissions/reference"] {
            let subject = UnderTest::pick(&load_fixture(relative), "ac-x")
                .unwrap_or_else(|s| panic!("{relative}: {}", s.message));
            assert_eq!(subject.spec.kind, MetricKind::Rate, "{relative}");
            let intervals = crate::cluster::ClusterIntervals::default();
            let cap = subject.spec.pipeline.within_cap(
                &intervals,
                &subject.spec.scaling,
                subject.spec.expected,
            );
            assert!(cap.is_ok(), "{relative}: {cap:?}");
            let rate = plan_rate(&subject.spec, subject.cpu_ms).unwrap();
            assert!(rate >= 1.0, "{relative}: {rate}");
        }
        let fast = UnderTest::pick(&load_fixture("hpa_custom/fast"), "ac-x").unwrap();
        assert!(
            fast.rules.config().contains("namespace=\\\"ac-x\\\""),
            "{}",
            fast.rules.config()
        );
        assert!(
            fast.rules
                .notes
                .iter()
                .any(|n| n.contains("rewritten to namespace=\"ac-x\""))
        );
        // 10 req/s per pod, 1 -> 2 replicas: 15 req/s.
        assert_eq!(plan_rate(&fast.spec, fast.cpu_ms).unwrap(), 15.0);
        let reference = UnderTest::pick(&load_fixture("submissions/reference"), "ac-x").unwrap();
        // 100 req/s per pod, 2 -> 3 replicas: 250 req/s.
        assert_eq!(plan_rate(&reference.spec, reference.cpu_ms).unwrap(), 250.0);
    }

    #[test]
    fn broken_fixtures_that_fail_before_the_cluster_say_why() {
        let stop = UnderTest::pick(
            &load_fixture("hpa_custom/broken-hpa-names-unexposed-metric"),
            "ac-x",
        )
        .expect_err("no rule exposes the metric");
        assert_eq!(stop.outcome, Outcome::Fail);
        assert!(
            stop.message
                .contains("which none of the submission's prometheus-adapter rules exposes"),
            "{}",
            stop.message
        );
        for relative in [
            "hpa_custom/broken-rule-returns-nothing",
            "hpa_custom/broken-pods-not-scraped",
        ] {
            assert!(
                UnderTest::pick(&load_fixture(relative), "ac-x").is_ok(),
                "{relative} fails live, not here"
            );
        }
    }

    #[test]
    fn a_target_the_probe_cannot_drive_fails_with_the_numbers() {
        let mut subject = UnderTest::pick(&load_fixture("submissions/reference"), "ac-x").unwrap();
        subject.cpu_ms = 10.0;
        let message = plan_rate(&subject.spec, subject.cpu_ms).unwrap_err();
        assert!(message.contains("needs 250 req/s"), "{message}");
        assert!(message.contains("(80 req/s"), "{message}");
    }
}

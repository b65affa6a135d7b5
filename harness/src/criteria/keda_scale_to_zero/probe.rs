//! Live probe of `keda-scale-to-zero`. The trigger reads a queue depth that the workload
//! itself exports, so at zero replicas nothing would export it: the probe runs a queue of
//! its own (the inference server, one worker busy for good, so enqueued items stay
//! queued) whose pods carry the workload's pod labels and annotations, so that the
//! submission's monitoring scrapes it and its query sees it like the workload's. Then:
//! apply the workload and its ScaledObject (KEDA's webhook judges it), wait for KEDA to
//! take it and idle it at zero, enqueue through the inference server's batch endpoint a
//! queue sized by the trigger's own threshold, wait for the scale-up, empty the queue (a
//! rollout of the queue's pod) and wait for the return to zero, sampling the query and
//! the ScaledObject's status all along. [`super::judge`] judges the recording.

use super::ID;
use super::judge::{self, Budgets, DRAINED, ENQUEUED, IDLE, MARGIN, MetricType, ZeroSpec};
use crate::checks::trigger_setting;
use crate::cluster::keda::{self, KedaRecording, QuerySample, ScaledObjectState};
use crate::cluster::{INFERENCE_IMAGE, Prometheus, TestNamespace, wait_for};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::hpa_cpu::budget::MAX_PROBE;
use crate::criteria::hpa_cpu::probe::objects_around;
use crate::criteria::monitoring::promql;
use crate::criteria::{ProbeContext, Stop, stop_verdict_for, verdict_of_run};
use crate::observe::Recorder;
use crate::submission::quantity::parse_quantity;
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Outcome, Verdict};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The probe's queue: a name no submission may take.
const QUEUE: &str = "autoscale-conformance-sandbox-queue";
const QUEUE_LABEL: (&str, &str) = ("autoscale-conformance/queue", "holder");
/// The most items the probe queues: a trigger that needs more is never reached in practice.
const MAX_QUEUE: f64 = 10_000.0;
/// The most replicas the probe asks for (the node's CPU is shared).
const MAX_EXPECTED: i32 = 2;
/// How often the query and the ScaledObject's status are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The queue's pod outlives its successor by this much on a restart, so that the
/// successor is scraped before the old one's series go stale: the query never returns
/// an empty result the submission did not cause.
const QUEUE_HANDOVER: Duration = Duration::from_secs(20);

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let subject = match UnderTest::pick(context.submission, &namespace.name) {
        Ok(subject) => subject,
        Err(stop) => {
            return vec![stop_verdict_for(
                ID,
                stop,
                &[],
                &KedaRecording::default(),
                None,
            )];
        }
    };
    let intervals = namespace.cluster.intervals;
    let budgets = Budgets::new(&subject.spec, &intervals);
    let plan = Plan::new(&subject, &budgets, &intervals);
    if let Err(message) = plan.within_cap(&subject.spec) {
        return vec![stop_verdict_for(
            ID,
            Stop::fail(message),
            &subject.notes,
            &KedaRecording::default(),
            None,
        )];
    }
    if let Err(message) = keda::installed(&namespace.client()).await {
        return vec![Verdict::new(ID, Outcome::Error, message, Vec::new())];
    }
    let name = namespace.name.clone();
    let recorder = Recorder::start(namespace, &name, context.timelines);
    let recording = Arc::new(Mutex::new(KedaRecording {
        scaled_object: subject.scaled_object.clone(),
        query: subject.query.clone(),
        ..Default::default()
    }));
    let mut notes = subject.notes.clone();
    let started_at = DateTime::parse_from_rfc3339(&recorder.snapshot().started_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    let sampler = Sampler {
        client: namespace.client(),
        prometheus: Prometheus::new(namespace.client()),
        namespace: name.clone(),
        scaled_object: subject.scaled_object.clone(),
        query: subject.query.clone(),
        recording: recording.clone(),
        clock: tokio::time::Instant::now() - Duration::from_secs_f64(recorder.now()),
        started_at,
    };
    let sampling = tokio::spawn(sampler.clone().run());
    let driven = drive(
        namespace,
        context.submission,
        &subject,
        &plan,
        &recorder,
        &mut notes,
    )
    .await;
    sampling.abort();
    sampler.sample().await;
    let timeline = recorder.finish();
    let recording = recording.lock().map(|r| r.clone()).unwrap_or_default();
    let saved = recording.save(context.timelines, &name);
    let judged = driven.map(|()| judge::judge(&subject.spec, &budgets, &timeline, &recording));
    let saved = saved.map(|path| format!("query values and KEDA's status saved to {path}"));
    vec![verdict_of_run(judged, &notes, &timeline, saved, |stop| {
        stop_verdict_for(ID, stop, &notes, &recording, Some(&timeline))
    })]
}

/// What the probe drives: one ScaledObject with a prometheus trigger.
#[derive(Debug)]
struct UnderTest {
    scaled_object: String,
    target: String,
    /// The objects to apply, the ScaledObject last (its query rewritten).
    objects: Vec<Value>,
    /// The target's pod labels and annotations, which the queue's pods copy.
    pod_labels: BTreeMap<String, String>,
    pod_annotations: Value,
    /// The queue's container resources: the least the namespace's LimitRanges allow.
    queue_resources: Value,
    /// The trigger's query as the probe applies and samples it.
    query: String,
    spec: ZeroSpec,
    initial_cooldown: Duration,
    notes: Vec<String>,
}

fn seconds(scaled: &Value, field: &str, default: u64) -> Result<Duration, String> {
    match scaled.pointer(&format!("/spec/{field}")) {
        None | Some(Value::Null) => Ok(Duration::from_secs(default)),
        Some(v) => v
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{field} `{v}` is not a whole number of seconds")),
    }
}

impl UnderTest {
    fn pick(submission: &Submission, namespace: &str) -> Result<UnderTest, Stop> {
        let candidates: Vec<(&Object, usize)> = submission
            .objects
            .iter()
            .filter_map(|o| match &o.typed {
                Typed::ScaledObject(s) => s
                    .spec
                    .triggers
                    .iter()
                    .position(|t| t.type_ == "prometheus")
                    .map(|i| (o, i)),
                _ => None,
            })
            .collect();
        // Prefer one that may scale to zero, as the criterion asks.
        let chosen = candidates
            .iter()
            .find(|(o, _)| {
                o.value()
                    .pointer("/spec/minReplicaCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    == 0
            })
            .or(candidates.first());
        let Some(&(object, index)) = chosen else {
            let scaled_jobs = submission
                .objects
                .iter()
                .any(|o| matches!(o.typed, Typed::ScaledJob(_)));
            return Err(if scaled_jobs {
                Stop {
                    outcome: Outcome::NotRun,
                    message: "the submission scales on a queue with a ScaledJob only; this probe drives ScaledObjects (a ScaledJob's live probe is not written yet)".into(),
                }
            } else {
                Stop::fail(
                    "expected a KEDA ScaledObject with a prometheus trigger; found none".into(),
                )
            });
        };
        let Typed::ScaledObject(scaled) = &object.typed else {
            return Err(Stop::error("not a ScaledObject".into()));
        };
        let value = object.value();
        let describe = object.describe();
        let trigger = &scaled.spec.triggers[index];
        let setting = |name: &str| trigger_setting(trigger, name);
        let number = |name: &str, default: Option<f64>| -> Result<f64, Stop> {
            match setting(name) {
                None => default.ok_or_else(|| {
                    Stop::fail(format!("{describe}'s prometheus trigger has no {name}"))
                }),
                Some(text) => text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    Stop::fail(format!(
                        "{describe}'s prometheus trigger has {name} `{text}`, which is not a number"
                    ))
                }),
            }
        };
        let threshold = number("threshold", None)?;
        if threshold <= 0.0 {
            return Err(Stop::fail(format!(
                "{describe}'s prometheus trigger has threshold {threshold}: KEDA needs a positive target per replica"
            )));
        }
        let activation_threshold = number("activationThreshold", Some(0.0))?;
        let metric_type = match trigger.metric_type.as_deref() {
            None | Some("AverageValue") => MetricType::AverageValue,
            Some("Value") => MetricType::Value,
            Some(other) => {
                return Err(Stop::fail(format!(
                    "{describe}'s prometheus trigger has metricType {other}: KEDA's prometheus scaler takes AverageValue or Value"
                )));
            }
        };
        let Some(query) = setting("query") else {
            return Err(Stop::fail(format!(
                "{describe}'s prometheus trigger has no query"
            )));
        };
        let min = value
            .pointer("/spec/minReplicaCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if min != 0 {
            return Err(Stop::fail(format!(
                "{describe} keeps minReplicaCount {min}: its workload never scales to zero"
            )));
        }
        let max = value
            .pointer("/spec/maxReplicaCount")
            .and_then(Value::as_i64)
            .unwrap_or(100);
        let polling = seconds(value, "pollingInterval", 30).map_err(Stop::fail)?;
        let cooldown = seconds(value, "cooldownPeriod", 300).map_err(Stop::fail)?;
        let initial_cooldown = seconds(value, "initialCooldownPeriod", 0).map_err(Stop::fail)?;
        // The query names the submission's namespace; the probe runs in its own.
        let from: BTreeSet<String> = object.namespace.iter().cloned().collect();
        let rewritten = promql::rewrite(query, &from, namespace).map_err(|e| {
            Stop::fail(format!(
                "{describe}'s prometheus query `{query}` does not parse: {e}"
            ))
        })?;
        let mut notes = Vec::new();
        if !rewritten.rewrites.is_empty() {
            notes.push(format!(
                "the trigger's query, rewritten for the test namespace: `{}` ({})",
                rewritten.expr,
                rewritten
                    .rewrites
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let reference = scaled.spec.scale_target_ref.as_ref();
        let (mut objects, target) = objects_around(
            submission,
            object,
            reference.and_then(|r| r.kind.as_deref()),
            reference.map_or("", |r| r.name.as_str()),
        )
        .map_err(Stop::fail)?;
        if let Some(applied) = objects.last_mut()
            && let Some(slot) =
                applied.pointer_mut(&format!("/spec/triggers/{index}/metadata/query"))
        {
            *slot = Value::String(rewritten.expr.clone());
        }
        let workload = submission
            .find_workload(
                reference.and_then(|r| r.kind.as_deref()),
                &target,
                object.namespace.as_deref(),
            )
            .ok_or_else(|| Stop::error("the target vanished".into()))?;
        let pod_labels = workload
            .pod_template()
            .and_then(|t| t.labels.cloned())
            .unwrap_or_default();
        let pod_annotations = workload
            .value()
            .pointer("/spec/template/metadata/annotations")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let queued = queue_for(threshold, activation_threshold, metric_type, max)
            .map_err(|e| Stop::fail(format!("{describe}'s prometheus trigger: {e}")))?;
        let spec = ZeroSpec {
            scaled_object: object.name.clone(),
            target: target.clone(),
            threshold,
            activation_threshold,
            metric_type,
            polling,
            cooldown,
            max_replicas: i32::try_from(max).unwrap_or(i32::MAX),
            queued,
        };
        let queue_resources = queue_resources(&objects);
        Ok(UnderTest {
            scaled_object: object.name.clone(),
            target,
            objects,
            pod_labels,
            pod_annotations,
            queue_resources,
            query: rewritten.expr,
            spec,
            initial_cooldown,
            notes,
        })
    }
}

/// What the probe's pods request at its peak: the target at one replica more than the
/// queue calls for (within maxReplicaCount), and the queue's own pod.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let Ok(subject) = UnderTest::pick(submission, "capacity") else {
        return CpuDemand::NONE;
    };
    let replicas = (MAX_EXPECTED + 1).min(subject.spec.max_replicas);
    let queue = subject.queue_resources["requests"]["cpu"]
        .as_str()
        .and_then(|q| parse_quantity(q).ok())
        .map_or(CpuDemand::NONE, CpuDemand::cores);
    demand::target_pods(submission, &subject.target, i64::from(replicas)) + queue
}

/// The queue depth that, by the trigger's own threshold, calls for [`MAX_EXPECTED`]
/// replicas (or maxReplicaCount if lower): `threshold × (n − ½)`, so that the HPA's ⌈⌉
/// lands on `n` outside its 10 % tolerance; above activationThreshold in any case.
pub fn queue_for(
    threshold: f64,
    activation_threshold: f64,
    metric_type: MetricType,
    max: i64,
) -> Result<f64, String> {
    let n = f64::from(MAX_EXPECTED.min(i32::try_from(max.max(1)).unwrap_or(1)));
    let by_threshold = match metric_type {
        MetricType::AverageValue => threshold * (n - 0.5),
        // A Value target compares the whole value: stay below it, one replica.
        MetricType::Value => threshold * 0.5,
    };
    let queued = by_threshold.max(activation_threshold + 1.0).max(1.0).ceil();
    if queued > MAX_QUEUE {
        return Err(format!(
            "activating it takes a queue of {queued} items (threshold {threshold}, activationThreshold {activation_threshold}), more than the {MAX_QUEUE} the probe enqueues: a threshold never reached"
        ));
    }
    Ok(queued)
}

/// The queue's requests and limits (equal): 10m CPU and 32Mi, raised to the minimum of any
/// Container LimitRange among `objects` (the submission's, applied in the same namespace),
/// so that the LimitRange admits the queue's pods.
fn queue_resources(objects: &[Value]) -> Value {
    let mut cpu: f64 = 0.01;
    let mut memory: f64 = 32.0 * 1024.0 * 1024.0;
    for limits in objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("LimitRange"))
        .filter_map(|o| o.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("Container"))
    {
        let min = |resource: &str| {
            limits
                .pointer(&format!("/min/{resource}"))
                .and_then(|q| match q {
                    Value::String(text) => parse_quantity(text).ok(),
                    other => other.as_f64(),
                })
                .unwrap_or(0.0)
        };
        cpu = cpu.max(min("cpu"));
        memory = memory.max(min("memory"));
    }
    let amounts = json!({
        "cpu": format!("{}m", (cpu * 1000.0).ceil()),
        "memory": format!("{}", memory.ceil()),
    });
    json!({"requests": amounts, "limits": amounts})
}

/// How long each wait of the probe may take, and the whole.
struct Plan {
    taken: Duration,
    queue_ready: Duration,
    idle: Duration,
    scale_up: Duration,
    overshoot: Duration,
    drain: Duration,
    zero: Duration,
}

impl Plan {
    fn new(
        subject: &UnderTest,
        budgets: &Budgets,
        intervals: &crate::cluster::ClusterIntervals,
    ) -> Plan {
        let spec = &subject.spec;
        // Each wait runs a minute past its budget, so that late is judged late, not missing.
        let late = Duration::from_secs(60);
        Plan {
            taken: spec.polling + late,
            queue_ready: intervals.pod_ready * 3,
            idle: subject.initial_cooldown + spec.polling + MARGIN + late,
            scale_up: budgets.scale_up + late,
            overshoot: intervals.hpa_sync_period * 2,
            drain: intervals.pod_ready * 2 + QUEUE_HANDOVER + MARGIN,
            zero: budgets.return_to_zero + spec.polling + late,
        }
    }

    fn total(&self) -> Duration {
        self.taken
            + self.queue_ready
            + self.idle
            + self.scale_up
            + self.overshoot
            + self.drain
            + self.zero
    }

    /// The submission's settings must let the run end inside the grader's deadline.
    fn within_cap(&self, spec: &ZeroSpec) -> Result<(), String> {
        if self.total() <= MAX_PROBE {
            return Ok(());
        }
        Err(format!(
            "with pollingInterval {}s and cooldownPeriod {}s the run takes up to {}s, more than the grader's {}s for a probe: the return to zero cannot be observed",
            spec.polling.as_secs(),
            spec.cooldown.as_secs(),
            self.total().as_secs(),
            MAX_PROBE.as_secs()
        ))
    }
}

/// The queue: the inference server with one worker that never finishes its job, so
/// that enqueued items wait; scraped like the workload (its pod labels and annotations).
fn queue_deployment(subject: &UnderTest) -> Value {
    let mut labels = subject.pod_labels.clone();
    labels.insert(QUEUE_LABEL.0.into(), QUEUE_LABEL.1.into());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": QUEUE},
        "spec": {
            "replicas": 1,
            "minReadySeconds": QUEUE_HANDOVER.as_secs(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {QUEUE_LABEL.0: QUEUE_LABEL.1}},
            "template": {
                "metadata": {"labels": labels, "annotations": subject.pod_annotations},
                "spec": {
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "queue",
                        "image": INFERENCE_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [
                            {"name": "WORKERS", "value": "1"},
                            // One job of an hour's CPU at its small limit: the worker never frees up.
                            {"name": "CPU_MS", "value": "3600000"},
                            {"name": "SHUTDOWN_GRACE_SECONDS", "value": "0"}
                        ],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 2},
                        "resources": subject.queue_resources
                    }]
                }
            }
        }
    })
}

/// Every step, on the recorder's timeline.
async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    subject: &UnderTest,
    plan: &Plan,
    recorder: &Recorder,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    let client = namespace.client();
    let deployments: Api<Deployment> = namespace.api();
    // The submission's objects first: its LimitRanges then admit the queue's pods.
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&subject.objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes.iter().cloned());
    namespace
        .apply_raw(&queue_deployment(subject))
        .await
        .map_err(|e| Stop::error(format!("could not create the probe's queue: {e}")))?;
    notes.push(format!(
        "the probe's queue: Deployment {QUEUE} (the inference server, one worker kept busy), pods labelled and annotated as {}'s so that the query sees its inference_queue_length",
        subject.target
    ));
    recorder.mark("applied");
    // KEDA took the ScaledObject: Ready=True (else its reason).
    let ns = namespace.name.clone();
    let taken = crate::cluster::poll_until(plan.taken, Duration::from_secs(2), || async {
        let object = keda::scaled_object(&client, &ns, &subject.scaled_object)
            .await
            .ok()
            .flatten()?;
        let state = ScaledObjectState::from_object(0.0, &object, Utc::now());
        state
            .ready
            .as_ref()
            .is_some_and(|r| r.status == "True")
            .then_some(())
    })
    .await;
    if taken.is_none() {
        let state = keda::scaled_object(&client, &ns, &subject.scaled_object)
            .await
            .ok()
            .flatten()
            .map(|o| ScaledObjectState::from_object(0.0, &o, Utc::now()));
        return Err(Stop::fail(format!(
            "KEDA did not take ScaledObject {} within {}s: {}",
            subject.scaled_object,
            plan.taken.as_secs(),
            state
                .and_then(|s| s.not_ready())
                .map_or("it never reported Ready".to_string(), |r| format!(
                    "Ready=False {r}"
                ))
        )));
    }
    wait_for(
        &deployments,
        QUEUE,
        "the probe's queue Ready",
        plan.queue_ready,
        |d: Option<&Deployment>| d.is_some_and(crate::cluster::deployment_available),
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    .map_err(|e| Stop::error(format!("the probe's queue did not start: {e}")))?;
    // Idle at zero: KEDA scales an inactive new ScaledObject to zero right away (after
    // initialCooldownPeriod).
    wait_for(
        &deployments,
        &subject.target,
        "the workload idle at zero",
        plan.idle,
        |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas == Some(0)),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await
    .map_err(|e| {
        Stop::fail(format!(
            "{} did not idle at zero with the queue empty: {e}",
            subject.target
        ))
    })?;
    recorder.mark(IDLE);
    // The work: queued + 1 items, one of which the busy worker holds.
    let items = subject.spec.queued as u64 + 1;
    enqueue(namespace, items).await?;
    recorder.mark(ENQUEUED);
    notes.push(format!(
        "enqueued {items} items through POST /enqueue (the worker holds one): the query should read {}",
        subject.spec.queued
    ));
    let expected = subject.spec.expected();
    let scaled = wait_for(
        &deployments,
        &subject.target,
        &format!("the workload at the {expected} replicas the threshold implies"),
        plan.scale_up,
        move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(0) >= expected),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await;
    // Never woken: nothing more to watch (the judge says why, with the query's values).
    if let Err(e) = scaled {
        let replicas = deployments
            .get_opt(&subject.target)
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec.replicas);
        if replicas == Some(0) {
            notes.push(format!("stopped waiting: {e}"));
            return Ok(());
        }
    }
    // Whether it goes past it: two HPA syncs of watching (a timeout is the good case).
    let _ = wait_for(
        &deployments,
        &subject.target,
        "no scale-up past the count the threshold implies",
        plan.overshoot,
        move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(0) > expected),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await;
    // Empty the queue: a new queue pod (empty), the old one gone once the new is scraped.
    let restarted = json!({"spec": {"template": {"metadata": {"annotations": {
        "autoscale-conformance/emptied-at": Utc::now().to_rfc3339()
    }}}}});
    deployments
        .patch(QUEUE, &PatchParams::default(), &Patch::Merge(&restarted))
        .await
        .map_err(|e| Stop::error(format!("could not empty the probe's queue: {e}")))?;
    wait_for(
        &deployments,
        QUEUE,
        "the probe's queue emptied (its old pod gone)",
        plan.drain,
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                let status = d.status.clone().unwrap_or_default();
                status.observed_generation >= d.metadata.generation
                    && status.updated_replicas == Some(1)
                    && status.replicas == Some(1)
                    && status.available_replicas == Some(1)
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    .map_err(|e| Stop::error(format!("the probe's queue did not restart empty: {e}")))?;
    recorder.mark(DRAINED);
    let _ = wait_for(
        &deployments,
        &subject.target,
        "the workload back at zero",
        plan.zero,
        |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas == Some(0)),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await;
    let target = subject.target.clone();
    let _ = recorder
        .caught_up(MARGIN, move |t| {
            t.replicas(&target).last().is_some_and(|(_, r, _)| *r == 0)
        })
        .await;
    Ok(())
}

/// POST /enqueue?n=`items` to the queue's pod, through the API server's pod proxy.
async fn enqueue(namespace: &TestNamespace, items: u64) -> Result<(), Stop> {
    let pods: Api<Pod> = namespace.api();
    let selector = format!("{}={}", QUEUE_LABEL.0, QUEUE_LABEL.1);
    let pod = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Stop::error(format!("could not list the queue's pods: {e}")))?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| p.metadata.name)
        .ok_or_else(|| Stop::error("the probe's queue has no pod".into()))?;
    let uri = format!(
        "/api/v1/namespaces/{}/pods/{pod}:8080/proxy/enqueue?n={items}",
        namespace.name
    );
    let request = http::Request::post(&uri)
        .body(Vec::new())
        .map_err(|e| Stop::error(format!("POST {uri}: {e}")))?;
    crate::cluster::within(
        Duration::from_secs(15),
        "the queue's POST /enqueue",
        async { namespace.client().request_text(request).await },
    )
    .await
    .map_err(|e| Stop::error(e.to_string()))?
    .map_err(|e| Stop::error(format!("POST {uri}: {e}")))?;
    Ok(())
}

/// Samples the query and the ScaledObject every [`SAMPLE_EVERY`].
#[derive(Clone)]
struct Sampler {
    client: kube::Client,
    prometheus: Prometheus,
    namespace: String,
    scaled_object: String,
    query: String,
    recording: Arc<Mutex<KedaRecording>>,
    /// The recorder's `t = 0`, on the monotonic clock and on the wall clock.
    clock: tokio::time::Instant,
    started_at: DateTime<Utc>,
}

impl Sampler {
    async fn run(self) {
        loop {
            self.sample().await;
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    async fn sample(&self) {
        let t = self.clock.elapsed().as_secs_f64();
        let value = match self.prometheus.query(&self.query).await {
            Ok(result) => QuerySample {
                t,
                value: result.first().map(|s| s.value),
                series: result.len(),
                error: None,
            },
            Err(e) => QuerySample {
                t,
                value: None,
                series: 0,
                error: Some(e.to_string()),
            },
        };
        let state = keda::scaled_object(&self.client, &self.namespace, &self.scaled_object)
            .await
            .ok()
            .flatten()
            .map(|o| ScaledObjectState::from_object(t, &o, self.started_at));
        if let Ok(mut recording) = self.recording.lock() {
            recording.values.push(value);
            if let Some(state) = state {
                recording.states.push(state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn the_reference_is_picked_rewritten_and_fits_the_cap() {
        let subject = UnderTest::pick(&load_fixture("submissions/reference"), "ac-x")
            .unwrap_or_else(|s| panic!("{}", s.message));
        assert_eq!(subject.target, "batch-inference-processor");
        assert!(
            subject.query.contains("namespace=\"ac-x\""),
            "{}",
            subject.query
        );
        assert_eq!(subject.spec.queued, 15.0);
        assert_eq!(subject.spec.expected(), 2);
        assert_eq!(subject.spec.cooldown, Duration::from_secs(300));
        assert_eq!(
            subject.pod_labels.get("app").map(String::as_str),
            Some("batch-inference")
        );
        let applied = subject.objects.last().unwrap();
        assert_eq!(
            applied
                .pointer("/spec/triggers/0/metadata/query")
                .and_then(Value::as_str),
            Some(subject.query.as_str())
        );
        let intervals = crate::cluster::ClusterIntervals::default();
        let budgets = Budgets::new(&subject.spec, &intervals);
        assert!(
            Plan::new(&subject, &budgets, &intervals)
                .within_cap(&subject.spec)
                .is_ok()
        );
        let queue = queue_deployment(&subject);
        assert_eq!(
            queue
                .pointer("/spec/template/metadata/labels/app")
                .and_then(Value::as_str),
            Some("batch-inference")
        );
        assert_eq!(
            queue.pointer("/spec/selector/matchLabels/app"),
            None,
            "the queue's selector must not match the workload's pods"
        );
    }

    #[test]
    fn a_cooldown_past_the_deadline_fails_before_applying() {
        let mut subject = UnderTest::pick(&load_fixture("submissions/reference"), "ac-x").unwrap();
        subject.spec.cooldown = Duration::from_secs(3600);
        let intervals = crate::cluster::ClusterIntervals::default();
        let budgets = Budgets::new(&subject.spec, &intervals);
        let message = Plan::new(&subject, &budgets, &intervals)
            .within_cap(&subject.spec)
            .unwrap_err();
        assert!(message.contains("cooldownPeriod 3600s"), "{message}");
    }

    #[test]
    fn the_queue_fits_the_namespaces_limit_range() {
        let subject = UnderTest::pick(&load_fixture("submissions/reference"), "ac-x").unwrap();
        // The reference's LimitRange: min 100m / 128Mi per container.
        assert_eq!(subject.queue_resources["requests"]["cpu"], "100m");
        assert_eq!(subject.queue_resources["limits"]["memory"], "134217728");
        let bare = queue_resources(&[]);
        assert_eq!(bare["requests"]["cpu"], "10m");
    }

    #[test]
    fn the_queue_has_a_name_no_submission_may_take() {
        assert!(QUEUE.starts_with(crate::cluster::RESERVED_NAME_PREFIX));
    }

    #[test]
    fn the_queue_is_sized_by_the_threshold() {
        assert_eq!(queue_for(10.0, 0.0, MetricType::AverageValue, 20), Ok(15.0));
        assert_eq!(queue_for(10.0, 0.0, MetricType::AverageValue, 1), Ok(5.0));
        assert_eq!(
            queue_for(10.0, 30.0, MetricType::AverageValue, 20),
            Ok(31.0)
        );
        assert_eq!(queue_for(0.5, 0.0, MetricType::AverageValue, 20), Ok(1.0));
        assert_eq!(queue_for(10.0, 0.0, MetricType::Value, 20), Ok(5.0));
        let never = queue_for(10.0, 50_000.0, MetricType::AverageValue, 20).unwrap_err();
        assert!(never.contains("a threshold never reached"), "{never}");
    }
}

//! Live probe of the CPU HPA criteria (`hpa-cpu`, `hpa-scale-down`): apply the HPA,
//! its target and what the target needs, wait for a settled baseline, drive load
//! through the Service, stop it, and judge the recorded timeline against the HPA's
//! own behaviour.

use super::judge::{Subject, judge_scale_down, judge_scale_up};
use super::scaling::ScalingSpec;
use super::{SCALE_DOWN, SCALE_UP, budget};
use crate::cluster::ClusterIntervals;
use crate::cluster::load_generator::{LoadGenerator, LoadSpec};
use crate::cluster::{EnvironmentError, TestNamespace, wait_for};
use crate::criteria::ProbeContext;
use crate::criteria::Stop;
use crate::criteria::demand::{self, CpuDemand};
use crate::observe::Recorder;
use crate::submission::quantity::parse_quantity;
use crate::submission::{Object, Submission, Typed, selector};
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use serde_json::Value;
use std::time::Duration;

/// The most CPU the probe's load may ask of the cluster, in cores: enough to push any
/// sensible HPA to its ceiling, little enough for a 2-core kind worker.
const MAX_LOAD_CORES: f64 = 0.6;

/// Runs the probe on the submission's first CPU HPA: the verdicts on [`SCALE_UP`] and
/// [`SCALE_DOWN`], both judged from one recorded run.
pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let hpa = match HpaUnderTest::pick(context.submission) {
        Ok(hpa) => hpa,
        Err(message) => return both(Outcome::Fail, message, Vec::new(), Timeline::default()),
    };
    let intervals = namespace.cluster.intervals;
    if let Err(message) = budget::within_cap(&intervals, &hpa.spec) {
        return both(Outcome::Fail, message, Vec::new(), Timeline::default());
    }
    // The timeline is named after the namespace, which names the run.
    let name = namespace.name.clone();
    let recorder = Recorder::start(namespace, &name, context.timelines);
    let mut notes = Vec::new();
    // Deleting the load generator's namespace waits for it: only after the recording.
    let mut load_namespace = None;
    let driven = drive(
        namespace,
        context.submission,
        &hpa,
        &recorder,
        &mut notes,
        &mut load_namespace,
    )
    .await;
    let timeline = recorder.finish();
    let verdicts = match driven {
        Ok(()) => judge(&hpa, &timeline, &intervals, &notes),
        Err(stop) => both(stop.outcome, stop.message, notes, timeline),
    };
    drop(load_namespace);
    verdicts
}

/// What the probe drives: the submission's first HPA with a CPU target, read as the
/// API server defaults it, and the objects it needs.
struct HpaUnderTest {
    name: String,
    spec: ScalingSpec,
    /// The HPA, its target, the Services selecting the target's pods, and the
    /// LimitRanges and ResourceQuotas of its namespace (see [`objects_for`]).
    objects: Vec<Value>,
    /// The scale target's name.
    target: String,
}

impl HpaUnderTest {
    fn pick(submission: &Submission) -> Result<HpaUnderTest, String> {
        let Some((object, hpa)) = cpu_hpa(submission) else {
            return Err(
                "expected an autoscaling/v2 HPA with a CPU Utilization target; found none".into(),
            );
        };
        let (objects, target) = objects_for(submission, object)?;
        Ok(HpaUnderTest {
            name: object.name.clone(),
            spec: ScalingSpec::from_hpa(hpa),
            objects,
            target,
        })
    }
}

/// The submission's first HPA with a CPU Utilization target: the one the probe drives.
fn cpu_hpa(submission: &Submission) -> Option<(&Object, &HorizontalPodAutoscaler)> {
    submission.objects.iter().find_map(|o| match &o.typed {
        Typed::HorizontalPodAutoscaler(h)
            if ScalingSpec::from_hpa(h).cpu_target_utilization.is_some() =>
        {
            Some((o, h.as_ref()))
        }
        _ => None,
    })
}

/// What the probe's pods request at its peak: the target at the HPA's maxReplicas (the
/// load calls for more than that, see [`calibrate_rate`]) and the load generator.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let Some((object, hpa)) = cpu_hpa(submission) else {
        return CpuDemand::NONE;
    };
    let reference = &hpa.spec.scale_target_ref;
    submission
        .find_workload(
            Some(&reference.kind),
            &reference.name,
            object.namespace.as_deref(),
        )
        .map_or(CpuDemand::NONE, |target| {
            demand::pods_of(submission, target, i64::from(hpa.spec.max_replicas))
                + demand::LOAD_GENERATOR
        })
}

/// One verdict for both criteria when the probe stops before there is anything to
/// judge; the evidence is what the cluster said meanwhile (its Warning events: a
/// ReplicaSet refused by a quota, a pod that cannot be scheduled) and the timeline.
fn both(outcome: Outcome, message: String, notes: Vec<String>, timeline: Timeline) -> Vec<Verdict> {
    let mut evidence = Vec::new();
    evidence.extend(Evidence::notes(&notes));
    evidence.extend(timeline.stop_evidence());
    [SCALE_UP, SCALE_DOWN]
        .into_iter()
        .map(|id| Verdict::new(id, outcome, message.clone(), evidence.clone()))
        .collect()
}

/// Applies the objects, settles a baseline, keeps load on until the target stops
/// scaling up, stops it and waits for the way back to minReplicas; every step is on the
/// recorder's timeline. The load generator's namespace is left in `load_namespace`.
async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    hpa: &HpaUnderTest,
    recorder: &Recorder,
    notes: &mut Vec<String>,
    load_namespace: &mut Option<TestNamespace>,
) -> Result<(), Stop> {
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&hpa.objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes.iter().cloned());
    settle_baseline(namespace, hpa, recorder).await?;
    recorder.mark("baseline");
    let (load, plan) = start_load(namespace, hpa, notes, load_namespace).await?;
    let load_start = recorder.mark("load-start");
    keep_load_on(namespace, hpa, recorder, load_start, &plan).await;
    let _ = load.stop().await;
    recorder.mark("load-stop");
    await_scale_down(namespace, hpa, recorder).await;
    Ok(())
}

/// Baseline: the target at minReplicas, all ready, the HPA computing CPU utilization.
async fn settle_baseline(
    namespace: &TestNamespace,
    hpa: &HpaUnderTest,
    recorder: &Recorder,
) -> Result<(), Stop> {
    let intervals = namespace.cluster.intervals;
    let hpas: Api<HorizontalPodAutoscaler> = namespace.api();
    let deployments: Api<Deployment> = namespace.api();
    let baseline_budget =
        intervals.first_pod_metrics() + intervals.metric_lag() + Duration::from_secs(30);
    let hpa_ready = wait_for(
        &hpas,
        &hpa.name,
        "the HPA to compute CPU utilization",
        baseline_budget,
        |h: Option<&HorizontalPodAutoscaler>| hpa_active(h) || hpa_hopeless(h),
        hpa_conditions,
    );
    // A target whose pods the API server refuses (a quota the pods do not satisfy)
    // never gives the HPA a metric: stop at the Deployment's ReplicaFailure instead of
    // waiting out the whole budget.
    let pods_refused = wait_for(
        &deployments,
        &hpa.target,
        "the target's pods to be refused",
        baseline_budget,
        |d: Option<&Deployment>| replica_failure(d).is_some(),
        |_| String::new(),
    );
    let hpa_ready = tokio::select! {
        ready = hpa_ready => ready.map(|_| ()),
        refused = pods_refused => match refused {
            Ok(_) => Err(EnvironmentError::NotReady {
                what: "HPA".into(),
                detail: "the target's pods were refused".into(),
            }),
            Err(e) => Err(e),
        },
    };
    let hpa_now = hpas.get_opt(&hpa.name).await.ok().flatten();
    if hpa_ready.is_err() || !hpa_active(hpa_now.as_ref()) {
        // Pods that were never created explain "no metrics" better than the HPA can.
        let deployment_now = deployments.get_opt(&hpa.target).await.ok().flatten();
        let refused = replica_failure(deployment_now.as_ref())
            .map(|failure| format!("; the target's pods were refused: ReplicaFailure {failure}"))
            .or_else(|| {
                recorder
                    .snapshot()
                    .event_lines()
                    .into_iter()
                    .find(|line| line.contains(" FailedCreate: "))
                    .map(|line| format!("; the target's pods were refused: {line}"))
            })
            .unwrap_or_default();
        return Err(Stop::fail(format!(
            "expected the HPA {} to compute a CPU utilization (within {:.0}s); it reports: {}{refused}",
            hpa.name,
            baseline_budget.as_secs_f64(),
            hpa_conditions(hpa_now.as_ref())
        )));
    }
    let min = hpa.spec.min_replicas;
    wait_for(
        &deployments,
        &hpa.target,
        "the target to settle at minReplicas",
        baseline_budget,
        move |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                d.spec.replicas == Some(min)
                    && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(min)
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    .map_err(|e| Stop::error(format!("no settled baseline: {e}")))?;
    Ok(())
}

/// How long the load stays on.
struct LoadPlan {
    /// The most it stays on.
    budget: Duration,
    /// Once the target scaled up, a stretch this long without a further change ends it.
    quiet: Duration,
}

/// Starts the load generator, through the Service by DNS name, in a namespace of its
/// own (left in `load_namespace`), at a rate that pushes the HPA to its ceiling.
async fn start_load(
    namespace: &TestNamespace,
    hpa: &HpaUnderTest,
    notes: &mut Vec<String>,
    load_namespace: &mut Option<TestNamespace>,
) -> Result<(LoadGenerator, LoadPlan), Stop> {
    let intervals = namespace.cluster.intervals;
    let spec = &hpa.spec;
    let target = &hpa.target;
    let Some((service, port)) = service_port(&hpa.objects) else {
        return Err(Stop::fail(format!(
            "no Service selects the pods of {target}: nothing to send load to"
        )));
    };
    let target_value = hpa.objects.iter().find(|o| {
        o.pointer("/metadata/name").and_then(Value::as_str) == Some(target.as_str())
            && o.get("kind").and_then(Value::as_str) != Some("Service")
    });
    let (request, cpu_ms) = target_value.map(container_cpu).unwrap_or((None, 20.0));
    let rate = calibrate_rate(spec, request.unwrap_or(0.1), cpu_ms);
    // Within the cap (`run` refused a spec whose load would not fit); `min` keeps every
    // wait derived from the submission's numbers bounded all the same.
    let quiet = budget::quiet(&intervals, spec).min(budget::MAX_PROBE);
    let load_budget = budget::load(&intervals, spec).min(budget::MAX_PROBE);
    let load_spec = LoadSpec {
        url: LoadSpec::service_url(&service, &namespace.name, port, "/predict"),
        rate_rps: rate,
        duration: load_budget,
        concurrency: 64,
    };
    notes.push(format!(
        "load: {rate} req/s of {cpu_ms} ms CPU each to {} for at most {}s",
        load_spec.url,
        load_budget.as_secs()
    ));
    let own = namespace
        .load_namespace()
        .await
        .map_err(|e| Stop::error(format!("no namespace for the load generator: {e}")))?;
    let own = load_namespace.insert(own);
    let load = LoadGenerator::start(own, "hpa-load", load_spec)
        .await
        .map_err(|e| Stop::error(format!("could not start the load: {e}")))?;
    load.wait_running(intervals.pod_ready * 2)
        .await
        .map_err(|e| Stop::error(format!("the load generator did not start: {e}")))?;
    let plan = LoadPlan {
        budget: load_budget,
        quiet,
    };
    Ok((load, plan))
}

/// Keeps the load on until maxReplicas, or no further scale-up for a policy period
/// after the first one, or the budget is spent.
async fn keep_load_on(
    namespace: &TestNamespace,
    hpa: &HpaUnderTest,
    recorder: &Recorder,
    load_start: f64,
    plan: &LoadPlan,
) {
    let deployments: Api<Deployment> = namespace.api();
    let (min, max) = (hpa.spec.min_replicas, hpa.spec.max_replicas);
    loop {
        let elapsed = recorder.now() - load_start;
        if elapsed >= plan.budget.as_secs_f64() {
            break;
        }
        let current = deployments
            .get_opt(&hpa.target)
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec.replicas)
            .unwrap_or(min);
        if current >= max {
            break;
        }
        let scaled = current > min;
        let wait = if scaled {
            plan.quiet
        } else {
            Duration::from_secs_f64(plan.budget.as_secs_f64() - elapsed)
        };
        let changed = wait_for(
            &deployments,
            &hpa.target,
            "a replica change under load",
            wait,
            move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas != Some(current)),
            |_| String::new(),
        )
        .await;
        if changed.is_err() && scaled {
            break;
        }
    }
}

/// Scale-down: waits until the target is back at minReplicas, or the budget runs out
/// (the judge says which), and lets the recorder catch up.
async fn await_scale_down(namespace: &TestNamespace, hpa: &HpaUnderTest, recorder: &Recorder) {
    let intervals = namespace.cluster.intervals;
    let deployments: Api<Deployment> = namespace.api();
    let min = hpa.spec.min_replicas;
    let peak = recorder
        .snapshot()
        .replicas(&hpa.target)
        .iter()
        .map(|(_, r, _)| *r)
        .max()
        .unwrap_or(min);
    let down_budget = (budget::scale_down(&intervals, &hpa.spec, peak)
        + intervals.observation_slack)
        .min(budget::MAX_PROBE);
    let _ = wait_for(
        &deployments,
        &hpa.target,
        "the target back at minReplicas",
        down_budget,
        move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(1) <= min),
        |d| format!("replicas {:?}", d.map(|d| d.spec.replicas)),
    )
    .await;
    // Our wait saw the end through its own watch; let the recorder's catch up.
    let _ = recorder
        .caught_up(intervals.observation_slack, |t| {
            t.replicas(&hpa.target)
                .last()
                .is_some_and(|(_, r, _)| *r <= min)
        })
        .await;
}

/// Both judges on the recorded run, each verdict with the probe's notes and the
/// timeline file.
fn judge(
    hpa: &HpaUnderTest,
    timeline: &Timeline,
    intervals: &ClusterIntervals,
    notes: &[String],
) -> Vec<Verdict> {
    let subject = Subject {
        target: &hpa.target,
        hpa: &hpa.name,
    };
    let mut verdicts = vec![
        judge_scale_up(&hpa.spec, subject, timeline, intervals),
        judge_scale_down(&hpa.spec, subject, timeline, intervals),
    ];
    for verdict in &mut verdicts {
        verdict.evidence.push(Evidence::Note {
            text: notes.join("\n"),
        });
        verdict.evidence.extend(timeline.file_evidence());
    }
    verdicts
}

/// The objects one HPA needs: itself, its target, Services selecting the target's
/// pods, and the LimitRanges and ResourceQuotas of its namespace.
pub fn objects_for(submission: &Submission, hpa: &Object) -> Result<(Vec<Value>, String), String> {
    let Typed::HorizontalPodAutoscaler(typed) = &hpa.typed else {
        return Err("not an HPA".into());
    };
    let reference = &typed.spec.scale_target_ref;
    objects_around(submission, hpa, Some(&reference.kind), &reference.name)
}

/// What an autoscaler (an HPA, a ScaledObject) scales, for applying: the LimitRanges and
/// ResourceQuotas of its namespace, its target `kind`/`name`, the Services that select
/// the target's pods, and the autoscaler itself last. Returns them and the target's name.
pub fn objects_around(
    submission: &Submission,
    autoscaler: &Object,
    kind: Option<&str>,
    name: &str,
) -> Result<(Vec<Value>, String), String> {
    let target = submission
        .find_workload(kind, name, autoscaler.namespace.as_deref())
        .ok_or_else(|| {
            format!(
                "{} scales {} {name}, which the submission does not define",
                autoscaler.describe(),
                kind.unwrap_or("Deployment"),
            )
        })?;
    let mut objects = workload_objects(submission, target);
    objects.push(autoscaler.value().clone());
    Ok((objects, target.name.clone()))
}

/// What an autoscaler's target needs to run as the submission meant it: the
/// LimitRanges and ResourceQuotas of its namespace, itself, and the Services selecting
/// its pods (the load goes through them). Shared with the VPA's probe.
pub fn workload_objects(submission: &Submission, target: &Object) -> Vec<Value> {
    let namespace = target.namespace.as_deref();
    let pod_labels = target
        .pod_template()
        .and_then(|t| t.labels.cloned())
        .unwrap_or_default();
    let mut objects: Vec<Value> = submission
        .objects
        .iter()
        .filter(|o| o.same_namespace(namespace))
        .filter(|o| matches!(o.typed, Typed::LimitRange(_) | Typed::ResourceQuota(_)))
        .map(|o| o.value().clone())
        .collect();
    objects.push(target.value().clone());
    for service in submission
        .objects
        .iter()
        .filter(|o| o.same_namespace(namespace))
    {
        if let Typed::Service(s) = &service.typed {
            let selector = s
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            if !selector.is_empty()
                && selector::matches(&selector::of_labels(&selector), &pod_labels)
            {
                objects.push(service.value().clone());
            }
        }
    }
    objects
}

/// Requests per second that push `spec` to its ceiling (1.5 x target at maxReplicas),
/// capped at [`MAX_LOAD_CORES`] of total work.
pub fn calibrate_rate(spec: &ScalingSpec, cpu_request_cores: f64, cpu_ms_per_request: f64) -> f64 {
    let target = f64::from(spec.cpu_target_utilization.unwrap_or(50)) / 100.0;
    let seconds = (cpu_ms_per_request / 1000.0).max(0.001);
    let wanted = f64::from(spec.max_replicas) * cpu_request_cores * target * 1.5 / seconds;
    wanted.min(MAX_LOAD_CORES / seconds).max(1.0).round()
}

pub(crate) fn container_cpu(target: &Value) -> (Option<f64>, f64) {
    let container = target.pointer("/spec/template/spec/containers/0");
    let request = container
        .and_then(|c| c.pointer("/resources/requests/cpu"))
        .and_then(|q| {
            q.as_str()
                .map(str::to_string)
                .or_else(|| q.as_f64().map(|n| n.to_string()))
        })
        .and_then(|q| parse_quantity(&q).ok());
    let cpu_ms = container
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

pub(crate) fn service_port(objects: &[Value]) -> Option<(String, i32)> {
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

fn hpa_conditions(hpa: Option<&HorizontalPodAutoscaler>) -> String {
    hpa.and_then(|h| h.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .map(|c| {
            c.iter()
                .map(|c| {
                    format!(
                        "{}={} ({}): {}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or("-"),
                        c.message.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| "no status yet".into())
}

/// The Deployment's ReplicaFailure condition, when its ReplicaSet cannot create pods.
fn replica_failure(deployment: Option<&Deployment>) -> Option<String> {
    deployment
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| {
                    c.type_.as_deref() == Some("ReplicaFailure")
                        && c.status.as_deref() == Some("True")
                })
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.reason.as_deref().unwrap_or("-"),
                        c.message.as_deref().unwrap_or("-")
                    )
                })
        })
}

/// True once the HPA computes a CPU utilization and may scale.
fn hpa_active(hpa: Option<&HorizontalPodAutoscaler>) -> bool {
    let Some(status) = hpa.and_then(|h| h.status.as_ref()) else {
        return false;
    };
    let has_cpu = status.current_metrics.iter().flatten().any(|m| {
        m.resource
            .as_ref()
            .is_some_and(|r| r.name == "cpu" && r.current.average_utilization.is_some())
    });
    let active = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "ScalingActive" && c.status == "True");
    has_cpu && active
}

/// A failure of the student's objects the HPA reports and that waiting will not cure.
fn hpa_hopeless(hpa: Option<&HorizontalPodAutoscaler>) -> bool {
    hpa.and_then(|h| h.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "ScalingActive"
                    && c.status == "False"
                    && c.message
                        .as_deref()
                        .is_some_and(|m| m.contains("missing request for"))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn load_is_calibrated_to_the_ceiling_and_capped() {
        let mut spec = ScalingSpec {
            min_replicas: 1,
            max_replicas: 4,
            cpu_target_utilization: Some(50),
            scale_up: ScalingSpec::default_scale_up(),
            scale_down: ScalingSpec::default_scale_down(),
        };
        // 4 pods x 0.1 core x 50 % x 1.5 = 0.3 cores of 10 ms requests.
        assert_eq!(calibrate_rate(&spec, 0.1, 10.0), 30.0);
        // The exercise's 10 x 0.2 core would want 1.5 cores: capped at 0.6.
        spec.max_replicas = 10;
        assert_eq!(calibrate_rate(&spec, 0.2, 20.0), 30.0);
    }

    /// The cap of issue 12 leaves the reference's and the fast fixture's HPAs alone.
    #[test]
    fn the_fixtures_hpas_fit_the_probes_cap() {
        for relative in ["submissions/reference", "hpa_cpu/fast"] {
            let submission = load_fixture(relative);
            let Ok(hpa) = HpaUnderTest::pick(&submission) else {
                panic!("{relative}: no CPU HPA")
            };
            let fits = budget::within_cap(&ClusterIntervals::default(), &hpa.spec);
            assert!(fits.is_ok(), "{relative}: {fits:?}");
        }
    }
}

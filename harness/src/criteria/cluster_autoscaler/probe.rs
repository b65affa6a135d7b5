//! Live probe of `cluster-autoscaler` (Task 6): the submission's large workload (GPU
//! training, or pods bigger than any node) is applied with one replica more than the
//! existing nodes can take, the cluster's Cluster Autoscaler (its kwok provider's
//! simulated node groups, [`crate::cluster::autoscaler`]) must add nodes to the right
//! group and the pods must be bound to them; the probe then ends the work and the nodes
//! must go, no earlier than the unneeded time. The autoscaler is one per cluster: the
//! probe holds its lock (and the GPU pool's: the pool's static nodes are part of the
//! picture) from configuring it to turning it off.

use super::ID;
use super::judge::{Observed, judge};
use crate::cluster::autoscaler::{
    self, CLUSTER_AUTOSCALER_LOCK, CPU_GROUP, GPU_GROUP, KWOK_PROVIDER_TAINT, NODE_GROUP_LABEL,
    SCAN_INTERVAL, Settings,
};
use crate::cluster::lock::ClusterLock;
use crate::cluster::{EnvironmentError, GPU_RESOURCE, TestNamespace, poll_until};
use crate::criteria::demand::CpuDemand;
use crate::criteria::gpu_pool::probe::GPU_POOL_LOCK;
use crate::criteria::{ProbeContext, Stop};
use crate::observe::Recorder;
use crate::submission::quantity::parse_quantity;
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use regex::Regex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

/// The unneeded time when the submission configures none: one minute.
const DEFAULT_UNNEEDED: Duration = Duration::from_secs(60);
/// The longest unneeded time the probe waits out (a student's 10 or 30 minutes would
/// hold the cluster's one autoscaler that long).
const MAX_UNNEEDED: Duration = Duration::from_secs(120);
/// Pods that need at least this much CPU go to the CPU pool's nodes (4 CPU): more than
/// the real nodes give a probe.
const LARGE_CPU_CORES: f64 = 2.0;
/// Queued behind other probes of the autoscaler or of the GPU pool.
const LOCK_BUDGET: Duration = Duration::from_secs(900);

/// The work the probe gives the autoscaler.
struct Plan<'a> {
    workload: &'a Object,
    group: &'static str,
    unneeded_time: Duration,
    notes: Vec<String>,
}

impl<'a> Plan<'a> {
    fn pick(submission: &'a Submission) -> Result<Plan<'a>, String> {
        let workloads = || {
            submission.objects.iter().filter(|o| {
                matches!(
                    o.typed,
                    Typed::Deployment(_) | Typed::StatefulSet(_) | Typed::Job(_)
                )
            })
        };
        let (workload, group) = workloads()
            .find(|o| requests(o, GPU_RESOURCE) > 0.0)
            .map(|o| (o, GPU_GROUP))
            .or_else(|| {
                workloads()
                    .find(|o| requests(o, "cpu") >= LARGE_CPU_CORES)
                    .map(|o| (o, CPU_GROUP))
            })
            .ok_or_else(|| {
                format!(
                    "expected a workload that needs a node the cluster does not have yet (Task 6.1: GPU training, or pods requesting {LARGE_CPU_CORES} CPU or more); found none, so nothing would make a Cluster Autoscaler add a node"
                )
            })?;
        let mut notes = Vec::new();
        let unneeded_time = match configured_unneeded_time(submission) {
            Some((time, at)) if time > MAX_UNNEEDED => {
                notes.push(format!(
                    "the submission's scale-down unneeded time ({}s, {at}) is capped at {}s for the probe",
                    time.as_secs(),
                    MAX_UNNEEDED.as_secs()
                ));
                MAX_UNNEEDED
            }
            Some((time, at)) => {
                notes.push(format!(
                    "scale-down unneeded time {}s, from {at}",
                    time.as_secs()
                ));
                time
            }
            None => {
                notes.push(format!(
                    "the submission sets no --scale-down-unneeded-time: the probe uses {}s",
                    DEFAULT_UNNEEDED.as_secs()
                ));
                DEFAULT_UNNEEDED
            }
        };
        Ok(Plan {
            workload,
            group,
            unneeded_time,
            notes,
        })
    }
}

/// What one pod of `workload` requests of `resource` (summed over its containers).
fn requests(workload: &Object, resource: &str) -> f64 {
    workload.pod_template().map_or(0.0, |t| {
        t.spec
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .filter_map(|q| parse_quantity(&q.0).ok())
            .sum()
    })
}

static UNNEEDED_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"scale-down-unneeded-time[\s=:]+\W?(\d+)\s*(h|m|s)?\b").expect("static regex")
});

/// `--scale-down-unneeded-time` as the submission sets it (a CA Deployment's args, Helm
/// values, a script), and where.
fn configured_unneeded_time(submission: &Submission) -> Option<(Duration, String)> {
    let texts = submission
        .scripts
        .iter()
        .chain(&submission.other_text)
        .chain(&submission.docs)
        .map(|f| (f.path.clone(), f.text.clone()))
        .chain(submission.objects.iter().map(|o| {
            (
                o.location().file.clone(),
                serde_json::to_string(o.value()).unwrap_or_default(),
            )
        }));
    texts
        .into_iter()
        .find_map(|(path, text)| unneeded_in(&text).map(|time| (time, path)))
}

/// The first `scale-down-unneeded-time` with a value in `text`; a bare number is taken
/// as minutes, as guides write it (the flag itself wants a unit).
fn unneeded_in(text: &str) -> Option<Duration> {
    let found = UNNEEDED_FLAG.captures(text)?;
    let number: u64 = found[1].parse().ok()?;
    let seconds = match found.get(2).map(|m| m.as_str()) {
        Some("h") => number.saturating_mul(3600),
        Some("s") => number,
        _ => number.saturating_mul(60),
    };
    Some(Duration::from_secs(seconds))
}

/// The autoscaler runs one pod (50m) on a real node; the work goes to simulated nodes.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    if Plan::pick(submission).is_ok() {
        CpuDemand::millis(50)
    } else {
        CpuDemand::NONE
    }
}

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let plan = match Plan::pick(context.submission) {
        Ok(plan) => plan,
        Err(message) => return vec![Verdict::new(ID.0, Outcome::Fail, message, Vec::new())],
    };
    let recorder = Recorder::start(
        namespace,
        &format!("{ID}-{}", namespace.name),
        context.timelines,
    );
    let observed = Box::pin(observe(namespace, context.submission, &plan, &recorder)).await;
    let timeline = recorder.finish();
    let mut verdict = match observed {
        Ok(mut observed) => {
            observed.events = timeline
                .event_lines()
                .into_iter()
                .filter(|l| {
                    [
                        "TriggeredScaleUp",
                        "NotTriggerScaleUp",
                        "FailedScheduling",
                        "ScaleDown",
                    ]
                    .iter()
                    .any(|r| l.contains(r))
                })
                .collect();
            let mut verdict = judge(&observed);
            verdict.evidence.extend(Evidence::notes(&plan.notes));
            verdict
        }
        Err(stop) => {
            let mut evidence: Vec<Evidence> = Evidence::notes(&plan.notes).into_iter().collect();
            evidence.extend(timeline.stop_evidence());
            Verdict::new(ID.0, stop.outcome, stop.message, evidence)
        }
    };
    verdict.evidence.extend(timeline.file_evidence());
    vec![verdict]
}

/// An environment that cannot run the probe: its error, not the submission's fault.
fn environment(e: EnvironmentError) -> Stop {
    Stop::error(format!(
        "environment error (not the submission's fault): {e}"
    ))
}

/// Takes the locks, runs the autoscaler for the work, and always turns it off again.
async fn observe(
    namespace: &mut TestNamespace,
    submission: &Submission,
    plan: &Plan<'_>,
    recorder: &Recorder,
) -> Result<Observed, Stop> {
    let client = namespace.client();
    // Always in this order (the GPU pool's probe takes only the second): no deadlock.
    let mut autoscaler_lock = ClusterLock::acquire(
        &client,
        CLUSTER_AUTOSCALER_LOCK,
        &namespace.name,
        LOCK_BUDGET,
    )
    .await
    .map_err(environment)?;
    let gpu_lock = ClusterLock::acquire(&client, GPU_POOL_LOCK, &namespace.name, LOCK_BUDGET).await;
    let mut gpu_lock = match gpu_lock {
        Ok(lock) => lock,
        Err(e) => {
            autoscaler_lock.release().await;
            return Err(environment(e));
        }
    };
    recorder.mark(&format!(
        "locks held after {:.0}s in the queue",
        (autoscaler_lock.waited + gpu_lock.waited).as_secs_f64()
    ));
    // Nodes a killed probe left behind would be counted as this one's.
    autoscaler::stop(&client).await;
    let observed = observe_locked(namespace, submission, plan, recorder).await;
    autoscaler::stop(&client).await;
    recorder.mark("autoscaler-off");
    gpu_lock.release().await;
    autoscaler_lock.release().await;
    observed
}

async fn observe_locked(
    namespace: &mut TestNamespace,
    submission: &Submission,
    plan: &Plan<'_>,
    recorder: &Recorder,
) -> Result<Observed, Stop> {
    let client = namespace.client();
    let intervals = namespace.cluster.intervals;
    let settings = Settings {
        unneeded_time: plan.unneeded_time,
    };
    autoscaler::start(&client, settings, intervals.pod_ready * 4)
        .await
        .map_err(environment)?;
    recorder.mark(&format!(
        "autoscaler-on: unneeded time {}s",
        plan.unneeded_time.as_secs()
    ));

    // The existing nodes the work may use: the GPU pool's static nodes (CPU work is kept
    // to its group: the real nodes are the other probes').
    let existing = if plan.group == GPU_GROUP {
        static_gpu_nodes(&client).await
    } else {
        Vec::new()
    };
    let pods = existing.len() + 1;
    let (objects, resource) = work_objects(submission, plan, pods);
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
        .map_err(|e| Stop::fail(crate::criteria::refusal(submission, &e)))?;
    let start = recorder.mark("work-applied");
    let mut observed = Observed {
        group: plan.group.to_string(),
        workload: plan.workload.describe(),
        pods,
        beyond_existing: 1,
        unneeded_time: plan.unneeded_time,
        scale_up_budget: SCAN_INTERVAL * 3 + intervals.pod_ready * 3,
        scale_down_budget: plan.unneeded_time + SCAN_INTERVAL * 4 + intervals.pod_ready,
        scan_interval: SCAN_INTERVAL,
        notes: applied.notes,
        ..Observed::default()
    };
    let selector = plan.workload.pod_selector();
    let pods_api: Api<Pod> = namespace.api();
    let added: std::sync::Mutex<BTreeMap<String, f64>> = std::sync::Mutex::default();
    let bound = poll_until(observed.scale_up_budget, Duration::from_secs(1), || async {
        for node in autoscaler::group_nodes(&client, Some(plan.group)).await {
            if let Some(name) = node.metadata.name {
                let mut added = added.lock().unwrap_or_else(|p| p.into_inner());
                added
                    .entry(name.clone())
                    .or_insert_with(|| recorder.mark(&format!("node-added: {name}")) - start);
            }
        }
        let list = pods_api
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        let bound: Vec<(String, String)> = list
            .items
            .iter()
            .filter_map(|p| {
                Some((
                    p.metadata.name.clone()?,
                    p.spec.as_ref()?.node_name.clone()?,
                ))
            })
            .collect();
        (bound.len() >= pods).then_some(bound)
    })
    .await;
    observed.added = added
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect();
    observed.added.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Read while it runs: turning it off deletes it.
    observed.status = Some(autoscaler::status(&client).await);
    if let Some(bound) = bound {
        observed.all_bound_at = Some(recorder.mark("work-bound") - start);
        let group_nodes: Vec<String> = autoscaler::group_nodes(&client, Some(plan.group))
            .await
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        observed.misplaced = bound
            .iter()
            .filter(|(_, node)| !group_nodes.contains(node) && !existing.contains(node))
            .cloned()
            .collect();
        observed.bound_to = bound;
    }

    // The work ends: the nodes become unneeded.
    let workloads: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace.name, &resource);
    let _ = workloads
        .delete(&plan.workload.name, &DeleteParams::foreground())
        .await;
    observed.work_ended_at = Some(recorder.mark("work-ended") - start);
    if observed.added.is_empty() {
        return Ok(observed);
    }
    let gone = poll_until(
        observed.scale_down_budget,
        Duration::from_secs(2),
        || async {
            autoscaler::group_nodes(&client, Some(plan.group))
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    if gone.is_some() {
        observed.removed_at = Some(recorder.mark("group-empty") - start);
    }
    Ok(observed)
}

/// The GPU pool's nodes that are not the autoscaler's (ci/addons/gpu-pool.yaml's).
async fn static_gpu_nodes(client: &kube::Client) -> Vec<String> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels(&autoscaler::static_gpu_pool_selector()))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

/// The workload (and the PriorityClass it names) with `pods` replicas (a Job: as many
/// in parallel), its pods tolerating the kwok provider's taint (as any pod meant for
/// its simulated nodes must); CPU work is kept to the CPU group's nodes. Returns the
/// objects and the workload's API resource.
fn work_objects(
    submission: &Submission,
    plan: &Plan<'_>,
    pods: usize,
) -> (Vec<Value>, ApiResource) {
    let mut objects = Vec::new();
    let workload = plan.workload;
    if let Some(priority) = submission.priority_class_of(workload) {
        objects.push(priority.value().clone());
    }
    let mut value = workload.value().clone();
    if workload.kind == "Job" {
        value["spec"]["parallelism"] = json!(pods);
        value["spec"]["completions"] = json!(pods);
    } else {
        value["spec"]["replicas"] = json!(pods);
    }
    if let Some(spec) = value.pointer_mut("/spec/template/spec") {
        let toleration = json!({"key": KWOK_PROVIDER_TAINT.0, "operator": "Equal",
                                "value": KWOK_PROVIDER_TAINT.1, "effect": "NoSchedule"});
        match spec.get_mut("tolerations").and_then(Value::as_array_mut) {
            Some(list) => list.push(toleration),
            None => spec["tolerations"] = json!([toleration]),
        }
        if plan.group == CPU_GROUP {
            spec["nodeSelector"][NODE_GROUP_LABEL] = json!(CPU_GROUP);
        }
    }
    objects.push(value);
    let (group, version) = workload
        .api_version
        .split_once('/')
        .unwrap_or(("", workload.api_version.as_str()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &workload.kind));
    (objects, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_gives_the_autoscaler_its_gpu_training() {
        let submission = crate::submission::load_fixture("submissions/reference");
        let plan = Plan::pick(&submission).expect("a plan");
        assert_eq!(plan.workload.name, "large-training-job");
        assert_eq!(plan.group, GPU_GROUP);
        assert_eq!(plan.unneeded_time, DEFAULT_UNNEEDED);
        let (objects, resource) = work_objects(&submission, &plan, 3);
        assert_eq!(resource.kind, "Deployment");
        let work = objects.last().unwrap();
        assert_eq!(work["spec"]["replicas"], 3);
        let tolerations = work["spec"]["template"]["spec"]["tolerations"]
            .as_array()
            .unwrap();
        assert!(tolerations.iter().any(|t| t["key"] == "kwok-provider"));
        assert!(tolerations.iter().any(|t| t["key"] == "nvidia.com/gpu"));
        assert_eq!(objects[0]["kind"], "PriorityClass");
    }

    #[test]
    fn the_unneeded_time_is_read_where_the_submission_sets_it() {
        for (text, seconds) in [
            ("--scale-down-unneeded-time=5m", 300),
            ("- --scale-down-unneeded-time=90s", 90),
            ("scale-down-unneeded-time: \"2m\"", 120),
            ("scale-down-unneeded-time: 1h", 3600),
        ] {
            let got = unneeded_in(text).expect(text).as_secs();
            assert_eq!(got, seconds, "{text}");
        }
        assert_eq!(
            unneeded_in("`--scale-down-unneeded-time` per node group"),
            None
        );
    }
}

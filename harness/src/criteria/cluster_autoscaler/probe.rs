//! Live probe of `cluster-autoscaler` (Task 6): the submission's large workload (GPU
//! training, or pods bigger than any node) is applied with more replicas than the
//! existing nodes can take (one node beyond the group's minimum), and the cluster's
//! Cluster Autoscaler (its kwok provider's simulated node groups, sized as the
//! submission configures them, capped: [`crate::cluster::autoscaler`]) must add nodes to
//! the right group, the pods must be bound to them, and a serving pod placed beside them
//! must stay off the GPU nodes. Once the work ends, a pod the submission protects from
//! scale-down, left alone on one of the new nodes, must keep it (the autoscaler's own log
//! says why); with it gone, the nodes above the minimum must go, no earlier than the
//! unneeded time. The autoscaler is one per cluster: the probe holds its lock (and the
//! GPU pool's: the pool's static nodes are part of the picture) from configuring it to
//! turning it off.

use super::ID;
use super::judge::{Observed, ProtectionSeen, judge};
use super::plan::{Plan, Protection, SAFE_TO_EVICT};
use crate::cluster::autoscaler::{
    self, CLUSTER_AUTOSCALER_LOCK, CPU_GROUP, GPU_GROUP, KWOK_PROVIDER_TAINT, NODE_GROUP_LABEL,
    SCAN_INTERVAL, Settings,
};
use crate::cluster::lock::ClusterLock;
use crate::cluster::{EnvironmentError, GPU_RESOURCE, TestNamespace, poll_until};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::gpu_pool::probe::GPU_POOL_LOCK;
use crate::criteria::{ProbeContext, Stop};
use crate::observe::Recorder;
use crate::submission::{Object, Submission};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Queued behind other probes of the autoscaler or of the GPU pool.
const LOCK_BUDGET: Duration = Duration::from_secs(900);

/// The autoscaler runs one pod (50m) on a real node; the work goes to simulated nodes.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    match Plan::pick(submission) {
        // And one serving pod, which may go to a real node.
        Ok(plan) => {
            CpuDemand::millis(50)
                + plan
                    .serving
                    .map_or(CpuDemand::NONE, |s| demand::pods_of(submission, s, 1))
        }
        Err(_) => CpuDemand::NONE,
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
        sizes: vec![plan.size],
    };
    autoscaler::start(&client, settings, intervals.pod_ready * 4)
        .await
        .map_err(environment)?;
    recorder.mark(&format!(
        "autoscaler-on: unneeded time {}s, {} {}..{}",
        plan.unneeded_time.as_secs(),
        plan.group,
        plan.size.min,
        plan.size.max
    ));

    // The existing nodes the work may use: the GPU pool's static nodes (CPU work is kept
    // to its group: the real nodes are the other probes').
    let existing = if plan.group == GPU_GROUP {
        static_gpu_nodes(&client).await
    } else {
        Vec::new()
    };
    let beyond = plan.beyond_existing();
    let pods = existing.len() + beyond;
    let (objects, resource) = work_objects(submission, plan, pods);
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    let start = recorder.mark("work-applied");
    let mut observed = Observed {
        group: plan.group.to_string(),
        workload: plan.workload.describe(),
        pods,
        beyond_existing: beyond,
        group_min: plan.size.min,
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
    let group_nodes: Vec<String> = autoscaler::group_nodes(&client, Some(plan.group))
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    if let Some(bound) = bound {
        observed.all_bound_at = Some(recorder.mark("work-bound") - start);
        observed.misplaced = bound
            .iter()
            .filter(|(_, node)| !group_nodes.contains(node) && !existing.contains(node))
            .cloned()
            .collect();
        observed.bound_to = bound;
    }
    // Beside the GPU nodes: a serving pod, free to go to any node whose taints it
    // tolerates (the kwok provider's too).
    if let (Some(serving), true) = (plan.serving, !observed.added.is_empty()) {
        observed.serving = place_serving(namespace, submission, serving, recorder).await;
    }
    // A protected pod alone on a node the work leaves: on the node of the work's last pod.
    let protected_node = observed
        .bound_to
        .iter()
        .rev()
        .map(|(_, node)| node)
        .find(|node| observed.added.iter().any(|(n, _)| n == *node))
        .cloned();
    let protected = match (&plan.protection, protected_node) {
        (Some(protection), Some(node)) => {
            let placed =
                place_protected(namespace, submission, plan, protection, &node, recorder).await;
            if placed.is_none() {
                observed.notes.push(format!(
                    "the pod protected like {} did not run on {node} within {}s: its protection from scale-down was not tested",
                    protection.source.describe(),
                    namespace.cluster.intervals.pod_ready.as_secs()
                ));
            }
            placed
        }
        _ => None,
    };

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
    let removals = Removals::default();
    if let Some(seen) = protected {
        let protection = plan.protection.as_ref().expect("placed for a protection");
        let seen = watch_protection(
            namespace, seen, protection, &observed, &removals, recorder, start,
        )
        .await;
        let deployments: Api<Deployment> = namespace.api();
        let _ = deployments
            .delete(PROTECTED, &DeleteParams::foreground())
            .await;
        observed.protection_ended_at = Some(recorder.mark("protected-pod-deleted") - start);
        observed.protection = Some(seen);
    }
    let min = plan.size.min as usize;
    let gone = poll_until(
        observed.scale_down_budget,
        Duration::from_secs(2),
        || async {
            let left = removals
                .track(&client, plan.group, &observed.added, recorder, start)
                .await;
            (left <= min).then_some(())
        },
    )
    .await;
    if gone.is_some() {
        observed.removed_at = Some(recorder.mark("group-at-min") - start);
    }
    observed.removed = removals.into_inner();
    Ok(observed)
}

/// One serving pod (the submission's template, the kwok provider's taint tolerated) and
/// where it went within a pod's start-up time; it is deleted again.
async fn place_serving(
    namespace: &mut TestNamespace,
    submission: &Submission,
    serving: &Object,
    recorder: &Recorder,
) -> Option<(String, Option<String>, bool)> {
    let mut value = serving.value().clone();
    value["spec"]["replicas"] = json!(1);
    tolerate(&mut value, &[KWOK_PROVIDER_TAINT.0]);
    namespace
        .apply(&submission.as_kubectl_sends(&[value]))
        .await
        .ok()?;
    recorder.mark(&format!("serving-applied: {}", serving.name));
    let pods: Api<Pod> = namespace.api();
    let selector = serving.pod_selector();
    let budget = namespace.cluster.intervals.pod_ready;
    let bound = poll_until(budget, Duration::from_secs(1), || async {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        list.items
            .into_iter()
            .find_map(|p| Some((p.metadata.name?, p.spec?.node_name?)))
    })
    .await;
    let pending_name = || async {
        pods.list(&ListParams::default().labels(&selector))
            .await
            .ok()
            .and_then(|l| l.items.into_iter().find_map(|p| p.metadata.name))
            .unwrap_or_else(|| format!("{}-…", serving.name))
    };
    let seen = match bound {
        Some((pod, node)) => {
            let on_gpu = autoscaler::group_nodes(&namespace.client(), Some(GPU_GROUP))
                .await
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(node.as_str()));
            (pod, Some(node), on_gpu)
        }
        None => (pending_name().await, None, false),
    };
    let deployments: Api<Deployment> = namespace.api();
    let _ = deployments
        .delete(&serving.name, &DeleteParams::foreground())
        .await;
    recorder.mark("serving-removed");
    Some(seen)
}

/// The name of the probe's protected Deployment.
const PROTECTED: &str = "autoscale-conformance-protected";

/// One pod with the protected workload's pod-template labels and annotations (and the
/// submission's PodDisruptionBudgets over them), pinned to `node`, requesting next to
/// nothing: once the work ends, the node is underused and only the protection can keep
/// it. What the pod is, once Running (its Deployment is [`PROTECTED`]).
async fn place_protected(
    namespace: &mut TestNamespace,
    submission: &Submission,
    plan: &Plan<'_>,
    protection: &Protection<'_>,
    node: &str,
    recorder: &Recorder,
) -> Option<ProtectionSeen> {
    let source = protection.source;
    let template = source
        .pod_template()
        .and_then(|t| t.pointer.strip_suffix("/spec"))
        .and_then(|m| source.value().pointer(&format!("{m}/metadata")))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels = template.get("labels").cloned().unwrap_or_else(|| json!({}));
    labels["autoscale-conformance/probe"] = json!("protected");
    let mut pod_metadata = json!({"labels": labels});
    if let Some(annotations) = template.get("annotations") {
        pod_metadata["annotations"] = annotations.clone();
    }
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": PROTECTED},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"autoscale-conformance/probe": "protected"}},
            "template": {
                "metadata": pod_metadata,
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node]}
                        ]}]
                    }}},
                    "containers": [{
                        "name": "held",
                        "image": crate::cluster::INFERENCE_IMAGE,
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                    }],
                    "terminationGracePeriodSeconds": 0
                }
            }
        }
    });
    let mut keys = vec![KWOK_PROVIDER_TAINT.0];
    if plan.group == GPU_GROUP {
        keys.push(GPU_RESOURCE); // the GPU pool's taint key
    }
    tolerate(&mut deployment, &keys);
    let mut objects: Vec<Value> = protection
        .budgets
        .iter()
        .map(|b| b.value().clone())
        .collect();
    objects.push(deployment);
    if let Err(e) = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
    {
        recorder.mark(&format!("protected-refused: {e}"));
        return None;
    }
    let pods: Api<Pod> = namespace.api();
    let running = poll_until(
        namespace.cluster.intervals.pod_ready,
        Duration::from_secs(1),
        || async {
            let list = pods
                .list(&ListParams::default().labels("autoscale-conformance/probe=protected"))
                .await
                .ok()?;
            list.items.into_iter().find_map(|p| {
                let running = p.status.as_ref()?.phase.as_deref() == Some("Running");
                running.then_some(p.metadata.name?)
            })
        },
    )
    .await?;
    recorder.mark(&format!("protected-running: {running} on {node}"));
    // The budgets are read once the work's pods are gone (`watch_protection`).
    let (means, expected_to_hold) = if protection.annotated {
        (
            format!("{SAFE_TO_EVICT}: \"false\" on its pod template"),
            true,
        )
    } else if protection.misplaced_annotation.is_some() {
        ("no protection on the pod itself".to_string(), false)
    } else {
        (String::new(), false)
    };
    Some(ProtectionSeen {
        pod: running,
        node: node.to_string(),
        source: source.describe(),
        means,
        expected_to_hold,
        misplaced_annotation: protection.misplaced_annotation.clone(),
        ..ProtectionSeen::default()
    })
}

/// When each node the autoscaler added went (seconds since the work was applied).
#[derive(Default)]
struct Removals(std::sync::Mutex<Vec<(String, f64)>>);

impl Removals {
    /// Notes the added nodes gone since the last look; returns how many the group has.
    async fn track(
        &self,
        client: &kube::Client,
        group: &str,
        added: &[(String, f64)],
        recorder: &Recorder,
        start: f64,
    ) -> usize {
        let present: Vec<String> = autoscaler::group_nodes(client, Some(group))
            .await
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let mut removed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (node, _) in added {
            if !present.contains(node) && !removed.iter().any(|(n, _)| n == node) {
                removed.push((
                    node.clone(),
                    recorder.mark(&format!("node-removed: {node}")) - start,
                ));
            }
        }
        present.len()
    }

    fn removed_at(&self, node: &str) -> Option<f64> {
        let removed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        removed.iter().find(|(n, _)| n == node).map(|(_, t)| *t)
    }

    fn into_inner(self) -> Vec<(String, f64)> {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// Once the work has ended (its pods gone): whether the submission's budgets allow the
/// protected pod no disruption, then what the autoscaler says of its node, until it says
/// the node cannot go (and why), finds it removable, removes it, or the unneeded time
/// and a few scans have passed.
async fn watch_protection(
    namespace: &TestNamespace,
    mut seen: ProtectionSeen,
    protection: &Protection<'_>,
    observed: &Observed,
    removals: &Removals,
    recorder: &Recorder,
    start: f64,
) -> ProtectionSeen {
    let client = namespace.client();
    let ended = recorder.now();
    let pods: Api<Pod> = namespace.api();
    let work = protection.source.pod_selector();
    // The budgets count the work's pods too while they last.
    let _ = poll_until(
        namespace.cluster.intervals.pod_ready,
        Duration::from_secs(1),
        || async {
            let list = pods.list(&ListParams::default().labels(&work)).await.ok()?;
            list.items
                .iter()
                .all(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key("autoscale-conformance/probe"))
                })
                .then_some(())
        },
    )
    .await;
    let budgets: Api<PodDisruptionBudget> = namespace.api();
    for budget in &protection.budgets {
        let allowed = poll_until(Duration::from_secs(20), Duration::from_secs(1), || async {
            let status = budgets.get(&budget.name).await.ok()?.status?;
            (status.expected_pods.unwrap_or(0) == 1)
                .then_some(status.disruptions_allowed.unwrap_or(0))
        })
        .await;
        if allowed == Some(0) {
            let held = format!(
                "PodDisruptionBudget {} (0 disruptions allowed)",
                budget.name
            );
            seen.means = if seen.expected_to_hold {
                format!("{} and {held}", seen.means)
            } else {
                held
            };
            seen.expected_to_hold = true;
        }
    }
    if !seen.expected_to_hold && seen.misplaced_annotation.is_none() {
        seen.means = format!(
            "{} allowing its one pod a disruption",
            protection
                .budgets
                .iter()
                .map(|b| format!("PodDisruptionBudget {}", b.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    recorder.mark(&format!("protection: {}", seen.means));
    let budget = observed.unneeded_time + SCAN_INTERVAL * 3;
    let node = seen.node.clone();
    let verdict = poll_until(budget, Duration::from_secs(3), || async {
        removals
            .track(&client, &observed.group, &observed.added, recorder, start)
            .await;
        if removals.removed_at(&node).is_some() {
            return Some(None);
        }
        let since = Duration::from_secs_f64(recorder.now() - ended) + SCAN_INTERVAL;
        let log = autoscaler::log_since(&client, since).await.ok()?;
        autoscaler::removal_verdict(&log, &node).map(Some)
    })
    .await;
    match verdict {
        Some(None) => seen.node_removed_at = removals.removed_at(&node),
        Some(Some(Ok(line))) => seen.drainable_line = Some(line),
        Some(Some(Err(line))) => seen.blocked_line = Some(line),
        None => {}
    }
    seen.held_for = recorder.now() - ended;
    recorder.mark(&format!(
        "protection-watched: {}",
        seen.blocked_line
            .as_deref()
            .or(seen.drainable_line.as_deref())
            .unwrap_or("the autoscaler said nothing of the node")
    ));
    seen
}

/// Adds tolerations of `keys` (any value, NoSchedule) to a workload's pod template.
fn tolerate(workload: &mut Value, keys: &[&str]) {
    add_tolerations(
        workload,
        keys.iter()
            .map(|key| json!({"key": key, "operator": "Exists", "effect": "NoSchedule"})),
    );
}

/// Appends `tolerations` to a workload's pod template (its list made if it has none).
fn add_tolerations(workload: &mut Value, tolerations: impl IntoIterator<Item = Value>) {
    let Some(spec) = workload
        .pointer_mut("/spec/template/spec")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    // `tolerations:` left empty in YAML is null.
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(list) = list {
        list.extend(tolerations);
    }
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
    add_tolerations(
        &mut value,
        [json!({"key": KWOK_PROVIDER_TAINT.0, "operator": "Equal",
                "value": KWOK_PROVIDER_TAINT.1, "effect": "NoSchedule"})],
    );
    if plan.group == CPU_GROUP
        && let Some(spec) = value.pointer_mut("/spec/template/spec")
    {
        spec["nodeSelector"][NODE_GROUP_LABEL] = json!(CPU_GROUP);
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
        assert_eq!(plan.unneeded_time, super::super::plan::DEFAULT_UNNEEDED);
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
}

//! Live probe of `gpu-pool` (Task 6): GPU training lands on the GPU pool, serving
//! never does, and a pod asking for more GPUs than the pool has stays Pending as
//! Unschedulable (what a Cluster Autoscaler acts on). The probe waits on its own
//! watches, a [`Recorder`] keeps every pod's phase, node and PodScheduled condition,
//! and [`judge_placements`] reaches the verdict from that timeline.

use super::ID;
use super::judge::{Pool, Roles, judge_placements};
use crate::checks::Defaults;
use crate::cluster::lock::{ClusterLock, Singleton};
use crate::cluster::{GPU_POOL_LABEL, GPU_RESOURCE, TestNamespace};
use crate::criteria::ProbeContext;
use crate::criteria::demand::{self, CpuDemand};
use crate::observe::{Placement, Recorder, placement, placement_in};
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Outcome, Verdict};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use std::time::Duration;

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let recorder = Recorder::start(
        namespace,
        &format!("{ID}-{}", namespace.name),
        context.timelines,
    );
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    let observed = Box::pin(observe(namespace, context.submission, &recorder)).await;
    let timeline = recorder.finish();
    let mut verdict = match observed {
        Ok(run) => judge_placements(&timeline, &run.pool, &run.roles, run.budget, &run.notes),
        Err(early) => early,
    };
    verdict.evidence.extend(timeline.file_evidence());
    vec![verdict]
}

/// What [`observe`] did, for the judge.
struct Run {
    pool: Pool,
    roles: Roles,
    budget: Duration,
    notes: Vec<String>,
}

/// Applies training, serving and the over-asking pod, and waits for the scheduler to
/// place or refuse each (watches); the judge then reads the recorded timeline.
async fn observe(
    namespace: &mut TestNamespace,
    submission: &Submission,
    recorder: &Recorder,
) -> Result<Run, Verdict> {
    let Some(training) = submission.objects.iter().find(|o| requests_gpu(o)) else {
        return Err(Verdict::new(
            ID,
            Outcome::Fail,
            format!("expected a training workload requesting {GPU_RESOURCE}; none found"),
            Vec::new(),
        ));
    };
    let serving = serving(submission);
    let (pool_names, pool_gpus) = find_pool(namespace).await?;
    // Probes in other processes fill the same pool: one at a time, cluster-wide.
    let mut lock = ClusterLock::acquire(
        &namespace.client(),
        GPU_POOL_LOCK,
        &namespace.name,
        LOCK_BUDGET,
    )
    .await
    .map_err(|e| {
        Verdict::new(
            ID,
            Outcome::Error,
            format!("environment error (not the submission's fault): {e}"),
            Vec::new(),
        )
    })?;
    recorder.mark(&format!(
        "gpu-pool-lock: held after {:.0}s in the queue",
        lock.waited.as_secs_f64()
    ));
    let observed = observe_locked(
        namespace, submission, recorder, training, serving, pool_names, pool_gpus,
    )
    .await;
    lock.release().await;
    observed
}

/// The cluster-wide lock on the GPU pool: its devices are shared by every probe on it.
pub const GPU_POOL_LOCK: Singleton = Singleton {
    namespace: "kube-system",
    lease: "autoscale-conformance-gpu-pool",
    what: "the GPU pool",
};
/// Queued behind other probes of the pool (each takes seconds; a whole class's, minutes).
const LOCK_BUDGET: Duration = Duration::from_secs(600);

/// [`observe`] once the pool is this probe's.
async fn observe_locked(
    namespace: &mut TestNamespace,
    submission: &Submission,
    recorder: &Recorder,
    training: &Object,
    serving: Option<&Object>,
    pool_names: Vec<String>,
    pool_gpus: i64,
) -> Result<Run, Verdict> {
    recorder.mark(&format!(
        "gpu-pool: {} ({pool_gpus} {GPU_RESOURCE})",
        pool_names.join(", ")
    ));
    wait_until_free(namespace, &pool_names, recorder).await;

    let (objects, over_ask, mut notes) = objects_to_apply(submission, training, serving, pool_gpus);
    let applied = match namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
    {
        Ok(applied) => applied,
        Err(e) => {
            recorder.mark(&format!("refused: {e}"));
            return Err(Verdict::new(
                ID,
                crate::criteria::refusal_outcome(&e),
                crate::criteria::refusal(submission, &e),
                Vec::new(),
            ));
        }
    };
    recorder.mark("objects-applied");
    notes.extend(applied.notes);

    let pods: Api<Pod> = namespace.api();
    let budget = namespace.cluster.intervals.pod_ready * 2;
    let replicas = training.spec_replicas().unwrap_or(1).max(1) as usize;
    let trained = settle(&pods, &training.pod_selector(), replicas, budget).await;
    mark_settled(recorder, "gpu-pod", &trained);
    let served = match serving {
        Some(s) => settle(&pods, &s.pod_selector(), 1, budget).await,
        None => Vec::new(),
    };
    mark_settled(recorder, "serving-pod", &served);
    let over = if over_ask {
        settle(&pods, "autoscale-conformance/probe=gpu-over-ask", 1, budget).await
    } else {
        Vec::new()
    };
    mark_settled(recorder, "gpu-over-ask", &over);
    // Pool capacity held by other tests or tenants would make a refusal not the student's.
    let held_elsewhere =
        gpus_held_elsewhere(namespace.client(), &pool_names, &namespace.name).await;
    if !held_elsewhere.is_empty() {
        recorder.mark(&format!(
            "gpu-pool-held-elsewhere: {}",
            describe_held(&held_elsewhere)
        ));
    }
    let settled: Vec<(String, Placement)> = trained
        .iter()
        .chain(&served)
        .chain(&over)
        .cloned()
        .collect();
    let slack = namespace.cluster.intervals.observation_slack;
    recorder_caught_up(recorder, &settled, slack).await;
    let names = |settled: &[(String, Placement)]| settled.iter().map(|(n, _)| n.clone()).collect();
    Ok(Run {
        pool: Pool {
            nodes: pool_names,
            gpus: pool_gpus,
            held_elsewhere,
        },
        roles: Roles {
            training: names(&trained),
            serving: names(&served),
            over_ask: names(&over),
        },
        budget,
        notes,
    })
}

/// The GPU pool's nodes (labelled [`GPU_POOL_LABEL`]) and their allocatable GPUs.
async fn find_pool(namespace: &TestNamespace) -> Result<(Vec<String>, i64), Verdict> {
    let nodes: Api<Node> = Api::all(namespace.client());
    let pool_nodes = nodes
        // Not the nodes a Cluster Autoscaler probe adds to its gpu-pool group meanwhile.
        .list(
            &ListParams::default().labels(&crate::cluster::autoscaler::static_gpu_pool_selector()),
        )
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let pool_gpus: i64 = pool_nodes
        .iter()
        .filter_map(|n| {
            n.status
                .as_ref()?
                .allocatable
                .as_ref()?
                .get(GPU_RESOURCE)
                .and_then(|q| q.0.parse::<i64>().ok())
        })
        .sum();
    let pool_names: Vec<String> = pool_nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if pool_names.is_empty() {
        return Err(Verdict::new(
            ID,
            Outcome::Error,
            format!(
                "the cluster has no node labelled {}={}",
                GPU_POOL_LABEL.0, GPU_POOL_LABEL.1
            ),
            Vec::new(),
        ));
    }
    Ok((pool_names, pool_gpus))
}

fn describe_held(held: &[(String, i64)]) -> String {
    held.iter()
        .map(|(pod, gpus)| format!("{pod} ({gpus})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for GPUs that others hold (another probe's training, cleaned up with its
/// namespace) rather than judge the submission on a pool it cannot have; marked.
async fn wait_until_free(namespace: &TestNamespace, pool_names: &[String], recorder: &Recorder) {
    let intervals = namespace.cluster.intervals;
    let free_budget = namespace.cleanup_budget + intervals.pod_ready * 2;
    let busy = gpus_held_elsewhere(namespace.client(), pool_names, &namespace.name).await;
    if busy.is_empty() {
        return;
    }
    recorder.mark(&format!("gpu-pool-wait: held by {}", describe_held(&busy)));
    let still =
        wait_for_free_pool(namespace.client(), pool_names, &namespace.name, free_budget).await;
    match still.as_slice() {
        [] => recorder.mark("gpu-pool-free"),
        _ => recorder.mark(&format!(
            "gpu-pool-still-held after {}s: {}",
            free_budget.as_secs(),
            describe_held(&still)
        )),
    };
}

/// The training workload (and the PriorityClass it names), one serving replica, and a
/// pod asking for one GPU more than the whole pool has (when training has a pod
/// template). Returns them, whether the over-asking pod is among them, and notes.
fn objects_to_apply(
    submission: &Submission,
    training: &Object,
    serving: Option<&Object>,
    pool_gpus: i64,
) -> (Vec<Value>, bool, Vec<String>) {
    let mut objects: Vec<Value> = Vec::new();
    let template = training.pod_template();
    if let Some(priority) = submission.priority_class_of(training) {
        objects.push(priority.value().clone());
    }
    objects.push(training.value().clone());
    let mut notes = Vec::new();
    if let Some(serving) = serving {
        // One serving replica is enough to see where serving lands.
        let mut value = serving.value().clone();
        value["spec"]["replicas"] = json!(1);
        notes.push(format!("{}: applied with 1 replica", serving.describe()));
        objects.push(value);
    }
    let over_ask = template.map(|t| {
        let mut spec = serde_json::to_value(t.spec).unwrap_or_default();
        if let Some(container) = spec.pointer_mut("/containers/0") {
            container["resources"]["requests"][GPU_RESOURCE] = json!((pool_gpus + 1).to_string());
            container["resources"]["limits"][GPU_RESOURCE] = json!((pool_gpus + 1).to_string());
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-over-ask", "labels": {"autoscale-conformance/probe": "gpu-over-ask"}}, "spec": spec})
    });
    let asks_over = over_ask.is_some();
    objects.extend(over_ask);
    (objects, asks_over, notes)
}

/// The serving workload: the first Deployment that asks for no GPU.
fn serving(submission: &Submission) -> Option<&Object> {
    submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::Deployment(_)) && !requests_gpu(o))
}

/// What the probe's pods request of the real nodes: one serving replica, as written (the
/// probe applies no LimitRange). Training and the over-asking pod ask for GPUs: they go
/// to the simulated pool.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    serving(submission)
        .and_then(Object::pod_template)
        .map_or(CpuDemand::NONE, |t| {
            demand::pods(t.spec, &Defaults::default(), 1)
        })
}

/// The judge reads placements from the recorder: lets its pod watch catch up with what
/// the probe's own watches saw.
async fn recorder_caught_up(recorder: &Recorder, settled: &[(String, Placement)], slack: Duration) {
    let _ = recorder
        .caught_up(slack, |t| {
            settled.iter().all(|(name, place)| {
                match (place, placement_in(t, name).map(|(_, p)| p)) {
                    (Placement::Waiting, _) => true,
                    (Placement::Unschedulable(_), Some(Placement::Unschedulable(_))) => true,
                    (expected, seen) => seen.as_ref() == Some(expected),
                }
            })
        })
        .await;
}

fn requests_gpu(object: &Object) -> bool {
    object.pod_template().is_some_and(|t| {
        t.spec.containers.iter().any(|c| {
            c.resources.as_ref().is_some_and(|r| {
                r.requests
                    .as_ref()
                    .is_some_and(|m| m.contains_key(GPU_RESOURCE))
                    || r.limits
                        .as_ref()
                        .is_some_and(|m| m.contains_key(GPU_RESOURCE))
            })
        })
    })
}

/// Watches pods matching `selector` until every one of at least `count` has a placement.
async fn settle(
    pods: &Api<Pod>,
    selector: &str,
    count: usize,
    budget: Duration,
) -> Vec<(String, Placement)> {
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default().labels(selector)),
    )
    .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let snapshot = |reader: &reflector::Store<Pod>| -> Vec<(String, Placement)> {
        let mut all: Vec<(String, Placement)> = reader
            .state()
            .iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), placement(p)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let _ = tokio::time::timeout(budget, async {
        while stream.next().await.is_some() {
            let state = snapshot(&reader);
            if state.len() >= count && state.iter().all(|(_, p)| *p != Placement::Waiting) {
                return;
            }
        }
    })
    .await;
    snapshot(&reader)
}

/// The GPUs `pod` holds if it is outside `namespace` and not finished: (`ns/name`, GPUs).
fn held_outside(pod: &Pod, namespace: &str) -> Option<(String, i64)> {
    let pod_namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    if pod_namespace == namespace || finished {
        return None;
    }
    let gpus: i64 = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(GPU_RESOURCE))
        .filter_map(|q| q.0.parse::<i64>().ok())
        .sum();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    (gpus > 0).then(|| (format!("{pod_namespace}/{name}"), gpus))
}

/// Watches the pods bound to the pool `nodes` until none outside `namespace` holds a
/// GPU, at most `budget` (another test's or tenant's training would make the scheduler
/// refuse ours for capacity). Returns what is still held when it stops.
async fn wait_for_free_pool(
    client: kube::Client,
    nodes: &[String],
    namespace: &str,
    budget: Duration,
) -> Vec<(String, i64)> {
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let (reader, writer) = reflector::store();
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let stream = reflector(writer, watcher(Api::<Pod>::all(client.clone()), config))
            .default_backoff()
            .map(move |event| (index, event))
            .boxed();
        streams.push(stream);
        stores.push(reader);
    }
    let held = |stores: &[reflector::Store<Pod>]| -> Vec<(String, i64)> {
        stores
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|p| held_outside(&p, namespace))
            .collect()
    };
    let mut listed = vec![false; nodes.len()];
    let mut merged = futures::stream::select_all(streams);
    let _ = tokio::time::timeout(budget, async {
        while let Some((index, event)) = merged.next().await {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                listed[index] = true;
            }
            if listed.iter().all(|l| *l) && held(&stores).is_empty() {
                return;
            }
        }
    })
    .await;
    held(&stores)
}

/// GPUs requested by the pods bound to `nodes`, outside `namespace`, that still hold them.
async fn gpus_held_elsewhere(
    client: kube::Client,
    nodes: &[String],
    namespace: &str,
) -> Vec<(String, i64)> {
    let pods: Api<Pod> = Api::all(client);
    let mut held = Vec::new();
    for node in nodes {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        if let Ok(list) = pods.list(&params).await {
            held.extend(list.items.iter().filter_map(|p| held_outside(p, namespace)));
        }
    }
    held
}

/// Marks where each settled pod stands (`gpu-pod-scheduled: <pod> on <node>`, ...).
fn mark_settled(recorder: &Recorder, role: &str, settled: &[(String, Placement)]) {
    for (name, place) in settled {
        let label = match place {
            Placement::Bound(node) => format!("{role}-scheduled: {name} on {node}"),
            Placement::Unschedulable(_) => format!("{role}-unschedulable: {name}"),
            Placement::Waiting => format!("{role}-still-waiting: {name}"),
        };
        recorder.mark(&label);
    }
}

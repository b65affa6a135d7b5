//! Live probe of `gpu-pool` (Task 6): GPU training lands on the GPU pool, serving
//! never does, and a pod asking for more GPUs than the pool has stays Pending as
//! Unschedulable (what a Cluster Autoscaler acts on). The probe waits on its own
//! watches, a [`Recorder`] keeps every pod's phase, node and PodScheduled condition,
//! and [`judge_placements`] reaches the verdict from that timeline.

use crate::cluster::{GPU_POOL_LABEL, GPU_RESOURCE, TestNamespace};
use crate::observe::Recorder;
use crate::submission::{Object, Submission, Typed};
use crate::timeline::{Observation, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const GPU_POOL: &str = "gpu-pool";

fn verdict(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Verdict {
    Verdict {
        id: GPU_POOL.into(),
        outcome,
        message,
        findings: Vec::new(),
        evidence,
    }
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

/// Where a pod stands with the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Bound(String),
    Unschedulable(String),
    Waiting,
}

pub fn placement(pod: &Pod) -> Placement {
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        return Placement::Bound(node);
    }
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter().find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        });
    match unschedulable {
        Some(condition) => Placement::Unschedulable(condition.message.clone().unwrap_or_default()),
        None => Placement::Waiting,
    }
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

fn selector_of(object: &Object) -> String {
    object
        .pod_template()
        .and_then(|t| t.labels)
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The pods the probe watched, by role, for [`judge_placements`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    pub training: Vec<String>,
    pub serving: Vec<String>,
    /// Pods asking for more GPUs than the pool has.
    pub over_ask: Vec<String>,
}

/// What the GPU pool is, as the probe found it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    pub nodes: Vec<String>,
    pub gpus: i64,
    /// GPUs of the pool that pods of other namespaces held when the probe looked
    /// (`namespace/pod`, GPUs): capacity the submission could not have.
    pub held_elsewhere: Vec<(String, i64)>,
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

/// Where pod `name` stood with the scheduler at the end of `timeline`, and since when
/// (the first sample of that standing).
pub fn placement_in(timeline: &Timeline, name: &str) -> Option<(f64, Placement)> {
    let mut current: Option<(f64, Placement)> = None;
    for state in timeline.pod_states(name) {
        let place = match (state.node, state.reason) {
            (Some(node), _) => Placement::Bound(node.to_string()),
            (None, Some("Unschedulable")) => {
                Placement::Unschedulable(state.message.unwrap_or_default().to_string())
            }
            _ => Placement::Waiting,
        };
        let same_kind = current.as_ref().is_some_and(|(_, p)| match (p, &place) {
            (Placement::Unschedulable(_), Placement::Unschedulable(_)) => true,
            (a, b) => a == b,
        });
        if same_kind {
            // Keep the first time, but the scheduler's latest words.
            if let (Some((_, Placement::Unschedulable(m))), Placement::Unschedulable(latest)) =
                (current.as_mut(), &place)
            {
                *m = latest.clone();
            }
        } else {
            current = Some((state.t, place));
        }
    }
    current
}

/// Judges the GPU-pool criterion from a recorded timeline: every training pod bound to
/// a pool node, no serving pod on one, every over-asking pod Unschedulable for
/// `nvidia.com/gpu`. `budget` is how long the probe waited for each pod.
pub fn judge_placements(
    timeline: &Timeline,
    pool: &Pool,
    roles: &Roles,
    budget: Duration,
    notes: &[String],
) -> Verdict {
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let over_gpus = pool.gpus + 1;
    let held: i64 = pool.held_elsewhere.iter().map(|(_, g)| g).sum();
    // Refused for GPUs that other namespaces held: the environment, not the submission.
    for name in &roles.training {
        if let Some((t, Placement::Unschedulable(message))) = placement_in(timeline, name)
            && held > 0
            && message.contains(&format!("Insufficient {GPU_RESOURCE}"))
        {
            let holders: Vec<String> = pool
                .held_elsewhere
                .iter()
                .map(|(pod, gpus)| format!("{pod} ({gpus})"))
                .collect();
            return verdict(
                Outcome::Error,
                format!(
                    "cannot judge the GPU pool: training pod {name} was refused at t={t:.1} s for lack of GPUs while pods of other namespaces held {held} of the pool's {}: {}; the scheduler said: {message}",
                    pool.gpus,
                    holders.join(", ")
                ),
                vec![Evidence::Timeline {
                    points: timeline.excerpt(|o| matches!(o, Observation::Marker { .. })),
                }],
            );
        }
    }
    let mut problems = Vec::new();
    let mut lines = BTreeMap::new();
    let mut cited = Vec::new();
    let describe = |place: &Option<(f64, Placement)>| match place {
        Some((t, Placement::Bound(node))) => format!("bound to {node} at t={t:.1} s"),
        Some((t, Placement::Unschedulable(m))) => {
            format!("Pending, Unschedulable since t={t:.1} s: {m}")
        }
        Some((t, Placement::Waiting)) => format!("Pending, not yet placed since t={t:.1} s"),
        None => "never seen".into(),
    };
    for name in &roles.training {
        let place = placement_in(timeline, name);
        lines.insert(format!("training {name}"), describe(&place));
        match place {
            Some((t, Placement::Bound(node))) if pool.nodes.contains(&node) => {
                cited.push(format!("{name} on {node} at t={t:.1} s"));
            }
            Some((t, Placement::Bound(node))) => problems.push(format!("expected training pod {name} on the GPU pool {:?}; it was bound to {node} at t={t:.1} s", pool.nodes)),
            Some((t, Placement::Unschedulable(message))) => problems.push(format!("expected training pod {name} on the GPU pool; the scheduler refused it (Pending, Unschedulable from t={t:.1} s to the end at t={end:.1} s): {message}")),
            _ => problems.push(format!("training pod {name} was neither bound nor refused within {}s", budget.as_secs())),
        }
    }
    if roles.training.is_empty() {
        problems.push(format!(
            "no training pod appeared within {}s",
            budget.as_secs()
        ));
    }
    for name in &roles.serving {
        let place = placement_in(timeline, name);
        lines.insert(format!("serving {name}"), describe(&place));
        if let Some((t, Placement::Bound(node))) = &place {
            if pool.nodes.contains(node) {
                problems.push(format!(
                    "expected serving pod {name} off the GPU pool; it was bound to GPU node {node} at t={t:.1} s"
                ));
            } else {
                cited.push(format!("serving {name} on {node} at t={t:.1} s"));
            }
        }
    }
    for name in &roles.over_ask {
        let place = placement_in(timeline, name);
        lines.insert(
            format!("over-ask {name} ({over_gpus} GPUs)"),
            describe(&place),
        );
        match place {
            Some((t, Placement::Unschedulable(message))) if message.contains(GPU_RESOURCE) => {
                cited.push(format!("a {over_gpus}-GPU pod Pending, Unschedulable from t={t:.1} s and still at the end of the recording (t={end:.1} s): {message}"));
            }
            Some((t, Placement::Unschedulable(message))) => problems.push(format!("a pod asking {over_gpus} GPUs was unschedulable from t={t:.1} s, but not for {GPU_RESOURCE}: {message}")),
            other => problems.push(format!("expected a pod asking {over_gpus} GPUs (the pool has {}) to stay Pending Unschedulable; it was {}", pool.gpus, describe(&other))),
        }
    }
    // A short excerpt: each pod's judged placement as the pod watch recorded it, the
    // scheduler's warnings about them, and the probe's own steps (per-pod markers,
    // Normal events and every intermediate state stay in the saved file).
    let watched: Vec<&String> = roles
        .training
        .iter()
        .chain(&roles.serving)
        .chain(&roles.over_ask)
        .collect();
    let mut points = timeline.excerpt(|o| match o {
        Observation::Event { object, type_, .. } => {
            type_ == "Warning"
                && object
                    .strip_prefix("Pod/")
                    .is_some_and(|pod| watched.iter().any(|w| w.as_str() == pod))
        }
        Observation::Marker { label } => !["gpu-pod-", "serving-pod-", "gpu-over-ask-"]
            .iter()
            .any(|role| label.starts_with(role)),
        _ => false,
    });
    for name in &watched {
        if let Some((t, place)) = placement_in(timeline, name) {
            points.push(crate::verdict::TimelinePoint {
                seconds: (t * 10.0).round() / 10.0,
                what: match place {
                    Placement::Bound(node) => format!("pod {name} bound to {node}"),
                    Placement::Unschedulable(m) => {
                        format!("pod {name} Pending, PodScheduled=False Unschedulable: {m}")
                    }
                    Placement::Waiting => format!("pod {name} Pending"),
                },
            });
        }
    }
    points.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mut evidence = vec![
        Evidence::Values {
            values: lines.into_iter().collect(),
        },
        Evidence::Timeline { points },
    ];
    if !notes.is_empty() {
        evidence.push(Evidence::Note {
            text: notes.join("\n"),
        });
    }
    match problems.as_slice() {
        [] => verdict(
            Outcome::Pass,
            format!(
                "{} training pod(s) on the GPU pool, serving off it, a {over_gpus}-GPU pod Pending as Unschedulable ({})",
                roles.training.len(),
                cited.join("; ")
            ),
            evidence,
        ),
        [first, ..] => verdict(Outcome::Fail, first.clone(), evidence),
    }
}

pub async fn probe(namespace: &mut TestNamespace, submission: &Submission) -> Verdict {
    let recorder = Recorder::start(namespace, &format!("{GPU_POOL}-{}", namespace.name));
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    let observed = Box::pin(observe(namespace, submission, &recorder)).await;
    let timeline = recorder.finish();
    let mut verdict = match observed {
        Ok(run) => judge_placements(&timeline, &run.pool, &run.roles, run.budget, &run.notes),
        Err(early) => early,
    };
    verdict.evidence.extend(timeline.file_evidence());
    verdict
}

/// What [`observe`] did, for the judge.
struct Run {
    pool: Pool,
    roles: Roles,
    budget: Duration,
    notes: Vec<String>,
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

/// Applies training, serving and the over-asking pod, and waits for the scheduler to
/// place or refuse each (watches); the judge then reads the recorded timeline.
async fn observe(
    namespace: &mut TestNamespace,
    submission: &Submission,
    recorder: &Recorder,
) -> Result<Run, Verdict> {
    let Some(training) = submission.objects.iter().find(|o| requests_gpu(o)) else {
        return Err(verdict(
            Outcome::Fail,
            format!("expected a training workload requesting {GPU_RESOURCE}; none found"),
            Vec::new(),
        ));
    };
    let serving = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::Deployment(_)) && !requests_gpu(o));
    let nodes: Api<Node> = Api::all(namespace.client());
    let pool_nodes = nodes
        .list(&ListParams::default().labels(&format!("{}={}", GPU_POOL_LABEL.0, GPU_POOL_LABEL.1)))
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
        return Err(verdict(
            Outcome::Error,
            format!(
                "the cluster has no node labelled {}={}",
                GPU_POOL_LABEL.0, GPU_POOL_LABEL.1
            ),
            Vec::new(),
        ));
    }
    recorder.mark(&format!(
        "gpu-pool: {} ({pool_gpus} {GPU_RESOURCE})",
        pool_names.join(", ")
    ));
    // Wait for GPUs that others hold (another probe's training, cleaned up with its
    // namespace) rather than judge the submission on a pool it cannot have.
    let intervals = namespace.cluster.intervals;
    let free_budget = namespace.cleanup_budget + intervals.pod_ready * 2;
    let busy = gpus_held_elsewhere(namespace.client(), &pool_names, &namespace.name).await;
    if !busy.is_empty() {
        let describe = |held: &[(String, i64)]| {
            held.iter()
                .map(|(pod, gpus)| format!("{pod} ({gpus})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        recorder.mark(&format!("gpu-pool-wait: held by {}", describe(&busy)));
        let still = wait_for_free_pool(
            namespace.client(),
            &pool_names,
            &namespace.name,
            free_budget,
        )
        .await;
        match still.as_slice() {
            [] => recorder.mark("gpu-pool-free"),
            _ => recorder.mark(&format!(
                "gpu-pool-still-held after {}s: {}",
                free_budget.as_secs(),
                describe(&still)
            )),
        };
    }

    let mut objects: Vec<Value> = Vec::new();
    let template = training.pod_template();
    if let Some(class) = template.and_then(|t| t.spec.priority_class_name.clone())
        && let Some(priority) = submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::PriorityClass(_)) && o.name == class)
    {
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
    // A pod asking for one GPU more than the whole pool has.
    let over_ask = template.map(|t| {
        let mut spec = serde_json::to_value(t.spec).unwrap_or_default();
        if let Some(container) = spec.pointer_mut("/containers/0") {
            container["resources"]["requests"][GPU_RESOURCE] = json!((pool_gpus + 1).to_string());
            container["resources"]["limits"][GPU_RESOURCE] = json!((pool_gpus + 1).to_string());
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-over-ask", "labels": {"autoscale-conformance/probe": "gpu-over-ask"}}, "spec": spec})
    });
    objects.extend(over_ask.clone());
    let applied = match namespace.apply(&objects).await {
        Ok(applied) => applied,
        Err(e) => {
            recorder.mark(&format!("refused: {e}"));
            return Err(verdict(
                Outcome::Fail,
                format!("the cluster refused the objects: {e}"),
                Vec::new(),
            ));
        }
    };
    recorder.mark("objects-applied");
    notes.extend(applied.notes);

    let pods: Api<Pod> = namespace.api();
    let budget = namespace.cluster.intervals.pod_ready * 2;
    let replicas = training.spec_replicas().unwrap_or(1).max(1) as usize;
    let trained = settle(&pods, &selector_of(training), replicas, budget).await;
    mark_settled(recorder, "gpu-pod", &trained);
    let served = match serving {
        Some(s) => settle(&pods, &selector_of(s), 1, budget).await,
        None => Vec::new(),
    };
    mark_settled(recorder, "serving-pod", &served);
    let over = if over_ask.is_some() {
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
            held_elsewhere
                .iter()
                .map(|(pod, gpus)| format!("{pod} ({gpus})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The judge reads placements from the recorder: let its pod watch catch up with
    // what the probe's own watches saw.
    let settled: Vec<(String, Placement)> = trained
        .iter()
        .chain(&served)
        .chain(&over)
        .cloned()
        .collect();
    let _ = recorder
        .caught_up(namespace.cluster.intervals.observation_slack, |t| {
            settled.iter().all(|(name, place)| {
                match (place, placement_in(t, name).map(|(_, p)| p)) {
                    (Placement::Waiting, _) => true,
                    (Placement::Unschedulable(_), Some(Placement::Unschedulable(_))) => true,
                    (expected, seen) => seen.as_ref() == Some(expected),
                }
            })
        })
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, unschedulable: Option<&str>) -> Observation {
        Observation::Pod {
            name: name.into(),
            phase: if node.is_some() { "Running" } else { "Pending" }.into(),
            ready: node.is_some(),
            node: node.map(Into::into),
            reason: unschedulable.map(|_| "Unschedulable".into()),
            message: unschedulable.map(Into::into),
        }
    }

    fn pool() -> Pool {
        Pool {
            nodes: vec!["gpu-1".into(), "gpu-2".into()],
            gpus: 2,
            held_elsewhere: Vec::new(),
        }
    }

    fn roles() -> Roles {
        Roles {
            training: vec!["train-a".into()],
            serving: vec!["serve-a".into()],
            over_ask: vec!["gpu-over-ask".into()],
        }
    }

    const NO_GPU: &str = "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector.";

    fn recorded(training_node: Option<&str>) -> Timeline {
        let mut timeline = Timeline::new("gpu-pool-test", "2026-01-01T00:00:00Z");
        timeline.push(
            0.2,
            Observation::Marker {
                label: "objects-applied".into(),
            },
        );
        timeline.push(0.3, pod("train-a", None, None));
        match training_node {
            Some(node) => timeline.push(1.4, pod("train-a", Some(node), None)),
            None => timeline.push(
                1.4,
                pod(
                    "train-a",
                    None,
                    Some("0/3 nodes are available: 2 node(s) had untolerated taint(s)."),
                ),
            ),
        }
        timeline.push(0.4, pod("serve-a", Some("cpu-1"), None));
        timeline.push(2.1, pod("gpu-over-ask", None, Some(NO_GPU)));
        timeline.push(9.0, pod("gpu-over-ask", None, Some(NO_GPU)));
        timeline.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        timeline
    }

    #[test]
    fn placements_pass_and_cite_when_and_where() {
        let verdict = judge_placements(
            &recorded(Some("gpu-1")),
            &pool(),
            &roles(),
            Duration::from_secs(60),
            &[],
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict.message.contains("train-a on gpu-1 at t=1.4 s")
                && verdict
                    .message
                    .contains("Unschedulable from t=2.1 s and still at the end of the recording (t=9.0 s): 0/3 nodes"),
            "{}",
            verdict.message
        );
        let Some(Evidence::Timeline { points }) = verdict.evidence.get(1) else {
            panic!("a timeline excerpt: {:?}", verdict.evidence)
        };
        let lines: Vec<(f64, &str)> = points
            .iter()
            .map(|p| (p.seconds, p.what.as_str()))
            .collect();
        assert_eq!(lines[0], (0.2, "[objects-applied]"));
        assert!(
            lines.contains(&(1.4, "pod train-a bound to gpu-1")),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 4, "{lines:?}");
    }

    #[test]
    fn training_off_the_pool_or_refused_fails_with_the_scheduler_words() {
        let off = judge_placements(
            &recorded(Some("cpu-1")),
            &pool(),
            &roles(),
            Duration::from_secs(60),
            &[],
        );
        assert_eq!(off.outcome, Outcome::Fail);
        assert!(
            off.message.contains("bound to cpu-1 at t=1.4 s"),
            "{}",
            off.message
        );
        let refused = judge_placements(
            &recorded(None),
            &pool(),
            &roles(),
            Duration::from_secs(60),
            &[],
        );
        assert_eq!(refused.outcome, Outcome::Fail);
        assert!(
            refused.message.contains("Unschedulable from t=1.4 s")
                && refused.message.contains("untolerated taint"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn an_over_ask_that_gets_bound_fails() {
        let mut timeline = recorded(Some("gpu-1"));
        timeline.push(10.0, pod("gpu-over-ask", Some("gpu-2"), None));
        let verdict = judge_placements(&timeline, &pool(), &roles(), Duration::from_secs(60), &[]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("to stay Pending Unschedulable; it was bound to gpu-2 at t=10.0 s"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn refused_for_gpus_other_namespaces_held_is_an_environment_error() {
        let mut timeline = recorded(Some("gpu-1"));
        timeline.push(
            1.5,
            pod(
                "train-b",
                None,
                Some("0/3 nodes are available: 2 Insufficient nvidia.com/gpu."),
            ),
        );
        let roles = Roles {
            training: vec!["train-a".into(), "train-b".into()],
            ..roles()
        };
        let busy = Pool {
            held_elsewhere: vec![("other/trainer".into(), 1)],
            ..pool()
        };
        let budget = Duration::from_secs(60);
        let verdict = judge_placements(&timeline, &busy, &roles, budget, &[]);
        assert_eq!(verdict.outcome, Outcome::Error, "{}", verdict.message);
        assert!(
            verdict
                .message
                .contains("held 1 of the pool's 2: other/trainer (1)"),
            "{}",
            verdict.message
        );
        // With the pool to itself, the same refusal is the submission's failure.
        let verdict = judge_placements(&timeline, &pool(), &roles, budget, &[]);
        assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.message);
    }

    /// A timeline saved as JSON by the recorder is judged again to the same verdict.
    #[test]
    fn a_saved_timeline_is_judged_again_to_the_same_verdict() {
        let dir = tempfile::tempdir().unwrap();
        for timeline in [recorded(Some("gpu-1")), recorded(None)] {
            let path = crate::observe::save_in(dir.path(), &timeline).unwrap();
            let back: Timeline =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(back, timeline);
            let budget = Duration::from_secs(60);
            assert_eq!(
                judge_placements(&back, &pool(), &roles(), budget, &[]),
                judge_placements(&timeline, &pool(), &roles(), budget, &[])
            );
        }
    }
}

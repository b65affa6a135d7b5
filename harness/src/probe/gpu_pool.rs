//! Live probe of `gpu-pool` (Task 6): GPU training lands on the GPU pool, serving
//! never does, and a pod asking for more GPUs than the pool has stays Pending as
//! Unschedulable (what a Cluster Autoscaler acts on).

use crate::cluster::{GPU_POOL_LABEL, GPU_RESOURCE, TestNamespace};
use crate::submission::{Object, Submission, Typed};
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

pub async fn probe(namespace: &mut TestNamespace, submission: &Submission) -> Verdict {
    let Some(training) = submission.objects.iter().find(|o| requests_gpu(o)) else {
        return verdict(
            Outcome::Fail,
            format!("expected a training workload requesting {GPU_RESOURCE}; none found"),
            Vec::new(),
        );
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
        return verdict(
            Outcome::Error,
            format!(
                "the cluster has no node labelled {}={}",
                GPU_POOL_LABEL.0, GPU_POOL_LABEL.1
            ),
            Vec::new(),
        );
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
            return verdict(
                Outcome::Fail,
                format!("the cluster refused the objects: {e}"),
                Vec::new(),
            );
        }
    };
    notes.extend(applied.notes);

    let pods: Api<Pod> = namespace.api();
    let budget = namespace.cluster.intervals.pod_ready * 2;
    let replicas = training.spec_replicas().unwrap_or(1).max(1) as usize;
    let trained = settle(&pods, &selector_of(training), replicas, budget).await;
    let served = match serving {
        Some(s) => settle(&pods, &selector_of(s), 1, budget).await,
        None => Vec::new(),
    };
    let over = if over_ask.is_some() {
        settle(&pods, "autoscale-conformance/probe=gpu-over-ask", 1, budget).await
    } else {
        Vec::new()
    };

    let mut problems = Vec::new();
    let mut lines = BTreeMap::new();
    for (name, place) in &trained {
        lines.insert(format!("training {name}"), format!("{place:?}"));
        match place {
            Placement::Bound(node) if pool_names.contains(node) => {}
            Placement::Bound(node) => problems.push(format!("expected training pod {name} on the GPU pool {pool_names:?}; it was bound to {node}")),
            Placement::Unschedulable(message) => problems.push(format!("expected training pod {name} on the GPU pool; the scheduler refused it: {message}")),
            Placement::Waiting => problems.push(format!("training pod {name} was neither bound nor refused within {}s", budget.as_secs())),
        }
    }
    if trained.is_empty() {
        problems.push(format!(
            "no training pod appeared within {}s",
            budget.as_secs()
        ));
    }
    for (name, place) in &served {
        lines.insert(format!("serving {name}"), format!("{place:?}"));
        if let Placement::Bound(node) = place
            && pool_names.contains(node)
        {
            problems.push(format!(
                "expected serving pod {name} off the GPU pool; it was bound to GPU node {node}"
            ));
        }
    }
    for (name, place) in &over {
        lines.insert(
            format!("over-ask {name} ({} GPUs)", pool_gpus + 1),
            format!("{place:?}"),
        );
        match place {
            Placement::Unschedulable(message) if message.contains(GPU_RESOURCE) => {}
            Placement::Unschedulable(message) => problems.push(format!("a pod asking {} GPUs was unschedulable, but not for {GPU_RESOURCE}: {message}", pool_gpus + 1)),
            other => problems.push(format!("expected a pod asking {} GPUs (the pool has {pool_gpus}) to stay Pending Unschedulable; saw {other:?}", pool_gpus + 1)),
        }
    }
    let evidence = vec![
        Evidence::Values {
            values: lines.into_iter().collect(),
        },
        Evidence::Note {
            text: notes.join("\n"),
        },
    ];
    match problems.as_slice() {
        [] => verdict(
            Outcome::Pass,
            format!(
                "{} training pod(s) on the GPU pool, serving off it, a {}-GPU pod Pending as Unschedulable",
                trained.len(),
                pool_gpus + 1
            ),
            evidence,
        ),
        [first, ..] => verdict(Outcome::Fail, first.clone(), evidence),
    }
}

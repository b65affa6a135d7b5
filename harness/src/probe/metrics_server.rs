//! Live probe of `metrics-server`: its Deployment and APIService Available, NodeMetrics
//! for every real node, and PodMetrics for a freshly started pod within 60 s.

use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::load::describe_pod;
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::time::{Duration, Instant};

pub const METRICS_SERVER: &str = "metrics-server";
/// The criterion's own bound: PodMetrics within 60 s of the pod running.
pub const POD_METRICS_WITHIN: Duration = Duration::from_secs(60);

fn verdict(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Verdict {
    Verdict {
        id: METRICS_SERVER.into(),
        outcome,
        message,
        findings: Vec::new(),
        evidence,
    }
}

/// `pod` is a fresh pod to create (from a fixture or the submission).
pub async fn probe(namespace: &mut TestNamespace, pod: &Value) -> Verdict {
    let mut values = Vec::new();
    let deployment = Api::<Deployment>::namespaced(namespace.client(), "kube-system")
        .get_opt("metrics-server")
        .await
        .ok()
        .flatten();
    if !deployment.as_ref().is_some_and(deployment_available) {
        return verdict(
            Outcome::Fail,
            "expected Deployment kube-system/metrics-server Available; it is not".into(),
            Vec::new(),
        );
    }
    values.push((
        "Deployment kube-system/metrics-server".into(),
        "Available".into(),
    ));
    let node_metrics = namespace.cluster.metrics_api("NodeMetrics", "nodes");
    let listed = match Api::<DynamicObject>::all_with(namespace.client(), &node_metrics)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            return verdict(
                Outcome::Fail,
                format!("expected the metrics API to list NodeMetrics; it answered: {e}"),
                Vec::new(),
            );
        }
    };
    let names: Vec<String> = listed
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    let missing: Vec<&String> = namespace
        .cluster
        .facts
        .real_nodes
        .iter()
        .filter(|n| !names.contains(n))
        .collect();
    if !missing.is_empty() {
        return verdict(
            Outcome::Fail,
            format!("expected NodeMetrics for every real node; missing for {missing:?}"),
            Vec::new(),
        );
    }
    values.push(("NodeMetrics".into(), names.join(", ")));

    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("fresh")
        .to_string();
    if let Err(e) = namespace.apply(std::slice::from_ref(pod)).await {
        return verdict(
            Outcome::Error,
            format!("could not create the fresh pod: {e}"),
            Vec::new(),
        );
    }
    let pods: Api<Pod> = namespace.api();
    let running = wait_for(
        &pods,
        &name,
        "the fresh pod to run",
        namespace.cluster.intervals.pod_ready * 2,
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Running")
                || p.is_some_and(|p| {
                    matches!(
                        super::gpu_pool::placement(p),
                        super::gpu_pool::Placement::Unschedulable(_)
                    )
                })
        },
        describe_pod,
    )
    .await;
    // Unschedulable ends the wait early: such a pod will not run by itself.
    let running = match running {
        Ok(Some(pod))
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") =>
        {
            Err(format!("unschedulable: {}", describe_pod(Some(&pod))))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = running {
        return verdict(
            Outcome::Fail,
            format!(
                "expected PodMetrics for a fresh pod within {}s; the pod never ran, so there can be none: {e}",
                POD_METRICS_WITHIN.as_secs()
            ),
            vec![Evidence::Values { values }],
        );
    }
    let started = Instant::now();
    let pod_metrics = namespace.cluster.metrics_api("PodMetrics", "pods");
    let api: Api<DynamicObject> =
        Api::namespaced_with(namespace.client(), &namespace.name, &pod_metrics);
    let found = super::poll_until(POD_METRICS_WITHIN, Duration::from_secs(2), || async {
        api.get_opt(&name).await.ok().flatten()
    })
    .await;
    let after = started.elapsed().as_secs_f64();
    match found {
        Some(metrics) => {
            let usage = metrics
                .data
                .pointer("/containers/0/usage")
                .map(|u| u.to_string())
                .unwrap_or_default();
            values.push((
                format!("PodMetrics {name}"),
                format!("after {after:.0}s: {usage}"),
            ));
            verdict(
                Outcome::Pass,
                format!(
                    "metrics-server Available, NodeMetrics for {} node(s), PodMetrics for a fresh pod {after:.0}s after it started running",
                    names.len()
                ),
                vec![Evidence::Values { values }],
            )
        }
        None => verdict(
            Outcome::Fail,
            format!(
                "expected PodMetrics for the fresh pod {name} within {}s of it running; none came",
                POD_METRICS_WITHIN.as_secs()
            ),
            vec![Evidence::Values { values }],
        ),
    }
}

//! Live probe of `metrics-server`: its Deployment and APIService Available, NodeMetrics
//! for every real node, and PodMetrics for a freshly started pod within 60 s.
//!
//! A [`Recorder`] watches the test namespace; the probe marks what it did
//! ([`POD_CREATED`], [`POD_METRICS_SEEN`]) and [`judge_fresh_pod`] reaches the
//! verdict from the recorded timeline alone, so a saved timeline can be judged again.

use super::ID;
use super::judge::{
    POD_CREATED, POD_METRICS_GAVE_UP, POD_METRICS_SEEN, POD_METRICS_WITHIN, judge_fresh_pod,
    lacks_capacity,
};
use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::cluster::{describe_pod, poll_until};
use crate::criteria::ProbeContext;
use crate::criteria::demand::{self, CpuDemand};
use crate::observe::{Placement, Recorder, placement};
use crate::submission::{Submission, Typed};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};
use std::time::Duration;

/// How often the metrics API is asked (it cannot be watched).
const ASK_EVERY: Duration = Duration::from_secs(2);
/// How long one question may take: with metrics-server gone, the aggregator's proxy can
/// hold a request for minutes (one took some 330 s), far past the probe's own bound.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Runs the probe with a fresh pod of the submission's workload ([`fresh_pod`]).
pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let pod = fresh_pod(context.submission);
    let recorder = Recorder::start(
        namespace,
        &format!("{ID}-{}", namespace.name),
        context.timelines,
    );
    let mut values = Vec::new();
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    let observed = Box::pin(observe(namespace, &pod, &recorder, &mut values)).await;
    let timeline = recorder.finish();
    let mut verdict = match observed {
        Ok(name) => judge_fresh_pod(&timeline, &name, POD_METRICS_WITHIN, values),
        Err(mut early) => {
            if !values.is_empty() {
                early.evidence.insert(0, Evidence::Values { values });
            }
            early
        }
    };
    verdict.evidence.extend(timeline.file_evidence());
    vec![verdict]
}

/// A fresh pod for the criterion: the pod the CPU HPA's target would run (its metrics
/// are what the HPA needs), else the first Deployment's, else the first Pod the
/// submission declares as it is, else the suite's own inference pod.
pub fn fresh_pod(submission: &Submission) -> Value {
    let hpa_target = submission.hpa_targets().into_iter().next();
    let workload = hpa_target.or_else(|| {
        submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::Deployment(_)))
    });
    // As kubectl would send the workload (see `Object::as_kubectl_sends`).
    let template = workload.and_then(|w| {
        w.as_kubectl_sends(w.value())
            .pointer("/spec/template")
            .filter(|t| t.pointer("/spec/containers").is_some())
            .map(|t| (w.name.clone(), t.clone()))
    });
    if let Some((name, template)) = template {
        return json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("fresh-{name}").chars().take(63).collect::<String>(),
                "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            },
            "spec": template["spec"].clone(),
        });
    }
    if let Some(pod) = submission.objects.iter().find(|o| o.kind == "Pod") {
        return pod.as_kubectl_sends(pod.value());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "fresh-inference" },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "server",
                "image": "localhost/autoscale-conformance/inference-server:0.1.0",
                "imagePullPolicy": "IfNotPresent",
                "resources": { "requests": { "cpu": "20m", "memory": "32Mi" } },
            }],
        },
    })
}

/// The fresh pod, as written (the probe applies it alone, without LimitRanges).
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    serde_json::from_value(fresh_pod(submission)["spec"].clone()).map_or(CpuDemand::NONE, |spec| {
        demand::pods(&spec, &crate::checks::Defaults::default(), 1)
    })
}

/// Checks the server and the node metrics, then creates the fresh pod and asks for its
/// PodMetrics. Returns the pod's name for [`judge_fresh_pod`], or an early verdict.
async fn observe(
    namespace: &mut TestNamespace,
    pod: &Value,
    recorder: &Recorder,
    values: &mut Vec<(String, String)>,
) -> Result<String, Verdict> {
    server_available(namespace).await?;
    values.push((
        "Deployment kube-system/metrics-server".into(),
        "Available".into(),
    ));
    recorder.mark("metrics-server-available");
    let names = node_metrics(namespace).await?;
    values.push(("NodeMetrics".into(), names.join(", ")));
    recorder.mark(&format!("node-metrics: {}", names.join(", ")));

    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("fresh")
        .to_string();
    let running = start_fresh_pod(namespace, pod, &name, recorder).await?;
    if !running {
        // The judge says why from the timeline (no Running state in it).
        return Ok(name);
    }
    let pod_metrics = namespace.cluster.metrics_api("PodMetrics", "pods");
    let api: Api<DynamicObject> =
        Api::namespaced_with(namespace.client(), &namespace.name, &pod_metrics);
    let found = poll_until(POD_METRICS_WITHIN, ASK_EVERY, || async {
        tokio::time::timeout(ANSWER_WITHIN, api.get_opt(&name))
            .await
            .ok()?
            .ok()
            .flatten()
    })
    .await;
    match found {
        Some(metrics) => {
            recorder.mark(POD_METRICS_SEEN);
            let usage = metrics
                .data
                .pointer("/containers/0/usage")
                .map(|u| u.to_string())
                .unwrap_or_default();
            values.push((format!("PodMetrics {name}"), usage));
        }
        None => {
            recorder.mark(POD_METRICS_GAVE_UP);
        }
    }
    Ok(name)
}

/// The Deployment kube-system/metrics-server is Available.
async fn server_available(namespace: &TestNamespace) -> Result<(), Verdict> {
    let deployment = Api::<Deployment>::namespaced(namespace.client(), "kube-system")
        .get_opt("metrics-server")
        .await
        .ok()
        .flatten();
    if !deployment.as_ref().is_some_and(deployment_available) {
        return Err(Verdict::new(
            ID,
            Outcome::Fail,
            "expected Deployment kube-system/metrics-server Available; it is not",
            Vec::new(),
        ));
    }
    Ok(())
}

/// The metrics API lists NodeMetrics for every real node; returns the nodes it listed.
async fn node_metrics(namespace: &TestNamespace) -> Result<Vec<String>, Verdict> {
    let node_metrics = namespace.cluster.metrics_api("NodeMetrics", "nodes");
    let listed = match Api::<DynamicObject>::all_with(namespace.client(), &node_metrics)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            return Err(Verdict::new(
                ID,
                Outcome::Fail,
                format!("expected the metrics API to list NodeMetrics; it answered: {e}"),
                Vec::new(),
            ));
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
        return Err(Verdict::new(
            ID,
            Outcome::Fail,
            format!(
                "expected NodeMetrics for every real node; missing for {missing:?} (listed: {names:?})"
            ),
            Vec::new(),
        ));
    }
    Ok(names)
}

/// Creates the fresh pod `name` and waits for it to run (or to be refused for good);
/// returns whether it runs, once the recorder has seen as much.
async fn start_fresh_pod(
    namespace: &mut TestNamespace,
    pod: &Value,
    name: &str,
    recorder: &Recorder,
) -> Result<bool, Verdict> {
    if let Err(e) = namespace.apply(std::slice::from_ref(pod)).await {
        return Err(Verdict::new(
            ID,
            Outcome::Error,
            format!("could not create the fresh pod: {e}"),
            Vec::new(),
        ));
    }
    recorder.mark(POD_CREATED);
    let pods: Api<Pod> = namespace.api();
    // Unschedulable ends the wait early: such a pod will not run by itself. Unless the
    // scheduler only lacks capacity (`Insufficient cpu`): other pods may free it.
    let settled = wait_for(
        &pods,
        name,
        "the fresh pod to run",
        namespace.cluster.intervals.pod_ready * 2,
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Running")
                || p.is_some_and(|p| match placement(p) {
                    Placement::Unschedulable(message) => !lacks_capacity(&message),
                    _ => false,
                })
        },
        describe_pod,
    )
    .await;
    let running = matches!(&settled, Ok(Some(p))
        if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
    // The judge reads the pod's state from the recorder: let its watch catch up with ours.
    let slack = namespace.cluster.intervals.observation_slack;
    let _ = recorder
        .caught_up(slack, |t| {
            t.pod_states(name).last().is_some_and(|s| {
                if running {
                    s.phase == "Running"
                } else {
                    s.reason.is_some()
                }
            })
        })
        .await;
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn the_fresh_pod_is_the_hpa_targets_pod() {
        let pod = fresh_pod(&load_fixture("submissions/reference"));
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["labels"]["app"], "fraud-detector");
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "200m"
        );
    }

    /// The live tests' fixtures are bare Pods: each is the fresh pod as written.
    #[test]
    fn a_bare_pod_of_the_submission_is_the_fresh_pod() {
        let pod = fresh_pod(&load_fixture("metrics_server/broken-pod-never-runs"));
        assert_eq!(pod["metadata"]["name"], "fresh-inference");
        assert_eq!(pod["spec"]["nodeSelector"]["node-pool"], "does-not-exist");
        let fallback = fresh_pod(&load_fixture("quota_limits/broken-no-defaults"));
        assert_eq!(fallback["metadata"]["name"], "fresh-inference");
    }
}

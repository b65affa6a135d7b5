//! Live probe of `metrics-server`: its Deployment and APIService Available, NodeMetrics
//! for every real node, and PodMetrics for a freshly started pod within 60 s.
//!
//! A [`Recorder`] watches the test namespace; the probe marks what it did
//! ([`POD_CREATED`], [`POD_METRICS_SEEN`]) and [`judge_fresh_pod`] reaches the
//! verdict from the recorded timeline alone, so a saved timeline can be judged again.

use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::load::describe_pod;
use crate::observe::Recorder;
use crate::timeline::{Observation, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::time::Duration;

pub const METRICS_SERVER: &str = "metrics-server";
/// The criterion's own bound: PodMetrics within 60 s of the pod running.
pub const POD_METRICS_WITHIN: Duration = Duration::from_secs(60);
/// Marker: the fresh pod was applied.
pub const POD_CREATED: &str = "pod-created";
/// Marker: the metrics API served the fresh pod's PodMetrics.
pub const POD_METRICS_SEEN: &str = "pod-metrics-seen";
/// Marker: the probe stopped asking for PodMetrics without getting any.
pub const POD_METRICS_GAVE_UP: &str = "pod-metrics-gave-up";
/// How often the metrics API is asked (it cannot be watched).
const ASK_EVERY: Duration = Duration::from_secs(2);

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
    let recorder = Recorder::start(namespace, &format!("{METRICS_SERVER}-{}", namespace.name));
    let mut values = Vec::new();
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    let observed = Box::pin(observe(namespace, pod, &recorder, &mut values)).await;
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
    verdict
}

/// Checks the server and the node metrics, then creates the fresh pod and asks for its
/// PodMetrics. Returns the pod's name for [`judge_fresh_pod`], or an early verdict.
async fn observe(
    namespace: &mut TestNamespace,
    pod: &Value,
    recorder: &Recorder,
    values: &mut Vec<(String, String)>,
) -> Result<String, Verdict> {
    let deployment = Api::<Deployment>::namespaced(namespace.client(), "kube-system")
        .get_opt("metrics-server")
        .await
        .ok()
        .flatten();
    if !deployment.as_ref().is_some_and(deployment_available) {
        return Err(verdict(
            Outcome::Fail,
            "expected Deployment kube-system/metrics-server Available; it is not".into(),
            Vec::new(),
        ));
    }
    values.push((
        "Deployment kube-system/metrics-server".into(),
        "Available".into(),
    ));
    recorder.mark("metrics-server-available");
    let node_metrics = namespace.cluster.metrics_api("NodeMetrics", "nodes");
    let listed = match Api::<DynamicObject>::all_with(namespace.client(), &node_metrics)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            return Err(verdict(
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
        return Err(verdict(
            Outcome::Fail,
            format!(
                "expected NodeMetrics for every real node; missing for {missing:?} (listed: {names:?})"
            ),
            Vec::new(),
        ));
    }
    values.push(("NodeMetrics".into(), names.join(", ")));
    recorder.mark(&format!("node-metrics: {}", names.join(", ")));

    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("fresh")
        .to_string();
    if let Err(e) = namespace.apply(std::slice::from_ref(pod)).await {
        return Err(verdict(
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
        &name,
        "the fresh pod to run",
        namespace.cluster.intervals.pod_ready * 2,
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Running")
                || p.is_some_and(|p| match super::gpu_pool::placement(p) {
                    super::gpu_pool::Placement::Unschedulable(message) => !lacks_capacity(&message),
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
            t.pod_states(&name).last().is_some_and(|s| {
                if running {
                    s.phase == "Running"
                } else {
                    s.reason.is_some()
                }
            })
        })
        .await;
    if !running {
        // The judge says why from the timeline (no Running state in it).
        return Ok(name);
    }
    let pod_metrics = namespace.cluster.metrics_api("PodMetrics", "pods");
    let api: Api<DynamicObject> =
        Api::namespaced_with(namespace.client(), &namespace.name, &pod_metrics);
    let found = super::poll_until(POD_METRICS_WITHIN, ASK_EVERY, || async {
        api.get_opt(&name).await.ok().flatten()
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

/// The scheduler refused a pod only for want of free resources on fitting nodes
/// (`3 Insufficient cpu`): capacity that other pods hold and may release.
fn lacks_capacity(scheduler_message: &str) -> bool {
    scheduler_message.contains("Insufficient ")
}

/// Judges the fresh pod `pod` from a recorded timeline: Running at some point, then
/// [`POD_METRICS_SEEN`] at most `within` later. `values` are the probe's other readings.
pub fn judge_fresh_pod(
    timeline: &Timeline,
    pod: &str,
    within: Duration,
    mut values: Vec<(String, String)>,
) -> Verdict {
    let states = timeline.pod_states(pod);
    let created = timeline.marker(POD_CREATED);
    let running = states.iter().find(|s| s.phase == "Running").map(|s| s.t);
    let seen = timeline.marker(POD_METRICS_SEEN);
    let relevant = |o: &Observation| match o {
        Observation::Pod { name, .. } => name == pod,
        Observation::Marker { .. } => true,
        Observation::Event { object, .. } => object == &format!("Pod/{pod}"),
        _ => false,
    };
    let mut evidence = vec![Evidence::Timeline {
        points: timeline.excerpt(relevant),
    }];
    let limit = within.as_secs_f64();
    let Some(running) = running else {
        let last = match states.last() {
            Some(s) => {
                let mut line = format!("last seen at t={:.1} s: {}", s.t, s.phase);
                if let Some(reason) = s.reason {
                    line.push_str(&format!(", PodScheduled=False {reason}"));
                }
                if let Some(message) = s.message {
                    line.push_str(&format!(": {message}"));
                }
                line
            }
            None => "the timeline has no state of it".into(),
        };
        let end = timeline.samples.last().map_or(0.0, |s| s.t);
        let last = format!("{last} (recording ended at t={end:.1} s)");
        evidence.insert(0, Evidence::Values { values });
        // The pod is only the vehicle: a cluster too busy to run it says nothing about
        // metrics-server.
        let busy = states
            .last()
            .is_some_and(|s| s.reason.is_some() && s.message.is_some_and(lacks_capacity));
        if busy {
            return verdict(
                Outcome::Error,
                format!(
                    "cannot judge PodMetrics: the fresh pod never ran for lack of free node capacity (the cluster's, not metrics-server's): pod {pod} {last}"
                ),
                evidence,
            );
        }
        return verdict(
            Outcome::Fail,
            format!(
                "expected PodMetrics for a fresh pod within {limit:.0} s; the pod never ran, so there can be none: pod {pod} {last}"
            ),
            evidence,
        );
    };
    let since_created = created
        .map(|c| format!(" ({:.1} s after it was created)", running - c))
        .unwrap_or_default();
    values.push((
        format!("pod {pod} Running"),
        format!("t={running:.1} s{since_created}"),
    ));
    let Some(seen) = seen else {
        let until = timeline
            .marker(POD_METRICS_GAVE_UP)
            .map(|t| format!("; the probe asked until t={t:.1} s"))
            .unwrap_or_default();
        evidence.insert(0, Evidence::Values { values });
        return verdict(
            Outcome::Fail,
            format!(
                "expected PodMetrics for the fresh pod {pod} within {limit:.0} s of it running (Running at t={running:.1} s); none came{until}"
            ),
            evidence,
        );
    };
    let after = (seen - running).max(0.0);
    values.push((
        format!("PodMetrics {pod} seen"),
        format!("t={seen:.1} s, {after:.1} s after Running"),
    ));
    evidence.insert(0, Evidence::Values { values });
    if after > limit {
        return verdict(
            Outcome::Fail,
            format!(
                "expected PodMetrics for the fresh pod {pod} within {limit:.0} s of it running; they appeared {after:.1} s after (Running at t={running:.1} s, PodMetrics at t={seen:.1} s)"
            ),
            evidence,
        );
    }
    let nodes = timeline
        .samples
        .iter()
        .find_map(|s| match &s.what {
            Observation::Marker { label } => label.strip_prefix("node-metrics: "),
            _ => None,
        })
        .map(|n| n.split(", ").count())
        .unwrap_or(0);
    verdict(
        Outcome::Pass,
        format!(
            "metrics-server Available, NodeMetrics for {nodes} node(s), PodMetrics appeared {after:.1} s after the pod was Running (t={running:.1} s -> t={seen:.1} s; bound {limit:.0} s)"
        ),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Observation;

    fn pod(phase: &str, node: Option<&str>, reason: Option<&str>) -> Observation {
        Observation::Pod {
            name: "fresh".into(),
            phase: phase.into(),
            ready: phase == "Running",
            node: node.map(Into::into),
            reason: reason.map(Into::into),
            message: reason.map(|_| "0/3 nodes are available: 3 Insufficient cpu.".into()),
        }
    }

    fn marker(label: &str) -> Observation {
        Observation::Marker {
            label: label.into(),
        }
    }

    fn recorded(seen_at: Option<f64>) -> Timeline {
        let mut timeline = Timeline::new("metrics-server-test", "2026-01-01T00:00:00Z");
        timeline.push(0.1, marker("metrics-server-available"));
        timeline.push(0.2, marker("node-metrics: n1, n2"));
        timeline.push(0.5, marker(POD_CREATED));
        timeline.push(0.6, pod("Pending", None, None));
        timeline.push(0.7, pod("Pending", Some("n1"), None));
        timeline.push(3.0, pod("Running", Some("n1"), None));
        if let Some(t) = seen_at {
            timeline.push(t, marker(POD_METRICS_SEEN));
        }
        timeline
    }

    #[test]
    fn pod_metrics_within_the_bound_pass_and_cite_the_delay() {
        let verdict = judge_fresh_pod(&recorded(Some(17.2)), "fresh", POD_METRICS_WITHIN, vec![]);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict
                .message
                .contains("PodMetrics appeared 14.2 s after the pod was Running"),
            "{}",
            verdict.message
        );
        assert!(verdict.message.contains("NodeMetrics for 2 node(s)"));
    }

    #[test]
    fn late_or_missing_pod_metrics_fail_with_the_times() {
        let late = judge_fresh_pod(&recorded(Some(64.0)), "fresh", POD_METRICS_WITHIN, vec![]);
        assert_eq!(late.outcome, Outcome::Fail);
        assert!(
            late.message.contains("appeared 61.0 s after"),
            "{}",
            late.message
        );
        let mut missing = recorded(None);
        missing.push(61.5, marker(POD_METRICS_GAVE_UP));
        let missing = judge_fresh_pod(&missing, "fresh", POD_METRICS_WITHIN, vec![]);
        assert_eq!(missing.outcome, Outcome::Fail);
        assert!(
            missing
                .message
                .contains("none came; the probe asked until t=61.5 s"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn a_pod_that_never_runs_fails_with_the_scheduler_reason() {
        let mut timeline = Timeline::new("t", "2026-01-01T00:00:00Z");
        timeline.push(0.5, marker(POD_CREATED));
        timeline.push(
            2.1,
            Observation::Pod {
                name: "fresh".into(),
                phase: "Pending".into(),
                ready: false,
                node: None,
                reason: Some("Unschedulable".into()),
                message: Some("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint(s).".into()),
            },
        );
        let verdict = judge_fresh_pod(&timeline, "fresh", POD_METRICS_WITHIN, vec![]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("the pod never ran")
                && verdict.message.contains(
                    "last seen at t=2.1 s: Pending, PodScheduled=False Unschedulable: 0/3 nodes"
                ),
            "{}",
            verdict.message
        );
        let Some(Evidence::Timeline { points }) = verdict.evidence.get(1) else {
            panic!("a timeline excerpt: {:?}", verdict.evidence)
        };
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].seconds, 2.1);
    }

    #[test]
    fn a_pod_the_cluster_has_no_room_for_is_an_environment_error() {
        let mut timeline = Timeline::new("t", "2026-01-01T00:00:00Z");
        timeline.push(0.5, marker(POD_CREATED));
        timeline.push(2.1, pod("Pending", None, Some("Unschedulable")));
        let verdict = judge_fresh_pod(&timeline, "fresh", POD_METRICS_WITHIN, vec![]);
        assert_eq!(verdict.outcome, Outcome::Error, "{}", verdict.message);
        assert!(
            verdict.message.contains("lack of free node capacity")
                && verdict.message.contains("3 Insufficient cpu"),
            "{}",
            verdict.message
        );
    }

    /// A timeline saved as JSON by the recorder is judged again to the same verdict.
    #[test]
    fn a_saved_timeline_is_judged_again_to_the_same_verdict() {
        let dir = tempfile::tempdir().unwrap();
        for timeline in [recorded(Some(17.2)), recorded(Some(90.0)), recorded(None)] {
            let path = crate::observe::save_in(dir.path(), &timeline).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let back: Timeline = serde_json::from_str(&text).unwrap();
            assert_eq!(back, timeline);
            assert_eq!(
                judge_fresh_pod(&back, "fresh", POD_METRICS_WITHIN, vec![]),
                judge_fresh_pod(&timeline, "fresh", POD_METRICS_WITHIN, vec![])
            );
        }
    }
}

//! The judge of `metrics-server`'s fresh-pod PodMetrics: a pure function of the
//! recorded timeline (the pod's states and the probe's markers), so a saved timeline
//! can be judged again.

use super::ID;
use crate::timeline::{Observation, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// The criterion's own bound: PodMetrics within 60 s of the pod running.
pub const POD_METRICS_WITHIN: Duration = Duration::from_secs(60);
/// Marker: the fresh pod was applied.
pub const POD_CREATED: &str = "pod-created";
/// Marker: the metrics API served the fresh pod's PodMetrics.
pub const POD_METRICS_SEEN: &str = "pod-metrics-seen";
/// Marker: the probe stopped asking for PodMetrics without getting any.
pub const POD_METRICS_GAVE_UP: &str = "pod-metrics-gave-up";

/// The scheduler refused a pod only for want of free resources on fitting nodes
/// (`3 Insufficient cpu`): capacity that other pods hold and may release.
pub fn lacks_capacity(scheduler_message: &str) -> bool {
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
            return Verdict::new(
                ID,
                Outcome::Error,
                format!(
                    "cannot judge PodMetrics: the fresh pod never ran for lack of free node capacity (the cluster's, not metrics-server's): pod {pod} {last}"
                ),
                evidence,
            );
        }
        return Verdict::new(
            ID,
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
        return Verdict::new(
            ID,
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
        return Verdict::new(
            ID,
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
    Verdict::new(
        ID,
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

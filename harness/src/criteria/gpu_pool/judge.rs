//! The judge of `gpu-pool`: where the scheduler put (or refused) each of the probe's
//! pods, read from the recorded timeline alone, against the GPU pool the probe found.

use super::ID;
use crate::cluster::GPU_RESOURCE;
use crate::observe::{Placement, placement_in};
use crate::timeline::{Observation, Timeline};
use crate::verdict::{Evidence, Outcome, TimelinePoint, Verdict};
use std::collections::BTreeMap;
use std::time::Duration;

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
    if let Some(cannot_judge) = refused_for_gpus_held_elsewhere(timeline, pool, roles) {
        return cannot_judge;
    }
    let mut findings = Findings::default();
    judge_training(timeline, pool, roles, budget, &mut findings);
    judge_serving(timeline, pool, roles, &mut findings);
    judge_over_ask(timeline, pool, roles, &mut findings);
    let mut evidence = vec![
        Evidence::Values {
            values: findings.lines.into_iter().collect(),
        },
        Evidence::Timeline {
            points: excerpt(timeline, roles),
        },
    ];
    evidence.extend(Evidence::notes(notes));
    match findings.problems.as_slice() {
        [] => Verdict::new(
            ID,
            Outcome::Pass,
            format!(
                "{} training pod(s) on the GPU pool, serving off it, a {}-GPU pod Pending as Unschedulable ({})",
                roles.training.len(),
                pool.gpus + 1,
                findings.cited.join("; ")
            ),
            evidence,
        ),
        [first, ..] => Verdict::new(ID, Outcome::Fail, first.clone(), evidence),
    }
}

/// What the judge found, pod by pod.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    /// Each pod's placement, by role and name.
    lines: BTreeMap<String, String>,
    /// What the pass message cites.
    cited: Vec<String>,
}

/// A training pod refused for GPUs that other namespaces held: the environment, not
/// the submission ("error", cannot judge).
fn refused_for_gpus_held_elsewhere(
    timeline: &Timeline,
    pool: &Pool,
    roles: &Roles,
) -> Option<Verdict> {
    let held: i64 = pool.held_elsewhere.iter().map(|(_, g)| g).sum();
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
            return Some(Verdict::new(
                ID,
                Outcome::Error,
                format!(
                    "cannot judge the GPU pool: training pod {name} was refused at t={t:.1} s for lack of GPUs while pods of other namespaces held {held} of the pool's {}: {}; the scheduler said: {message}",
                    pool.gpus,
                    holders.join(", ")
                ),
                vec![Evidence::Timeline {
                    points: timeline.excerpt(|o| matches!(o, Observation::Marker { .. })),
                }],
            ));
        }
    }
    None
}

fn describe(place: &Option<(f64, Placement)>) -> String {
    match place {
        Some((t, Placement::Bound(node))) => format!("bound to {node} at t={t:.1} s"),
        Some((t, Placement::Unschedulable(m))) => {
            format!("Pending, Unschedulable since t={t:.1} s: {m}")
        }
        Some((t, Placement::Waiting)) => format!("Pending, not yet placed since t={t:.1} s"),
        None => "never seen".into(),
    }
}

/// Every training pod bound to a node of the pool (and at least one appeared).
fn judge_training(
    timeline: &Timeline,
    pool: &Pool,
    roles: &Roles,
    budget: Duration,
    findings: &mut Findings,
) {
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    for name in &roles.training {
        let place = placement_in(timeline, name);
        findings
            .lines
            .insert(format!("training {name}"), describe(&place));
        match place {
            Some((t, Placement::Bound(node))) if pool.nodes.contains(&node) => {
                findings.cited.push(format!("{name} on {node} at t={t:.1} s"));
            }
            Some((t, Placement::Bound(node))) => findings.problems.push(format!("expected training pod {name} on the GPU pool {:?}; it was bound to {node} at t={t:.1} s", pool.nodes)),
            Some((t, Placement::Unschedulable(message))) => findings.problems.push(format!("expected training pod {name} on the GPU pool; the scheduler refused it (Pending, Unschedulable from t={t:.1} s to the end at t={end:.1} s): {message}")),
            _ => findings.problems.push(format!("training pod {name} was neither bound nor refused within {}s", budget.as_secs())),
        }
    }
    if roles.training.is_empty() {
        findings.problems.push(format!(
            "no training pod appeared within {}s",
            budget.as_secs()
        ));
    }
}

/// No serving pod on a node of the pool.
fn judge_serving(timeline: &Timeline, pool: &Pool, roles: &Roles, findings: &mut Findings) {
    for name in &roles.serving {
        let place = placement_in(timeline, name);
        findings
            .lines
            .insert(format!("serving {name}"), describe(&place));
        if let Some((t, Placement::Bound(node))) = &place {
            if pool.nodes.contains(node) {
                findings.problems.push(format!(
                    "expected serving pod {name} off the GPU pool; it was bound to GPU node {node} at t={t:.1} s"
                ));
            } else {
                findings
                    .cited
                    .push(format!("serving {name} on {node} at t={t:.1} s"));
            }
        }
    }
}

/// Every pod asking one GPU more than the pool has stays Unschedulable for GPUs.
fn judge_over_ask(timeline: &Timeline, pool: &Pool, roles: &Roles, findings: &mut Findings) {
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let over_gpus = pool.gpus + 1;
    for name in &roles.over_ask {
        let place = placement_in(timeline, name);
        findings.lines.insert(
            format!("over-ask {name} ({over_gpus} GPUs)"),
            describe(&place),
        );
        match place {
            Some((t, Placement::Unschedulable(message))) if message.contains(GPU_RESOURCE) => {
                findings.cited.push(format!("a {over_gpus}-GPU pod Pending, Unschedulable from t={t:.1} s and still at the end of the recording (t={end:.1} s): {message}"));
            }
            Some((t, Placement::Unschedulable(message))) => findings.problems.push(format!("a pod asking {over_gpus} GPUs was unschedulable from t={t:.1} s, but not for {GPU_RESOURCE}: {message}")),
            other => findings.problems.push(format!("expected a pod asking {over_gpus} GPUs (the pool has {}) to stay Pending Unschedulable; it was {}", pool.gpus, describe(&other))),
        }
    }
}

/// A short excerpt: each pod's judged placement as the pod watch recorded it, the
/// scheduler's warnings about them, and the probe's own steps (per-pod markers,
/// Normal events and every intermediate state stay in the saved file).
fn excerpt(timeline: &Timeline, roles: &Roles) -> Vec<TimelinePoint> {
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
            points.push(TimelinePoint {
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
    points
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

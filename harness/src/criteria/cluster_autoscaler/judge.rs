//! The judge of `cluster-autoscaler`: a pure function of what the probe saw of the
//! autoscaler's node group (nodes added and removed, and when) and of the work's pods.
//!
//! It passes when the pods no node could take made the autoscaler add nodes to the
//! right group within its budget, the pods were bound to those nodes, a serving pod
//! placed beside them stayed off the GPU nodes, a pod the submission protects from
//! scale-down (`safe-to-evict: "false"`, a PodDisruptionBudget allowing no disruption)
//! kept its node once the work had ended, and then the nodes above the group's minimum
//! went, no earlier than the unneeded time (less one scan: the autoscaler counts from
//! the scan that first found a node unneeded) and within budget.

use super::ID;
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// What the probe saw, in seconds since it applied the work.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The node group the work needs (`gpu-pool`).
    pub group: String,
    /// The workload, as the submission names it (`Deployment ml-training/large-training-job`).
    pub workload: String,
    /// Pods of the work, and how many of them the existing nodes could not take.
    pub pods: usize,
    pub beyond_existing: usize,
    /// Nodes the autoscaler added to the group, and when each was first seen.
    pub added: Vec<(String, f64)>,
    /// When every pod of the work was bound (and to which node), if they were.
    pub all_bound_at: Option<f64>,
    pub bound_to: Vec<(String, String)>,
    /// Pods bound to a node of another group than `group`.
    pub misplaced: Vec<(String, String)>,
    /// When the work ended (the probe deleted it).
    pub work_ended_at: Option<f64>,
    /// When the group was back at its minimum, if it came to that.
    pub removed_at: Option<f64>,
    /// Each added node that went, and when.
    pub removed: Vec<(String, f64)>,
    /// When the protected pod was deleted (its node unneeded from then on).
    pub protection_ended_at: Option<f64>,
    /// The group's minimum (its nodes never go below it).
    pub group_min: u32,
    /// The test of the submission's protection from scale-down, if it has one.
    pub protection: Option<ProtectionSeen>,
    /// A serving pod placed while the GPU nodes were there, and the node it was bound to
    /// (`None`: still Pending); whether that node is one of the GPU group's.
    pub serving: Option<(String, Option<String>, bool)>,
    /// The autoscaler's events on the work's pods and its nodes (TriggeredScaleUp,
    /// NotTriggerScaleUp, ScaleDown), and the scheduler's reason while Pending.
    pub events: Vec<String>,
    pub unneeded_time: Duration,
    pub scale_up_budget: Duration,
    pub scale_down_budget: Duration,
    pub scan_interval: Duration,
    /// What the apply said (substituted images, renamed PriorityClasses).
    pub notes: Vec<String>,
    /// The autoscaler's status ConfigMap once the pods were bound (or the scale-up
    /// budget ran out).
    pub status: Option<String>,
}

/// What became of the pod whose protection from scale-down was tested: left alone on a
/// node the autoscaler added, once the work had ended.
#[derive(Debug, Clone, Default)]
pub struct ProtectionSeen {
    pub pod: String,
    pub node: String,
    /// The workload whose pod-template metadata the pod carries.
    pub source: String,
    /// What protects it (`safe-to-evict: "false"`, a budget allowing 0 disruptions).
    pub means: String,
    /// Whether that should hold the node (a budget allowing a disruption does not).
    pub expected_to_hold: bool,
    /// The submission's annotation where no pod carries it.
    pub misplaced_annotation: Option<String>,
    /// The autoscaler's log: why it cannot remove the node, or that it could.
    pub blocked_line: Option<String>,
    pub drainable_line: Option<String>,
    /// When the node went while the pod was on it (seconds since the work was applied).
    pub node_removed_at: Option<f64>,
    /// How long the node stayed after the work ended, while the probe watched.
    pub held_for: f64,
}

pub fn judge(observed: &Observed) -> Verdict {
    let o = observed;
    let mut values: Vec<(String, String)> = vec![
        ("node group".into(), o.group.clone()),
        (
            "work".into(),
            format!(
                "{} ({} pods, {} beyond the existing nodes)",
                o.workload, o.pods, o.beyond_existing
            ),
        ),
        ("nodes added".into(), describe_added(&o.added)),
        (
            "all pods bound".into(),
            o.all_bound_at.map_or("no".into(), |t| format!("{t:.0}s")),
        ),
        (
            "scale-up budget".into(),
            format!("{}s", o.scale_up_budget.as_secs()),
        ),
        (
            "unneeded time".into(),
            format!("{}s", o.unneeded_time.as_secs()),
        ),
        (
            format!("group back at its min ({})", o.group_min),
            match (o.work_ended_at, o.removed_at) {
                (Some(end), Some(gone)) => format!("{:.0}s after the work ended", gone - end),
                (Some(_), None) => "no".into(),
                _ => "-".into(),
            },
        ),
    ];
    if let Some(p) = &o.protection {
        values.push((
            "protected pod".into(),
            format!("{} ({}, {}) on {}", p.pod, p.source, p.means, p.node),
        ));
        values.push((
            "autoscaler on that node".into(),
            p.blocked_line
                .clone()
                .or_else(|| p.drainable_line.clone())
                .unwrap_or_else(|| "(nothing in its log)".into()),
        ));
        values.push((
            "node kept after the work ended".into(),
            match p.node_removed_at {
                Some(t) => format!("no: removed at {t:.0}s"),
                None => format!("{:.0}s while watched", p.held_for),
            },
        ));
    }
    if let Some((pod, node, _)) = &o.serving {
        values.push((
            "serving pod".into(),
            format!(
                "{pod} on {}",
                node.as_deref().unwrap_or("no node (Pending)")
            ),
        ));
    }
    let mut evidence = vec![Evidence::Values { values }];
    if !o.events.is_empty() {
        evidence.push(Evidence::Events {
            lines: o.events.clone(),
        });
    }
    evidence.extend(Evidence::notes(&o.notes));
    if let Some(status) = &o.status {
        evidence.push(Evidence::Note {
            text: format!("cluster-autoscaler-status:\n{status}"),
        });
    }
    let fail = |message: String, evidence: Vec<Evidence>| {
        Verdict::new(ID.0, Outcome::Fail, message, evidence)
    };
    if o.added.is_empty() {
        let why = o
            .events
            .iter()
            .rev()
            .find(|e| e.contains("NotTriggerScaleUp") || e.contains("FailedScheduling"))
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return fail(
            format!(
                "expected the Cluster Autoscaler to add a {} node for the pods of {} that no existing node could take, within {}s; it added none{why}",
                o.group,
                o.workload,
                o.scale_up_budget.as_secs()
            ),
            evidence,
        );
    }
    if !o.misplaced.is_empty() {
        return fail(
            format!(
                "pods of {} landed outside the {} group: {}",
                o.workload,
                o.group,
                o.misplaced
                    .iter()
                    .map(|(pod, node)| format!("{pod} on {node}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            evidence,
        );
    }
    let Some(bound) = o.all_bound_at else {
        return fail(
            format!(
                "the Cluster Autoscaler added {} but the pods of {} were not all bound within {}s",
                describe_added(&o.added),
                o.workload,
                o.scale_up_budget.as_secs()
            ),
            evidence,
        );
    };
    if let Some((pod, Some(node), true)) = &o.serving {
        return fail(
            format!(
                "serving pod {pod} was bound to {node}, a GPU node the Cluster Autoscaler added: serving must stay off the GPU pool (no toleration of its taint, or a node affinity that excludes it)"
            ),
            evidence,
        );
    }
    let mut protection_text = String::new();
    if let Some(p) = &o.protection {
        if let Some(misplaced) = &p.misplaced_annotation {
            return fail(
                format!(
                    "{misplaced}; so the Cluster Autoscaler {} node {} under pod {}",
                    p.node_removed_at
                        .map_or("found it could drain".to_string(), |t| format!(
                            "drained (at {t:.0}s)"
                        )),
                    p.node,
                    p.pod
                ),
                evidence,
            );
        }
        if p.expected_to_hold {
            let drained = p
                .node_removed_at
                .map(|t| format!("removed node {} at {t:.0}s", p.node))
                .or_else(|| {
                    p.drainable_line
                        .as_ref()
                        .map(|l| format!("found node {} drainable ({l})", p.node))
                });
            if let Some(drained) = drained {
                return fail(
                    format!(
                        "pod {} carries {} ({}), yet once the work ended the Cluster Autoscaler {drained}",
                        p.pod, p.means, p.source
                    ),
                    evidence,
                );
            }
            protection_text = format!(
                "; pod {} ({}) kept node {} for {:.0}s after the work ended{}",
                p.pod,
                p.means,
                p.node,
                p.held_for,
                p.blocked_line
                    .as_ref()
                    .map(|l| format!(" (the autoscaler: {l})"))
                    .unwrap_or_default()
            );
        }
    }
    let serving_text = match &o.serving {
        Some((pod, Some(node), _)) => format!("; serving pod {pod} went to {node}, not a GPU node"),
        Some((pod, None, _)) => format!("; serving pod {pod} stayed off the GPU nodes (Pending)"),
        None => String::new(),
    };
    let first_added = o.added.iter().map(|(_, t)| *t).fold(f64::MAX, f64::min);
    let Some(ended) = o.work_ended_at else {
        return fail("the probe never ended the work".into(), evidence);
    };
    let Some(gone) = o.removed_at else {
        return fail(
            format!(
                "after the work ended, the {} nodes above its min ({}) were not removed within {}s (unneeded time {}s): scale-down blocked (a PodDisruptionBudget allowing no disruption? a pod with safe-to-evict \"false\" left on them?)",
                o.group,
                o.group_min,
                o.scale_down_budget.as_secs(),
                o.unneeded_time.as_secs()
            ),
            evidence,
        );
    };
    // Each node counts from when it became unneeded: the protected pod's from when the
    // probe deleted that pod, the others' from the end of the work.
    let protected_node = o.protection.as_ref().map(|p| p.node.as_str());
    let unneeded_since = |node: &str| match (protected_node, o.protection_ended_at) {
        (Some(held), Some(freed)) if held == node => freed,
        _ => ended,
    };
    let earliest = o
        .unneeded_time
        .saturating_sub(o.scan_interval)
        .as_secs_f64();
    for (node, t) in &o.removed {
        let after = t - unneeded_since(node);
        if after < earliest {
            return fail(
                format!(
                    "node {node} of the {} group was removed {after:.0}s after it became unneeded, earlier than the unneeded time of {}s",
                    o.group,
                    o.unneeded_time.as_secs()
                ),
                evidence,
            );
        }
    }
    let removals = if o.removed.is_empty() {
        format!("{:.0}s", gone - ended)
    } else {
        o.removed
            .iter()
            .map(|(node, t)| {
                format!(
                    "{node} {:.0}s after it became unneeded",
                    t - unneeded_since(node)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Verdict::new(
        ID.0,
        Outcome::Pass,
        format!(
            "{} pods of {}, {} more than the existing nodes take: the Cluster Autoscaler added {} to {} ({first_added:.0}s after the work was applied), every pod was bound by {bound:.0}s{serving_text}{protection_text}; once nothing held them the nodes above the group's min ({}) went: {removals} (unneeded time {}s)",
            o.pods,
            o.workload,
            o.beyond_existing,
            names(&o.added),
            o.group,
            o.group_min,
            o.unneeded_time.as_secs()
        ),
        evidence,
    )
}

fn names(added: &[(String, f64)]) -> String {
    added
        .iter()
        .map(|(node, _)| node.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_added(added: &[(String, f64)]) -> String {
    if added.is_empty() {
        return "none".into();
    }
    added
        .iter()
        .map(|(node, t)| format!("{node} at {t:.0}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled() -> Observed {
        Observed {
            group: "gpu-pool".into(),
            workload: "Deployment ml-training/large-training-job".into(),
            pods: 3,
            beyond_existing: 1,
            added: vec![("gpu-pool-abcde".into(), 12.0)],
            all_bound_at: Some(20.0),
            bound_to: vec![("large-1".into(), "gpu-pool-abcde".into())],
            misplaced: Vec::new(),
            work_ended_at: Some(30.0),
            removed_at: Some(100.0),
            removed: vec![("gpu-pool-abcde".into(), 100.0)],
            protection_ended_at: None,
            events: vec!["Pod/large-1 TriggeredScaleUp: pod triggered scale-up".into()],
            unneeded_time: Duration::from_secs(60),
            scale_up_budget: Duration::from_secs(90),
            scale_down_budget: Duration::from_secs(120),
            scan_interval: Duration::from_secs(10),
            notes: Vec::new(),
            status: None,
            group_min: 0,
            protection: None,
            serving: None,
        }
    }

    fn protected() -> ProtectionSeen {
        ProtectionSeen {
            pod: "protected-abc".into(),
            node: "gpu-pool-abcde".into(),
            source: "Deployment ml-training/large-training-job".into(),
            means: "safe-to-evict \"false\" on its pod template".into(),
            expected_to_hold: true,
            blocked_line: Some("Node gpu-pool-abcde cannot be removed: pod annotated as not safe to evict present: protected-abc".into()),
            held_for: 40.0,
            ..ProtectionSeen::default()
        }
    }

    #[test]
    fn passes_a_protected_pod_that_kept_its_node_quoting_the_autoscaler() {
        let mut observed = scaled();
        observed.protection = Some(protected());
        observed.serving = Some(("api-1".into(), Some("localcluster-node".into()), false));
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        for words in [
            "kept node gpu-pool-abcde for 40s",
            "not safe to evict present",
            "api-1 went to localcluster-node",
        ] {
            assert!(
                verdict.message.contains(words),
                "{words}: {}",
                verdict.message
            );
        }
    }

    #[test]
    fn the_protected_node_counts_its_unneeded_time_from_the_pods_deletion() {
        let mut observed = scaled();
        observed.protection = Some(protected());
        observed.protection_ended_at = Some(60.0);
        // Held 30 s past the work's end, then gone 65 s after the pod was deleted.
        observed.removed = vec![("gpu-pool-abcde".into(), 125.0)];
        observed.removed_at = Some(125.0);
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict
                .message
                .contains("gpu-pool-abcde 65s after it became unneeded"),
            "{}",
            verdict.message
        );
        // 20 s after the pod's deletion is too early, whatever the work's end.
        observed.removed = vec![("gpu-pool-abcde".into(), 80.0)];
        assert_eq!(judge(&observed).outcome, Outcome::Fail);
    }

    #[test]
    fn fails_a_protected_pod_whose_node_the_autoscaler_drained() {
        let mut observed = scaled();
        let mut p = protected();
        p.blocked_line = None;
        p.node_removed_at = Some(95.0);
        observed.protection = Some(p);
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("removed node gpu-pool-abcde at 95s"),
            "{}",
            verdict.message
        );
        let mut p = protected();
        p.blocked_line = None;
        p.drainable_line = Some("Node gpu-pool-abcde may be removed".into());
        observed.protection = Some(p);
        assert!(
            judge(&observed)
                .message
                .contains("found node gpu-pool-abcde drainable")
        );
    }

    #[test]
    fn fails_an_annotation_no_pod_carries_naming_where_it_is() {
        let mut observed = scaled();
        let mut p = protected();
        p.expected_to_hold = false;
        p.blocked_line = None;
        p.misplaced_annotation = Some("Deployment ml-training/large-training-job carries cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\" on its own metadata".into());
        observed.protection = Some(p);
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("on its own metadata"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_budget_that_allows_a_disruption_is_not_held_against_the_submission() {
        let mut observed = scaled();
        let mut p = protected();
        p.expected_to_hold = false;
        p.blocked_line = None;
        p.node_removed_at = Some(95.0);
        observed.protection = Some(p);
        assert_eq!(judge(&observed).outcome, Outcome::Pass);
    }

    #[test]
    fn fails_a_serving_pod_on_a_gpu_node() {
        let mut observed = scaled();
        observed.serving = Some(("api-1".into(), Some("gpu-pool-abcde".into()), true));
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("serving pod api-1 was bound to gpu-pool-abcde"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn passes_a_scale_up_and_a_scale_down_after_the_unneeded_time() {
        let verdict = judge(&scaled());
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict
                .message
                .contains("gpu-pool-abcde 70s after it became unneeded"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_when_no_node_was_added_quoting_the_autoscaler() {
        let mut observed = scaled();
        observed.added.clear();
        observed.all_bound_at = None;
        observed.events = vec!["Pod/large-1 NotTriggerScaleUp: pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector".into()];
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("didn't match Pod's node affinity"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_a_scale_down_before_the_unneeded_time() {
        let mut observed = scaled();
        observed.removed_at = Some(45.0);
        observed.removed = vec![("gpu-pool-abcde".into(), 45.0)];
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("removed 15s after it became unneeded, earlier than the unneeded time"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_a_scale_down_that_never_comes() {
        let mut observed = scaled();
        observed.removed_at = None;
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("not removed within 120s"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_pods_bound_outside_the_group() {
        let mut observed = scaled();
        observed.misplaced = vec![("large-2".into(), "cpu-pool-xyz".into())];
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("large-2 on cpu-pool-xyz"),
            "{}",
            verdict.message
        );
    }
}

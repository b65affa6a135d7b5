//! The judge of `cluster-autoscaler`: a pure function of what the probe saw of the
//! autoscaler's node group (nodes added and removed, and when) and of the work's pods.
//!
//! It passes when the pods no node could take made the autoscaler add nodes to the
//! right group within its budget, the pods were bound to those nodes, and once the work
//! ended the nodes went, no earlier than the unneeded time (less one scan: the
//! autoscaler counts from the scan that first found a node unneeded) and within budget.

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
    /// When the group had no node left, if it came to that.
    pub removed_at: Option<f64>,
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

pub fn judge(observed: &Observed) -> Verdict {
    let o = observed;
    let mut evidence = vec![Evidence::Values {
        values: vec![
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
                "group empty".into(),
                match (o.work_ended_at, o.removed_at) {
                    (Some(end), Some(gone)) => format!("{:.0}s after the work ended", gone - end),
                    (Some(_), None) => "no".into(),
                    _ => "-".into(),
                },
            ),
        ],
    }];
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
    let first_added = o.added.iter().map(|(_, t)| *t).fold(f64::MAX, f64::min);
    let Some(ended) = o.work_ended_at else {
        return fail("the probe never ended the work".into(), evidence);
    };
    let Some(gone) = o.removed_at else {
        return fail(
            format!(
                "after the work ended, the {} nodes were not removed within {}s (unneeded time {}s): scale-down blocked (a PodDisruptionBudget allowing no disruption? a pod with safe-to-evict \"false\" left on them?)",
                o.group,
                o.scale_down_budget.as_secs(),
                o.unneeded_time.as_secs()
            ),
            evidence,
        );
    };
    let after = gone - ended;
    let earliest = o
        .unneeded_time
        .saturating_sub(o.scan_interval)
        .as_secs_f64();
    if after < earliest {
        return fail(
            format!(
                "the {} nodes were removed {after:.0}s after the work ended, earlier than the unneeded time of {}s",
                o.group,
                o.unneeded_time.as_secs()
            ),
            evidence,
        );
    }
    Verdict::new(
        ID.0,
        Outcome::Pass,
        format!(
            "{} pods of {}, one more than the existing nodes take: the Cluster Autoscaler added {} to {} ({first_added:.0}s after the work was applied), every pod was bound by {bound:.0}s; after the work ended the nodes were removed in {after:.0}s (unneeded time {}s)",
            o.pods,
            o.workload,
            names(&o.added),
            o.group,
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
            events: vec!["Pod/large-1 TriggeredScaleUp: pod triggered scale-up".into()],
            unneeded_time: Duration::from_secs(60),
            scale_up_budget: Duration::from_secs(90),
            scale_down_budget: Duration::from_secs(120),
            scan_interval: Duration::from_secs(10),
            notes: Vec::new(),
            status: None,
        }
    }

    #[test]
    fn passes_a_scale_up_and_a_scale_down_after_the_unneeded_time() {
        let verdict = judge(&scaled());
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict.message.contains("removed in 70s"),
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
        let verdict = judge(&observed);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("earlier than the unneeded time"),
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

//! The criterion catalogue: the exercise's success criteria, each with its
//! rubric line and, where it applies, the CNCF Kubernetes AI Conformance
//! requirement it evidences. Static checks point at a criterion (see
//! [`crate::checks::CATALOGUE`]); live probes judge the same criteria against a
//! cluster. Points per rubric line live in `harness/rubric.toml`.

use serde::Serialize;

/// One success criterion of the exercise.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Criterion {
    pub id: &'static str,
    /// The success criterion as the exercise words it (or the task it comes from).
    pub title: &'static str,
    /// The rubric line (ID in `rubric.toml`) whose points it earns.
    pub rubric_line: &'static str,
    /// CNCF Kubernetes AI Conformance requirement ID, where one applies.
    pub cncf_ai_conformance: Option<&'static str>,
    /// Whether its behaviour can only be judged on a cluster (live probe).
    pub has_live_part: bool,
}

macro_rules! criterion {
    ($id:literal, $title:literal, $line:literal, $cncf:expr, $live:literal) => {
        Criterion {
            id: $id,
            title: $title,
            rubric_line: $line,
            cncf_ai_conformance: $cncf,
            has_live_part: $live,
        }
    };
}

/// Every criterion. IDs are stable: `rubric.toml`, checks and live tests name them.
pub const CRITERIA: &[Criterion] = &[
    criterion!(
        "metrics-server",
        "Metrics-server installed and providing pod metrics",
        "metrics-server",
        None,
        true
    ),
    criterion!(
        "quota-limits",
        "ResourceQuota and LimitRange admit every workload at full scale (Task 1.2)",
        "metrics-server",
        None,
        true
    ),
    criterion!(
        "hpa-cpu",
        "HPA successfully scales deployment based on CPU load",
        "hpa-cpu",
        Some("pod_autoscaling"),
        true
    ),
    criterion!(
        "hpa-scale-down",
        "Scale-down behavior is stable (no thrashing)",
        "hpa-cpu",
        Some("pod_autoscaling"),
        true
    ),
    criterion!(
        "hpa-custom",
        "HPA configured with custom Prometheus metrics",
        "hpa-custom",
        Some("pod_autoscaling"),
        true
    ),
    criterion!(
        "vpa",
        "VPA provides resource recommendations",
        "vpa",
        None,
        true
    ),
    criterion!(
        "keda-scale-to-zero",
        "KEDA installed and scaling based on events",
        "keda",
        None,
        true
    ),
    criterion!(
        "keda-cron",
        "KEDA scaling based on schedule",
        "keda",
        None,
        true
    ),
    criterion!(
        "pdb",
        "PodDisruptionBudgets prevent unsafe evictions",
        "hpa-cpu",
        None,
        true
    ),
    criterion!(
        "gpu-pool",
        "GPU training lands on the GPU pool; serving stays off it (Task 6)",
        "keda",
        Some("cluster_autoscaling"),
        true
    ),
    criterion!(
        "load-testing",
        "Load testing demonstrates automatic scale-up and scale-down",
        "testing",
        None,
        true
    ),
    criterion!(
        "docs",
        "Documentation clearly explains when to use each autoscaler",
        "docs",
        None,
        false
    ),
    criterion!(
        "monitoring",
        "Monitoring dashboard shows autoscaling metrics",
        "monitoring",
        Some("ai_service_metrics"),
        true
    ),
    criterion!(
        "manifests-valid",
        "The submission's manifests load and use served API versions",
        "hpa-cpu",
        None,
        false
    ),
];

pub fn find(id: &str) -> Option<&'static Criterion> {
    CRITERIA.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_ids_are_unique() {
        let mut ids: Vec<_> = CRITERIA.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len());
        assert!(find("hpa-cpu").is_some_and(|c| c.cncf_ai_conformance == Some("pod_autoscaling")));
        assert!(find("nope").is_none());
    }
}

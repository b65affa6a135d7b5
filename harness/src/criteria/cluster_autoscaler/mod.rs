//! Criterion `cluster-autoscaler` (Task 6): pending work that no node fits makes the
//! cluster's Cluster Autoscaler add nodes to the right node group, and once the work
//! ends they go, no earlier than the unneeded time. Live only: the probe gives the
//! cluster's one autoscaler (simulated node groups, kwok provider) the submission's
//! large workload.

pub mod checks;
pub mod judge;
pub mod plan;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("cluster-autoscaler");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Cluster Autoscaler adds nodes for pending work and removes them once unneeded",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct ClusterAutoscaler;

criterion_folder!(ClusterAutoscaler);

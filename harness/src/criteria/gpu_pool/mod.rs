//! Criterion `gpu-pool`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("gpu-pool");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "GPU training lands on the GPU pool; serving stays off it (Task 6)",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: Some("cluster_autoscaling"),
    has_live_part: true,
}];

pub struct GpuPool;

criterion_folder!(GpuPool);

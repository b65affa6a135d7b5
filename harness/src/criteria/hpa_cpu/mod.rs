//! Criteria `hpa-cpu`, `hpa-scale-down`: static checks, live probe and judge.
//!
//! One probe run judges both: the load that scales the target up is the one whose
//! end it scales down from. [`scaling`] reads the HPA's promises and replays the
//! controller's arithmetic; [`budget`] derives the waits from them and the cluster's
//! intervals; [`judge`] turns the recorded timeline into the two verdicts.

pub mod budget;
pub mod checks;
pub mod judge;
pub mod probe;
pub mod scaling;

use super::{CriterionId, CriterionInfo};

pub const SCALE_UP: CriterionId = CriterionId("hpa-cpu");
pub const SCALE_DOWN: CriterionId = CriterionId("hpa-scale-down");

pub const ABOUT: &[CriterionInfo] = &[
    CriterionInfo {
        id: SCALE_UP,
        title: "HPA successfully scales deployment based on CPU load",
        rubric_line: "hpa-cpu-configuration",
        cncf_ai_conformance: Some("pod_autoscaling"),
        has_live_part: true,
    },
    CriterionInfo {
        id: SCALE_DOWN,
        title: "Scale-down behavior is stable (no thrashing)",
        rubric_line: "hpa-cpu-configuration",
        cncf_ai_conformance: Some("pod_autoscaling"),
        has_live_part: true,
    },
];

pub struct HpaCpu;

criterion_folder!(HpaCpu);

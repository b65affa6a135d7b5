//! Criterion `quota-limits`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("quota-limits");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "ResourceQuota and LimitRange admit every workload at full scale (Task 1.2)",
    rubric_line: "metrics-server-setup",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct QuotaLimits;

criterion_folder!(QuotaLimits);

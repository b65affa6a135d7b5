//! Criterion `metrics-server`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("metrics-server");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Metrics-server installed and providing pod metrics",
    rubric_line: "metrics-server-setup",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct MetricsServer;

criterion_folder!(MetricsServer);

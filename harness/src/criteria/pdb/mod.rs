//! Criterion `pdb`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("pdb");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "PodDisruptionBudgets prevent unsafe evictions",
    rubric_line: "hpa-cpu-configuration",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct Pdb;

criterion_folder!(Pdb);

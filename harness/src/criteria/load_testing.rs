//! Criterion `load-testing`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("load-testing");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Load testing demonstrates automatic scale-up and scale-down",
    rubric_line: "testing-load-generation",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct LoadTesting;

impl Criterion for LoadTesting {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    fn not_probed_because(&self) -> &'static str {
        "running the submission's own load scripts in a sandbox"
    }
}

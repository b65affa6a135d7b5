//! Criterion `manifests-valid`: static checks only.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("manifests-valid");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "The submission's manifests load and use served API versions",
    rubric_line: "hpa-cpu-configuration",
    cncf_ai_conformance: None,
    has_live_part: false,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct ManifestsValid;

impl Criterion for ManifestsValid {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}
}

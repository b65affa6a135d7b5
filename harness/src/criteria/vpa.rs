//! Criterion `vpa`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("vpa");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "VPA provides resource recommendations",
    rubric_line: "vpa-recommendations",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct Vpa;

impl Criterion for Vpa {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    fn not_probed_because(&self) -> &'static str {
        "the VPA recommender and updater in the cluster"
    }
}

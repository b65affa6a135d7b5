//! Criterion `docs`: static checks only.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("docs");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Documentation clearly explains when to use each autoscaler",
    rubric_line: "docs-decision-matrix",
    cncf_ai_conformance: None,
    has_live_part: false,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct Docs;

impl Criterion for Docs {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}
}

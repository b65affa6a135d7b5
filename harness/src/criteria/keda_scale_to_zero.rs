//! Criterion `keda-scale-to-zero`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("keda-scale-to-zero");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "KEDA installed and scaling based on events",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct KedaScaleToZero;

impl Criterion for KedaScaleToZero {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    fn not_probed_because(&self) -> &'static str {
        "KEDA (and Prometheus) in the cluster"
    }
}

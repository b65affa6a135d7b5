//! Criterion `hpa-custom`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("hpa-custom");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "HPA configured with custom Prometheus metrics",
    rubric_line: "hpa-custom-metrics",
    cncf_ai_conformance: Some("pod_autoscaling"),
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct HpaCustom;

impl Criterion for HpaCustom {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    fn not_probed_because(&self) -> &'static str {
        "Prometheus and prometheus-adapter in the cluster"
    }
}

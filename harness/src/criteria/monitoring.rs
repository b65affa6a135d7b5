//! Criterion `monitoring`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("monitoring");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Monitoring dashboard shows autoscaling metrics",
    rubric_line: "monitoring-observability",
    cncf_ai_conformance: Some("ai_service_metrics"),
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct Monitoring;

impl Criterion for Monitoring {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        CATALOGUE
    }

    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    fn not_probed_because(&self) -> &'static str {
        "Prometheus and Grafana in the cluster"
    }
}

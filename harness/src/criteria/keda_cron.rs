//! Criterion `keda-cron`: static checks only, until its live probe arrives.

use super::{Criterion, CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};

pub const ID: CriterionId = CriterionId("keda-cron");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "KEDA scaling based on schedule",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub const CATALOGUE: &[CheckInfo] = &[];

pub struct KedaCron;

impl Criterion for KedaCron {
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

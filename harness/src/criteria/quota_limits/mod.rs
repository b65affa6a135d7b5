//! Criterion `quota-limits`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{Criterion, CriterionId, CriterionInfo, ProbeContext};
use crate::checks::{CheckInfo, Collector, Input};
use crate::cluster::TestNamespace;
use crate::verdict::Verdict;
use futures::future::BoxFuture;

pub const ID: CriterionId = CriterionId("quota-limits");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "ResourceQuota and LimitRange admit every workload at full scale (Task 1.2)",
    rubric_line: "metrics-server-setup",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct QuotaLimits;

impl Criterion for QuotaLimits {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [CheckInfo] {
        checks::CATALOGUE
    }

    fn check(&self, input: &Input<'_>, out: &mut Collector) {
        checks::check(input, out);
    }

    fn not_probed_because(&self) -> Option<&'static str> {
        None
    }

    fn probe<'a>(
        &'a self,
        namespace: &'a mut TestNamespace,
        context: &'a ProbeContext<'a>,
    ) -> Option<BoxFuture<'a, Vec<Verdict>>> {
        Some(Box::pin(probe::run(namespace, context)))
    }
}

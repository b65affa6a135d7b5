//! Criterion `pdb`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{Criterion, CriterionId, CriterionInfo, ProbeContext};
use crate::checks::{CheckInfo, Collector, Input};
use crate::cluster::TestNamespace;
use crate::verdict::Verdict;
use futures::future::BoxFuture;

pub const ID: CriterionId = CriterionId("pdb");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "PodDisruptionBudgets prevent unsafe evictions",
    rubric_line: "hpa-cpu-configuration",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct Pdb;

impl Criterion for Pdb {
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

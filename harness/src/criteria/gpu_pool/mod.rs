//! Criterion `gpu-pool`: static checks, live probe and judge.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{Criterion, CriterionId, CriterionInfo, ProbeContext};
use crate::checks::{CheckInfo, Collector, Input};
use crate::cluster::TestNamespace;
use crate::verdict::Verdict;
use futures::future::BoxFuture;

pub const ID: CriterionId = CriterionId("gpu-pool");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "GPU training lands on the GPU pool; serving stays off it (Task 6)",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: Some("cluster_autoscaling"),
    has_live_part: true,
}];

pub struct GpuPool;

impl Criterion for GpuPool {
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

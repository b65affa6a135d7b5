//! Criterion `load-testing`: the submission's own test script, run inside the cluster
//! (never on the host), generates load that makes its autoscalers scale up.
//!
//! Static checks (`checks.rs`): a test script exercises the autoscalers, every shell
//! script parses and passes shellcheck, every request loop is bounded. Live
//! (`probe.rs`, `judge.rs`): the script runs as a Job in the probe's namespace
//! ([`crate::cluster::script_job`]) beside the autoscalers it names, and the judge
//! reads its exit, its output and the recorded timeline: did an autoscaler (not
//! `kubectl scale`) raise the replicas while it ran, and did its load reach the Service.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};
use std::time::Duration;

pub const ID: CriterionId = CriterionId("load-testing");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Load testing demonstrates automatic scale-up and scale-down",
    rubric_line: "testing-load-generation",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

/// The criterion, with the longest its script may run: the grader's bound, or a
/// shorter one where a test needs the bound itself to be reached quickly.
pub struct LoadTesting {
    pub bound: Duration,
}

impl LoadTesting {
    /// What grading allows a test script: ten minutes, enough for a scale-up under
    /// load and a five-minute stabilization window on the way down.
    pub const GRADING: LoadTesting = LoadTesting {
        bound: Duration::from_secs(600),
    };
}

impl super::Criterion for LoadTesting {
    fn about(&self) -> &'static [CriterionInfo] {
        ABOUT
    }

    fn catalogue(&self) -> &'static [crate::checks::CheckInfo] {
        checks::CATALOGUE
    }

    fn check(&self, input: &crate::checks::Input<'_>, out: &mut crate::checks::Collector) {
        checks::check(input, out);
    }

    fn not_probed_because(&self) -> Option<&'static str> {
        None
    }

    fn probe<'a>(
        &'a self,
        namespace: &'a mut crate::cluster::TestNamespace,
        context: &'a super::ProbeContext<'a>,
    ) -> Option<futures::future::BoxFuture<'a, Vec<crate::verdict::Verdict>>> {
        Some(Box::pin(probe::run(namespace, context, self.bound)))
    }

    fn cpu_demand(&self, submission: &crate::submission::Submission) -> super::demand::CpuDemand {
        probe::cpu_demand(submission)
    }
}

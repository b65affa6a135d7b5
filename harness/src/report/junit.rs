//! The report as JUnit XML (quick-junit), for CI test views.

use super::{RenderError, Report, evidence_lines};
use crate::verdict::Outcome;
use std::time::Duration;

impl Report {
    /// JUnit XML: one suite per rubric line, one case per check or criterion.
    pub fn to_junit(&self) -> Result<String, RenderError> {
        use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
        let mut junit = Junit::new("autoscale-conformance");
        junit.set_time(Duration::from_millis(self.duration_ms));
        for line in &self.lines {
            let mut suite = TestSuite::new(format!("{} ({})", line.title, line.id));
            for item in &line.items {
                let mut status = match item.outcome {
                    Outcome::Pass => TestCaseStatus::success(),
                    Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Outcome::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
                    Outcome::NotRun => TestCaseStatus::skipped(),
                };
                if item.outcome != Outcome::Pass {
                    status.set_message(item.message.clone());
                    let detail: Vec<String> = item
                        .findings
                        .iter()
                        .map(|f| format!("{}: {}\n  hint: {}", f.location, f.message, f.hint))
                        .chain(evidence_lines(&item.evidence))
                        .collect();
                    if !detail.is_empty() {
                        status.set_description(detail.join("\n"));
                    }
                }
                let mut case = TestCase::new(item.id.clone(), status);
                case.set_classname(format!("{}.{}", item.kind, line.id));
                suite.add_test_case(case);
            }
            junit.add_test_suite(suite);
        }
        junit.to_string().map_err(|e| RenderError {
            format: "junit",
            message: e.to_string(),
        })
    }
}

//! The static-check engine: what a check is ([`CheckInfo`]), what checks record
//! ([`Collector`]), what they are given ([`Input`], with the shared [`Index`] of
//! typed objects) and how their findings become one [`Verdict`] per check
//! ([`fold`]). No cluster, no execution of student code (scripts are only parsed
//! by `bash -n` and shellcheck).
//!
//! The checks themselves live with the criterion they evidence (in `criteria`),
//! which fires them as typed [`CheckInfo`] constants: this module knows no
//! criterion.

mod defaults;
mod index;
pub mod known_images;
pub mod tools;

use crate::submission::Submission;
use crate::verdict::{Evidence, Finding, Location, Outcome, Severity, Verdict};
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

pub use defaults::{Defaults, container_resources, namespace_defaults, pod_resources};
pub use index::{
    Index, ResourceMetric, identity, is_training, pointer_escape, resource_metrics,
    selector_mismatch, service_selector, trigger_setting,
};
pub use tools::Tools;

/// A criterion's ID: the name `rubric.toml`, the checks' catalogue and the reports
/// use. Each is a constant defined once, in its criterion's module. It is defined
/// here, below `criteria` (which re-exports it), so that a check can name its
/// criterion without this engine knowing the criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CriterionId(pub &'static str);

impl CriterionId {
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for CriterionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What a check is and how to fix it. Each check is one constant in its
/// criterion's module, listed in that criterion's catalogue and fired by its rules.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// Stable: fixtures and `rubric.toml` use it.
    pub id: &'static str,
    /// The criterion this check evidences.
    pub criterion: CriterionId,
    pub severity: Severity,
    /// The success criterion, phrased as what must hold.
    pub expectation: &'static str,
    pub hint: &'static str,
    /// Whether the check judges the whole submission (existence, input
    /// problems): it always has a subject, so passing it with nothing found is a
    /// real pass. Any other check passes only if it had something to examine.
    pub always_applicable: bool,
}

impl CheckInfo {
    /// A check whose findings are errors.
    pub const fn error(
        id: &'static str,
        criterion: CriterionId,
        expectation: &'static str,
        hint: &'static str,
    ) -> Self {
        CheckInfo {
            id,
            criterion,
            severity: Severity::Error,
            expectation,
            hint,
            always_applicable: false,
        }
    }

    /// A check whose findings only inform (they cost no points).
    pub const fn info(
        id: &'static str,
        criterion: CriterionId,
        expectation: &'static str,
        hint: &'static str,
    ) -> Self {
        CheckInfo {
            severity: Severity::Info,
            ..CheckInfo::error(id, criterion, expectation, hint)
        }
    }

    /// The same check, judging the whole submission (see [`CheckInfo::always_applicable`]).
    pub const fn always_applicable(self) -> Self {
        CheckInfo {
            always_applicable: true,
            ..self
        }
    }
}

/// What a criterion's static checks are given.
pub struct Input<'a> {
    pub submission: &'a Submission,
    pub tools: &'a Tools,
    /// The submission's objects, typed, with their targets resolved once for all criteria.
    pub index: Index<'a>,
}

impl<'a> Input<'a> {
    pub fn new(submission: &'a Submission, tools: &'a Tools) -> Self {
        Input {
            submission,
            tools,
            index: Index::new(submission),
        }
    }
}

/// What the checks produced: findings, environment problems, and evidence
/// that is worth showing even when a check passes (e.g. quota headroom).
#[derive(Debug, Default)]
pub struct Collector {
    pub findings: Vec<Finding>,
    /// (check id, what is broken in the environment)
    pub environment: Vec<(String, String)>,
    pub evidence: Vec<(String, Evidence)>,
    /// Checks that found something to examine. A check with nothing to look at
    /// (no VPA for the VPA checks) earns no points: it did not pass, the
    /// subject is missing (which its `*.missing` check reports).
    pub examined: BTreeSet<String>,
}

impl Collector {
    /// Records a finding with the check's severity and hint.
    pub fn fire(&mut self, check: &CheckInfo, location: Location, message: impl Into<String>) {
        self.findings.push(Finding {
            check: check.id.to_string(),
            severity: check.severity,
            location,
            message: message.into(),
            hint: check.hint.to_string(),
            evidence: Vec::new(),
        });
    }

    /// Records a finding with a more specific hint.
    pub fn fire_with_hint(
        &mut self,
        check: &CheckInfo,
        location: Location,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.fire(check, location, message);
        if let Some(finding) = self.findings.last_mut() {
            finding.hint = hint.into();
        }
    }

    /// Records an information finding (costs no points) with its own hint.
    pub fn note(
        &mut self,
        check: &CheckInfo,
        location: Location,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.fire_with_hint(check, location, message, hint);
        if let Some(finding) = self.findings.last_mut() {
            finding.severity = Severity::Info;
        }
    }

    /// Marks checks as having had something to examine.
    pub fn examined(&mut self, checks: &[CheckInfo]) {
        self.examined
            .extend(checks.iter().map(|c| c.id.to_string()));
    }

    /// Records that the environment (a missing tool) kept a check from running.
    pub fn environment(&mut self, check: &CheckInfo, message: impl Into<String>) {
        self.environment
            .push((check.id.to_string(), message.into()));
    }

    /// Records evidence shown with a check's verdict whatever its outcome.
    pub fn evidence(&mut self, check: &CheckInfo, evidence: Evidence) {
        self.evidence.push((check.id.to_string(), evidence));
    }

    /// Appends what another collector (a part run on its own thread) recorded.
    pub fn absorb(&mut self, part: Collector) {
        self.findings.extend(part.findings);
        self.environment.extend(part.environment);
        self.evidence.extend(part.evidence);
        self.examined.extend(part.examined);
    }
}

/// Folds what the checks recorded into one verdict per check of `catalogue`, in
/// its order.
pub fn fold<'a>(
    collector: Collector,
    catalogue: impl IntoIterator<Item = &'a CheckInfo>,
) -> Vec<Verdict> {
    let Collector {
        mut findings,
        environment,
        evidence,
        examined,
    } = collector;
    findings.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then_with(|| a.check.cmp(&b.check))
    });
    findings.dedup();
    catalogue
        .into_iter()
        .map(|check| {
            let own: Vec<Finding> = findings
                .iter()
                .filter(|f| f.check == check.id)
                .cloned()
                .collect();
            let problems: Vec<&(String, String)> = environment
                .iter()
                .filter(|(id, _)| id == check.id)
                .collect();
            let failing = own
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .count();
            let (outcome, message) = if !problems.is_empty() {
                let what: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
                (
                    Outcome::Error,
                    format!("environment error: {}", what.join("; ")),
                )
            } else if failing > 0 {
                (
                    Outcome::Fail,
                    format!("expected: {}; {failing} finding(s)", check.expectation),
                )
            } else if !examined.contains(check.id) && !check.always_applicable {
                (
                    Outcome::Fail,
                    format!(
                        "not judged, so not earned: the submission has nothing this check examines ({})",
                        check.expectation
                    ),
                )
            } else {
                (Outcome::Pass, check.expectation.to_string())
            };
            Verdict {
                id: check.id.to_string(),
                outcome,
                message,
                findings: own,
                evidence: evidence
                    .iter()
                    .filter(|(id, _)| id == check.id)
                    .map(|(_, e)| e.clone())
                    .collect(),
            }
        })
        .collect()
}

/// Compiles one of the checks' built-in patterns.
pub fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

/// Helpers for the checks' unit tests.
#[cfg(test)]
pub mod test_support {
    use crate::submission::Submission;

    /// A submission of one file with `text`, loaded as the grader loads it.
    pub fn submission_of(file: &str, text: &str) -> Submission {
        submission_of_files(&[(file, text)])
    }

    /// A submission of several files (path, text), loaded as the grader loads it.
    pub fn submission_of_files(files: &[(&str, &str)]) -> Submission {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        crate::submission::load(dir.path(), &crate::submission::LoadOptions::default()).unwrap()
    }

    /// A submission of one LimitRange `lr` in namespace `ml` with one Container `item`.
    pub fn limit_range_submission(item: &str) -> Submission {
        submission_of(
            "lr.yaml",
            &format!(
                "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\n  namespace: ml\nspec:\n  limits:\n    - type: Container\n{item}"
            ),
        )
    }
}

//! Verdicts and their evidence: the vocabulary shared by static checks and live probes.
//!
//! A [`Finding`] is one concrete observation tied to a place in the submission
//! (a check fired at `file:line`). A [`Verdict`] is the outcome of one check or
//! criterion, carrying its findings and any other [`Evidence`] (timeline excerpts,
//! events, metric values) that a live probe recorded.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is. Only `Error` costs rubric points; warnings and
/// information are reported but do not change the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The result of one check or criterion.
///
/// `Error` means the environment was broken (a tool missing, a cluster
/// unreachable), not the student: the points are neither awarded nor lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
    NotRun,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
            Outcome::NotRun => "not run",
        })
    }
}

/// A place in the submission. `file` is relative to the submission root and
/// uses `/` separators; line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            line: None,
            column: None,
        }
    }

    pub fn at(file: impl Into<String>, line: u32, column: u32) -> Self {
        Location {
            file: file.into(),
            line: Some(line),
            column: Some(column),
        }
    }

    pub fn line(file: impl Into<String>, line: u32) -> Self {
        Location {
            file: file.into(),
            line: Some(line),
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file.is_empty() {
            "<submission>"
        } else {
            &self.file
        };
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{file}:{line}:{column}"),
            (Some(line), None) => write!(f, "{file}:{line}"),
            _ => f.write_str(file),
        }
    }
}

/// One observation that a check or probe made. Kept general so live probes can
/// attach what they saw over time, not only places in files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Evidence {
    /// Free text (a tool's output, an explanation).
    Note { text: String },
    /// Named values: "expected"/"observed", a metric reading, a computed headroom.
    Values { values: Vec<(String, String)> },
    /// Kubernetes events or log lines, in order.
    Events { lines: Vec<String> },
    /// An excerpt of a probe's timeline: seconds since the probe started and what was seen.
    Timeline { points: Vec<TimelinePoint> },
    /// Where a probe's whole recorded timeline was written (JSON, see [`crate::timeline`]).
    TimelineFile { path: String },
}

impl Evidence {
    /// A probe's notes as one Note, or nothing when it has none.
    pub fn notes(notes: &[String]) -> Option<Evidence> {
        (!notes.is_empty()).then(|| Evidence::Note {
            text: notes.join("\n"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub seconds: f64,
    pub what: String,
}

/// A check that fired: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    pub hint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}] {}",
            self.location, self.severity, self.check, self.message
        )
    }
}

/// The outcome of one check or criterion with what supports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// A check ID (`hpa.cpu-missing`) or a criterion ID (`hpa-cpu-scale-up`).
    pub id: String,
    pub outcome: Outcome,
    /// What was expected and what was seen.
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

impl Verdict {
    /// A verdict without findings: `id` is a criterion's typed ID (a `CriterionId`), a
    /// check ID or any other name that prints as the report's ID.
    pub fn new(
        id: impl fmt::Display,
        outcome: Outcome,
        message: impl Into<String>,
        evidence: Vec<Evidence>,
    ) -> Self {
        Verdict {
            id: id.to_string(),
            outcome,
            message: message.into(),
            findings: Vec::new(),
            evidence,
        }
    }

    pub fn not_run(id: impl Into<String>, why: impl Into<String>) -> Self {
        Verdict {
            id: id.into(),
            outcome: Outcome::NotRun,
            message: why.into(),
            findings: Vec::new(),
            evidence: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Location::at("a/b.yaml", 3, 7), "a/b.yaml:3:7")]
    #[case(Location::line("a.yaml", 2), "a.yaml:2")]
    #[case(Location::file("x.md"), "x.md")]
    #[case(Location::file(""), "<submission>")]
    fn locations_print_as_file_line_column(#[case] location: Location, #[case] printed: &str) {
        assert_eq!(location.to_string(), printed);
    }

    #[test]
    fn evidence_serializes_with_a_type_tag() {
        let evidence = Evidence::Timeline {
            points: vec![TimelinePoint {
                seconds: 1.5,
                what: "replicas=3".into(),
            }],
        };
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["type"], "timeline");
        assert_eq!(json["points"][0]["what"], "replicas=3");
        let back: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(back, evidence);
    }

    #[test]
    fn outcomes_use_kebab_case() {
        assert_eq!(serde_json::to_value(Outcome::NotRun).unwrap(), "not-run");
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
    }
}

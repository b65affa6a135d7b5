//! The report as terminal text: the score per rubric line, every lost or
//! unjudged item with its findings and evidence, notes and other findings.

use super::{ItemResult, LineResult, Report, evidence_lines, points};
use crate::verdict::Outcome;
use std::fmt::Write as _;

impl Report {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.score;
        let _ = writeln!(
            out,
            "autoscale-conformance {} — {} grading of {}",
            self.tool.version, self.mode, self.submission
        );
        let _ = writeln!(out);
        for line in &self.lines {
            let not_run: f64 = line
                .items
                .iter()
                .filter(|i| i.outcome == Outcome::NotRun)
                .map(|i| i.points)
                .sum();
            let _ = write!(
                out,
                "{:<45} {:>6} / {:<3}",
                line.title,
                points(line.earned),
                points(line.points)
            );
            if not_run > 0.0 {
                let _ = write!(out, "  ({} live point(s) not run)", points(not_run));
            }
            let _ = writeln!(out);
            for item in line
                .items
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::Fail | Outcome::Error))
                .filter(|i| !is_unjudged(i))
            {
                let sign = if item.outcome == Outcome::Fail {
                    "-"
                } else {
                    "?"
                };
                let _ = writeln!(
                    out,
                    "    {sign}{} {} [{}]: {}",
                    points(item.points),
                    item.id,
                    item.outcome,
                    item.message
                );
                for finding in &item.findings {
                    let _ = writeln!(out, "        {}: {}", finding.location, finding.message);
                    let _ = writeln!(out, "          hint: {}", finding.hint);
                }
                for evidence in evidence_lines(&item.evidence) {
                    let _ = writeln!(out, "        | {evidence}");
                }
            }
            if let Some(group) = Unjudged::of(line) {
                let _ = writeln!(
                    out,
                    "    -{} {}: {}",
                    points(group.points),
                    group.reason(),
                    group.ids.join(", ")
                );
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            // Values checks record whether or not they pass: information, not findings.
            let _ = writeln!(out, "\nNotes (information, no points):");
            for (_, name, value) in &notes {
                let _ = writeln!(out, "    {name}: {value}");
            }
        }
        if !self.unscored_findings.is_empty() {
            let _ = writeln!(out, "\nOther findings (no points):");
            for finding in &self.unscored_findings {
                let _ = writeln!(out, "    {finding}");
                // Worth no points, but still something to fix.
                if !finding.hint.is_empty() {
                    let _ = writeln!(out, "      hint: {}", finding.hint);
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Score: {} / {} ({} points judged statically, {} judged live, {} lost; {} live points not run{})",
            points(s.earned),
            points(s.total),
            points(s.static_judged),
            points(s.total - s.static_judged - s.not_run - s.environment_errors),
            points(s.lost),
            points(s.not_run),
            if s.environment_errors > 0.0 {
                format!(
                    "; {} points not judged: environment error",
                    points(s.environment_errors)
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "Graded in {} ms.", self.duration_ms);
        out
    }
}

/// How the check engine words a check that had nothing to examine (its subject
/// is missing, which a `*.missing` check of the line usually reports).
const NOT_JUDGED: &str = "not judged, so not earned:";

pub(super) fn is_unjudged(item: &ItemResult) -> bool {
    item.outcome == Outcome::Fail && item.message.starts_with(NOT_JUDGED)
}

/// The items of one rubric line lost because there was nothing to judge,
/// reported as one line instead of one per check.
pub(super) struct Unjudged {
    pub points: f64,
    pub ids: Vec<String>,
    /// The failed `*.missing` check of the line that explains them.
    pub missing: Option<String>,
}

impl Unjudged {
    pub(super) fn of(line: &LineResult) -> Option<Unjudged> {
        let items: Vec<&ItemResult> = line.items.iter().filter(|i| is_unjudged(i)).collect();
        if items.is_empty() {
            return None;
        }
        let missing = line
            .items
            .iter()
            .find(|i| i.outcome == Outcome::Fail && i.id.ends_with(".missing") && !is_unjudged(i))
            .map(|i| i.id.clone());
        Some(Unjudged {
            points: items.iter().map(|i| i.points).sum(),
            ids: items.iter().map(|i| i.id.clone()).collect(),
            missing,
        })
    }

    pub(super) fn reason(&self) -> String {
        match &self.missing {
            Some(missing) => {
                format!("not judged, so not earned: nothing to examine ({missing} above)")
            }
            None => "not judged, so not earned: nothing in the submission to examine".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rubric;
    use super::*;
    use crate::verdict::{Evidence, Finding, Location, Severity, Verdict};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn report(change: impl Fn(&mut Verdict)) -> Report {
        let rubric = Rubric::builtin().unwrap();
        let verdicts = rubric
            .checks()
            .map(|id| {
                let mut v = Verdict {
                    id: id.into(),
                    outcome: Outcome::Pass,
                    message: "m".into(),
                    findings: vec![],
                    evidence: vec![],
                };
                change(&mut v);
                v
            })
            .collect();
        Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO)
    }

    #[test]
    fn passing_quota_values_are_notes_not_items_of_the_check() {
        let text = report(|v| {
            if v.id == "quota.headroom-exceeded" {
                v.evidence = vec![Evidence::Values {
                    values: vec![(
                        "ResourceQuota ml/q pods".into(),
                        "5 of 60 at full scale".into(),
                    )],
                }];
            }
        })
        .to_text();
        assert!(
            text.contains("Notes (information, no points):\n    ResourceQuota ml/q pods: 5 of 60"),
            "{text}"
        );
        assert!(!text.contains("quota.headroom-exceeded"), "{text}");
    }

    #[test]
    fn findings_worth_no_points_show_their_fix() {
        let text = report(|v| {
            if v.id == "input.duplicate-object" {
                v.outcome = Outcome::Fail;
                v.findings = vec![Finding {
                    check: v.id.clone(),
                    severity: Severity::Error,
                    location: Location::line("a.yaml", 3),
                    message: "Deployment d is defined twice".into(),
                    hint: "remove the duplicate definition".into(),
                    evidence: vec![],
                }];
            }
        })
        .to_text();
        assert!(
            text.contains(
                "Deployment d is defined twice\n      hint: remove the duplicate definition"
            ),
            "{text}"
        );
    }

    #[test]
    fn checks_with_nothing_to_judge_are_one_line_per_missing_part() {
        let text = report(|v| {
            if v.id == "vpa.missing" {
                v.outcome = Outcome::Fail;
                v.message = "expected: a VPA; 1 finding(s)".into();
                v.findings = vec![Finding {
                    check: v.id.clone(),
                    severity: Severity::Error,
                    location: Location::file(""),
                    message: "no VerticalPodAutoscaler in the submission".into(),
                    hint: "add one".into(),
                    evidence: vec![],
                }];
            } else if v.id.starts_with("vpa.") {
                v.outcome = Outcome::Fail;
                v.message = format!("{NOT_JUDGED} the submission has nothing this check examines");
            }
        })
        .to_text();
        let grouped: Vec<&str> = text.lines().filter(|l| l.contains("not judged")).collect();
        assert_eq!(grouped.len(), 1, "{text}");
        assert!(
            grouped[0].contains("nothing to examine (vpa.missing above): vpa.update-mode-invalid"),
            "{text}"
        );
    }
}

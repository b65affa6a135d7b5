//! The report as terminal text: the score per rubric line, every lost or
//! unjudged item with its findings and evidence, notes and other findings.

use super::{Report, evidence_lines, points};
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
        }
        let notes = self.notes();
        if !notes.is_empty() {
            let _ = writeln!(out, "\nNotes:");
            for (id, name, value) in &notes {
                let _ = writeln!(out, "    {id}: {name}: {value}");
            }
        }
        if !self.unscored_findings.is_empty() {
            let _ = writeln!(out, "\nOther findings (no points):");
            for finding in &self.unscored_findings {
                let _ = writeln!(out, "    {finding}");
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

//! The report as Markdown, for a GitHub step summary.

use super::text::{Unjudged, is_unjudged};
use super::{Report, evidence_lines, points};
use crate::verdict::Outcome;
use std::fmt::Write as _;

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.score;
        let _ = writeln!(
            out,
            "## Autoscaling exercise: {} / {} ({})\n",
            points(s.earned),
            points(s.total),
            self.mode
        );
        if s.not_run > 0.0 && self.mode == "offline" {
            let _ = writeln!(
                out,
                "> {} points depend on live behaviour and were **not run**; the live suite awards them.\n",
                points(s.not_run)
            );
        } else if s.not_run > 0.0 {
            let _ = writeln!(
                out,
                "> {} points were **not run**: criteria that this suite has no live probe for yet (their static checks were graded).\n",
                points(s.not_run)
            );
        }
        let _ = writeln!(
            out,
            "| Rubric line | Earned | Points | Static | Live (not run) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for line in &self.lines {
            let not_run: f64 = line
                .items
                .iter()
                .filter(|i| i.outcome == Outcome::NotRun)
                .map(|i| i.points)
                .sum();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                line.title,
                points(line.earned),
                points(line.points),
                points(line.static_points),
                points(not_run)
            );
        }
        let lost: Vec<_> = self.lost_items().collect();
        if !lost.is_empty() {
            let _ = writeln!(out, "\n### Lost points\n");
            for (line, item) in lost.into_iter().filter(|(_, i)| !is_unjudged(i)) {
                let _ = writeln!(
                    out,
                    "- **−{}** `{}` ({}): {}",
                    points(item.points),
                    item.id,
                    line.title,
                    item.message
                );
                for finding in &item.findings {
                    let _ = writeln!(
                        out,
                        "  - `{}`: {}  \n    _Fix:_ {}",
                        finding.location, finding.message, finding.hint
                    );
                }
                let evidence = evidence_lines(&item.evidence);
                if !evidence.is_empty() {
                    let _ = writeln!(out, "\n  ```text\n  {}\n  ```", evidence.join("\n  "));
                }
            }
            // Checks with nothing to judge: one bullet per rubric line.
            for (line, group) in self
                .lines
                .iter()
                .filter_map(|l| Unjudged::of(l).map(|g| (l, g)))
            {
                let ids: Vec<String> = group.ids.iter().map(|id| format!("`{id}`")).collect();
                let _ = writeln!(
                    out,
                    "- **−{}** ({}): {}: {}",
                    points(group.points),
                    line.title,
                    group.reason(),
                    ids.join(", ")
                );
            }
        }
        let errors: Vec<_> = self
            .lines
            .iter()
            .flat_map(|l| l.items.iter())
            .filter(|i| i.outcome == Outcome::Error)
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\n### Not judged (environment)\n");
            for item in errors {
                let _ = writeln!(out, "- `{}`: {}", item.id, item.message);
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n### Notes (information, no points)\n");
            for (_, name, value) in &notes {
                let _ = writeln!(out, "- {name}: {value}");
            }
        }
        if !self.unscored_findings.is_empty() {
            let _ = writeln!(out, "\n### Other findings\n");
            for finding in &self.unscored_findings {
                let _ = writeln!(
                    out,
                    "- `{}` {} `{}`: {}",
                    finding.location, finding.severity, finding.check, finding.message
                );
            }
        }
        out
    }
}

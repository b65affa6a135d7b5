//! The report as Markdown, for a GitHub step summary. Messages, file names and evidence
//! carry the submission's own text: each goes through [`text`], [`code`] or
//! [`code_block`], so that it renders as written and can neither break the layout
//! (a table, a list item, a fence) nor inject links, images, HTML or headings.

use super::text::{Unjudged, is_unjudged};
use super::{Report, evidence_lines, points};
use crate::verdict::Outcome;
use std::fmt::Write as _;

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.markdown_score_table(&mut out);
        self.markdown_lost_points(&mut out);
        let errors: Vec<_> = self
            .lines
            .iter()
            .flat_map(|l| l.items.iter())
            .filter(|i| i.outcome == Outcome::Error)
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\n### Not judged (environment)\n");
            for item in errors {
                let _ = writeln!(out, "- {}: {}", code(&item.id), text(&item.message));
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            let _ = writeln!(out, "\n### Notes (information, no points)\n");
            for (_, name, value) in &notes {
                let _ = writeln!(out, "- {}: {}", text(name), text(value));
            }
        }
        if !self.unscored_findings.is_empty() {
            let _ = writeln!(out, "\n### Other findings\n");
            for finding in &self.unscored_findings {
                // Worth no points, but still something to fix.
                let fix = if finding.hint.is_empty() {
                    String::new()
                } else {
                    format!("  \n  _Fix:_ {}", text(&finding.hint))
                };
                let _ = writeln!(
                    out,
                    "- {} {} {}: {}{fix}",
                    code(&finding.location.to_string()),
                    finding.severity,
                    code(&finding.check),
                    text(&finding.message)
                );
            }
        }
        out
    }

    /// The score and one table row per rubric line.
    fn markdown_score_table(&self, out: &mut String) {
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
                text(&line.title),
                points(line.earned),
                points(line.points),
                points(line.static_points),
                points(not_run)
            );
        }
    }

    /// Every lost item with its findings and evidence, then one bullet per rubric line
    /// for the checks that had nothing to judge.
    fn markdown_lost_points(&self, out: &mut String) {
        let lost: Vec<_> = self.lost_items().collect();
        if !lost.is_empty() {
            let _ = writeln!(out, "\n### Lost points\n");
            for (line, item) in lost.into_iter().filter(|(_, i)| !is_unjudged(i)) {
                let _ = writeln!(
                    out,
                    "- **−{}** {} ({}): {}",
                    points(item.points),
                    code(&item.id),
                    text(&line.title),
                    text(&item.message)
                );
                for finding in &item.findings {
                    let _ = writeln!(
                        out,
                        "  - {}: {}  \n    _Fix:_ {}",
                        code(&finding.location.to_string()),
                        text(&finding.message),
                        text(&finding.hint)
                    );
                }
                let evidence = evidence_lines(&item.evidence);
                if !evidence.is_empty() {
                    let _ = writeln!(out, "\n{}", code_block(&evidence, "  "));
                }
            }
            // Checks with nothing to judge: one bullet per rubric line.
            for (line, group) in self
                .lines
                .iter()
                .filter_map(|l| Unjudged::of(l).map(|g| (l, g)))
            {
                let ids: Vec<String> = group.ids.iter().map(|id| code(id)).collect();
                let _ = writeln!(
                    out,
                    "- **−{}** ({}): {}: {}",
                    points(group.points),
                    text(&line.title),
                    text(&group.reason()),
                    ids.join(", ")
                );
            }
        }
    }
}

/// Text for a table cell or a list item: one line, every character that could open a
/// Markdown or HTML construct (link, image, emphasis, code, table cell, math, mention,
/// entity, tag) backslash-escaped, which CommonMark renders as the character itself.
pub fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in one_line(raw).chars() {
        if "\\`*_[]<>|!~&#$@{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span holding `raw` literally (in a list item; a table cell takes [`text`]):
/// delimited by one backtick more than its longest run of backticks, padded so that a
/// leading or trailing backtick stays its own.
pub fn code(raw: &str) -> String {
    let raw = one_line(raw);
    let fence = "`".repeat(longest_backtick_run(&raw) + 1);
    let pad = if raw.starts_with('`') || raw.ends_with('`') || raw.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{raw}{pad}{fence}")
}

/// A fenced `text` block of `lines`, each line (and each line inside one) indented by
/// `indent`, so that it stays inside its list item; the fence is longer than any run of
/// backticks in the text, which therefore cannot close it.
pub fn code_block(lines: &[String], indent: &str) -> String {
    let body: Vec<&str> = lines.iter().flat_map(|l| l.lines()).collect();
    let longest = body
        .iter()
        .map(|l| longest_backtick_run(l))
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut out = format!("{indent}{fence}text\n");
    for line in body {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(indent);
    out.push_str(&fence);
    out
}

/// Line breaks (any kind) become spaces: a newline could end a table row or a list item
/// and start a heading of the student's.
fn one_line(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_text_renders_literally_and_stays_on_its_line() {
        let hostile = "a | b\n## Owned\n<img src=x onerror=alert(1)> ![t](http://x/y.png) [l](http://x) `c` $x$ &amp; @team";
        let escaped = text(hostile);
        assert!(!escaped.contains('\n'), "{escaped}");
        for needle in [
            "\\|",
            "\\#\\# Owned",
            "\\<img",
            "\\!\\[t\\]",
            "\\[l\\]",
            "\\`c\\`",
            "\\$x\\$",
            "\\&amp;",
            "\\@team",
        ] {
            assert!(escaped.contains(needle), "{needle} not in {escaped}");
        }
        // No unescaped special character is left.
        let mut previous = ' ';
        for c in escaped.chars() {
            if "`|<>[]!$&".contains(c) {
                assert_eq!(previous, '\\', "unescaped {c} in {escaped}");
            }
            previous = if previous == '\\' { ' ' } else { c };
        }
    }

    #[test]
    fn a_hostile_verdict_cannot_add_headings_links_or_fences_to_the_report() {
        use crate::report::Rubric;
        use crate::verdict::{Evidence, Finding, Location, Severity, Verdict};
        let rubric = Rubric::builtin().unwrap();
        let hostile = "x\n## Owned\n![](http://tracker.example/p.png)";
        let hostile_verdict = |id: &str| Verdict {
            id: id.into(),
            outcome: Outcome::Fail,
            message: hostile.into(),
            findings: vec![Finding {
                check: id.into(),
                severity: Severity::Error,
                location: Location::line("a`b\n# file.yaml", 1),
                message: hostile.into(),
                hint: "h".into(),
                evidence: vec![],
            }],
            evidence: vec![Evidence::Note {
                text: "```\n## Out of the fence".into(),
            }],
        };
        let verdicts = rubric.checks().map(hostile_verdict).collect();
        // Live verdicts carry their evidence into the report.
        let live = [("hpa-cpu".to_string(), hostile_verdict("hpa-cpu"))].into();
        let report = Report::build(&rubric, "sub", verdicts, &live, std::time::Duration::ZERO);
        let markdown = report.to_markdown();
        for line in markdown.lines() {
            let trimmed = line.trim_start();
            assert!(
                !trimmed.starts_with("## Owned")
                    && !trimmed.starts_with("# file")
                    && !trimmed.starts_with("## Out"),
                "student text escaped its place: {line:?}"
            );
            assert!(
                !line.contains("![]("),
                "an image of the student's: {line:?}"
            );
        }
        assert!(
            markdown.contains("  ````text\n  note: ```\n  note: ## Out of the fence\n  ````"),
            "{markdown}"
        );
    }

    #[test]
    fn findings_worth_no_points_show_their_fix() {
        use crate::report::Rubric;
        use crate::verdict::{Finding, Location, Severity, Verdict};
        let rubric = Rubric::builtin().unwrap();
        let verdicts = rubric
            .checks()
            .map(|id| Verdict {
                id: id.into(),
                outcome: Outcome::Pass,
                message: "m".into(),
                findings: if id == "input.duplicate-object" {
                    vec![Finding {
                        check: id.into(),
                        severity: Severity::Error,
                        location: Location::line("a.yaml", 3),
                        message: "defined twice".into(),
                        hint: "remove the duplicate".into(),
                        evidence: vec![],
                    }]
                } else {
                    vec![]
                },
                evidence: vec![],
            })
            .collect();
        let report = Report::build(
            &rubric,
            "sub",
            verdicts,
            &Default::default(),
            std::time::Duration::ZERO,
        );
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("defined twice  \n  _Fix:_ remove the duplicate\n"),
            "{markdown}"
        );
    }

    #[test]
    fn code_spans_cannot_be_closed_by_the_text_they_hold() {
        assert_eq!(code("hpa.yaml:12"), "`hpa.yaml:12`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("``x"), "``` ``x ```");
        assert_eq!(code("a|b\nc"), "`a|b c`");
    }

    #[test]
    fn code_blocks_cannot_be_closed_or_left_by_the_text_they_hold() {
        let lines = vec!["note: ```".to_string(), "note: two\n# heading".to_string()];
        let block = code_block(&lines, "  ");
        assert_eq!(
            block,
            "  ````text\n  note: ```\n  note: two\n  # heading\n  ````"
        );
    }
}

//! The report's findings as GitHub workflow commands (`::error file=…,line=…::message`),
//! which GitHub shows as annotations on the student's own lines in a pull request's diff.
//! File names are relative to the submission's root, which is the student's repository's
//! root when the workflow runs there. Everything in a command is the student's (file
//! names, messages that quote their text), so it is escaped as GitHub's own toolkit
//! escapes it: `%`, `\r`, `\n` in the message, and also `:` and `,` in properties; a
//! student's text can neither end the command nor start another one.

use super::{Report, points};
use crate::verdict::{Finding, Outcome, Severity};
use std::fmt::Write as _;

/// GitHub shows at most 10 error and 10 warning annotations per step and 50 per job;
/// more are dropped, so the report sends the first this many and says how many it left.
pub const MAX_ANNOTATIONS: usize = 50;

impl Report {
    /// One workflow command per finding of a lost item (errors first, as GitHub keeps
    /// only the first ones), then the findings that carry no points as warnings and
    /// notices; at most [`MAX_ANNOTATIONS`], then a notice saying how many were left.
    pub fn to_github_annotations(&self) -> String {
        let mut all: Vec<(Severity, String)> = Vec::new();
        for (line, item) in self.lost_items() {
            for finding in &item.findings {
                let title = format!(
                    "{} (-{} points, {})",
                    finding.check,
                    points(item.points),
                    line.title
                );
                all.push((Severity::Error, command("error", finding, &title)));
            }
        }
        for item in self.lines.iter().flat_map(|l| &l.items) {
            if item.outcome == Outcome::Pass {
                for finding in item
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Warning)
                {
                    all.push((
                        Severity::Warning,
                        command("warning", finding, &finding.check),
                    ));
                }
            }
        }
        for finding in &self.unscored_findings {
            let level = match finding.severity {
                Severity::Error | Severity::Warning => "warning",
                Severity::Info => "notice",
            };
            all.push((finding.severity, command(level, finding, &finding.check)));
        }
        // Errors first; stable, so each kind keeps the report's order.
        all.sort_by_key(|(severity, _)| std::cmp::Reverse(*severity));
        let mut out = String::new();
        for (_, line) in all.iter().take(MAX_ANNOTATIONS) {
            out.push_str(line);
            out.push('\n');
        }
        if all.len() > MAX_ANNOTATIONS {
            let _ = writeln!(
                out,
                "::notice title=More findings::{} more finding(s) are in the report (summary.md, report.txt)",
                all.len() - MAX_ANNOTATIONS
            );
        }
        out
    }
}

/// `::<level> file=…,line=…,col=…,title=…::<message> (fix: <hint>)`.
fn command(level: &str, finding: &Finding, title: &str) -> String {
    let mut properties = Vec::new();
    if !finding.location.file.is_empty() {
        properties.push(format!("file={}", escape_property(&finding.location.file)));
        if let Some(line) = finding.location.line {
            properties.push(format!("line={line}"));
            if let Some(column) = finding.location.column {
                properties.push(format!("col={column}"));
            }
        }
    }
    properties.push(format!("title={}", escape_property(title)));
    let message = if finding.hint.is_empty() {
        finding.message.clone()
    } else {
        format!("{}\nFix: {}", finding.message, finding.hint)
    };
    format!(
        "::{level} {}::{}",
        properties.join(","),
        escape_data(&message)
    )
}

/// A command's message, as `@actions/core` escapes it.
pub fn escape_data(raw: &str) -> String {
    raw.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value, as `@actions/core` escapes it.
pub fn escape_property(raw: &str) -> String {
    escape_data(raw).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Rubric;
    use crate::verdict::{Location, Verdict};
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn github_escaping_of_data_and_properties() {
        assert_eq!(escape_data("100%\r\nnext"), "100%25%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        // Already-escaped text is escaped again, not decoded.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn a_lost_point_is_an_error_on_the_students_line_and_hostile_text_stays_inside() {
        let rubric = Rubric::builtin().unwrap();
        let hostile_file = "k8s/a,b:c.yaml\n::error::forged";
        let verdicts = rubric
            .checks()
            .map(|id| {
                let mut verdict = Verdict::new(id, Outcome::Pass, "ok", vec![]);
                if id == "hpa.requests-missing" {
                    verdict.outcome = Outcome::Fail;
                    verdict.findings = vec![Finding {
                        check: id.into(),
                        severity: Severity::Error,
                        location: Location::at(hostile_file, 12, 3),
                        message: "no requests\n::add-mask::x %0A".into(),
                        hint: "set resources.requests.cpu".into(),
                        evidence: vec![],
                    }];
                }
                verdict
            })
            .collect();
        let report = Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO);
        let annotations = report.to_github_annotations();
        let lines: Vec<&str> = annotations.lines().collect();
        assert_eq!(lines.len(), 1, "{annotations}");
        assert_eq!(
            lines[0],
            "::error file=k8s/a%2Cb%3Ac.yaml%0A%3A%3Aerror%3A%3Aforged,line=12,col=3,title=hpa.requests-missing (-1 points%2C HPA configuration (CPU-based))::no requests%0A::add-mask::x %250A%0AFix: set resources.requests.cpu"
        );
        // Every command is one line that starts with `::` and a known level.
        for line in lines {
            assert!(line.starts_with("::error ") || line.starts_with("::warning "));
        }
    }

    #[test]
    fn annotations_are_bounded() {
        let rubric = Rubric::builtin().unwrap();
        let verdicts = rubric
            .checks()
            .map(|id| Verdict {
                id: id.into(),
                outcome: Outcome::Fail,
                message: "m".into(),
                findings: (0..3)
                    .map(|i| Finding {
                        check: id.into(),
                        severity: Severity::Error,
                        location: Location::line("f.yaml", i + 1),
                        message: "bad".into(),
                        hint: String::new(),
                        evidence: vec![],
                    })
                    .collect(),
                evidence: vec![],
            })
            .collect();
        let report = Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO);
        let annotations = report.to_github_annotations();
        assert_eq!(annotations.lines().count(), MAX_ANNOTATIONS + 1);
        assert!(
            annotations
                .lines()
                .last()
                .unwrap()
                .starts_with("::notice title=More findings::")
        );
    }
}

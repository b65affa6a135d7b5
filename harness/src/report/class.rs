//! A class's results in one table: one row per submission (its score, what it lost, what
//! was not judged, each rubric line's points), as Markdown (a step summary), CSV (a
//! spreadsheet) and JSON. Names and messages are the students' (folder names, error
//! text): Markdown escapes them ([`super::markdown::text`]), CSV quotes them and defuses
//! formulas (a cell starting `=`, `+`, `-`, `@`, tab or carriage return is prefixed with
//! `'`), JSON is JSON.

use super::markdown::text;
use super::{RenderError, Report, points, round};
use serde::Serialize;
use std::fmt::Write as _;

/// The class table.
#[derive(Debug, Clone, Serialize)]
pub struct ClassSummary {
    pub schema_version: u32,
    /// The rubric lines, as (id, title, points): the columns of the table.
    pub lines: Vec<ClassColumn>,
    pub rows: Vec<ClassRow>,
    /// The mean score of the graded rows.
    pub mean: Option<f64>,
    /// The `--min-score` the rows were judged against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassColumn {
    pub id: String,
    pub title: String,
    pub points: f64,
}

/// One submission of the class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    /// The name its reports are filed under (its folder's, made safe).
    pub student: String,
    /// Where it was read from.
    pub submission: String,
    /// "graded", "below-minimum", "environment-error" or "not-graded".
    pub status: String,
    pub earned: Option<f64>,
    pub total: Option<f64>,
    pub lost: Option<f64>,
    pub not_run: Option<f64>,
    pub environment_errors: Option<f64>,
    /// Points earned per rubric line, in the order of [`ClassSummary::lines`].
    pub line_earned: Vec<f64>,
    /// Why it was not graded, or empty.
    pub message: String,
}

impl ClassSummary {
    /// The table of `graded` (student name, submission path, its report or why there is
    /// none), judged against `min_score`.
    pub fn build<'a>(
        graded: impl IntoIterator<Item = (&'a str, &'a str, Result<&'a Report, String>)>,
        min_score: Option<f64>,
    ) -> ClassSummary {
        let mut lines: Vec<ClassColumn> = Vec::new();
        let mut rows = Vec::new();
        for (student, submission, report) in graded {
            let row = match report {
                Ok(report) => {
                    if lines.is_empty() {
                        lines = report
                            .lines
                            .iter()
                            .map(|l| ClassColumn {
                                id: l.id.clone(),
                                title: l.title.clone(),
                                points: l.points,
                            })
                            .collect();
                    }
                    let s = &report.score;
                    let status = if s.environment_errors > 0.0 {
                        "environment-error"
                    } else if min_score.is_some_and(|m| s.earned < m) {
                        "below-minimum"
                    } else {
                        "graded"
                    };
                    ClassRow {
                        student: student.to_string(),
                        submission: submission.to_string(),
                        status: status.into(),
                        earned: Some(s.earned),
                        total: Some(s.total),
                        lost: Some(s.lost),
                        not_run: Some(s.not_run),
                        environment_errors: Some(s.environment_errors),
                        line_earned: report.lines.iter().map(|l| round(l.earned)).collect(),
                        message: String::new(),
                    }
                }
                Err(message) => ClassRow {
                    student: student.to_string(),
                    submission: submission.to_string(),
                    status: "not-graded".into(),
                    earned: None,
                    total: None,
                    lost: None,
                    not_run: None,
                    environment_errors: None,
                    line_earned: Vec::new(),
                    message,
                },
            };
            rows.push(row);
        }
        let scores: Vec<f64> = rows.iter().filter_map(|r| r.earned).collect();
        let mean =
            (!scores.is_empty()).then(|| round(scores.iter().sum::<f64>() / scores.len() as f64));
        ClassSummary {
            schema_version: super::SCHEMA_VERSION,
            lines,
            rows,
            mean,
            min_score,
        }
    }

    /// A Markdown table: one row per submission, one column per rubric line.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let graded = self.rows.iter().filter(|r| r.earned.is_some()).count();
        let _ = writeln!(
            out,
            "## Class: {} submission(s), {} graded{}\n",
            self.rows.len(),
            graded,
            self.mean
                .map(|m| format!(", mean {}", points(m)))
                .unwrap_or_default()
        );
        let mut header = String::from("| Student | Score | Lost | Not run | Error |");
        let mut rule = String::from("|---|---:|---:|---:|---:|");
        for line in &self.lines {
            let _ = write!(header, " {} ({}) |", text(&line.title), points(line.points));
            rule.push_str("---:|");
        }
        header.push_str(" Status |");
        rule.push_str("---|");
        let _ = writeln!(out, "{header}\n{rule}");
        let cell = |v: Option<f64>| v.map(points).unwrap_or_else(|| "-".into());
        for row in &self.rows {
            let score = match (row.earned, row.total) {
                (Some(e), Some(t)) => format!("{} / {}", points(e), points(t)),
                _ => "-".into(),
            };
            let _ = write!(
                out,
                "| {} | {} | {} | {} | {} |",
                text(&row.student),
                score,
                cell(row.lost),
                cell(row.not_run),
                cell(row.environment_errors)
            );
            for i in 0..self.lines.len() {
                let _ = write!(out, " {} |", cell(row.line_earned.get(i).copied()));
            }
            let status = if row.message.is_empty() {
                row.status.clone()
            } else {
                format!("{}: {}", row.status, row.message)
            };
            let _ = writeln!(out, " {} |", text(&status));
        }
        out
    }

    /// CSV with a header row; every cell a student controls is defused for spreadsheets.
    pub fn to_csv(&self) -> Result<String, RenderError> {
        let error = |e: csv::Error| RenderError {
            format: "CSV",
            message: e.to_string(),
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "student",
            "submission",
            "status",
            "earned",
            "total",
            "lost",
            "not_run",
            "environment_errors",
        ]
        .map(String::from)
        .into();
        header.extend(self.lines.iter().map(|l| l.id.clone()));
        header.push("message".into());
        writer.write_record(&header).map_err(error)?;
        let cell = |v: Option<f64>| v.map(points).unwrap_or_default();
        for row in &self.rows {
            let mut record = vec![
                spreadsheet_safe(&row.student),
                spreadsheet_safe(&row.submission),
                row.status.clone(),
                cell(row.earned),
                cell(row.total),
                cell(row.lost),
                cell(row.not_run),
                cell(row.environment_errors),
            ];
            for i in 0..self.lines.len() {
                record.push(cell(row.line_earned.get(i).copied()));
            }
            record.push(spreadsheet_safe(&row.message));
            writer.write_record(&record).map_err(error)?;
        }
        let bytes = writer.into_inner().map_err(|e| RenderError {
            format: "CSV",
            message: e.to_string(),
        })?;
        String::from_utf8(bytes).map_err(|e| RenderError {
            format: "CSV",
            message: e.to_string(),
        })
    }

    pub fn to_json(&self) -> Result<String, RenderError> {
        serde_json::to_string_pretty(self).map_err(|e| RenderError {
            format: "JSON",
            message: e.to_string(),
        })
    }
}

/// A cell a spreadsheet will not run as a formula: one starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'` (OWASP's advice for CSV injection).
fn spreadsheet_safe(raw: &str) -> String {
    if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Rubric;
    use crate::verdict::{Outcome, Verdict};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn report(failing: &[&str]) -> Report {
        let rubric = Rubric::builtin().unwrap();
        let verdicts = rubric
            .checks()
            .map(|id| {
                let outcome = if failing.contains(&id) {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                };
                Verdict::new(id, outcome, "m", vec![])
            })
            .collect();
        Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO)
    }

    #[test]
    fn one_row_per_submission_in_every_format() {
        let full = report(&[]);
        let broken = report(&["hpa.requests-missing"]);
        let summary = ClassSummary::build(
            [
                ("alice", "class/alice", Ok(&full)),
                ("bob", "class/bob", Ok(&broken)),
                (
                    "carol",
                    "class/carol",
                    Err("cannot read the submission".to_string()),
                ),
            ],
            Some(full.score.earned),
        );
        assert_eq!(summary.rows.len(), 3);
        assert_eq!(summary.lines.len(), 8);
        assert_eq!(summary.rows[0].status, "graded");
        assert_eq!(summary.rows[1].status, "below-minimum");
        assert_eq!(summary.rows[2].status, "not-graded");
        let markdown = summary.to_markdown();
        assert!(
            markdown.starts_with("## Class: 3 submission(s), 2 graded, mean "),
            "{markdown}"
        );
        let table: Vec<&str> = markdown.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 5, "{markdown}");
        // Every row has as many cells as the header.
        let cells = |l: &str| l.matches('|').count();
        assert!(
            table.iter().all(|l| cells(l) == cells(table[0])),
            "{markdown}"
        );
        assert!(table[3].contains("below-minimum"), "{markdown}");
        let csv = summary.to_csv().unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), 8 + 8 + 1);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(&records[1][0], "bob");
        assert_eq!(records[1][3].parse::<f64>().unwrap(), broken.score.earned);
        assert_eq!(&records[2][2], "not-graded");
        let json: serde_json::Value = serde_json::from_str(&summary.to_json().unwrap()).unwrap();
        assert_eq!(json["rows"][1]["student"], "bob");
        assert_eq!(json["lines"][0]["points"], summary.lines[0].points);
    }

    #[test]
    fn student_text_cannot_break_the_table_or_run_as_a_formula() {
        let full = report(&[]);
        let hostile = "=HYPERLINK(\"http://x\")|\n## Owned";
        let summary = ClassSummary::build(
            [
                ("=cmd|' /C calc'!A0", "a,b\n\"c\"", Ok(&full)),
                ("x", "y", Err(hostile.to_string())),
            ],
            None,
        );
        let markdown = summary.to_markdown();
        assert!(
            !markdown.lines().any(|l| l.starts_with("## Owned")),
            "{markdown}"
        );
        let table: Vec<&str> = markdown.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 4, "{markdown}");
        let csv = summary.to_csv().unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][0], "'=cmd|' /C calc'!A0");
        assert_eq!(&records[0][1], "a,b\n\"c\"");
        assert!(records[1][records[1].len() - 1].starts_with("'="));
    }
}

//! Verdicts folded into rubric points, and the report in every output format:
//! terminal text, versioned JSON, a GitHub Classroom runner result, JUnit XML
//! (quick-junit) and Markdown for a GitHub step summary.
//!
//! The rubric mapping is data (`harness/rubric.toml`, compiled in), not code.

use crate::checks::{self, Tools};
use crate::criteria;
use crate::submission::{self, LoadOptions};
use crate::verdict::{Evidence, Finding, Outcome, Severity, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The report's JSON schema version; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

const RUBRIC_TOML: &str = include_str!("../../rubric.toml");

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("rubric.toml does not parse: {0}")]
    RubricSyntax(#[from] toml::de::Error),
    #[error("rubric.toml is inconsistent: {0}")]
    RubricInvalid(String),
    #[error("cannot read the submission {path}: {source}")]
    Submission {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the {format} report: {message}")]
    Render {
        format: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rubric {
    pub schema: u32,
    #[serde(rename = "line")]
    pub lines: Vec<RubricLine>,
    #[serde(default)]
    pub unscored: Unscored,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Unscored {
    #[serde(default)]
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RubricLine {
    pub id: String,
    pub title: String,
    pub points: f64,
    #[serde(rename = "static", default)]
    pub static_items: Vec<StaticItem>,
    #[serde(default)]
    pub live: Vec<LiveItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaticItem {
    pub check: String,
    pub points: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LiveItem {
    pub criterion: String,
    pub points: f64,
}

impl Rubric {
    /// The compiled-in rubric, validated against the check and criterion catalogues.
    pub fn builtin() -> Result<Rubric, ReportError> {
        let rubric: Rubric = toml::from_str(RUBRIC_TOML)?;
        rubric.validate()?;
        Ok(rubric)
    }

    pub fn validate(&self) -> Result<(), ReportError> {
        let invalid = |m: String| Err(ReportError::RubricInvalid(m));
        let total: f64 = self.lines.iter().map(|l| l.points).sum();
        if (total - 100.0).abs() > 1e-9 {
            return invalid(format!("lines add up to {total}, not 100"));
        }
        let mut seen = HashSet::new();
        for line in &self.lines {
            let sum: f64 = line.static_items.iter().map(|i| i.points).sum::<f64>()
                + line.live.iter().map(|i| i.points).sum::<f64>();
            if (sum - line.points).abs() > 1e-9 {
                return invalid(format!(
                    "line {} has {} points but its items add up to {sum}",
                    line.id, line.points
                ));
            }
            for item in &line.static_items {
                let Some(check) = checks::info(&item.check) else {
                    return invalid(format!(
                        "line {} names unknown check {}",
                        line.id, item.check
                    ));
                };
                if !seen.insert(item.check.clone()) {
                    return invalid(format!("check {} is scored twice", item.check));
                }
                let owner = criteria::find(check.criterion).map(|c| c.rubric_line);
                if owner != Some(line.id.as_str()) {
                    return invalid(format!(
                        "check {} serves criterion {} of line {:?}, not {}",
                        item.check, check.criterion, owner, line.id
                    ));
                }
            }
            for item in &line.live {
                let Some(criterion) = criteria::find(&item.criterion) else {
                    return invalid(format!(
                        "line {} names unknown criterion {}",
                        line.id, item.criterion
                    ));
                };
                if criterion.rubric_line != line.id {
                    return invalid(format!(
                        "criterion {} belongs to line {}, not {}",
                        item.criterion, criterion.rubric_line, line.id
                    ));
                }
            }
        }
        for check in &self.unscored.checks {
            if checks::info(check).is_none() || !seen.insert(check.clone()) {
                return invalid(format!("unscored check {check} is unknown or also scored"));
            }
        }
        let live: HashSet<&str> = self
            .lines
            .iter()
            .flat_map(|l| l.live.iter().map(|i| i.criterion.as_str()))
            .collect();
        for criterion in criteria::all() {
            if criterion.has_live_part != live.contains(criterion.id.as_str()) {
                return invalid(format!(
                    "criterion {} {} a live part but is {} in a live list",
                    criterion.id,
                    if criterion.has_live_part {
                        "has"
                    } else {
                        "has no"
                    },
                    if live.contains(criterion.id.as_str()) {
                        ""
                    } else {
                        "not"
                    }
                ));
            }
        }
        if let Some(missing) = checks::CATALOGUE.iter().find(|c| !seen.contains(c.id)) {
            return invalid(format!(
                "check {} is neither scored nor listed as unscored",
                missing.id
            ));
        }
        Ok(())
    }
}

/// How one rubric item fared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemResult {
    /// "static" (a check) or "live" (a criterion).
    pub kind: String,
    pub id: String,
    pub points: f64,
    pub earned: f64,
    pub outcome: Outcome,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What a live probe saw (values, events, a timeline excerpt and file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// Evidence as indented text lines, for the terminal, JUnit and Markdown (bounded:
/// a long timeline is in its JSON file, the report shows its start and end).
pub fn evidence_lines(evidence: &[Evidence]) -> Vec<String> {
    const MAX_POINTS: usize = 24;
    let mut lines = Vec::new();
    for item in evidence {
        match item {
            Evidence::Note { text } => lines.extend(text.lines().map(|l| format!("note: {l}"))),
            Evidence::Values { values } => {
                lines.extend(
                    values
                        .iter()
                        .map(|(name, value)| format!("{name}: {value}")),
                );
            }
            Evidence::Events { lines: events } => {
                lines.extend(
                    events
                        .iter()
                        .take(MAX_POINTS)
                        .map(|e| format!("event: {e}")),
                );
                if events.len() > MAX_POINTS {
                    lines.push(format!("event: ... {} more", events.len() - MAX_POINTS));
                }
            }
            Evidence::Timeline { points } => {
                let shown =
                    |p: &crate::verdict::TimelinePoint| format!("t={:>6.1}s {}", p.seconds, p.what);
                if points.len() <= MAX_POINTS {
                    lines.extend(points.iter().map(shown));
                } else {
                    let half = MAX_POINTS / 2;
                    lines.extend(points[..half].iter().map(shown));
                    lines.push(format!("... {} more points ...", points.len() - MAX_POINTS));
                    lines.extend(points[points.len() - half..].iter().map(shown));
                }
            }
            Evidence::TimelineFile { path } => lines.push(format!("timeline: {path}")),
        }
    }
    lines
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineResult {
    pub id: String,
    pub title: String,
    pub points: f64,
    pub earned: f64,
    pub static_points: f64,
    pub live_points: f64,
    pub items: Vec<ItemResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Score {
    pub earned: f64,
    pub total: f64,
    /// Points that static checks judged (earned or lost).
    pub static_judged: f64,
    /// Points of live criteria that did not run (offline grading).
    pub not_run: f64,
    /// Points not judged because the environment was broken (tool missing).
    pub environment_errors: f64,
    pub lost: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// A graded submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub submission: String,
    /// "offline" (static checks only) or "live".
    pub mode: String,
    pub score: Score,
    pub lines: Vec<LineResult>,
    /// One verdict per check (and per criterion when live verdicts were given).
    pub verdicts: Vec<Verdict>,
    /// Findings of checks that carry no points (input problems, information).
    pub unscored_findings: Vec<Finding>,
    pub duration_ms: u64,
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn points(value: f64) -> String {
    // `+ 0.0` turns the -0.0 of an empty f64 sum into 0.0.
    let rounded = round(value) + 0.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded}")
    }
}

impl Report {
    /// Folds check verdicts (and any live verdicts, keyed by criterion ID) into the rubric.
    pub fn build(
        rubric: &Rubric,
        submission: &str,
        check_verdicts: Vec<Verdict>,
        live_verdicts: &BTreeMap<String, Verdict>,
        duration: Duration,
    ) -> Report {
        let by_id: BTreeMap<&str, &Verdict> =
            check_verdicts.iter().map(|v| (v.id.as_str(), v)).collect();
        let mut lines = Vec::new();
        let mut score = Score {
            earned: 0.0,
            total: 0.0,
            static_judged: 0.0,
            not_run: 0.0,
            environment_errors: 0.0,
            lost: 0.0,
        };
        for line in &rubric.lines {
            let mut items = Vec::new();
            let static_items = line.static_items.iter().map(|i| {
                (
                    "static",
                    i.check.as_str(),
                    i.points,
                    by_id.get(i.check.as_str()).copied(),
                )
            });
            let live_items = line.live.iter().map(|i| {
                (
                    "live",
                    i.criterion.as_str(),
                    i.points,
                    live_verdicts.get(&i.criterion),
                )
            });
            for (kind, id, item_points, verdict) in static_items.chain(live_items) {
                let (outcome, message, findings) = match verdict {
                    Some(v) => (v.outcome, v.message.clone(), v.findings.clone()),
                    None if kind == "live" => (
                        Outcome::NotRun,
                        "live criterion: not run (offline grading)".to_string(),
                        Vec::new(),
                    ),
                    None => (Outcome::NotRun, "check did not run".to_string(), Vec::new()),
                };
                let evidence = match verdict {
                    Some(v) if kind == "live" => v.evidence.clone(),
                    _ => Vec::new(),
                };
                let earned = if outcome == Outcome::Pass {
                    item_points
                } else {
                    0.0
                };
                match outcome {
                    Outcome::Pass => {
                        score.static_judged += if kind == "static" { item_points } else { 0.0 }
                    }
                    Outcome::Fail => {
                        score.lost += item_points;
                        if kind == "static" {
                            score.static_judged += item_points;
                        }
                    }
                    Outcome::Error => score.environment_errors += item_points,
                    Outcome::NotRun => score.not_run += item_points,
                }
                score.earned += earned;
                items.push(ItemResult {
                    kind: kind.to_string(),
                    id: id.to_string(),
                    points: item_points,
                    earned,
                    outcome,
                    message,
                    findings,
                    evidence,
                });
            }
            let earned = items.iter().map(|i| i.earned).sum();
            lines.push(LineResult {
                id: line.id.clone(),
                title: line.title.clone(),
                points: line.points,
                earned,
                static_points: line.static_items.iter().map(|i| i.points).sum(),
                live_points: line.live.iter().map(|i| i.points).sum(),
                items,
            });
        }
        score.total = rubric.lines.iter().map(|l| l.points).sum();
        for value in [
            &mut score.earned,
            &mut score.static_judged,
            &mut score.not_run,
            &mut score.environment_errors,
            &mut score.lost,
        ] {
            *value = round(*value);
        }
        let unscored: HashSet<&str> = rubric.unscored.checks.iter().map(String::as_str).collect();
        let unscored_findings = check_verdicts
            .iter()
            .filter(|v| unscored.contains(v.id.as_str()))
            .flat_map(|v| v.findings.clone())
            .collect();
        let mut verdicts = check_verdicts;
        verdicts.extend(live_verdicts.values().cloned());
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "autoscale-conformance".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            submission: submission.to_string(),
            mode: if live_verdicts.is_empty() {
                "offline".into()
            } else {
                "live".into()
            },
            score,
            lines,
            verdicts,
            unscored_findings,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Every finding of a scored check that lost points, with the line it cost.
    pub fn lost_items(&self) -> impl Iterator<Item = (&LineResult, &ItemResult)> {
        self.lines.iter().flat_map(|l| {
            l.items
                .iter()
                .filter(|i| i.outcome == Outcome::Fail)
                .map(move |i| (l, i))
        })
    }

    /// Named values checks recorded whatever their outcome (e.g. quota headroom).
    pub fn notes(&self) -> Vec<(String, String, String)> {
        let mut notes = Vec::new();
        for verdict in &self.verdicts {
            for evidence in &verdict.evidence {
                if let Evidence::Values { values } = evidence {
                    for (name, value) in values {
                        notes.push((verdict.id.clone(), name.clone(), value.clone()));
                    }
                }
            }
        }
        notes
    }

    pub fn to_json(&self) -> Result<String, ReportError> {
        serde_json::to_string_pretty(self).map_err(|e| ReportError::Render {
            format: "json",
            message: e.to_string(),
        })
    }

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
            for (line, item) in lost {
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
            let _ = writeln!(out, "\n### Notes\n");
            for (id, name, value) in &notes {
                let _ = writeln!(out, "- `{id}` {name}: {value}");
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

    /// The result a GitHub Classroom runner hands to
    /// `classroom-resources/autograding-grading-reporter` (base64-encode it into
    /// the `<RUNNER-ID>_RESULTS` environment variable): one test per rubric line.
    pub fn to_classroom(&self) -> Result<String, ReportError> {
        let tests: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|line| {
                let failed = line.items.iter().any(|i| i.outcome == Outcome::Fail);
                let errored = line.items.iter().any(|i| i.outcome == Outcome::Error);
                let status = if failed { "fail" } else if errored { "error" } else { "pass" };
                let first = line.items.iter().flat_map(|i| i.findings.iter()).find(|f| f.severity >= Severity::Warning);
                let mut message: Vec<String> = line
                    .items
                    .iter()
                    .filter(|i| matches!(i.outcome, Outcome::Fail | Outcome::Error))
                    .flat_map(|i| {
                        if i.findings.is_empty() {
                            vec![format!("{}: {}", i.id, i.message)]
                        } else {
                            i.findings.iter().map(|f| format!("{}: {} (fix: {})", f.location, f.message, f.hint)).collect()
                        }
                    })
                    .collect();
                let not_run: f64 = line.items.iter().filter(|i| i.outcome == Outcome::NotRun).map(|i| i.points).sum();
                if not_run > 0.0 {
                    message.push(format!("{} live point(s) not run", points(not_run)));
                }
                serde_json::json!({
                    "name": line.title,
                    "status": status,
                    "score": round(line.earned),
                    "message": message.join("\n"),
                    "test_code": line.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", "),
                    "filename": first.map(|f| f.location.file.clone()).unwrap_or_default(),
                    "line_no": first.and_then(|f| f.location.line).unwrap_or(0),
                    "execution_time": format!("{}ms", self.duration_ms),
                })
            })
            .collect();
        let any_fail = self
            .lines
            .iter()
            .flat_map(|l| &l.items)
            .any(|i| i.outcome == Outcome::Fail);
        let any_error = self
            .lines
            .iter()
            .flat_map(|l| &l.items)
            .any(|i| i.outcome == Outcome::Error);
        let result = serde_json::json!({
            "version": 1,
            "status": if any_fail { "fail" } else if any_error { "error" } else { "pass" },
            "max_score": round(self.score.total),
            "tests": tests,
        });
        serde_json::to_string_pretty(&result).map_err(|e| ReportError::Render {
            format: "classroom",
            message: e.to_string(),
        })
    }

    /// JUnit XML: one suite per rubric line, one case per check or criterion.
    pub fn to_junit(&self) -> Result<String, ReportError> {
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
        junit.to_string().map_err(|e| ReportError::Render {
            format: "junit",
            message: e.to_string(),
        })
    }
}

/// Loads a submission directory and runs every static check on it: the part of
/// grading that offline and live grading share.
pub fn load_and_check(
    dir: &Path,
    tools: &Tools,
) -> Result<(submission::Submission, Vec<Verdict>), ReportError> {
    let submission = submission::load(dir, &LoadOptions::default()).map_err(|source| {
        ReportError::Submission {
            path: dir.display().to_string(),
            source,
        }
    })?;
    let verdicts = checks::run(&submission, tools);
    Ok((submission, verdicts))
}

/// Grades a submission directory without a cluster.
pub fn grade_offline(dir: &Path, tools: &Tools) -> Result<Report, ReportError> {
    let started = Instant::now();
    let rubric = Rubric::builtin()?;
    let (_, verdicts) = load_and_check(dir, tools)?;
    Ok(Report::build(
        &rubric,
        &dir.display().to_string(),
        verdicts,
        &BTreeMap::new(),
        started.elapsed(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Location;

    fn verdict(id: &str, outcome: Outcome) -> Verdict {
        let findings = if outcome == Outcome::Fail {
            vec![Finding {
                check: id.into(),
                severity: Severity::Error,
                location: Location::line("hpa.yaml", 12),
                message: "bad".into(),
                hint: "fix it".into(),
                evidence: vec![],
            }]
        } else {
            vec![]
        };
        Verdict {
            id: id.into(),
            outcome,
            message: "m".into(),
            findings,
            evidence: vec![],
        }
    }

    fn all_pass() -> Vec<Verdict> {
        checks::CATALOGUE
            .iter()
            .map(|c| verdict(c.id, Outcome::Pass))
            .collect()
    }

    #[test]
    fn the_builtin_rubric_is_consistent_and_adds_up_to_100() {
        let rubric = Rubric::builtin().unwrap();
        assert_eq!(rubric.lines.len(), 8);
        assert_eq!(rubric.schema, 1);
    }

    #[test]
    fn an_inconsistent_rubric_is_refused() {
        let mut rubric = Rubric::builtin().unwrap();
        rubric.lines[0].points += 1.0;
        assert!(rubric.validate().is_err());
        let mut rubric = Rubric::builtin().unwrap();
        rubric.lines[1].static_items[0].check = "no.such-check".into();
        assert!(rubric.validate().is_err());
    }

    #[test]
    fn offline_all_pass_earns_every_static_point_and_leaves_live_points_not_run() {
        let rubric = Rubric::builtin().unwrap();
        let report = Report::build(&rubric, "sub", all_pass(), &BTreeMap::new(), Duration::ZERO);
        let live: f64 = rubric
            .lines
            .iter()
            .flat_map(|l| &l.live)
            .map(|i| i.points)
            .sum();
        assert!((report.score.earned - (100.0 - live)).abs() < 1e-9);
        assert!((report.score.not_run - live).abs() < 1e-9);
        assert_eq!(report.score.lost, 0.0);
        assert!(report.to_text().contains("live point(s) not run"));
    }

    #[test]
    fn a_failed_check_costs_its_points_and_is_explained_everywhere() {
        let rubric = Rubric::builtin().unwrap();
        let mut verdicts = all_pass();
        for v in &mut verdicts {
            if v.id == "hpa.requests-missing" {
                *v = verdict("hpa.requests-missing", Outcome::Fail);
            }
        }
        let full = Report::build(&rubric, "sub", all_pass(), &BTreeMap::new(), Duration::ZERO);
        let report = Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO);
        assert!((full.score.earned - report.score.earned - 1.0).abs() < 1e-9);
        assert!(report.to_text().contains("hpa.yaml:12: bad"));
        assert!(report.to_markdown().contains("`hpa.yaml:12`: bad"));
        let classroom: serde_json::Value =
            serde_json::from_str(&report.to_classroom().unwrap()).unwrap();
        assert_eq!(classroom["status"], "fail");
        assert_eq!(classroom["max_score"], 100.0);
        let hpa_line = classroom["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "HPA configuration (CPU-based)")
            .unwrap();
        assert_eq!(hpa_line["status"], "fail");
        assert_eq!(hpa_line["line_no"], 12);
        let junit = report.to_junit().unwrap();
        assert!(
            junit.contains("hpa.requests-missing") && junit.contains("<failure"),
            "{junit}"
        );
        assert!(junit.contains("<skipped"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["schema_version"], SCHEMA_VERSION);
    }

    #[test]
    fn environment_errors_are_neither_earned_nor_lost() {
        let rubric = Rubric::builtin().unwrap();
        let mut verdicts = all_pass();
        for v in &mut verdicts {
            if v.id == "scripts.shellcheck" {
                v.outcome = Outcome::Error;
                v.message = "environment error: shellcheck is not installed".into();
            }
        }
        let report = Report::build(&rubric, "sub", verdicts, &BTreeMap::new(), Duration::ZERO);
        assert_eq!(report.score.lost, 0.0);
        assert_eq!(report.score.environment_errors, 1.0);
        assert!(report.to_markdown().contains("Not judged (environment)"));
    }

    #[test]
    fn verdicts_of_live_probes_fill_the_live_share() {
        let rubric = Rubric::builtin().unwrap();
        let live: BTreeMap<String, Verdict> =
            [("hpa-cpu".to_string(), verdict("hpa-cpu", Outcome::Pass))].into();
        let report = Report::build(&rubric, "sub", all_pass(), &live, Duration::ZERO);
        let item = report.lines[1]
            .items
            .iter()
            .find(|i| i.id == "hpa-cpu")
            .unwrap();
        assert_eq!(item.outcome, Outcome::Pass);
        assert_eq!(item.earned, 3.0);
        assert_eq!(report.mode, "live");
    }
}

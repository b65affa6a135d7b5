//! Verdicts folded into rubric points: the [`Report`] and its [`Score`], built
//! from check and live verdicts and the rubric alone (it knows no check, criterion
//! or submission). One file per output format: terminal text, versioned JSON, a
//! GitHub Classroom runner result, JUnit XML and Markdown for a GitHub step summary.

mod annotations;
pub mod chart;
pub mod class;
mod classroom;
mod json;
mod junit;
mod markdown;
pub mod rubric;
mod text;

pub use annotations::MAX_ANNOTATIONS;
pub use chart::ReplicaChart;
pub use class::ClassSummary;
pub use rubric::{LiveItem, Rubric, RubricError, RubricLine, StaticItem, Unscored};

use crate::verdict::{Evidence, Finding, Outcome, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use thiserror::Error;

/// The report's JSON schema version; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// A report that could not be rendered in one of its formats.
#[derive(Debug, Error)]
#[error("cannot write the {format} report: {message}")]
pub struct RenderError {
    pub format: &'static str,
    pub message: String,
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
        let mut score = Score::default();
        for line in &rubric.lines {
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
            let mut items = Vec::new();
            for (kind, id, item_points, verdict) in static_items.chain(live_items) {
                let item = ItemResult::judged(kind, id, item_points, verdict);
                score.count(&item);
                items.push(item);
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
        score.round();
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

    /// The timeline files live probes saved, with the item (criterion) they are evidence
    /// of, in report order, each once.
    pub fn timeline_files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = Vec::new();
        for item in self.lines.iter().flat_map(|l| &l.items) {
            for evidence in &item.evidence {
                if let Evidence::TimelineFile { path } = evidence
                    && !files.iter().any(|(_, p)| p == path)
                {
                    files.push((item.id.clone(), path.clone()));
                }
            }
        }
        files
    }

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
}

impl ItemResult {
    /// A rubric item as its verdict judged it; with no verdict, "not run".
    fn judged(kind: &str, id: &str, points: f64, verdict: Option<&Verdict>) -> ItemResult {
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
            points
        } else {
            0.0
        };
        ItemResult {
            kind: kind.to_string(),
            id: id.to_string(),
            points,
            earned,
            outcome,
            message,
            findings,
            evidence,
        }
    }
}

impl Score {
    /// Adds one item: what it earned, and whose the points it did not earn are.
    fn count(&mut self, item: &ItemResult) {
        match item.outcome {
            Outcome::Pass => {
                self.static_judged += if item.kind == "static" {
                    item.points
                } else {
                    0.0
                }
            }
            Outcome::Fail => {
                self.lost += item.points;
                if item.kind == "static" {
                    self.static_judged += item.points;
                }
            }
            Outcome::Error => self.environment_errors += item.points,
            Outcome::NotRun => self.not_run += item.points,
        }
        self.earned += item.earned;
    }

    /// Rounds every sum to hundredths (the total is a sum of the rubric's lines).
    fn round(&mut self) {
        for value in [
            &mut self.earned,
            &mut self.static_judged,
            &mut self.not_run,
            &mut self.environment_errors,
            &mut self.lost,
        ] {
            *value = round(*value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Location, Severity};

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

    /// A passing verdict for every check the rubric names (which `grade` checks is
    /// every check of the catalogue).
    fn all_pass() -> Vec<Verdict> {
        Rubric::builtin()
            .unwrap()
            .checks()
            .map(|id| verdict(id, Outcome::Pass))
            .collect()
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

//! Student submissions written without looking at the checks
//! (fixtures/submissions/unseen/<name>/): each expected.toml says, from the
//! exercise and Kubernetes/KEDA semantics, which checks must fire (severity
//! warning or error) and how many static points the submission earns. Every
//! lost point must come with an explanation: a finding with a message and a
//! hint, or the "not judged, so not earned" reason.
//!
//! A fixture is either a whole submission, or (with `base = "reference"`) an
//! overlay on the reference like the broken variants.

mod support;

use harness::checks::Tools;
use harness::grade::grade_offline;
use harness::report::Report;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    note: String,
    /// `"reference"`: overlay on fixtures/submissions/reference.
    base: Option<String>,
    #[serde(default)]
    remove: Vec<String>,
    static_points: f64,
    #[serde(default)]
    expect: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    check: String,
    file: Option<String>,
    /// At least this many findings of the check.
    count: Option<usize>,
    #[serde(default)]
    #[allow(dead_code)]
    why: String,
}

fn unseen() -> Vec<PathBuf> {
    support::expected_fixture_dirs("submissions/unseen")
}

fn materialise(fixture: &Path, expected: &Expected, into: &Path) {
    match expected.base.as_deref() {
        Some("reference") => support::materialise_overlay(fixture, &expected.remove, into),
        Some(other) => panic!("{}: unknown base {other}", fixture.display()),
        None => {
            support::copy_tree(fixture, into);
            std::fs::remove_file(into.join("expected.toml")).unwrap();
        }
    }
}

/// Lost points that nothing explains.
fn unexplained_losses(report: &Report) -> Vec<String> {
    report
        .lines
        .iter()
        .flat_map(|line| line.items.iter())
        .filter(|item| item.kind == "static" && item.earned < item.points)
        .filter(|item| {
            let explained_by_findings = !item.findings.is_empty()
                && item
                    .findings
                    .iter()
                    .all(|f| !f.message.is_empty() && !f.hint.is_empty());
            let not_judged = item.message.starts_with("not judged, so not earned:");
            !(explained_by_findings || not_judged)
        })
        .map(|item| format!("{} lost {} without a reason", item.id, item.points))
        .collect()
}

fn judge(fixture: &Path) -> Option<String> {
    let name = fixture.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(fixture.join("expected.toml")).unwrap();
    let expected: Expected = match toml::from_str(&text) {
        Ok(expected) => expected,
        Err(e) => return Some(format!("{name}: expected.toml does not parse: {e}")),
    };
    assert!(!expected.note.is_empty(), "{name}: note is empty");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("submission");
    materialise(fixture, &expected, &dir);
    let report = grade_offline(&dir, &Tools::discover()).expect("grades");
    let verdicts = &report.verdicts;
    let fired = support::fired(verdicts);
    let wanted: BTreeSet<String> = expected.expect.iter().map(|e| e.check.clone()).collect();
    let mut problems = Vec::new();
    if fired != wanted {
        problems.push(format!(
            "expected exactly {wanted:?}, fired {fired:?} (missing {:?}, extra {:?})",
            wanted.difference(&fired).collect::<Vec<_>>(),
            fired.difference(&wanted).collect::<Vec<_>>()
        ));
    }
    for expectation in &expected.expect {
        let findings: Vec<_> = support::findings(verdicts)
            .into_iter()
            .filter(|f| f.check == expectation.check)
            .collect();
        if let Some(file) = &expectation.file
            && !findings.iter().any(|f| &f.location.file == file)
        {
            problems.push(format!("{} fired, but not in {file}", expectation.check));
        }
        if let Some(count) = expectation.count
            && findings.len() < count
        {
            problems.push(format!(
                "{} fired {} time(s), expected at least {count}",
                expectation.check,
                findings.len()
            ));
        }
    }
    let static_earned = report.score.earned;
    if (static_earned - expected.static_points).abs() > 1e-9 {
        problems.push(format!(
            "earned {static_earned} static points, expected {}",
            expected.static_points
        ));
    }
    problems.extend(unexplained_losses(&report));
    (!problems.is_empty()).then(|| {
        format!(
            "{name}: {}\n{}",
            problems.join("; "),
            support::describe(verdicts)
        )
    })
}

#[test]
fn unseen_submissions_grade_as_the_exercise_says() {
    support::require_tools();
    let fixtures = unseen();
    assert!(
        fixtures.len() >= 5,
        "only {} unseen fixtures",
        fixtures.len()
    );
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = fixtures
            .iter()
            .map(|f| scope.spawn(move || judge(f)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} unseen submissions graded wrongly:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

//! Student submissions written blind, from the exercise alone
//! (fixtures/submissions/blind/<name>/): EXPECTED.md was committed before any
//! grading; expected.toml encodes the CORRECT verdict (the checks that must
//! fire, the static points), not what today's grader says.
//!
//! Where today's grader is wrong, the difference is named in KNOWN_WRONG with
//! a one-line reason. The test passes only if the differences are exactly the
//! listed ones: an unlisted difference fails it, and so does a listed one that
//! no longer occurs (the grader was fixed: delete the entry).

mod support;

use harness::checks::Tools;
use harness::grade::grade_offline;
use harness::report::Report;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// (submission, difference, why the grader is wrong). Differences:
/// `missing:<check>` (must fire, does not), `extra:<check>` (fires, must not),
/// `file:<check>` (fires, not in the expected file), `points:<grader's value>`.
const KNOWN_WRONG: &[(&str, &str, &str)] = &[];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    note: String,
    static_points: f64,
    #[serde(default)]
    expect: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    check: String,
    file: Option<String>,
    count: Option<usize>,
    #[serde(default)]
    #[allow(dead_code)]
    why: String,
}

/// Lost points that nothing explains.
fn unexplained_losses(report: &Report) -> Vec<String> {
    report
        .lines
        .iter()
        .flat_map(|line| line.items.iter())
        .filter(|item| item.kind == "static" && item.earned < item.points)
        .filter(|item| {
            let explained = !item.findings.is_empty()
                && item
                    .findings
                    .iter()
                    .all(|f| !f.message.is_empty() && !f.hint.is_empty());
            !(explained || item.message.starts_with("not judged, so not earned:"))
        })
        .map(|item| format!("unexplained:{}", item.id))
        .collect()
}

/// The differences between the grader's report and expected.toml, as keys.
fn differences(fixture: &Path) -> (BTreeSet<String>, String) {
    let name = fixture.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(fixture.join("expected.toml")).unwrap();
    let expected: Expected =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{name}/expected.toml: {e}"));
    assert!(!expected.note.is_empty(), "{name}: note is empty");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("submission");
    support::copy_tree(fixture, &dir);
    for own in ["expected.toml", "EXPECTED.md"] {
        std::fs::remove_file(dir.join(own)).unwrap();
    }
    let report = grade_offline(&dir, &Tools::discover()).expect("grades");
    let verdicts = &report.verdicts;
    let fired = support::fired(verdicts);
    let wanted: BTreeSet<String> = expected.expect.iter().map(|e| e.check.clone()).collect();
    let mut diffs = BTreeSet::new();
    diffs.extend(wanted.difference(&fired).map(|c| format!("missing:{c}")));
    diffs.extend(fired.difference(&wanted).map(|c| format!("extra:{c}")));
    for e in &expected.expect {
        let findings: Vec<_> = support::findings(verdicts)
            .into_iter()
            .filter(|f| f.check == e.check)
            .collect();
        if findings.is_empty() {
            continue;
        }
        if let Some(file) = &e.file
            && !findings.iter().any(|f| &f.location.file == file)
        {
            diffs.insert(format!("file:{}", e.check));
        }
        if let Some(count) = e.count
            && findings.len() < count
        {
            diffs.insert(format!("count:{}", e.check));
        }
    }
    if (report.score.earned - expected.static_points).abs() > 1e-9 {
        diffs.insert(format!("points:{}", report.score.earned));
    }
    diffs.extend(unexplained_losses(&report));
    (diffs, support::describe(verdicts))
}

#[test]
fn blind_submissions_grade_as_the_exercise_says() {
    support::require_tools();
    let fixtures = support::expected_fixture_dirs("submissions/blind");
    assert!(
        fixtures.len() >= 10,
        "only {} blind fixtures",
        fixtures.len()
    );
    let results: Vec<(String, BTreeSet<String>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = fixtures
            .iter()
            .map(|f| {
                scope.spawn(move || {
                    let (d, why) = differences(f);
                    (f.file_name().unwrap().to_string_lossy().to_string(), d, why)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (name, diffs, findings) in &results {
        let known: BTreeSet<String> = KNOWN_WRONG
            .iter()
            .filter(|(sub, _, _)| sub == name)
            .map(|(_, what, _)| what.to_string())
            .collect();
        let unlisted: Vec<_> = diffs.difference(&known).collect();
        let stale: Vec<_> = known.difference(diffs).collect();
        if !unlisted.is_empty() || !stale.is_empty() {
            failures.push(format!(
                "{name}: unlisted differences {unlisted:?}; listed in KNOWN_WRONG but gone \
                 (remove them) {stale:?}\n{findings}"
            ));
        }
    }
    for (sub, _, _) in KNOWN_WRONG {
        assert!(
            results.iter().any(|(name, _, _)| name == sub),
            "KNOWN_WRONG names {sub}, which has no expected.toml"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} blind submissions differ from their expected verdict:\n\n{}",
        failures.len(),
        results.len(),
        failures.join("\n\n")
    );
}

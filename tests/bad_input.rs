//! The bad-input corpus (fixtures/bad-input/<case>/): each case is a small
//! submission with one hostile or malformed file beside a good one. The bad
//! file is reported where expected.toml says (file, line, column, severity);
//! the good file is still graded (`also_finds`); nothing outside the submission
//! is read (`never_finds`); and nothing panics.

mod support;

use harness::verdict::{Finding, Severity};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Expected {
    generate: Option<String>,
    check: Option<String>,
    file: Option<String>,
    #[serde(default)]
    files: Vec<String>,
    line: Option<u32>,
    column: Option<u32>,
    severity: Option<String>,
    #[serde(default)]
    accept: bool,
    #[serde(default)]
    also_finds: Vec<String>,
    #[serde(default)]
    never_finds: Vec<String>,
}

fn cases() -> Vec<PathBuf> {
    support::expected_fixture_dirs("bad-input")
}

/// Copies the case into `<scratch>/submission` (generate.sh may write beside it)
/// and runs its generator.
fn materialise(case: &Path, expected: &Expected, scratch: &Path) -> PathBuf {
    let dir = scratch.join("submission");
    support::copy_tree(case, &dir);
    std::fs::remove_file(dir.join("expected.toml")).unwrap();
    if let Some(script) = &expected.generate {
        std::fs::remove_file(dir.join(script)).unwrap();
        let status = std::process::Command::new("bash")
            .arg(case.join(script))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{}: {script} failed", case.display());
    }
    dir
}

fn judge(case: &Path) -> Option<String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let expected: Expected =
        match toml::from_str(&std::fs::read_to_string(case.join("expected.toml")).unwrap()) {
            Ok(expected) => expected,
            Err(e) => return Some(format!("{name}: expected.toml does not parse: {e}")),
        };
    let scratch = tempfile::tempdir().unwrap();
    let dir = materialise(case, &expected, scratch.path());
    let verdicts = support::grade(&dir);
    let findings = support::findings(&verdicts);
    let fired = support::fired(&verdicts);
    let mut problems = Vec::new();
    let mut files = expected.files.clone();
    files.extend(expected.file.clone());
    if let Some(check) = &expected.check {
        let matching: Vec<&&Finding> = findings.iter().filter(|f| &f.check == check).collect();
        if matching.is_empty() {
            problems.push(format!("{check} did not fire"));
        }
        for file in &files {
            let in_file: Vec<&&&Finding> = matching
                .iter()
                .filter(|f| &f.location.file == file)
                .collect();
            if in_file.is_empty() {
                problems.push(format!("{check} did not fire for {file}"));
                continue;
            }
            if let Some(line) = expected.line
                && !in_file.iter().any(|f| f.location.line == Some(line))
            {
                problems.push(format!("{check} in {file} not at line {line}"));
            }
            if let Some(column) = expected.column
                && !in_file.iter().any(|f| {
                    f.location.line == expected.line.or(f.location.line)
                        && f.location.column == Some(column)
                })
            {
                problems.push(format!("{check} in {file} not at column {column}"));
            }
            if let Some(severity) = &expected.severity
                && !in_file.iter().all(|f| &f.severity.to_string() == severity)
            {
                problems.push(format!("{check} in {file} not of severity {severity}"));
            }
        }
    }
    if expected.accept {
        for finding in findings
            .iter()
            .filter(|f| f.check.starts_with("input.") && f.severity >= Severity::Warning)
        {
            if files.is_empty() || files.contains(&finding.location.file) {
                problems.push(format!("accepted input reported: {finding}"));
            }
        }
    }
    for also in &expected.also_finds {
        if !fired.contains(also) {
            problems.push(format!(
                "{also} (from the good file) did not fire: the bad file hid it"
            ));
        }
    }
    for never in &expected.never_finds {
        if findings.iter().any(|f| &f.check == never) {
            problems.push(format!(
                "{never} fired: something outside the submission was read"
            ));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{name}: {}\n{}",
            problems.join("; "),
            support::describe(&verdicts)
        )
    })
}

#[test]
fn every_bad_input_case_is_reported_where_expected_and_hides_nothing() {
    let cases = cases();
    assert!(cases.len() >= 8, "only {} bad-input cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| judge(c)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases wrong:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_missing_submission_directory_is_an_error_not_a_panic() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("nope");
    let result = harness::grade::grade_offline(&missing, &harness::checks::Tools::discover());
    assert!(result.unwrap_err().to_string().contains("nope"));
}

#[test]
fn an_empty_submission_loses_every_static_point_without_panicking() {
    let scratch = tempfile::tempdir().unwrap();
    let report =
        harness::grade::grade_offline(scratch.path(), &harness::checks::Tools::discover()).unwrap();
    assert_eq!(report.score.earned, 0.0, "{}", report.to_text());
    assert!(report.score.lost > 0.0);
    for format in [
        report.to_json().unwrap(),
        report.to_junit().unwrap(),
        report.to_markdown(),
        report.to_classroom().unwrap(),
    ] {
        assert!(!format.is_empty());
    }
}

#[test]
fn truncated_and_garbled_manifests_never_panic_the_grader() {
    // Every reference manifest cut at many points, and with bytes swapped for
    // YAML punctuation: loading and checking must report, never panic.
    let reference = support::reference();
    let mut manifests = Vec::new();
    let mut stack = vec![reference.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "json") {
                manifests.push(path);
            }
        }
    }
    assert!(manifests.len() >= 10);
    let scratch = tempfile::tempdir().unwrap();
    let tools = harness::checks::Tools::none();
    let mut graded = 0;
    for manifest in &manifests {
        let text = std::fs::read_to_string(manifest).unwrap();
        let cuts: Vec<usize> = (0..text.len())
            .step_by(text.len() / 12 + 1)
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for (n, cut) in cuts.into_iter().enumerate() {
            let mut variant = text[..cut].to_string();
            if n % 2 == 1 {
                variant = variant
                    .replacen(':', "&a", 1)
                    .replacen('-', "*a", 1)
                    .replacen(' ', "\t", 1);
            }
            let dir = scratch.path().join(format!("case-{graded}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("manifest.yaml"), variant).unwrap();
            let verdicts = harness::grade::grade_offline(&dir, &tools)
                .unwrap()
                .verdicts;
            assert_eq!(verdicts.len(), harness::criteria::all_checks().count());
            graded += 1;
        }
    }
    assert!(graded > 100, "only {graded} variants graded");
}

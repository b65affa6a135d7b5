//! Each broken variant (fixtures/submissions/broken/<name>/) is the reference
//! with one seeded fault: materialised in a temporary directory, it must be
//! caught by exactly the checks its expected.toml names, and nothing else.

mod support;

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Expected {
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    expect: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
struct Expectation {
    check: String,
    file: Option<String>,
    line: Option<u32>,
}

fn variants() -> Vec<PathBuf> {
    support::expected_fixture_dirs("submissions/broken")
}

/// Returns what is wrong with one variant's grading, if anything.
fn judge(variant: &Path) -> Option<String> {
    let name = variant.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(variant.join("expected.toml")).unwrap();
    let expected: Expected = match toml::from_str(&text) {
        Ok(expected) => expected,
        Err(e) => return Some(format!("{name}: expected.toml does not parse: {e}")),
    };
    if expected.expect.is_empty() {
        return Some(format!("{name}: expected.toml expects nothing"));
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("submission");
    support::materialise_overlay(variant, &expected.remove, &dir);
    let verdicts = support::grade(&dir);
    let fired = support::fired(&verdicts);
    let wanted: BTreeSet<String> = expected.expect.iter().map(|e| e.check.clone()).collect();
    let mut problems = Vec::new();
    if fired != wanted {
        problems.push(format!("expected exactly {wanted:?}, fired {fired:?}"));
    }
    for expectation in &expected.expect {
        let findings: Vec<_> = support::findings(&verdicts)
            .into_iter()
            .filter(|f| f.check == expectation.check)
            .collect();
        if let Some(file) = &expectation.file
            && !findings.iter().any(|f| &f.location.file == file)
        {
            problems.push(format!("{} fired, but not in {file}", expectation.check));
        }
        if let Some(line) = expectation.line
            && !findings.iter().any(|f| f.location.line == Some(line))
        {
            problems.push(format!(
                "{} fired, but not at line {line}",
                expectation.check
            ));
        }
        if findings
            .iter()
            .any(|f| f.hint.is_empty() || f.message.is_empty())
        {
            problems.push(format!(
                "{} fired without a message or hint",
                expectation.check
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
fn every_broken_variant_is_caught_by_exactly_its_expected_checks() {
    support::require_tools();
    let variants = variants();
    assert!(
        variants.len() >= 18,
        "only {} broken variants",
        variants.len()
    );
    // Grade the variants on a few threads: each runs promtool and shellcheck.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunks: Vec<&[PathBuf]> = variants.chunks(variants.len().div_ceil(workers)).collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                scope.spawn(move || chunk.iter().filter_map(|v| judge(v)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} broken variants graded wrongly:\n\n{}",
        failures.len(),
        variants.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_overlay_really_changes_the_reference() {
    // Guards the materialisation itself: an overlay that silently failed to
    // apply would make every variant look like the (passing) reference.
    let variant = support::repo().join("fixtures/submissions/broken/hpa-min-exceeds-max");
    let expected: Expected =
        toml::from_str(&std::fs::read_to_string(variant.join("expected.toml")).unwrap()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("submission");
    support::materialise_overlay(&variant, &expected.remove, &dir);
    let overlaid =
        std::fs::read_to_string(dir.join("manifests/task2-hpa-cpu/fraud-detector-hpa.yaml"))
            .unwrap();
    let reference = std::fs::read_to_string(
        support::reference().join("manifests/task2-hpa-cpu/fraud-detector-hpa.yaml"),
    )
    .unwrap();
    assert_ne!(overlaid, reference);
    assert!(!dir.join("expected.toml").exists());
}

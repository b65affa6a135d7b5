//! Helpers shared by the offline grading tests: materialising fixtures in a
//! temporary directory and grading them in-process.

#![allow(dead_code)]

use harness::checks::Tools;
use harness::verdict::{Finding, Severity, Verdict};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    // At run time (cargo and nextest set it for the test process): a test binary reused
    // from a shared target dir keeps the compile-time path of the checkout that built it.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The fixture directories under `fixtures/<relative>` that carry an `expected.toml`, sorted.
pub fn expected_fixture_dirs(relative: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures").join(relative))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

pub fn reference() -> PathBuf {
    repo().join("fixtures/submissions/reference")
}

/// Copies a directory tree (regular files only, as the fixtures are).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Grades a directory offline; returns every check verdict.
pub fn grade(dir: &Path) -> Vec<Verdict> {
    harness::grade::grade_offline(dir, &Tools::discover())
        .expect("submission grades")
        .verdicts
}

pub fn findings(verdicts: &[Verdict]) -> Vec<&Finding> {
    verdicts.iter().flat_map(|v| v.findings.iter()).collect()
}

/// Checks that fired with severity warning or error.
pub fn fired(verdicts: &[Verdict]) -> std::collections::BTreeSet<String> {
    findings(verdicts)
        .into_iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| f.check.clone())
        .collect()
}

pub fn describe(verdicts: &[Verdict]) -> String {
    findings(verdicts)
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails the test with what to install when an external checker is missing.
pub fn require_tools() {
    assert!(
        tools_present(),
        "promtool, shellcheck and bash are needed (apt-get install prometheus shellcheck)"
    );
}

/// The external checkers the reference needs for full marks.
pub fn tools_present() -> bool {
    let tools = Tools::discover();
    tools.promtool.is_some() && tools.shellcheck.is_some() && tools.bash.is_some()
}

/// Reference + overlay (`<variant>/` files replace or add; `remove` deletes),
/// written to `into`. The overlay's expected.toml is not part of the result.
pub fn materialise_overlay(variant: &Path, remove: &[String], into: &Path) {
    copy_tree(&reference(), into);
    for removed in remove {
        let path = into.join(removed);
        assert!(
            path.exists(),
            "{}: remove names {removed}, which the reference lacks",
            variant.display()
        );
        std::fs::remove_file(path).unwrap();
    }
    copy_tree(variant, into);
    std::fs::remove_file(into.join("expected.toml")).unwrap();
}

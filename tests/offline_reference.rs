//! The reference submission scores full offline marks: every static check
//! passes, and only the live points stay "not run".

mod support;

use harness::checks::Tools;
use harness::grade::{grade_offline, rubric};
use harness::verdict::Outcome;

#[test]
fn reference_passes_every_static_check() {
    support::require_tools();
    let verdicts = support::grade(&support::reference());
    let failing: Vec<_> = verdicts
        .iter()
        .filter(|v| v.outcome != Outcome::Pass)
        .map(|v| v.id.clone())
        .collect();
    assert!(
        failing.is_empty(),
        "failing checks {failing:?}:\n{}",
        support::describe(&verdicts)
    );
    assert!(
        support::fired(&verdicts).is_empty(),
        "{}",
        support::describe(&verdicts)
    );
}

#[test]
fn reference_scores_every_static_point_and_no_live_point() {
    let report = grade_offline(&support::reference(), &Tools::discover()).unwrap();
    let rubric = rubric().unwrap();
    let live: f64 = rubric
        .lines
        .iter()
        .flat_map(|l| &l.live)
        .map(|i| i.points)
        .sum();
    assert!(live > 0.0);
    assert_eq!(report.score.lost, 0.0, "{}", report.to_text());
    assert_eq!(report.score.environment_errors, 0.0, "{}", report.to_text());
    assert!(
        (report.score.earned - (100.0 - live)).abs() < 1e-9,
        "{}",
        report.to_text()
    );
    assert!((report.score.not_run - live).abs() < 1e-9);
    assert_eq!(report.mode, "offline");
    assert!(report.to_text().contains("live point(s) not run"));
}

#[test]
fn reference_quota_headroom_is_reported_even_when_it_fits() {
    let verdicts = support::grade(&support::reference());
    let quota = verdicts
        .iter()
        .find(|v| v.id == "quota.headroom-exceeded")
        .unwrap();
    assert_eq!(quota.outcome, Outcome::Pass);
    let shown = serde_json::to_string(&quota.evidence).unwrap();
    assert!(shown.contains("headroom"), "{shown}");
    assert!(shown.contains("pods"), "{shown}");
}

#[test]
fn without_tools_the_tool_checks_are_environment_errors_not_failures() {
    let report = grade_offline(&support::reference(), &Tools::none()).unwrap();
    assert_eq!(report.score.lost, 0.0, "{}", report.to_text());
    assert!(report.score.environment_errors > 0.0);
    let outcome = |id: &str| report.verdicts.iter().find(|v| v.id == id).unwrap().outcome;
    assert_eq!(outcome("monitoring.rules-invalid"), Outcome::Error);
    assert_eq!(outcome("scripts.shellcheck"), Outcome::Error);
    assert_eq!(outcome("scripts.syntax"), Outcome::Error);
}

fn cli() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_autoscale-conformance"))
}

#[test]
fn cli_writes_every_format_and_exits_by_min_score() {
    let out = tempfile::tempdir().unwrap();
    let reference = support::reference();
    let run = cli()
        .args([
            "grade",
            "--offline",
            "--format",
            "json",
            "--min-score",
            "50",
            "--out",
        ])
        .arg(out.path())
        .arg(&reference)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["score"]["lost"], 0.0);
    for name in [
        "report.txt",
        "report.json",
        "junit.xml",
        "summary.md",
        "classroom.json",
    ] {
        let written = std::fs::read_to_string(out.path().join(name)).unwrap();
        assert!(!written.is_empty(), "{name} is empty");
    }
    let classroom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("classroom.json")).unwrap())
            .unwrap();
    assert_eq!(classroom["version"], 1);
    assert_eq!(classroom["tests"].as_array().unwrap().len(), 8);

    let below = cli()
        .args(["grade", "--offline", "--min-score", "99"])
        .arg(&reference)
        .output()
        .unwrap();
    assert_eq!(
        below.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&below.stderr)
    );
    assert!(String::from_utf8_lossy(&below.stderr).contains("below --min-score"));
}

/// Live grading without a cluster: the static part is graded, every live criterion
/// the suite probes is an environment "error" (not a lost point), and the exit
/// status (3) tells a pipeline that the grade is incomplete.
#[test]
fn cli_live_grading_without_a_cluster_is_an_environment_error_not_a_fail() {
    let home = tempfile::tempdir().unwrap();
    let live = cli()
        .args(["grade", "--format", "json"])
        .arg(support::reference())
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env("HOME", home.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(
        live.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    assert_eq!(report["mode"], "live");
    assert_eq!(report["score"]["lost"], 0.0);
    let items: Vec<&serde_json::Value> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["items"].as_array().unwrap())
        .filter(|i| i["kind"] == "live")
        .collect();
    for id in harness::grade::probed() {
        let item = items.iter().find(|i| i["id"] == id.as_str()).unwrap();
        assert_eq!(item["outcome"], "error", "{item}");
        assert!(
            item["message"]
                .as_str()
                .unwrap()
                .contains("environment error"),
            "{item}"
        );
    }
    assert!(String::from_utf8_lossy(&live.stderr).contains("not the submission's fault"));
}

#[test]
fn cli_refuses_unknown_directories() {
    let missing = cli()
        .args(["grade", "--offline", "/nonexistent/submission"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}

#[derive(serde::Deserialize)]
struct Equivalent {
    #[serde(default)]
    remove: Vec<String>,
}

#[test]
fn equivalent_packagings_of_the_reference_grade_exactly_like_it() {
    // Same solution, other files and folders (one multi-document file, a
    // dashboard inside a ConfigMap): things are found by content, not by name.
    let root = support::repo().join("fixtures/submissions/equivalent");
    let mut variants: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    variants.sort();
    assert!(!variants.is_empty());
    let reference = grade_offline(&support::reference(), &Tools::discover()).unwrap();
    for variant in variants {
        let expected: Equivalent =
            toml::from_str(&std::fs::read_to_string(variant.join("expected.toml")).unwrap())
                .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("submission");
        support::materialise_overlay(&variant, &expected.remove, &dir);
        let verdicts = support::grade(&dir);
        assert!(
            support::fired(&verdicts).is_empty(),
            "{}:\n{}",
            variant.display(),
            support::describe(&verdicts)
        );
        let report = grade_offline(&dir, &Tools::discover()).unwrap();
        assert_eq!(
            report.score.earned,
            reference.score.earned,
            "{}:\n{}",
            variant.display(),
            report.to_text()
        );
    }
}

#[test]
fn cli_catalogue_lists_every_check_and_criterion_once() {
    let run = cli().args(["catalogue", "--markdown"]).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    for check in harness::criteria::all_checks() {
        assert_eq!(
            text.matches(&format!("| {} |", check.id)).count(),
            1,
            "{}",
            check.id
        );
    }
    assert!(text.contains("CNCF AI conformance: pod_autoscaling"));
}

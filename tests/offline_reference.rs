//! The reference submission scores full offline marks: every static check
//! passes, and only the live points stay "not run".

mod support;

use harness::checks::Tools;
use harness::report::{Rubric, grade_offline};
use harness::verdict::Outcome;

#[test]
fn reference_passes_every_static_check() {
    assert!(
        support::tools_present(),
        "promtool, shellcheck and bash are needed (apt-get install prometheus shellcheck)"
    );
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
    let rubric = Rubric::builtin().unwrap();
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

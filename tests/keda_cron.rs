//! Criterion `keda-cron`, live: the fast fixture's cron trigger, moved to a window that
//! opens about a minute from now in its own time zone (Europe/Berlin), scales the job to
//! desiredReplicas inside the window and back to zero after it. A time zone KEDA cannot
//! load and an empty window must fail with that reason.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::keda_cron::KedaCron;
use harness::verdict::{Evidence, Outcome};
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;
use std::time::Instant;

#[rstest]
#[tokio::test]
async fn live_keda_cron_fast_fixture_scales_inside_its_window(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture("keda_cron/fast");
    let verdict = run_probe_once(&KedaCron, &mut namespace, &submission).await;
    assert_timeline_saved(&verdict);
    for evidence in &verdict.evidence {
        if let Evidence::Values { values } = evidence {
            values
                .iter()
                .for_each(|(name, value)| eprintln!("keda cron: {name}: {value}"));
        }
    }
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

async fn broken(namespace: TestNamespace, fixture: &str) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture(fixture);
    let verdict = run_probe_once(&KedaCron, &mut namespace, &submission).await;
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_expected_verdict(&verdict, fixture);
}

#[rstest]
#[tokio::test]
async fn live_keda_cron_broken_wrong_timezone_fails_with_kedas_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "keda_cron/broken-wrong-timezone").await;
}

#[rstest]
#[tokio::test]
async fn live_keda_cron_broken_empty_window_fails_with_kedas_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "keda_cron/broken-empty-window").await;
}

// The reference's own ScaledObjects are judged by the live grade of the reference
// (tests/grade_live.rs), once the capacity gate has room for it, with its own settings.

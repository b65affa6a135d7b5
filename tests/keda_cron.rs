//! Criterion `keda-cron`, live: the fast fixture's cron trigger, moved to a window that
//! opens about a minute from now in its own time zone (Europe/Berlin), scales the job to
//! desiredReplicas inside the window and back to zero after it. A time zone KEDA cannot
//! load and an empty window must fail with that reason.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::keda_cron::KedaCron;
use harness::verdict::Outcome;
use live::{
    assert_broken_fixture_verdict, assert_timeline_saved, load_fixture, namespace, print_values,
    run_probe_once,
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
    print_values(&verdict, "keda cron", |_| true);
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_keda_cron_broken_wrong_timezone_fails_with_kedas_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &KedaCron,
        namespace,
        "keda_cron/broken-wrong-timezone",
        |_| {},
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_keda_cron_broken_empty_window_fails_with_kedas_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &KedaCron,
        namespace,
        "keda_cron/broken-empty-window",
        |_| {},
    )
    .await;
}

// The reference's own ScaledObjects are judged by the live grade of the reference
// (tests/grade_live.rs), once the capacity gate has room for it, with its own settings.

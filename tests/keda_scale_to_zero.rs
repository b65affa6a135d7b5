//! Criterion `keda-scale-to-zero`, live: the fast fixture's ScaledObject idles its worker
//! at zero, KEDA activates it within pollingInterval + scrape + a margin of work being
//! enqueued, scales it to the count its threshold implies, and returns it to zero no
//! earlier than cooldownPeriod after the queue was last seen. Each broken fixture must
//! fail for its own reason. The delays are printed from the verdict's values: numbers for
//! the record (activation and return-to-zero against their configured values).

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::keda_scale_to_zero::KedaScaleToZero;
use harness::verdict::{Outcome, Verdict};
use live::{
    assert_broken_fixture_verdict, assert_timeline_saved, load_fixture, namespace, print_values,
    run_probe_once,
};
use rstest::rstest;
use std::time::Instant;

/// Every value of the verdict: the activation and return-to-zero delays among them.
fn print_delays(verdict: &Verdict) {
    print_values(verdict, "keda delay", |_| true);
}

#[rstest]
#[tokio::test]
async fn live_keda_scale_to_zero_fast_fixture_wakes_from_zero_and_returns(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture("keda_scale_to_zero/fast");
    let verdict = run_probe_once(&KedaScaleToZero, &mut namespace, &submission).await;
    assert_timeline_saved(&verdict);
    print_delays(&verdict);
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_keda_scale_to_zero_broken_query_returns_nothing_never_activates(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &KedaScaleToZero,
        namespace,
        "keda_scale_to_zero/broken-query-returns-nothing",
        print_delays,
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_keda_scale_to_zero_broken_threshold_never_reached_fails_before_applying(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &KedaScaleToZero,
        namespace,
        "keda_scale_to_zero/broken-threshold-never-reached",
        print_delays,
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_keda_scale_to_zero_broken_cpu_trigger_is_refused_by_kedas_webhook(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &KedaScaleToZero,
        namespace,
        "keda_scale_to_zero/broken-cpu-trigger-without-requests",
        print_delays,
    )
    .await;
}

// The reference's own ScaledObjects are judged by the live grade of the reference
// (tests/grade_live.rs), once the capacity gate has room for it, with its own settings.

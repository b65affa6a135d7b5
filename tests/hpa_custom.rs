//! Criterion `hpa-custom`, live: with the submission's adapter rules in the cluster's
//! prometheus-adapter (under the cluster-wide Lease), its Pods metric is served for the
//! pods, agrees with the load, and the HPA scales to the replicas its own target calls
//! for, then back down stably. Each broken fixture must fail for its own reason.
//!
//! The pipeline's delays (load start -> metric reflects the load -> first scale-up) are
//! printed from the verdict's values: numbers for the record, not timed assertions.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::hpa_custom::HpaCustom;
use harness::verdict::Outcome;
use live::{
    assert_broken_fixture_verdict, assert_timeline_saved, load_fixture, namespace, print_values,
    run_probe_once,
};
use rstest::rstest;
use std::time::Instant;

#[rstest]
#[tokio::test]
async fn live_hpa_custom_fast_fixture_scales_on_its_custom_metric(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture("hpa_custom/fast");
    let verdict = run_probe_once(&HpaCustom, &mut namespace, &submission).await;
    assert_timeline_saved(&verdict);
    print_values(&verdict, "pipeline delay", |name| {
        name.contains("->") || name.contains("served after")
    });
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_rule_returns_nothing_fails_in_discovery(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &HpaCustom,
        namespace,
        "hpa_custom/broken-rule-returns-nothing",
        |_| {},
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_hpa_names_unexposed_metric_fails_before_load(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &HpaCustom,
        namespace,
        "hpa_custom/broken-hpa-names-unexposed-metric",
        |_| {},
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_pods_not_scraped_has_no_value_for_its_pods(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &HpaCustom,
        namespace,
        "hpa_custom/broken-pods-not-scraped",
        |_| {},
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_adapter_rejects_rules_fails_with_the_adapters_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &HpaCustom,
        namespace,
        "hpa_custom/broken-adapter-rejects-rules",
        |_| {},
    )
    .await;
}

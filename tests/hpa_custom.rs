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
use harness::verdict::{Evidence, Outcome};
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;
use std::time::Instant;

fn print_delays(verdict: &harness::verdict::Verdict) {
    for evidence in &verdict.evidence {
        if let Evidence::Values { values } = evidence {
            for (name, value) in values {
                if name.contains("->") || name.contains("served after") {
                    eprintln!("pipeline delay: {name}: {value}");
                }
            }
        }
    }
}

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
    print_delays(&verdict);
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

async fn broken(namespace: TestNamespace, fixture: &str) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture(fixture);
    let verdict = run_probe_once(&HpaCustom, &mut namespace, &submission).await;
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_expected_verdict(&verdict, fixture);
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_rule_returns_nothing_fails_in_discovery(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "hpa_custom/broken-rule-returns-nothing").await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_hpa_names_unexposed_metric_fails_before_load(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "hpa_custom/broken-hpa-names-unexposed-metric").await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_pods_not_scraped_has_no_value_for_its_pods(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "hpa_custom/broken-pods-not-scraped").await;
}

#[rstest]
#[tokio::test]
async fn live_hpa_custom_broken_adapter_rejects_rules_fails_with_the_adapters_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    broken(namespace, "hpa_custom/broken-adapter-rejects-rules").await;
}

//! Criterion `monitoring`, live: the submission's rules load into the cluster's
//! Prometheus (as PrometheusRules of the test namespace) and evaluate without error,
//! every selector of every rule and every dashboard panel query matches series while
//! its workload runs under load, and its latency alert goes pending under overload.
//! Each broken fixture fails for the reason its `expected.toml` states.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::monitoring::Monitoring;
use harness::verdict::{Evidence, Outcome, Verdict};
use live::{assert_expected_verdict, load_fixture, namespace, run_probe_once};
use rstest::rstest;

async fn probe(namespace: TestNamespace, fixture: &str) -> Verdict {
    let mut namespace = namespace;
    let submission = load_fixture(fixture);
    run_probe_once(&Monitoring, &mut namespace, &submission).await
}

#[rstest]
#[tokio::test]
async fn live_monitoring_fast_fixture_rules_load_and_match_series(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "monitoring/fast").await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    let evidence = serde_json::to_string(&verdict.evidence).unwrap();
    // The rule health table, the VPA panel not judged here, the latency alert's state.
    assert!(evidence.contains("health ok"), "{evidence}");
    assert!(
        evidence.contains("alert InferenceLatencyHigh"),
        "{evidence}"
    );
    assert!(
        verdict
            .evidence
            .iter()
            .any(|e| matches!(e, Evidence::Values { .. })),
        "the verdict shows the values it saw"
    );
}

#[rstest]
#[tokio::test]
async fn live_monitoring_broken_selector_typo_fails_naming_the_selector(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "monitoring/broken-selector-typo").await;
    assert_expected_verdict(&verdict, "monitoring/broken-selector-typo");
}

#[rstest]
#[tokio::test]
async fn live_monitoring_broken_panel_unexported_fails_naming_the_panel(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "monitoring/broken-panel-unexported").await;
    assert_expected_verdict(&verdict, "monitoring/broken-panel-unexported");
}

#[rstest]
#[tokio::test]
async fn live_monitoring_broken_monitor_selects_no_port_fails_naming_the_port(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "monitoring/broken-monitor-selects-no-port").await;
    assert_expected_verdict(&verdict, "monitoring/broken-monitor-selects-no-port");
}

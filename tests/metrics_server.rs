//! Criterion `metrics-server`, live: Deployment and APIService Available, NodeMetrics
//! for every real node, PodMetrics for a fresh pod within 60 s.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show};
use rstest::rstest;

fn pod(fixture: &str) -> serde_json::Value {
    load_fixture(fixture)
        .objects
        .iter()
        .find(|o| o.kind == "Pod")
        .expect("a Pod in the fixture")
        .value()
        .clone()
}

#[rstest]
#[tokio::test]
async fn live_metrics_server_serves_node_and_fresh_pod_metrics(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict =
        harness::probe::metrics_server::probe(&mut namespace, &pod("metrics_server/fresh-pod"))
            .await;
    show(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_metrics_server_broken_pod_never_runs_fails(#[future(awt)] namespace: TestNamespace) {
    let mut namespace = namespace;
    let verdict = harness::probe::metrics_server::probe(
        &mut namespace,
        &pod("metrics_server/broken-pod-never-runs"),
    )
    .await;
    show(&verdict);
    assert_expected_verdict(&verdict, "metrics_server/broken-pod-never-runs");
}

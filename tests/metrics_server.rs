//! Criterion `metrics-server`, live: Deployment and APIService Available, NodeMetrics
//! for every real node, PodMetrics for a fresh pod within 60 s. Each fixture is a bare
//! Pod, which the probe takes as its fresh pod.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::metrics_server::MetricsServer;
use harness::criteria::metrics_server::judge::{POD_METRICS_WITHIN, judge_fresh_pod};
use harness::verdict::{Outcome, Verdict};
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;

const FRESH_POD: &str = "fresh-inference";

/// Runs the probe on the fixture, whose Pod is the fresh pod.
async fn probe(namespace: &mut TestNamespace, fixture: &str) -> Verdict {
    let submission = load_fixture(fixture);
    assert!(
        submission
            .objects
            .iter()
            .any(|o| o.kind == "Pod" && o.name == FRESH_POD),
        "a Pod {FRESH_POD} in the fixture"
    );
    run_probe_once(&MetricsServer, namespace, &submission).await
}

#[rstest]
#[tokio::test]
async fn live_metrics_server_serves_node_and_fresh_pod_metrics(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict = probe(&mut namespace, "metrics_server/fresh-pod").await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    // The saved timeline alone reaches the same verdict.
    let saved = assert_timeline_saved(&verdict);
    let again = judge_fresh_pod(&saved, FRESH_POD, POD_METRICS_WITHIN, Vec::new());
    assert_eq!(again.outcome, verdict.outcome, "{}", again.message);
}

#[rstest]
#[tokio::test]
async fn live_metrics_server_broken_pod_never_runs_fails(#[future(awt)] namespace: TestNamespace) {
    let mut namespace = namespace;
    let verdict = probe(&mut namespace, "metrics_server/broken-pod-never-runs").await;
    assert_expected_verdict(&verdict, "metrics_server/broken-pod-never-runs");
    let saved = assert_timeline_saved(&verdict);
    assert!(
        saved
            .pod_states(FRESH_POD)
            .iter()
            .any(|s| s.reason == Some("Unschedulable")),
        "expected the timeline to show {FRESH_POD} Unschedulable: {:?}",
        saved.pod_states(FRESH_POD)
    );
}

/// A fresh pod the cluster has no room for says nothing about metrics-server: the
/// probe waits for capacity (it may free up), then reports "error", not "fail". Its pod
/// asks for more than the cluster has, so its probe reserves all of the cluster's CPU:
/// it runs in the `e2e-alone` profile, after `e2e`, not among its probes.
#[rstest]
#[tokio::test]
async fn live_alone_metrics_server_pod_without_room_is_an_environment_error(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict = probe(&mut namespace, "metrics_server/pod-without-room").await;
    assert_expected_verdict(&verdict, "metrics_server/pod-without-room");
    assert_timeline_saved(&verdict);
}

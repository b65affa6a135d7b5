//! Criterion `cluster-autoscaler`, live: the cluster's Cluster Autoscaler (kwok
//! provider, simulated node groups sized as the submission says) adds nodes to the right
//! group for work no node fits, the pods are bound to them, a pod the submission protects
//! keeps its node, and the nodes above the group's min go after the unneeded time. The
//! probes queue on the autoscaler's cluster-wide lock.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::cluster_autoscaler::ClusterAutoscaler;
use harness::verdict::Outcome;
use live::{
    assert_broken_fixture_verdict, assert_timeline_saved, load_fixture, namespace, print_values,
    run_probe_once, show,
};
use rstest::rstest;
use std::time::Instant;

fn print_run(verdict: &harness::verdict::Verdict) {
    show(verdict);
    print_values(verdict, "cluster-autoscaler", |_| true);
}

async fn passes(namespace: TestNamespace, fixture: &str, group: &str) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture(fixture);
    let verdict = run_probe_once(&ClusterAutoscaler, &mut namespace, &submission).await;
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    print_run(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    assert!(
        verdict.message.contains(&format!("to {group}")),
        "{}",
        verdict.message
    );
    // Each passing fixture protects a pod, and the autoscaler said why it kept its node.
    assert!(
        verdict.message.contains("kept node") && verdict.message.contains("cannot be removed"),
        "{}",
        verdict.message
    );
    let timeline = assert_timeline_saved(&verdict);
    for marker in [
        "work-applied",
        "work-bound",
        "work-ended",
        "protected-pod-deleted",
        "group-at-min",
        "autoscaler-off",
    ] {
        assert!(timeline.marker(marker).is_some(), "no {marker} marker");
    }
}

#[rstest]
#[tokio::test]
async fn live_cluster_autoscaler_reference_training_gets_a_gpu_node_that_goes_after_the_work(
    #[future(awt)] namespace: TestNamespace,
) {
    passes(namespace, "submissions/reference", "gpu-pool").await;
}

#[rstest]
#[tokio::test]
async fn live_cluster_autoscaler_exercise_trigger_gets_cpu_nodes_down_to_its_min_and_its_budget_holds_one(
    #[future(awt)] namespace: TestNamespace,
) {
    passes(namespace, "cluster_autoscaler/cpu-trigger", "cpu-pool").await;
}

#[rstest]
#[tokio::test]
async fn live_cluster_autoscaler_broken_affinity_to_no_pool_adds_no_node_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &ClusterAutoscaler,
        namespace,
        "cluster_autoscaler/broken-affinity-to-no-pool",
        print_run,
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_cluster_autoscaler_broken_annotation_on_workload_metadata_lets_the_node_go_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &ClusterAutoscaler,
        namespace,
        "cluster_autoscaler/broken-annotation-on-workload-metadata",
        print_run,
    )
    .await;
}

//! Criterion `pdb`, live: draining a node (the test's own kwok nodes) evicts only as
//! far as the budget allows: exactly its disruptions while no replacement can start,
//! the next eviction refused with 429 DisruptionBudget, and the drain completes once
//! replacements are Ready elsewhere.

mod live;

use harness::cluster::{Cluster, TestNamespace};
use harness::criteria::pdb::Pdb;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, cluster, load_fixture, namespace, run_probe_once};
use rstest::rstest;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Drains through the fixture's budget; the probe picks fraud-detector-pdb and the
/// Deployment fraud-detector-api it is meant to protect (see its unit tests).
async fn drain(namespace: TestNamespace, fixture: &str) -> harness::verdict::Verdict {
    let mut namespace = namespace;
    let submission = load_fixture(fixture);
    run_probe_once(&Pdb, &mut namespace, &submission).await
}

#[rstest]
#[tokio::test]
async fn live_pdb_reference_gates_the_drain_and_lets_it_complete(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = drain(namespace, "submissions/reference").await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    assert!(
        verdict
            .evidence
            .iter()
            .any(|e| matches!(e, harness::verdict::Evidence::TimelineFile { .. })),
        "the verdict points at its timeline"
    );
}

#[rstest]
#[tokio::test]
async fn live_pdb_broken_selector_protects_nothing_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = drain(namespace, "pdb/broken-selector").await;
    assert_expected_verdict(&verdict, "pdb/broken-selector");
}

#[rstest]
#[tokio::test]
async fn live_pdb_blocking_every_eviction_hangs_the_drain_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = drain(namespace, "pdb/blocks-all-evictions").await;
    assert_expected_verdict(&verdict, "pdb/blocks-all-evictions");
}

/// A test namespace and its nodes.
type NamesOfTheTest = (String, Vec<String>);

/// The drain's nodes are cluster-scoped: they must go with the test, after its pods,
/// even when the test panics while pods are still running on them.
#[rstest]
#[tokio::test]
async fn live_pdb_test_nodes_go_after_their_pods_even_when_the_test_panics(
    #[future(awt)] cluster: Cluster,
) {
    use harness::cluster::nodes::{TestNodes, pin_pod_spec};
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, ListParams, PostParams};

    let test = live::test_name();
    // The namespace and node names the task created, for the checks after its panic.
    let seen: Arc<Mutex<Option<NamesOfTheTest>>> = Arc::default();
    let (for_the_task, seen_by_the_task) = (cluster.clone(), seen.clone());
    let task = tokio::spawn(async move {
        let mut namespace = for_the_task.namespace(&test).await.expect("a namespace");
        let nodes = TestNodes::create(&mut namespace, &[("drain-a", false)])
            .await
            .expect("a test node");
        *seen_by_the_task.lock().unwrap() = Some((namespace.name.clone(), nodes.names.clone()));
        nodes
            .wait_ready(&namespace.client(), Duration::from_secs(30))
            .await
            .expect("the node Ready");
        let mut pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-the-test-node"},
            "spec": {"containers": [{"name": "c", "image": harness::cluster::INFERENCE_IMAGE}]},
        });
        pin_pod_spec(&mut pod["spec"], &namespace.name);
        let pods: Api<Pod> = namespace.api();
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .expect("a pod on the test node");
        harness::cluster::wait_for(
            &pods,
            "on-the-test-node",
            "the pod to run on the test node",
            Duration::from_secs(30),
            |p: Option<&Pod>| {
                p.and_then(|p| p.status.as_ref())
                    .is_some_and(|s| s.phase.as_deref() == Some("Running"))
            },
            |p| format!("{:?}", p.and_then(|p| p.status.as_ref())),
        )
        .await
        .expect("the pod Running");
        panic!("deliberate panic with a pod running on {:?}", nodes.names);
    });
    let started = Instant::now();
    let panic = task
        .await
        .expect_err("the task was meant to panic")
        .into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("deliberate panic"),
        "the task panicked before its deliberate panic: {message}"
    );
    let (namespace, nodes) = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the task created its node");
    eprintln!(
        "after the panic, cleanup returned in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    assert!(
        namespaces.get_opt(&namespace).await.unwrap().is_none(),
        "namespace {namespace} is gone"
    );
    let left = TestNodes::remaining(&cluster.client, &namespace)
        .await
        .unwrap();
    assert!(left.is_empty(), "test nodes left behind: {left:?}");
    let all_pods: Api<Pod> = Api::all(cluster.client.clone());
    for node in &nodes {
        let stuck = all_pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .unwrap();
        assert!(
            stuck.items.is_empty(),
            "pods left on the deleted node {node}: {:?}",
            stuck
                .items
                .iter()
                .map(|p| p.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    }
}

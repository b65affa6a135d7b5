//! Criterion `gpu-pool`, live: training on the GPU pool, serving off it, an
//! over-sized GPU request Pending as Unschedulable. The GPU pool's capacity is
//! cluster-wide state: these tests are `cluster_scoped` and run one at a time.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::gpu_pool::GpuPool;
use harness::observe::{Placement, placement_in};
use harness::verdict::Outcome;
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn live_gpu_pool_cluster_scoped_reference_training_lands_on_the_pool(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("submissions/reference");
    let verdict = run_probe_once(&GpuPool, &mut namespace, &submission).await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    // The saved timeline shows what the verdict says: the over-asking pod Unschedulable.
    let saved = assert_timeline_saved(&verdict);
    assert!(
        matches!(
            placement_in(&saved, "gpu-over-ask"),
            Some((_, Placement::Unschedulable(_)))
        ),
        "expected gpu-over-ask Unschedulable in the saved timeline: {:?}",
        saved.pod_states("gpu-over-ask")
    );
}

#[rstest]
#[tokio::test]
async fn live_gpu_pool_cluster_scoped_broken_no_toleration_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("gpu_pool/broken-no-toleration");
    let verdict = run_probe_once(&GpuPool, &mut namespace, &submission).await;
    assert_expected_verdict(&verdict, "gpu_pool/broken-no-toleration");
    let saved = assert_timeline_saved(&verdict);
    assert!(
        saved
            .event_lines()
            .iter()
            .any(|e| e.contains("FailedScheduling")),
        "expected a FailedScheduling event in the saved timeline: {:?}",
        saved.event_lines()
    );
}

//! Criterion `gpu-pool`, live: training on the GPU pool, serving off it, an
//! over-sized GPU request Pending as Unschedulable. The GPU pool's capacity is
//! cluster-wide state: these tests are `cluster_scoped` and run one at a time.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn live_gpu_pool_cluster_scoped_reference_training_lands_on_the_pool(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict =
        harness::probe::gpu_pool::probe(&mut namespace, &load_fixture("submissions/reference"))
            .await;
    show(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_gpu_pool_cluster_scoped_broken_no_toleration_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict = harness::probe::gpu_pool::probe(
        &mut namespace,
        &load_fixture("gpu_pool/broken-no-toleration"),
    )
    .await;
    show(&verdict);
    assert_expected_verdict(&verdict, "gpu_pool/broken-no-toleration");
}

//! Criterion `pdb`, live: draining a node (the test's own kwok nodes) evicts only as
//! far as the budget allows: exactly its disruptions while no replacement can start,
//! the next eviction refused with 429 DisruptionBudget, and the drain completes once
//! replacements are Ready elsewhere.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show};
use rstest::rstest;

async fn drain(namespace: TestNamespace, fixture: &str) -> harness::verdict::Verdict {
    let mut namespace = namespace;
    let submission = load_fixture(fixture);
    let verdict = harness::probe::pdb::probe(
        &mut namespace,
        &submission,
        "fraud-detector-pdb",
        "fraud-detector-api",
    )
    .await;
    show(&verdict);
    verdict
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

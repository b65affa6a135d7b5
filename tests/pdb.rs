//! Criterion `pdb`, live: evictions through the Eviction API are allowed only as
//! far as the budget allows, refused beyond it with 429 DisruptionBudget.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn live_pdb_reference_allows_one_eviction_and_refuses_the_next(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("submissions/reference");
    let verdict = harness::probe::pdb::probe(
        &mut namespace,
        &submission,
        "fraud-detector-pdb",
        "fraud-detector-api",
    )
    .await;
    show(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_pdb_broken_selector_protects_nothing_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("pdb/broken-selector");
    let verdict = harness::probe::pdb::probe(
        &mut namespace,
        &submission,
        "fraud-detector-pdb",
        "fraud-detector-api",
    )
    .await;
    show(&verdict);
    assert_expected_verdict(&verdict, "pdb/broken-selector");
}

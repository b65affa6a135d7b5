//! Criterion `pdb`, live: evictions through the Eviction API are allowed only as
//! far as the budget allows, refused beyond it with 429 DisruptionBudget.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{load_fixture, namespace, show};
use rstest::rstest;

#[derive(serde::Deserialize)]
struct Expected {
    outcome: String,
    message_contains: String,
}

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
    let expected: Expected = toml::from_str(
        &std::fs::read_to_string(live::fixture_dir("pdb/broken-selector/expected.toml")).unwrap(),
    )
    .unwrap();
    let submission = load_fixture("pdb/broken-selector");
    let verdict = harness::probe::pdb::probe(
        &mut namespace,
        &submission,
        "fraud-detector-pdb",
        "fraud-detector-api",
    )
    .await;
    show(&verdict);
    assert_eq!(
        verdict.outcome.to_string(),
        expected.outcome,
        "{}",
        verdict.message
    );
    assert!(
        verdict.message.contains(&expected.message_contains),
        "expected {:?} in: {}",
        expected.message_contains,
        verdict.message
    );
}

//! Criterion `quota-limits`, live: LimitRange defaults, LimitRange max and the
//! ResourceQuota are enforced by admission as the submission declares them.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn live_quota_limits_reference_defaults_max_and_quota_are_enforced(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let verdict =
        harness::probe::quota_limits::probe(&mut namespace, &load_fixture("submissions/reference"))
            .await;
    show(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
}

#[rstest]
#[tokio::test]
async fn live_quota_limits_broken_no_defaults_fails(#[future(awt)] namespace: TestNamespace) {
    let mut namespace = namespace;
    let verdict = harness::probe::quota_limits::probe(
        &mut namespace,
        &load_fixture("quota_limits/broken-no-defaults"),
    )
    .await;
    show(&verdict);
    assert_expected_verdict(&verdict, "quota_limits/broken-no-defaults");
}

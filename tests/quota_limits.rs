//! Criterion `quota-limits`, live: LimitRange defaults, LimitRange max and the
//! ResourceQuota are enforced by admission as the submission declares them.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::quota_limits::QuotaLimits;
use harness::verdict::Outcome;
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn live_quota_limits_reference_defaults_max_and_quota_are_enforced(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("submissions/reference");
    let verdict = run_probe_once(&QuotaLimits, &mut namespace, &submission).await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    let saved = assert_timeline_saved(&verdict);
    let quota = saved
        .quota("ml-platform-quota")
        .expect("the quota's status in the timeline");
    assert!(
        quota.hard.contains_key("requests.cpu"),
        "hard: {:?}",
        quota.hard
    );
    for refused in ["refused: over-max", "refused: over-quota"] {
        assert!(
            saved.samples.iter().any(|s| matches!(&s.what,
                harness::timeline::Observation::Marker { label } if label.starts_with(refused))),
            "expected a [{refused} ..] marker in {:?}",
            saved.samples
        );
    }
}

#[rstest]
#[tokio::test]
async fn live_quota_limits_broken_no_defaults_fails(#[future(awt)] namespace: TestNamespace) {
    let mut namespace = namespace;
    let submission = load_fixture("quota_limits/broken-no-defaults");
    let verdict = run_probe_once(&QuotaLimits, &mut namespace, &submission).await;
    assert_expected_verdict(&verdict, "quota_limits/broken-no-defaults");
    let saved = assert_timeline_saved(&verdict);
    assert!(
        saved.marker("quota-status-missing").is_none(),
        "the quota's status never reached the timeline"
    );
}

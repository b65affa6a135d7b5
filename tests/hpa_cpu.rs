//! Criteria `hpa-cpu` and `hpa-scale-down`, live: under load the target scales up
//! within its HPA's scaleUp policies and never above maxReplicas; after the load, no
//! scale-down before the stabilization window, at most the policy's rate, no
//! reversal, back at minReplicas within budget. The broken fixture must fail.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::hpa_cpu::HpaCpu;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe};
use rstest::rstest;
use std::time::Instant;

#[rstest]
#[tokio::test]
async fn live_hpa_cpu_fast_fixture_scales_up_and_down_within_its_policies(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture("hpa_cpu/fast");
    let [scale_up, scale_down] = run_probe(&HpaCpu, &mut namespace, &submission)
        .await
        .try_into()
        .expect("the scale-up and scale-down verdicts");
    let saved = assert_timeline_saved(&scale_up);
    eprintln!(
        "replica timeline: {:?}",
        saved
            .steps("fraud-detector-api", 0.0)
            .iter()
            .map(|s| format!("{:.0}s {}->{}", s.t, s.from, s.to))
            .collect::<Vec<_>>()
    );
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(
        scale_up.outcome,
        Outcome::Pass,
        "scale-up: {}",
        scale_up.message
    );
    assert_eq!(
        scale_down.outcome,
        Outcome::Pass,
        "scale-down: {}",
        scale_down.message
    );
}

#[rstest]
#[tokio::test]
async fn live_hpa_cpu_broken_no_requests_fails_with_the_hpa_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("hpa_cpu/broken-no-requests");
    let verdicts = run_probe(&HpaCpu, &mut namespace, &submission).await;
    assert_expected_verdict(&verdicts[0], "hpa_cpu/broken-no-requests");
}

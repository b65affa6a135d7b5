//! Criteria `hpa-cpu` and `hpa-scale-down`, live: under load the target scales up
//! within its HPA's scaleUp policies and never above maxReplicas; after the load, no
//! scale-down before the stabilization window, at most the policy's rate, no
//! reversal, back at minReplicas within budget. The broken fixture must fail.

mod live;

use harness::cluster::TestNamespace;
use harness::verdict::Outcome;
use live::{assert_expected_verdict, load_fixture, namespace, show, test_name};
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
    let run = harness::probe::hpa_cpu::probe(&mut namespace, &submission, &test_name()).await;
    show(&run.scale_up);
    show(&run.scale_down);
    eprintln!(
        "replica timeline: {:?}",
        run.timeline
            .steps("fraud-detector-api", 0.0)
            .iter()
            .map(|s| format!("{:.0}s {}->{}", s.t, s.from, s.to))
            .collect::<Vec<_>>()
    );
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    assert_eq!(
        run.scale_up.outcome,
        Outcome::Pass,
        "scale-up: {}",
        run.scale_up.message
    );
    assert_eq!(
        run.scale_down.outcome,
        Outcome::Pass,
        "scale-down: {}",
        run.scale_down.message
    );
}

#[rstest]
#[tokio::test]
async fn live_hpa_cpu_broken_no_requests_fails_with_the_hpa_reason(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture("hpa_cpu/broken-no-requests");
    let run = harness::probe::hpa_cpu::probe(&mut namespace, &submission, &test_name()).await;
    show(&run.scale_up);
    assert_expected_verdict(&run.scale_up, "hpa_cpu/broken-no-requests");
}

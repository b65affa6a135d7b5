//! Criterion `vpa`, live: every VPA of a submission recommends within its budget, inside
//! its bounds, and its update mode does what it promises on the cluster's real VPA
//! (recommender, updater, admission controller: ci/addons/vpa). The fast fixture has one
//! VPA per mode (Off, Initial, Recreate); the broken ones must fail for their reason.

mod live;

use harness::cluster::TestNamespace;
use harness::criteria::vpa::Vpa;
use harness::verdict::{Evidence, Outcome};
use live::{
    assert_expected_verdict, assert_timeline_saved, load_fixture, namespace, run_probe_once,
};
use rstest::rstest;
use std::time::Instant;

async fn probe(namespace: TestNamespace, fixture: &str) -> harness::verdict::Verdict {
    let mut namespace = namespace;
    let started = Instant::now();
    let verdict = run_probe_once(&Vpa, &mut namespace, &load_fixture(fixture)).await;
    eprintln!(
        "{fixture}: wall time {:.0}s",
        started.elapsed().as_secs_f64()
    );
    verdict
}

/// The probe of `fixture` passes (the story its verdict tells is printed).
async fn passing(namespace: TestNamespace, fixture: &str) -> harness::verdict::Verdict {
    let verdict = probe(namespace, fixture).await;
    let story = story(&verdict);
    eprintln!("{story}");
    assert_eq!(
        verdict.outcome,
        Outcome::Pass,
        "{}\n{story}",
        verdict.message
    );
    verdict
}

/// The story of each VPA, as the verdict tells it.
fn story(verdict: &harness::verdict::Verdict) -> String {
    verdict
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Events { lines } => Some(lines.join("\n")),
            Evidence::Values { values } => Some(
                values
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[rstest]
#[tokio::test]
async fn live_vpa_fast_fixture_recommends_and_each_mode_keeps_its_promise(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = passing(namespace, "vpa/fast").await;
    for (vpa, says) in [
        ("demo-off-vpa (Off)", "evicted or changed nothing"),
        (
            "demo-initial-vpa (Initial)",
            "carried the recommended requests",
        ),
        ("demo-recreate-vpa (Recreate)", "through the Eviction API"),
    ] {
        assert!(
            verdict.message.contains(vpa) && verdict.message.contains(says),
            "{vpa}: expected `{says}` in: {}",
            verdict.message
        );
    }
    let timeline = assert_timeline_saved(&verdict);
    assert!(
        timeline
            .samples
            .iter()
            .any(|s| matches!(&s.what, harness::timeline::Observation::Vpa { recommendation, .. } if !recommendation.is_empty())),
        "the timeline records the recommendations"
    );
}

#[rstest]
#[tokio::test]
async fn live_vpa_target_missing_never_recommends_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "vpa/target-missing").await;
    assert_expected_verdict(&verdict, "vpa/target-missing");
}

#[rstest]
#[tokio::test]
async fn live_vpa_capped_by_max_allowed_fails(#[future(awt)] namespace: TestNamespace) {
    let verdict = probe(namespace, "vpa/capped").await;
    assert_expected_verdict(&verdict, "vpa/capped");
}

#[rstest]
#[tokio::test]
async fn live_vpa_recreate_blocked_by_a_pdb_never_evicts_and_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "vpa/blocked-by-pdb").await;
    assert_expected_verdict(&verdict, "vpa/blocked-by-pdb");
}

/// The reference's three VPAs, as graded live: Off on the serving API, Initial on the
/// feature store, Recreate on the training job (one replica, requests within the
/// recommended bounds: the updater has nothing to do, and the verdict says why).
#[rstest]
#[tokio::test]
async fn live_vpa_reference_recommends_and_keeps_each_modes_promise(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = passing(namespace, "submissions/reference").await;
    for vpa in [
        "vpa-mode-off (Off)",
        "vpa-mode-initial (Initial)",
        "model-training-vpa (Recreate)",
    ] {
        assert!(verdict.message.contains(vpa), "{vpa}: {}", verdict.message);
    }
}

/// A Recreate VPA and a CPU HPA on one Deployment (the static `vpa.hpa-conflict`): the
/// probe applies both and its verdict shows what each did, as that finding's evidence.
#[rstest]
#[tokio::test]
async fn live_vpa_hpa_conflict_records_what_both_controllers_do(
    #[future(awt)] namespace: TestNamespace,
) {
    let verdict = probe(namespace, "vpa/hpa-conflict").await;
    eprintln!("{}\n{}", verdict.message, story(&verdict));
    let note = verdict.evidence.iter().find_map(|e| match e {
        Evidence::Note { text } if text.starts_with("vpa.hpa-conflict, live") => Some(text),
        _ => None,
    });
    let Some(note) = note else {
        panic!("no conflict evidence: {:#?}", verdict.evidence)
    };
    assert!(note.contains("HPA demo-recreate-hpa on cpu"), "{note}");
    let points = verdict
        .evidence
        .iter()
        .find_map(|e| match e {
            Evidence::Timeline { points } => Some(points),
            _ => None,
        })
        .expect("what both controllers did, in order");
    for (who, needle) in [
        ("the HPA", "HPA demo-recreate-hpa"),
        ("the VPA", "EvictedByVPA"),
    ] {
        assert!(
            points.iter().any(|p| p.what.contains(needle)),
            "nothing from {who} in {points:#?}"
        );
    }
}

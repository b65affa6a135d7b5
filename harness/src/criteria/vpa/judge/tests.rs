//! The judge on synthetic timelines: each mode passing, and each way it fails.

use super::*;
use crate::timeline::ConditionState;
use rstest::rstest;

/// The requests of [`spec`]'s template, which [`base`]'s pods carry.
const TEMPLATE_REQUESTS: &[(&str, &str)] = &[("cpu", "10m"), ("memory", "50Mi")];
/// [`base`]'s recommended target as the admission controller sets it on a pod (262144Ki
/// is 256Mi: the same quantity, written differently).
const RECOMMENDED_REQUESTS: &[(&str, &str)] = &[("cpu", "25m"), ("memory", "256Mi")];
/// The pod that follows [`base`]'s two.
const NEW_POD: &str = "web-5d9f-ccccc";

fn q(pairs: &[(&str, &str)]) -> Quantities {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Vec<ContainerResources> {
    vec![ContainerResources {
        name: "app".into(),
        requests: q(requests),
        limits: q(limits),
    }]
}

fn spec(mode: Mode) -> VpaSpec {
    VpaSpec {
        name: "vpa".into(),
        target: "web".into(),
        mode,
        policies: vec![Policy {
            container: "app".into(),
            min_allowed: q(&[("cpu", "25m"), ("memory", "100Mi")]),
            max_allowed: q(&[("cpu", "1"), ("memory", "1Gi")]),
            ..Policy::default()
        }],
        template: container(TEMPLATE_REQUESTS, &[("memory", "200Mi")]),
        min_replicas: None,
        replicas: 2,
    }
}

const BUDGET: Budget = Budget {
    recommendation: Duration::from_secs(90),
    action: Duration::from_secs(60),
    updater_min_replicas: 2,
    slack: Duration::from_secs(5),
};

fn recommendation(target: &[(&str, &str)]) -> Observation {
    Observation::Vpa {
        name: "vpa".into(),
        recommendation: vec![ContainerRecommendation {
            container_name: "app".into(),
            target: q(target),
            lower_bound: q(&[("cpu", "25m"), ("memory", "250Mi")]),
            upper_bound: q(&[("cpu", "1"), ("memory", "1Gi")]),
            uncapped_target: q(target),
        }],
        conditions: vec![ConditionState {
            type_: "RecommendationProvided".into(),
            status: "True".into(),
            reason: None,
        }],
    }
}

fn pod(name: &str) -> Observation {
    Observation::Pod {
        name: name.into(),
        phase: "Running".into(),
        ready: true,
        node: Some("node".into()),
        reason: None,
        message: None,
    }
}

fn resources(name: &str, requests: &[(&str, &str)], by_vpa: bool) -> Observation {
    Observation::PodResources {
        name: name.into(),
        containers: container(requests, &[("memory", "200Mi")]),
        vpa_updates: by_vpa
            .then(|| "Pod resources updated by vpa: container 0: cpu request".into()),
    }
}

fn event(pod: &str, reason: &str) -> Observation {
    Observation::Event {
        object: format!("Pod/{pod}"),
        reason: reason.into(),
        message: String::new(),
        type_: "Normal".into(),
    }
}

/// Two pods at the template's requests from t=1, a recommendation at t=40.
fn base() -> Timeline {
    let mut t = Timeline::new("vpa", "2026-01-01T00:00:00Z");
    t.push(
        0.0,
        Observation::Marker {
            label: "vpa-applied".into(),
        },
    );
    for name in ["web-5d9f-aaaaa", "web-5d9f-bbbbb"] {
        t.push(1.0, pod(name));
        t.push(1.0, resources(name, TEMPLATE_REQUESTS, false));
    }
    t.push(
        40.0,
        recommendation(&[("cpu", "25m"), ("memory", "262144Ki")]),
    );
    t
}

/// [`NEW_POD`] created at `at` with `requests`, set by the VPA's admission controller or
/// not.
fn push_new_pod(t: &mut Timeline, at: f64, requests: &[(&str, &str)], by_vpa: bool) {
    t.push(at, pod(NEW_POD));
    t.push(at, resources(NEW_POD, requests, by_vpa));
}

/// [`base`] with its first pod evicted at t=55 and [`NEW_POD`] replacing it at t=56.
fn evicted_and_replaced(requests: &[(&str, &str)], by_vpa: bool) -> Timeline {
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", EVICTED));
    push_new_pod(&mut t, 56.0, requests, by_vpa);
    t
}

/// [`base`] with [`NEW_POD`] created at `at`, no pod evicted.
fn with_new_pod(at: f64, requests: &[(&str, &str)], by_vpa: bool) -> Timeline {
    let mut t = base();
    push_new_pod(&mut t, at, requests, by_vpa);
    t
}

fn judge(spec: &VpaSpec, timeline: &Timeline) -> Judgement {
    judge_vpa(spec, timeline, &BUDGET, 0.0, 120.0)
}

/// Asserts the judgement's outcome and that its message says each of `says`.
fn assert_judged(j: &Judgement, outcome: Outcome, says: &[&str]) {
    assert_eq!(j.outcome, outcome, "{}", j.message);
    for words in says {
        assert!(j.message.contains(words), "{}", j.message);
    }
}

#[test]
fn pods_of_a_deployment_are_told_from_a_longer_named_one() {
    assert!(pod_of("web", "web-5d9f-aaaaa"));
    assert!(!pod_of("web", "web-v2-5d9f-aaaaa"));
    assert!(!pod_of("web", "webx-5d9f-aaaaa"));
    assert!(!pod_of("web", "web"));
}

#[test]
fn no_recommendation_fails_with_the_vpas_conditions() {
    let mut t = Timeline::new("vpa", "2026-01-01T00:00:00Z");
    t.push(1.0, pod("web-5d9f-aaaaa"));
    t.push(
        30.0,
        Observation::Vpa {
            name: "vpa".into(),
            recommendation: Vec::new(),
            conditions: vec![ConditionState {
                type_: "ConfigUnsupported".into(),
                status: "True".into(),
                reason: Some("InvalidTargetRef".into()),
            }],
        },
    );
    assert_judged(
        &judge(&spec(Mode::Off), &t),
        Outcome::Fail,
        &[
            "recommended nothing",
            "ConfigUnsupported=True (InvalidTargetRef)",
        ],
    );
}

#[test]
fn a_late_recommendation_fails() {
    let mut t = base();
    t.samples
        .retain(|s| !matches!(s.what, Observation::Vpa { .. }));
    t.push(100.0, recommendation(&[("cpu", "25m")]));
    assert_judged(
        &judge(&spec(Mode::Off), &t),
        Outcome::Fail,
        &["only after 100s (budget 90s)"],
    );
}

/// A recommendation capped by maxAllowed: the target it could not reach.
fn capped_recommendation() -> Observation {
    Observation::Vpa {
        name: "vpa".into(),
        recommendation: vec![ContainerRecommendation {
            container_name: "app".into(),
            target: q(&[("cpu", "25m"), ("memory", "1Gi")]),
            lower_bound: q(&[("cpu", "25m"), ("memory", "1Gi")]),
            upper_bound: q(&[("cpu", "1"), ("memory", "1Gi")]),
            uncapped_target: q(&[("cpu", "25m"), ("memory", "1500Mi")]),
        }],
        conditions: Vec::new(),
    }
}

#[rstest]
#[case::a_target_above_it(
    50.0,
    recommendation(&[("cpu", "2"), ("memory", "300Mi")]),
    &["cpu target 2", "above its maxAllowed 1"],
)]
#[case::a_target_capped_by_it(
    60.0,
    capped_recommendation(),
    &["capped by maxAllowed 1Gi: it finds 1500Mi needed"],
)]
fn a_recommendation_beyond_max_allowed_fails(
    #[case] at: f64,
    #[case] recommended: Observation,
    #[case] says: &[&str],
) {
    let mut t = base();
    t.push(at, recommended);
    assert_judged(&judge(&spec(Mode::Off), &t), Outcome::Fail, says);
}

#[test]
fn a_recommendation_for_an_uncontrolled_resource_fails() {
    let mut s = spec(Mode::Off);
    s.policies[0].controlled_resources = Some(vec!["cpu".into()]);
    assert_judged(&judge(&s, &base()), Outcome::Fail, &["does not control"]);
}

#[test]
fn off_passes_when_nothing_changes_and_fails_on_an_eviction() {
    assert_judged(
        &judge(&spec(Mode::Off), &base()),
        Outcome::Pass,
        &["recommended 40s after"],
    );
    let mut t = base();
    t.push(60.0, event("web-5d9f-aaaaa", EVICTED));
    assert_judged(
        &judge(&spec(Mode::Off), &t),
        Outcome::Fail,
        &["is Off, yet pod web-5d9f-aaaaa"],
    );
}

#[test]
fn off_fails_when_a_new_pod_is_set_by_the_vpa() {
    let t = with_new_pod(70.0, RECOMMENDED_REQUESTS, true);
    assert_judged(
        &judge(&spec(Mode::Off), &t),
        Outcome::Fail,
        &["set by the admission controller"],
    );
}

#[test]
fn initial_sets_new_pods_and_never_evicts() {
    let mut t = base();
    t.push(
        41.0,
        Observation::Marker {
            label: format!("{DELETED_MARKER}web-5d9f-aaaaa"),
        },
    );
    // Within the slack of the recommendation, but after the probe's deletion.
    push_new_pod(&mut t, 42.0, RECOMMENDED_REQUESTS, true);
    let j = judge(&spec(Mode::Initial), &t);
    assert_judged(&j, Outcome::Pass, &[]);
    assert!(
        j.lines.iter().any(|l| l.contains("deleted by the probe")),
        "{:?}",
        j.lines
    );

    let mut evicting = t.clone();
    evicting.push(60.0, event("web-5d9f-bbbbb", EVICTED));
    assert_judged(
        &judge(&spec(Mode::Initial), &evicting),
        Outcome::Fail,
        &["changed running pod web-5d9f-bbbbb"],
    );
}

#[rstest]
#[case::initial_on_a_new_pod(
    Mode::Initial,
    with_new_pod(51.0, TEMPLATE_REQUESTS, false),
    &["does not carry it", "requests cpu 10m where the recommendation's target is 25m"],
)]
#[case::auto_on_a_replacement(
    Mode::Auto,
    evicted_and_replaced(TEMPLATE_REQUESTS, false),
    &["does not carry it"],
)]
fn a_pod_keeping_the_templates_requests_fails(
    #[case] mode: Mode,
    #[case] t: Timeline,
    #[case] says: &[&str],
) {
    assert_judged(&judge(&spec(mode), &t), Outcome::Fail, says);
}

#[test]
fn initial_without_a_new_pod_is_the_probes_error() {
    assert_judged(
        &judge(&spec(Mode::Initial), &base()),
        Outcome::Error,
        &["no Warning event from its controllers"],
    );
}

fn warning(object: &str, reason: &str, message: &str) -> Observation {
    Observation::Event {
        object: object.into(),
        reason: reason.into(),
        message: message.into(),
        type_: "Warning".into(),
    }
}

#[test]
fn initial_whose_replacement_the_submissions_quota_refuses_fails_quoting_it() {
    let mut t = base();
    t.push(
        50.0,
        warning(
            "ReplicaSet/web-5d9f",
            "FailedCreate",
            "Error creating: pods \"web-5d9f-ccccc\" is forbidden: exceeded quota: ml-quota, requested: pods=1, used: pods=2, limited: pods=2",
        ),
    );
    // Another workload's refusals are not this target's.
    t.push(
        51.0,
        warning(
            "ReplicaSet/web-v2-77aa",
            "FailedCreate",
            "is forbidden: exceeded quota",
        ),
    );
    let j = judge(&spec(Mode::Initial), &t);
    assert_judged(
        &j,
        Outcome::Fail,
        &["was refused", "exceeded quota: ml-quota"],
    );
    assert!(!j.message.contains("web-v2"), "{}", j.message);
}

#[test]
fn initial_whose_replacement_failed_otherwise_is_an_error_quoting_the_controller() {
    let mut t = base();
    t.push(
        50.0,
        warning(
            "ReplicaSet/web-5d9f",
            "FailedCreate",
            "Internal error occurred: failed calling webhook: context deadline exceeded",
        ),
    );
    assert_judged(
        &judge(&spec(Mode::Initial), &t),
        Outcome::Error,
        &["failed calling webhook"],
    );
}

#[test]
fn recreate_evicts_out_of_bounds_pods_and_replacements_carry_the_target() {
    let t = evicted_and_replaced(RECOMMENDED_REQUESTS, true);
    assert_judged(
        &judge(&spec(Mode::Recreate), &t),
        Outcome::Pass,
        &["evicted 1 pod through the Eviction API"],
    );
    // InPlaceOrRecreate says it fell back.
    assert_judged(
        &judge(&spec(Mode::InPlaceOrRecreate), &t),
        Outcome::Pass,
        &["fell back to recreating"],
    );
}

#[test]
fn recreate_fails_without_an_eviction_the_bounds_call_for() {
    assert_judged(
        &judge(&spec(Mode::Recreate), &base()),
        Outcome::Fail,
        &["its cpu request 10m lies outside the recommended [25m, 1]"],
    );
}

#[test]
fn recreate_below_min_replicas_or_within_bounds_has_nothing_to_do() {
    let mut single = spec(Mode::Recreate);
    single.replicas = 1;
    assert_judged(
        &judge(&single, &base()),
        Outcome::Pass,
        &["acts only from 2"],
    );
    // updatePolicy.minReplicas 1 lets the updater act on one replica.
    single.min_replicas = Some(1);
    assert_eq!(judge(&single, &base()).outcome, Outcome::Fail);

    let mut within = base();
    for s in &mut within.samples {
        if let Observation::PodResources { containers, .. } = &mut s.what {
            *containers = container(&[("cpu", "500m"), ("memory", "512Mi")], &[]);
        }
    }
    let mut s = spec(Mode::Recreate);
    s.template = container(&[("cpu", "500m"), ("memory", "512Mi")], &[]);
    assert_judged(
        &judge(&s, &within),
        Outcome::Pass,
        &["within the recommended bounds"],
    );
}

#[test]
fn requests_only_keeps_the_limits() {
    let mut s = spec(Mode::Recreate);
    s.policies[0].requests_only = true;
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", EVICTED));
    t.push(56.0, pod(NEW_POD));
    // The replacement's memory limit changed too (200Mi to 1Gi), which RequestsOnly forbids.
    t.push(
        56.0,
        Observation::PodResources {
            name: NEW_POD.into(),
            containers: container(RECOMMENDED_REQUESTS, &[("memory", "1Gi")]),
            vpa_updates: Some("updated".into()),
        },
    );
    assert_judged(&judge(&s, &t), Outcome::Fail, &["RequestsOnly"]);
}

#[test]
fn an_in_place_resize_is_reported() {
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", RESIZED));
    t.push(
        55.5,
        resources("web-5d9f-aaaaa", RECOMMENDED_REQUESTS, false),
    );
    assert_judged(
        &judge(&spec(Mode::InPlaceOrRecreate), &t),
        Outcome::Pass,
        &["resized 1 pod in place"],
    );
    // Recreate never resizes in place.
    assert_eq!(judge(&spec(Mode::Recreate), &t).outcome, Outcome::Fail);
}

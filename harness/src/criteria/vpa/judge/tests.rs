//! The judge on synthetic timelines: each mode passing, and each way it fails.

use super::*;
use crate::timeline::ConditionState;

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
        template: container(
            &[("cpu", "10m"), ("memory", "50Mi")],
            &[("memory", "200Mi")],
        ),
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
        t.push(
            1.0,
            resources(name, &[("cpu", "10m"), ("memory", "50Mi")], false),
        );
    }
    t.push(
        40.0,
        recommendation(&[("cpu", "25m"), ("memory", "262144Ki")]),
    );
    t
}

fn judge(spec: &VpaSpec, timeline: &Timeline) -> Judgement {
    judge_vpa(spec, timeline, &BUDGET, 0.0, 120.0)
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
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("recommended nothing"), "{}", j.message);
    assert!(
        j.message
            .contains("ConfigUnsupported=True (InvalidTargetRef)"),
        "{}",
        j.message
    );
}

#[test]
fn a_late_recommendation_fails() {
    let mut t = base();
    t.samples
        .retain(|s| !matches!(s.what, Observation::Vpa { .. }));
    t.push(100.0, recommendation(&[("cpu", "25m")]));
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message.contains("only after 100s (budget 90s)"),
        "{}",
        j.message
    );
}

#[test]
fn a_target_above_max_allowed_fails() {
    let mut t = base();
    t.push(50.0, recommendation(&[("cpu", "2"), ("memory", "300Mi")]));
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("cpu target 2"), "{}", j.message);
    assert!(
        j.message.contains("above its maxAllowed 1"),
        "{}",
        j.message
    );
}

#[test]
fn a_recommendation_for_an_uncontrolled_resource_fails() {
    let mut s = spec(Mode::Off);
    s.policies[0].controlled_resources = Some(vec!["cpu".into()]);
    let j = judge(&s, &base());
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("does not control"), "{}", j.message);
}

#[test]
fn off_passes_when_nothing_changes_and_fails_on_an_eviction() {
    let j = judge(&spec(Mode::Off), &base());
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(j.message.contains("recommended 40s after"), "{}", j.message);
    let mut t = base();
    t.push(60.0, event("web-5d9f-aaaaa", EVICTED));
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message.contains("is Off, yet pod web-5d9f-aaaaa"),
        "{}",
        j.message
    );
}

#[test]
fn off_fails_when_a_new_pod_is_set_by_the_vpa() {
    let mut t = base();
    t.push(70.0, pod("web-5d9f-ccccc"));
    t.push(
        70.0,
        resources(
            "web-5d9f-ccccc",
            &[("cpu", "25m"), ("memory", "256Mi")],
            true,
        ),
    );
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message.contains("set by the admission controller"),
        "{}",
        j.message
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
    t.push(42.0, pod("web-5d9f-ccccc"));
    // 262144Ki is 256Mi: the same quantity, written differently.
    t.push(
        42.0,
        resources(
            "web-5d9f-ccccc",
            &[("cpu", "25m"), ("memory", "256Mi")],
            true,
        ),
    );
    let j = judge(&spec(Mode::Initial), &t);
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(
        j.lines.iter().any(|l| l.contains("deleted by the probe")),
        "{:?}",
        j.lines
    );

    let mut evicting = t.clone();
    evicting.push(60.0, event("web-5d9f-bbbbb", EVICTED));
    let j = judge(&spec(Mode::Initial), &evicting);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message.contains("changed running pod web-5d9f-bbbbb"),
        "{}",
        j.message
    );
}

#[test]
fn initial_fails_when_a_new_pod_keeps_the_templates_requests() {
    let mut t = base();
    t.push(51.0, pod("web-5d9f-ccccc"));
    t.push(
        51.0,
        resources(
            "web-5d9f-ccccc",
            &[("cpu", "10m"), ("memory", "50Mi")],
            false,
        ),
    );
    let j = judge(&spec(Mode::Initial), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("does not carry it"), "{}", j.message);
    assert!(
        j.message
            .contains("requests cpu 10m where the recommendation's target is 25m"),
        "{}",
        j.message
    );
}

#[test]
fn initial_without_a_new_pod_is_the_probes_error() {
    let j = judge(&spec(Mode::Initial), &base());
    assert_eq!(j.outcome, Outcome::Error, "{}", j.message);
}

#[test]
fn recreate_evicts_out_of_bounds_pods_and_replacements_carry_the_target() {
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", EVICTED));
    t.push(56.0, pod("web-5d9f-ccccc"));
    t.push(
        56.0,
        resources(
            "web-5d9f-ccccc",
            &[("cpu", "25m"), ("memory", "256Mi")],
            true,
        ),
    );
    let j = judge(&spec(Mode::Recreate), &t);
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(
        j.message.contains("evicted 1 pod through the Eviction API"),
        "{}",
        j.message
    );
    // InPlaceOrRecreate says it fell back.
    let j = judge(&spec(Mode::InPlaceOrRecreate), &t);
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(
        j.message.contains("fell back to recreating"),
        "{}",
        j.message
    );
}

#[test]
fn recreate_fails_without_an_eviction_the_bounds_call_for() {
    let j = judge(&spec(Mode::Recreate), &base());
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message
            .contains("its cpu request 10m lies outside the recommended [25m, 1]"),
        "{}",
        j.message
    );
}

#[test]
fn recreate_below_min_replicas_or_within_bounds_has_nothing_to_do() {
    let mut single = spec(Mode::Recreate);
    single.replicas = 1;
    let j = judge(&single, &base());
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(j.message.contains("acts only from 2"), "{}", j.message);
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
    let j = judge(&s, &within);
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(
        j.message.contains("within the recommended bounds"),
        "{}",
        j.message
    );
}

#[test]
fn a_replacement_without_the_recommendation_fails() {
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", EVICTED));
    t.push(56.0, pod("web-5d9f-ccccc"));
    t.push(
        56.0,
        resources(
            "web-5d9f-ccccc",
            &[("cpu", "10m"), ("memory", "50Mi")],
            false,
        ),
    );
    let j = judge(&spec(Mode::Auto), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("does not carry it"), "{}", j.message);
}

#[test]
fn requests_only_keeps_the_limits() {
    let mut s = spec(Mode::Recreate);
    s.policies[0].requests_only = true;
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", EVICTED));
    t.push(56.0, pod("web-5d9f-ccccc"));
    t.push(
        56.0,
        Observation::PodResources {
            name: "web-5d9f-ccccc".into(),
            containers: container(&[("cpu", "25m"), ("memory", "256Mi")], &[("memory", "1Gi")]),
            vpa_updates: Some("updated".into()),
        },
    );
    let j = judge(&s, &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.message.contains("RequestsOnly"), "{}", j.message);
}

#[test]
fn an_in_place_resize_is_reported() {
    let mut t = base();
    t.push(55.0, event("web-5d9f-aaaaa", RESIZED));
    t.push(
        55.5,
        resources(
            "web-5d9f-aaaaa",
            &[("cpu", "25m"), ("memory", "256Mi")],
            false,
        ),
    );
    let j = judge(&spec(Mode::InPlaceOrRecreate), &t);
    assert_eq!(j.outcome, Outcome::Pass, "{}", j.message);
    assert!(
        j.message.contains("resized 1 pod in place"),
        "{}",
        j.message
    );
    // Recreate never resizes in place.
    assert_eq!(judge(&spec(Mode::Recreate), &t).outcome, Outcome::Fail);
}

#[test]
fn a_recommendation_capped_by_max_allowed_fails() {
    let mut t = base();
    t.push(
        60.0,
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
        },
    );
    let j = judge(&spec(Mode::Off), &t);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.message
            .contains("capped by maxAllowed 1Gi: it finds 1500Mi needed"),
        "{}",
        j.message
    );
}

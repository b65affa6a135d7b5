//! The judge on synthetic runs: a pass, and each way it fails.

use super::*;
use crate::criteria::hpa_cpu::scaling::{Policy, PolicyKind, ScalingRules, SelectPolicy};
use crate::timeline::Observation;
use std::time::Duration;

const SUBJECT: Subject<'static> = Subject {
    target: "recommendation-api",
    hpa: "recommendation-hpa",
};

/// The fast fixture: 1..4, 10 req/s per pod, up 2 pods / 15 s, down after 30 s.
fn spec() -> CustomSpec {
    CustomSpec {
        scaling: ScalingSpec {
            min_replicas: 1,
            max_replicas: 4,
            cpu_target_utilization: None,
            scale_up: ScalingRules {
                stabilization_window_seconds: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Pods,
                    value: 2,
                    period_seconds: 15,
                }],
            },
            scale_down: ScalingRules {
                stabilization_window_seconds: 30,
                select_policy: SelectPolicy::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_seconds: 15,
                }],
            },
        },
        metric: "http_requests_per_second".into(),
        target_average: 10.0,
        kind: MetricKind::Rate,
        expected: 2,
        pipeline: Pipeline::new(Some(Duration::from_secs(60))),
        targets: vec![
            MetricTarget {
                name: "http_requests_per_second".into(),
                utilization: false,
                value: 10.0,
            },
            MetricTarget {
                name: "cpu".into(),
                utilization: true,
                value: 70.0,
            },
        ],
    }
}

/// An HPA status: (t, currentReplicas, [(metric, value or utilization)]).
type HpaReading = (f64, i32, &'static [(&'static str, &'static str)]);

const MARKERS: &[(f64, &str)] = &[
    (0.0, ADAPTER_CONFIGURED),
    (40.0, "baseline"),
    (50.0, "load-start"),
    (200.0, "load-stop"),
];

/// Replica steps, HPA readings (t, current, [(metric, value or utilization)]), markers.
fn timeline(replicas: &[(f64, i32)], hpa: &[HpaReading], markers: &[(f64, &str)]) -> Timeline {
    let mut samples: Vec<(f64, Observation)> = Vec::new();
    for &(t, r) in replicas {
        samples.push((
            t,
            Observation::Scale {
                target: SUBJECT.target.into(),
                replicas: r,
                ready_replicas: r,
                manager: Some("kube-controller-manager".into()),
            },
        ));
    }
    for &(t, current, readings) in hpa {
        samples.push((
            t,
            Observation::Hpa {
                name: SUBJECT.hpa.into(),
                current_replicas: current,
                desired_replicas: current,
                metrics: readings
                    .iter()
                    .map(|(name, value)| MetricReading {
                        name: (*name).into(),
                        utilization: (*name == "cpu").then(|| value.parse().unwrap()),
                        value: (*name != "cpu").then(|| (*value).to_string()),
                    })
                    .collect(),
                conditions: Vec::new(),
            },
        ));
    }
    for &(t, label) in markers {
        samples.push((
            t,
            Observation::Marker {
                label: label.into(),
            },
        ));
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut timeline = Timeline::new("synthetic", "2026-01-01T00:00:00Z");
    for (t, what) in samples {
        timeline.push(t, what);
    }
    timeline
}

fn good_replicas() -> Vec<(f64, i32)> {
    vec![(0.0, 1), (120.0, 2), (260.0, 1), (280.0, 1)]
}

fn good_hpa() -> Vec<HpaReading> {
    vec![
        (
            60.0,
            1,
            &[("http_requests_per_second", "300m"), ("cpu", "10")][..],
        ),
        (
            115.0,
            1,
            &[("http_requests_per_second", "15"), ("cpu", "30")][..],
        ),
        (
            240.0,
            2,
            &[("http_requests_per_second", "0"), ("cpu", "2")][..],
        ),
    ]
}

/// The metric every 10 s: `per_pod(t)` on each of `pods(t)` pods; the server and the
/// rendered query agree with the sum.
fn recording(
    per_pod: impl Fn(f64) -> f64,
    pods: impl Fn(f64) -> usize,
    from: f64,
) -> MetricRecording {
    let samples = (0..30)
        .map(|i| f64::from(i) * 10.0)
        .map(|t| {
            if t < from {
                return MetricSample {
                    t,
                    no_value: Some("404 the server could not find the metric".into()),
                    ..Default::default()
                };
            }
            let n = pods(t);
            let values: Vec<PodValue> = (0..n)
                .map(|i| PodValue {
                    pod: format!("recommendation-api-{i}"),
                    quantity: format!("{}m", (per_pod(t) * 1000.0).round()),
                    value: per_pod(t),
                })
                .collect();
            let sum = per_pod(t) * n as f64;
            MetricSample {
                t,
                values,
                no_value: None,
                promql_sum: Some(sum),
                server_rate: Some(sum),
            }
        })
        .collect();
    MetricRecording {
        metric: "http_requests_per_second".into(),
        samples,
        discovery: vec!["pods/http_requests_per_second".into()],
        promql: "sum(rate(http_requests_total{namespace=\"ns\",pod=~\"a\",route=\"/predict\"}[1m])) by (pod)".into(),
        load: Some(LoadOutcome {
            asked_rps: 15.0,
            achieved_rps: 15.0,
            ok: 2250,
            errors: 0,
        }),
        unmatched: Vec::new(),
    }
}

fn pods(t: f64) -> usize {
    if (120.0..260.0).contains(&t) { 2 } else { 1 }
}

/// 15 req/s shared by the pods while loaded, probe traffic otherwise.
fn per_pod(t: f64) -> f64 {
    if (70.0..=220.0).contains(&t) {
        15.0 / pods(t) as f64
    } else {
        0.3
    }
}

fn intervals() -> ClusterIntervals {
    ClusterIntervals::default()
}

fn problems(verdict: &Verdict) -> String {
    let notes = verdict.evidence.iter().filter_map(|e| match e {
        Evidence::Note { text } => Some(text.as_str()),
        _ => None,
    });
    std::iter::once(verdict.message.as_str())
        .chain(notes)
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(timeline: &Timeline, recording: &MetricRecording) -> Verdict {
    judge(&spec(), SUBJECT, timeline, recording, &intervals())
}

#[test]
fn a_textbook_run_passes_and_says_what_drove_each_step() {
    let timeline = timeline(&good_replicas(), &good_hpa(), MARKERS);
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", problems(&verdict));
    assert!(
        verdict.message.contains("scaled 1 -> 2"),
        "{}",
        verdict.message
    );
    assert!(
        verdict
            .message
            .contains("driven by http_requests_per_second"),
        "{}",
        verdict.message
    );
    let all = problems(&verdict);
    assert!(all.contains("1 -> 2 at 120s: driven by http_requests_per_second (http_requests_per_second 15 vs 10 -> 2; cpu 30 % vs 70 % -> 1)"), "{all}");
    assert!(
        all.contains("discovery: pods/http_requests_per_second"),
        "{all}"
    );
    assert!(all.contains("PromQL the adapter runs"), "{all}");
    assert!(all.contains("adapter sum 15.00"), "{all}");
}

#[test]
fn a_metric_never_served_fails_with_discovery_and_unmatched_selectors() {
    let timeline = timeline(&[(0.0, 1)], &[], &[(0.0, ADAPTER_CONFIGURED)]);
    let mut recording = recording(per_pod, pods, f64::INFINITY);
    recording.discovery = vec!["pods/other".into()];
    recording.unmatched = vec!["`nobody_total{namespace!=\"\"}` (no series)".into()];
    let verdict = run(&timeline, &recording);
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        verdict.message.contains("expected `http_requests_per_second` in custom.metrics.k8s.io for the pods of recommendation-api"),
        "{}",
        verdict.message
    );
    assert!(
        verdict
            .message
            .contains("the adapter never listed it in discovery"),
        "{}",
        verdict.message
    );
    assert!(
        verdict.message.contains("nobody_total"),
        "{}",
        verdict.message
    );
    // Listed but without a value for these pods (not scraped).
    let mut listed = recording;
    listed.discovery = vec!["pods/http_requests_per_second".into()];
    let verdict = run(&timeline, &listed);
    assert!(
        verdict
            .message
            .contains("lists it but never had a value for these pods"),
        "{}",
        verdict.message
    );
}

#[test]
fn a_metric_served_late_fails_the_visibility_budget() {
    let timeline = timeline(&good_replicas(), &good_hpa(), MARKERS);
    // First value 100 s after the load started at 50 s: budget 3 x 15 + 30 + 5 = 80 s.
    let verdict = run(&timeline, &recording(per_pod, pods, 150.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        problems(&verdict)
            .contains("first served for the pods 100s after the load started; expected within 80s"),
        "{}",
        problems(&verdict)
    );
}

#[test]
fn a_value_that_is_not_the_request_rate_fails_the_cross_check() {
    let timeline = timeline(&good_replicas(), &good_hpa(), MARKERS);
    // Requests per minute instead of per second.
    let verdict = run(&timeline, &recording(|t| per_pod(t) * 60.0, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        problems(&verdict).contains("the rule does not measure the requests per second"),
        "{}",
        problems(&verdict)
    );
    // Within the tolerance (25 % for 15 s over 1 m): 17 instead of 15 passes.
    let verdict = run(
        &timeline,
        &recording(|t| per_pod(t) * 17.0 / 15.0, pods, 20.0),
    );
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", problems(&verdict));
}

#[test]
fn never_reaching_the_expected_replicas_fails() {
    let timeline = timeline(&[(0.0, 1), (300.0, 1)], &good_hpa(), MARKERS);
    let verdict = run(&timeline, &recording(per_pod, |_| 1, 20.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        verdict.message.starts_with(
            "expected the HPA to scale recommendation-api to at least 2 replicas within 140s"
        ),
        "{}",
        verdict.message
    );
}

#[test]
fn reaching_them_late_fails() {
    let timeline = timeline(
        &[(0.0, 1), (200.0, 2), (330.0, 1), (340.0, 1)],
        &good_hpa(),
        MARKERS,
    );
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        verdict
            .message
            .contains("2 replicas came 150s after the load started; expected within 140s"),
        "{}",
        verdict.message
    );
}

#[test]
fn above_max_replicas_fails() {
    let timeline = timeline(
        &[(0.0, 1), (110.0, 3), (125.0, 5), (300.0, 1)],
        &good_hpa(),
        MARKERS,
    );
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        problems(&verdict).contains("above maxReplicas=4"),
        "{}",
        problems(&verdict)
    );
}

#[test]
fn cpu_driving_a_step_is_reported_as_such() {
    let hpa: Vec<HpaReading> = vec![
        (
            115.0,
            1,
            &[("http_requests_per_second", "15"), ("cpu", "210")][..],
        ),
        (
            240.0,
            2,
            &[("http_requests_per_second", "0"), ("cpu", "2")][..],
        ),
    ];
    let timeline = timeline(
        &[(0.0, 1), (120.0, 3), (260.0, 1), (280.0, 1)],
        &hpa,
        MARKERS,
    );
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    let all = problems(&verdict);
    assert!(all.contains("1 -> 3 at 120s: driven by cpu"), "{all}");
    assert!(
        verdict.message.contains("driven by another metric"),
        "{}",
        verdict.message
    );
}

#[test]
fn scale_down_is_judged_as_for_cpu() {
    // Down 10 s after the last scale-up recommendation: inside the 30 s window.
    let timeline = timeline(
        &[(0.0, 1), (120.0, 2), (125.0, 1), (300.0, 1)],
        &good_hpa(),
        MARKERS,
    );
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Fail);
    assert!(
        problems(&verdict).contains("scale-down: "),
        "{}",
        problems(&verdict)
    );
}

#[test]
fn without_a_load_start_a_served_metric_is_an_error() {
    let timeline = timeline(&[(0.0, 1)], &[], &[(0.0, ADAPTER_CONFIGURED)]);
    let verdict = run(&timeline, &recording(per_pod, pods, 20.0));
    assert_eq!(verdict.outcome, Outcome::Error, "{}", verdict.message);
}

#[test]
fn the_tolerance_follows_scrape_and_window() {
    assert!((rate_tolerance(&Pipeline::new(Some(Duration::from_secs(60)))) - 0.25).abs() < 1e-9);
    assert!((rate_tolerance(&Pipeline::new(Some(Duration::from_secs(300)))) - 0.1).abs() < 1e-9);
}

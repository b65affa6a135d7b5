//! The judge of `hpa-custom`: a pure function of (what the HPA promises, the recorded
//! timeline, the recorded custom-metric values, the cluster's intervals) → verdict.
//!
//! (1) the metric is served by `custom.metrics.k8s.io` for the target's pods within
//! the pipeline's budget (scrapes, relist); (2) a rate metric agrees with the load the
//! generator achieved and the server's own request counter; (3) the HPA reaches the
//! expected replicas within the budget its policies give, never above maxReplicas, by
//! the autoscaler; (4) which metric drove each scaling step, from the HPA's
//! `status.currentMetrics` at that step; (5) scale-down, judged as for CPU (the CPU
//! judge with the custom pipeline's lag).

use super::ID;
use super::budget::Pipeline;
use super::rules::MetricKind;
use crate::cluster::ClusterIntervals;
use crate::cluster::custom_metrics::PodValue;
use crate::criteria::hpa_cpu::judge::{
    Findings, Subject, check_ceiling, check_steps, judge_scale_down,
};
use crate::criteria::hpa_cpu::scaling::{Direction, ScalingSpec};
use crate::submission::quantity::parse_quantity;
use crate::timeline::{MetricReading, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use serde::{Deserialize, Serialize};

/// Markers the probe sets: the adapter serves the submission's rules, then as for CPU.
pub const ADAPTER_CONFIGURED: &str = "adapter-configured";

/// One target of the HPA, for telling which metric drove a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricTarget {
    /// `cpu`, `memory`, or the custom metric's name (as the HPA's status names it).
    pub name: String,
    /// Utilization in percent (Resource), else an average value per pod.
    pub utilization: bool,
    pub value: f64,
}

/// What the HPA promises about its custom metric.
#[derive(Debug, Clone)]
pub struct CustomSpec {
    pub scaling: ScalingSpec,
    pub metric: String,
    /// The metric's target average value per pod.
    pub target_average: f64,
    pub kind: MetricKind,
    /// The replicas the load calls for by the custom metric alone (a lower bound: the
    /// HPA takes the largest of its metrics).
    pub expected: i32,
    pub pipeline: Pipeline,
    /// Every metric of the HPA with its target.
    pub targets: Vec<MetricTarget>,
}

/// The custom metric over time, beside the timeline (saved as its own JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricRecording {
    pub metric: String,
    pub samples: Vec<MetricSample>,
    /// The adapter's discovery list, as last read.
    pub discovery: Vec<String>,
    /// The metricsQuery rendered for the probe's pods, as last run.
    pub promql: String,
    /// The load generator's summary, when the load ran to its end.
    pub load: Option<LoadOutcome>,
    /// What the probe saw in Prometheus when the metric had no value: the selectors
    /// that matched nothing.
    #[serde(default)]
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub t: f64,
    /// The adapter's values for the target's pods; empty when it had none.
    #[serde(default)]
    pub values: Vec<PodValue>,
    /// The adapter's answer when it had no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_value: Option<String>,
    /// Sum over the pods of the rendered metricsQuery, run by the probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql_sum: Option<f64>,
    /// The server's own counter: `sum(rate(http_requests_total{route="/predict"}[w]))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rate: Option<f64>,
}

impl MetricSample {
    pub fn sum(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().map(|v| v.value).sum())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadOutcome {
    pub asked_rps: f64,
    pub achieved_rps: f64,
    pub ok: u64,
    pub errors: u64,
}

/// The tolerance of the rate cross-check, relative: a rate over a window of `w`
/// scraped every `s` has up to one scrape's worth of extrapolation error (s / w), and
/// pods that joined inside the window contribute part of it; never below 10 %.
pub fn rate_tolerance(pipeline: &Pipeline) -> f64 {
    let window = pipeline.window.as_secs_f64();
    if window <= 0.0 {
        return 0.1;
    }
    (pipeline.scrape.as_secs_f64() / window).max(0.1)
}

/// Besides the relative tolerance, per pod: the kubelet's probes and Prometheus's
/// scrapes (about 0.3 req/s per pod) when the rule counts every route.
pub const PROBE_TRAFFIC_RPS_PER_POD: f64 = 0.5;

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// The verdict on `hpa-custom` (see the module's doc).
pub fn judge(
    spec: &CustomSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    recording: &MetricRecording,
    intervals: &ClusterIntervals,
) -> Verdict {
    let slack = intervals.observation_slack.as_secs_f64();
    let mut findings = Findings {
        problems: Vec::new(),
    };
    let mut values: Vec<(String, String)> = vec![
        ("metric".into(), spec.metric.clone()),
        (
            "target averageValue per pod".into(),
            format!("{}", spec.target_average),
        ),
        ("metric kind".into(), format!("{:?}", spec.kind)),
        (
            "expected replicas (by the custom metric)".into(),
            spec.expected.to_string(),
        ),
        (
            "minReplicas..maxReplicas".into(),
            format!(
                "{}..{}",
                spec.scaling.min_replicas, spec.scaling.max_replicas
            ),
        ),
        (
            "rate window".into(),
            format!("{}s", spec.pipeline.window.as_secs()),
        ),
    ];
    let mut notes: Vec<String> = Vec::new();

    // (1) the metric is served for the pods, within its budget of the load starting
    // (of the adapter taking the rules, if that came later: the load starts after it).
    let configured = timeline.marker(ADAPTER_CONFIGURED).unwrap_or(0.0);
    let load_start = timeline.marker("load-start");
    let from = load_start.unwrap_or(configured).max(configured);
    let visible_budget = spec.pipeline.visible(intervals).as_secs_f64();
    let first_value = recording
        .samples
        .iter()
        .find(|s| s.t >= configured && !s.values.is_empty());
    let served_after = first_value.map(|s| (s.t - from).max(0.0));
    values.push((
        "load start -> metric served".into(),
        served_after.map_or("never".into(), |d| format!("{d:.0}s")),
    ));
    values.push((
        "metric visibility budget".into(),
        format!("{visible_budget:.0}s"),
    ));
    if first_value.is_none() {
        let last = recording
            .samples
            .iter()
            .rev()
            .find_map(|s| s.no_value.clone())
            .unwrap_or_else(|| "no answer recorded".into());
        let listed = recording
            .discovery
            .iter()
            .any(|d| d == &format!("pods/{}", spec.metric));
        findings.problems.push(format!(
            "expected `{}` in custom.metrics.k8s.io for the pods of {} within {visible_budget:.0}s of the load starting; {} (last answer: {last}){}",
            spec.metric,
            subject.target,
            if listed {
                "the adapter lists it but never had a value for these pods"
            } else {
                "the adapter never listed it in discovery"
            },
            if recording.unmatched.is_empty() {
                String::new()
            } else {
                format!("; matched nothing in Prometheus: {}", recording.unmatched.join(", "))
            }
        ));
        // Nothing else to judge: the HPA never had the metric.
        return findings.verdict(
            ID,
            String::new(),
            build_evidence(timeline, subject, recording, values, notes),
        );
    }
    if let Some(delay) = served_after
        && delay > visible_budget + slack
    {
        findings.problems.push(format!(
            "`{}` was first served for the pods {delay:.0}s after the load started; expected within {visible_budget:.0}s (3 scrapes of {}s + relist {}s + slack)",
            spec.metric,
            spec.pipeline.scrape.as_secs(),
            spec.pipeline.relist.as_secs()
        ));
    }

    let Some(load_start) = load_start else {
        return Verdict::new(
            ID,
            Outcome::Error,
            "the probe recorded no load-start marker; nothing to judge",
            Vec::new(),
        );
    };
    let load_stop = timeline.marker("load-stop").unwrap_or(f64::INFINITY);
    let baseline = timeline.marker("baseline").unwrap_or(0.0);
    let lag = spec.pipeline.lag().as_secs_f64();

    // Pipeline delays (benchmarks read them from the values).
    let reflects = recording.samples.iter().find(|s| {
        s.t >= load_start
            && s.sum()
                .is_some_and(|sum| match (&recording.load, spec.kind) {
                    (Some(load), MetricKind::Rate) => sum >= load.asked_rps * 0.5,
                    _ => true,
                })
    });
    values.push((
        "load start -> metric reflects load".into(),
        reflects.map_or("never".into(), |s| format!("{:.0}s", s.t - load_start)),
    ));

    // (2) the value agrees with the load.
    if spec.kind == MetricKind::Rate {
        let steady: Vec<&MetricSample> = recording
            .samples
            .iter()
            .filter(|s| {
                s.t >= load_start + lag + spec.pipeline.scrape.as_secs_f64() && s.t <= load_stop
            })
            .collect();
        let adapter = median(steady.iter().filter_map(|s| s.sum()).collect());
        let server = median(steady.iter().filter_map(|s| s.server_rate).collect());
        let promql = median(steady.iter().filter_map(|s| s.promql_sum).collect());
        let pods = median(steady.iter().map(|s| s.values.len() as f64).collect()).unwrap_or(1.0);
        let tolerance = rate_tolerance(&spec.pipeline);
        let achieved = recording.load.as_ref().map(|l| l.achieved_rps);
        values.push((
            "adapter sum over pods (median, steady load)".into(),
            fmt(adapter),
        ));
        values.push(("rendered PromQL sum (median)".into(), fmt(promql)));
        values.push(("server's own counter, req/s (median)".into(), fmt(server)));
        values.push(("load generator achieved, req/s".into(), fmt(achieved)));
        values.push((
            "tolerance".into(),
            format!(
                "±{:.0} % (scrape {}s / window {}s, at least 10 %) + {PROBE_TRAFFIC_RPS_PER_POD} req/s per pod of probe traffic",
                tolerance * 100.0,
                spec.pipeline.scrape.as_secs(),
                spec.pipeline.window.as_secs()
            ),
        ));
        let agrees = |value: f64, reference: f64| {
            (value - reference).abs() <= reference * tolerance + PROBE_TRAFFIC_RPS_PER_POD * pods
        };
        match (adapter, achieved.or(server)) {
            (Some(adapter), Some(reference)) => {
                if !agrees(adapter, reference) {
                    findings.problems.push(format!(
                        "`{}` summed over the pods was {adapter:.1} during steady load, but the load generator achieved {} req/s and the server counted {} req/s (tolerance ±{:.0} %): the rule does not measure the requests per second",
                        spec.metric,
                        fmt(achieved),
                        fmt(server),
                        tolerance * 100.0
                    ));
                }
                if let (Some(server), Some(achieved)) = (server, achieved)
                    && !agrees(server, achieved)
                {
                    notes.push(format!(
                        "the server counted {server:.1} req/s while the load generator achieved {achieved:.1}: requests were lost on the way (errors: {})",
                        recording.load.as_ref().map_or(0, |l| l.errors)
                    ));
                }
            }
            _ => notes.push(
                "no steady-load sample of the metric to cross-check against the load (the load was shorter than the rate window)".into(),
            ),
        }
    } else {
        notes.push(format!(
            "`{}` is a {:?} metric: not proportional to the request rate, so it is cross-checked against the rendered PromQL only",
            spec.metric, spec.kind
        ));
    }

    // (3) replicas.
    let steps = timeline.steps(subject.target, baseline);
    check_steps(&spec.scaling, &steps, slack, &mut findings, Direction::Up);
    check_ceiling(
        &spec.scaling,
        timeline,
        subject.target,
        baseline,
        &mut findings,
    );
    let reach_budget = spec
        .pipeline
        .reach(intervals, &spec.scaling, spec.expected)
        .as_secs_f64();
    let replicas = timeline.replicas(subject.target);
    let peak = replicas
        .iter()
        .filter(|(t, _, _)| *t >= load_start && *t <= load_stop + lag)
        .map(|(_, r, _)| *r)
        .max()
        .unwrap_or(0);
    let reached = replicas
        .iter()
        .find(|(t, r, _)| *t >= load_start && *r >= spec.expected)
        .map(|(t, _, _)| *t);
    let first_up = steps.iter().find(|s| s.t >= load_start && s.to > s.from);
    match reached {
        None => findings.problems.insert(
            0,
            format!(
                "expected the HPA to scale {} to at least {} replicas within {reach_budget:.0}s of the load starting (the load needs {} by its `{}` target of {} per pod); replicas peaked at {peak}",
                subject.target,
                spec.expected,
                spec.expected,
                spec.metric,
                spec.target_average
            ),
        ),
        Some(t) if t - load_start > reach_budget + slack => findings.problems.insert(
            0,
            format!(
                "{} replicas came {:.0}s after the load started; expected within {reach_budget:.0}s (scrape + rate window + scaleUp window + sync + policy steps)",
                spec.expected,
                t - load_start
            ),
        ),
        Some(_) => {}
    }
    values.push(("peak replicas".into(), peak.to_string()));
    values.push((
        "load start -> first scale-up".into(),
        first_up.map_or("none".into(), |s| format!("{:.0}s", s.t - load_start)),
    ));
    values.push((
        format!("load start -> {} replicas", spec.expected),
        reached.map_or("never".into(), |t| format!("{:.0}s", t - load_start)),
    ));
    values.push(("reach budget".into(), format!("{reach_budget:.0}s")));

    // (4) which metric drove each step.
    let drivers: Vec<String> = steps
        .iter()
        .filter(|s| s.t >= load_start && s.to > s.from)
        .map(|step| describe_driver(spec, subject, timeline, step.t, step.from, step.to, slack))
        .collect();
    let custom_drove = drivers
        .iter()
        .any(|d| d.contains(&format!("driven by {}", spec.metric)));
    if !drivers.is_empty() {
        notes.push(format!("scaling steps:\n{}", drivers.join("\n")));
    }

    // (5) scale-down, as for CPU.
    let down = judge_scale_down(
        &spec.scaling,
        subject,
        timeline,
        &spec.pipeline.as_intervals(intervals),
    );
    match down.outcome {
        Outcome::Fail => findings
            .problems
            .push(format!("scale-down: {}", down.message)),
        Outcome::Error if findings.problems.is_empty() => {
            return Verdict::new(
                ID,
                Outcome::Error,
                format!("scale-down: {}", down.message),
                build_evidence(timeline, subject, recording, values, notes),
            );
        }
        _ => {}
    }
    values.push((
        "scale-down".into(),
        format!("{}: {}", down.outcome, down.message),
    ));

    let pass = format!(
        "`{}` served for the pods {}; scaled {} -> {peak} (expected at least {}, maxReplicas {}), first step {} after the load started{}; scale-down: {}",
        spec.metric,
        first_value.map_or(String::new(), |s| format!(
            "{:.0}s after the adapter took the rules",
            s.t - configured
        )),
        spec.scaling.min_replicas,
        spec.expected,
        spec.scaling.max_replicas,
        first_up.map_or("-".into(), |s| format!("{:.0}s", s.t - load_start)),
        if custom_drove {
            format!(", driven by {}", spec.metric)
        } else {
            ", driven by another metric (see the steps)".into()
        },
        down.message
    );
    findings.verdict(
        ID,
        pass,
        build_evidence(timeline, subject, recording, values, notes),
    )
}

/// "2 -> 4 at 95s: driven by m (m 150 vs 100 -> 3; cpu 45 % vs 70 % -> 2)", from the
/// HPA's last status at or before the step.
fn describe_driver(
    spec: &CustomSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    t: f64,
    from: i32,
    to: i32,
    slack: f64,
) -> String {
    let states = timeline.hpa_states(subject.hpa);
    let Some((_, _, _, readings)) = states.iter().rev().find(|(at, ..)| *at <= t + slack) else {
        return format!("{from} -> {to} at {t:.0}s: no HPA status recorded before it");
    };
    let mut proposals: Vec<(i32, String)> = readings
        .iter()
        .filter_map(|reading| proposal(spec, reading, from))
        .collect();
    if proposals.is_empty() {
        return format!("{from} -> {to} at {t:.0}s: the HPA status had no metric values");
    }
    proposals.sort_by_key(|p| std::cmp::Reverse(p.0));
    let driver = proposals[0]
        .1
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    format!(
        "{from} -> {to} at {t:.0}s: driven by {driver} ({})",
        proposals
            .iter()
            .map(|(_, d)| d.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// What one metric of the HPA's status asked for: ceil(current x value / target).
fn proposal(spec: &CustomSpec, reading: &MetricReading, current: i32) -> Option<(i32, String)> {
    let target = spec.targets.iter().find(|t| t.name == reading.name)?;
    let value = if target.utilization {
        f64::from(reading.utilization?)
    } else {
        parse_quantity(reading.value.as_deref()?).ok()?
    };
    if target.value <= 0.0 {
        return None;
    }
    let wanted = (f64::from(current) * value / target.value).ceil() as i32;
    let unit = if target.utilization { " %" } else { "" };
    Some((
        wanted,
        format!(
            "{} {value}{unit} vs {}{unit} -> {wanted}",
            reading.name, target.value
        ),
    ))
}

fn fmt(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

fn build_evidence(
    timeline: &Timeline,
    subject: Subject<'_>,
    recording: &MetricRecording,
    values: Vec<(String, String)>,
    notes: Vec<String>,
) -> Vec<Evidence> {
    let series: Vec<String> = recording
        .samples
        .iter()
        .map(|s| {
            let pods = if s.values.is_empty() {
                format!("no value ({})", s.no_value.as_deref().unwrap_or("-"))
            } else {
                s.values
                    .iter()
                    .map(|v| format!("{}={}", v.pod, v.quantity))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!(
                "{:>5.0}s adapter sum {} [{pods}] promql sum {} server {}",
                s.t,
                fmt(s.sum()),
                fmt(s.promql_sum),
                fmt(s.server_rate)
            )
        })
        .collect();
    let mut evidence = vec![
        Evidence::Values { values },
        Evidence::Note {
            text: format!("`{}` over time:\n{}", recording.metric, series.join("\n")),
        },
        Evidence::Note {
            text: format!(
                "custom.metrics.k8s.io discovery: {}\nPromQL the adapter runs for the pods: {}{}",
                if recording.discovery.is_empty() {
                    "(empty)".into()
                } else {
                    recording.discovery.join(", ")
                },
                if recording.promql.is_empty() {
                    "-"
                } else {
                    &recording.promql
                },
                if recording.unmatched.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\nselectors that matched nothing: {}",
                        recording.unmatched.join(", ")
                    )
                }
            ),
        },
    ];
    evidence.extend(Evidence::notes(&notes));
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    evidence.push(Evidence::Timeline {
        points: timeline.replica_excerpt(subject.target, 0.0, end),
    });
    let events: Vec<String> = timeline
        .event_lines()
        .into_iter()
        .filter(|line| line.contains(subject.hpa) || line.contains(subject.target))
        .collect();
    if !events.is_empty() {
        evidence.push(Evidence::Events { lines: events });
    }
    evidence
}

#[cfg(test)]
mod tests;

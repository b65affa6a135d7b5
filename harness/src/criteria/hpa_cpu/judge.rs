//! Verdicts from timelines: pure functions of (object spec, timeline, budget).
//!
//! The HPA judges replay the controller's own arithmetic
//! (`calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`
//! in `pkg/controller/podautoscaler`) over the replica steps a probe observed, using
//! the HPA's own behaviour (defaults filled in as the API server does). Our
//! timestamps trail the controller's by up to `observation_slack`, so every
//! time comparison leans towards the student: a verdict of "fail" means the
//! rule was broken by more than the measurement error.

use crate::budget::ClusterIntervals;
use crate::timeline::{ReplicaStep, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscaler};
use serde::{Deserialize, Serialize};

/// Criterion IDs these judges speak for (see `criteria::all`).
pub const HPA_SCALE_UP: &str = "hpa-cpu";
pub const HPA_SCALE_DOWN: &str = "hpa-scale-down";

/// Field managers allowed to change a scale target's replicas: the HPA controller
/// (kube-controller-manager, through the scale subresource). Anything else, such as
/// `kubectl` from a student script, is a manual scale and proves nothing.
pub const AUTOSCALER_MANAGERS: &[&str] = &["kube-controller-manager"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// One direction of an HPA's `behavior`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingRules {
    pub stabilization_window_seconds: i32,
    pub select_policy: SelectPolicy,
    pub policies: Vec<Policy>,
}

/// What an HPA promises about its target's replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingSpec {
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Target average CPU utilization, when the HPA has one.
    pub cpu_target_utilization: Option<i32>,
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

impl ScalingSpec {
    /// The API server's default scale-up: 4 pods or 100 % per 15 s, the larger, no window.
    pub fn default_scale_up() -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_seconds: 15,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ],
        }
    }

    /// The default scale-down: 100 % per 15 s after a 300 s window (the controller
    /// manager's `--horizontal-pod-autoscaler-downscale-stabilization` default).
    pub fn default_scale_down() -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: 300,
            select_policy: SelectPolicy::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period_seconds: 15,
            }],
        }
    }

    /// Reads an HPA as the API server would default it.
    pub fn from_hpa(hpa: &HorizontalPodAutoscaler) -> Self {
        let spec = &hpa.spec;
        let behavior = spec.behavior.as_ref();
        let cpu_target_utilization = spec
            .metrics
            .iter()
            .flatten()
            .filter_map(|m| m.resource.as_ref())
            .find(|r| r.name == "cpu")
            .and_then(|r| r.target.average_utilization);
        ScalingSpec {
            min_replicas: spec.min_replicas.unwrap_or(1),
            max_replicas: spec.max_replicas,
            cpu_target_utilization,
            scale_up: rules_with_defaults(
                behavior.and_then(|b| b.scale_up.as_ref()),
                Self::default_scale_up(),
            ),
            scale_down: rules_with_defaults(
                behavior.and_then(|b| b.scale_down.as_ref()),
                Self::default_scale_down(),
            ),
        }
    }
}

fn rules_with_defaults(written: Option<&HPAScalingRules>, default: ScalingRules) -> ScalingRules {
    let Some(written) = written else {
        return default;
    };
    let policies: Vec<Policy> = written
        .policies
        .iter()
        .flatten()
        .map(|p| Policy {
            kind: if p.type_ == "Pods" {
                PolicyKind::Pods
            } else {
                PolicyKind::Percent
            },
            value: p.value,
            period_seconds: p.period_seconds,
        })
        .collect();
    ScalingRules {
        stabilization_window_seconds: written
            .stabilization_window_seconds
            .unwrap_or(default.stabilization_window_seconds),
        select_policy: match written.select_policy.as_deref() {
            Some("Min") => SelectPolicy::Min,
            Some("Disabled") => SelectPolicy::Disabled,
            _ => SelectPolicy::Max,
        },
        policies: if policies.is_empty() {
            default.policies
        } else {
            policies
        },
    }
}

/// The furthest the controller may move from `current` at time `now`, given earlier
/// changes `events` as (t, signed change). `slack` shrinks the policy period for
/// changes in the judged direction and widens it for the opposite one, which can
/// only raise the scale-up limit and lower the scale-down limit.
pub fn replica_limit(
    rules: &ScalingRules,
    direction: Direction,
    current: i32,
    events: &[(f64, i32)],
    now: f64,
    slack: f64,
) -> i32 {
    if rules.select_policy == SelectPolicy::Disabled || rules.policies.is_empty() {
        return current;
    }
    let mut limits = rules.policies.iter().map(|policy| {
        let period = f64::from(policy.period_seconds);
        let (same_window, opposite_window) = ((period - slack).max(0.0), period + slack);
        let mut added = 0;
        let mut deleted = 0;
        for &(t, change) in events {
            let age = now - t;
            if age < 0.0 {
                continue;
            }
            let same_direction = (change > 0) == (direction == Direction::Up);
            let window = if same_direction {
                same_window
            } else {
                opposite_window
            };
            if age < window {
                if change > 0 {
                    added += change;
                } else {
                    deleted -= change;
                }
            }
        }
        let period_start = current - added + deleted;
        match (direction, policy.kind) {
            (Direction::Up, PolicyKind::Pods) => period_start + policy.value,
            (Direction::Up, PolicyKind::Percent) => {
                (f64::from(period_start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32
            }
            (Direction::Down, PolicyKind::Pods) => period_start - policy.value,
            (Direction::Down, PolicyKind::Percent) => {
                (f64::from(period_start) * (1.0 - f64::from(policy.value) / 100.0)) as i32
            }
        }
    });
    let first = limits.next().unwrap_or(current);
    // "Max" picks the largest change: the highest limit up, the lowest limit down.
    let pick_highest = (rules.select_policy == SelectPolicy::Max) == (direction == Direction::Up);
    limits.fold(first, |a, b| if pick_highest { a.max(b) } else { a.min(b) })
}

/// Names the judges need: the scale target and its HPA, as recorded in the timeline.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub target: &'a str,
    pub hpa: &'a str,
}

struct Findings {
    problems: Vec<String>,
}

impl Findings {
    fn verdict(self, id: &str, pass_message: String, evidence: Vec<Evidence>) -> Verdict {
        let (outcome, message) = match self.problems.as_slice() {
            [] => (Outcome::Pass, pass_message),
            [only] => (Outcome::Fail, only.clone()),
            [first, rest @ ..] => (
                Outcome::Fail,
                format!("{first} (and {} more, see evidence)", rest.len()),
            ),
        };
        let mut evidence = evidence;
        if self.problems.len() > 1 {
            evidence.insert(
                0,
                Evidence::Note {
                    text: self.problems.join("\n"),
                },
            );
        }
        Verdict {
            id: id.to_string(),
            outcome,
            message,
            findings: Vec::new(),
            evidence,
        }
    }
}

fn error(id: &str, message: String) -> Verdict {
    Verdict {
        id: id.to_string(),
        outcome: Outcome::Error,
        message,
        findings: Vec::new(),
        evidence: Vec::new(),
    }
}

fn evidence(
    timeline: &Timeline,
    subject: Subject<'_>,
    from: f64,
    to: f64,
    values: Vec<(String, String)>,
) -> Vec<Evidence> {
    let mut evidence = vec![
        Evidence::Values { values },
        Evidence::Timeline {
            points: timeline.replica_excerpt(subject.target, from, to),
        },
    ];
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

/// Policy rate, provenance and range of every step since `since`.
fn check_steps(
    spec: &ScalingSpec,
    steps: &[ReplicaStep],
    slack: f64,
    findings: &mut Findings,
    only: Direction,
) {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for step in steps {
        let direction = if step.to > step.from {
            Direction::Up
        } else {
            Direction::Down
        };
        if let Some(manager) = &step.manager
            && !AUTOSCALER_MANAGERS.contains(&manager.as_str())
        {
            findings.problems.push(format!(
                "replicas changed {} -> {} at {:.0}s by field manager `{manager}`, not by the autoscaler (expected one of {AUTOSCALER_MANAGERS:?}): a manual scale proves nothing",
                step.from, step.to, step.t
            ));
        }
        // Outside [min, max] the controller clamps without consulting the policies.
        let in_range = (spec.min_replicas..=spec.max_replicas).contains(&step.from);
        if direction == only && in_range {
            match direction {
                Direction::Up => {
                    let rules = &spec.scale_up;
                    let limit =
                        replica_limit(rules, Direction::Up, step.from, &events, step.t, slack)
                            .min(spec.max_replicas);
                    if step.to > limit {
                        findings.problems.push(format!(
                            "scale-up {} -> {} at {:.0}s exceeds what the scaleUp policies allow (at most {limit} with selectPolicy {:?} over {})",
                            step.from, step.to, step.t, rules.select_policy, describe_policies(&rules.policies)
                        ));
                    }
                }
                Direction::Down => {
                    let rules = &spec.scale_down;
                    let limit =
                        replica_limit(rules, Direction::Down, step.from, &events, step.t, slack)
                            .max(spec.min_replicas);
                    if step.to < limit {
                        findings.problems.push(format!(
                            "scale-down {} -> {} at {:.0}s removes more than the scaleDown policies allow (no lower than {limit} with selectPolicy {:?} over {})",
                            step.from, step.to, step.t, rules.select_policy, describe_policies(&rules.policies)
                        ));
                    }
                }
            }
        }
        events.push((step.t, step.to - step.from));
    }
}

fn describe_policies(policies: &[Policy]) -> String {
    policies
        .iter()
        .map(|p| match p.kind {
            PolicyKind::Pods => format!("{} pods/{}s", p.value, p.period_seconds),
            PolicyKind::Percent => format!("{}%/{}s", p.value, p.period_seconds),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_ceiling(
    spec: &ScalingSpec,
    timeline: &Timeline,
    target: &str,
    since: f64,
    findings: &mut Findings,
) {
    if let Some((t, replicas, _)) = timeline
        .replicas(target)
        .into_iter()
        .filter(|(t, _, _)| *t >= since)
        .find(|(_, r, _)| *r > spec.max_replicas)
    {
        findings.problems.push(format!(
            "replicas reached {replicas} at {t:.0}s, above maxReplicas={}",
            spec.max_replicas
        ));
    }
}

/// Scale-up under load: a first step within the budget, every step within the
/// scaleUp policies (selectPolicy honoured), never above maxReplicas, made by the autoscaler.
///
/// Markers: `baseline` (target settled at minReplicas), `load-start`, `load-stop`.
pub fn judge_scale_up(
    spec: &ScalingSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    intervals: &ClusterIntervals,
) -> Verdict {
    let Some(load_start) = timeline.marker("load-start") else {
        return error(
            HPA_SCALE_UP,
            "the probe recorded no load-start marker; nothing to judge".into(),
        );
    };
    let baseline = timeline.marker("baseline").unwrap_or(0.0);
    let load_stop = timeline.marker("load-stop").unwrap_or(f64::INFINITY);
    let slack = intervals.observation_slack.as_secs_f64();
    let mut findings = Findings {
        problems: Vec::new(),
    };
    let steps = timeline.steps(subject.target, baseline);
    check_steps(spec, &steps, slack, &mut findings, Direction::Up);
    check_ceiling(spec, timeline, subject.target, baseline, &mut findings);

    let budget = intervals.first_scale_up().as_secs_f64();
    let first_up = steps.iter().find(|s| s.t >= load_start && s.to > s.from);
    let peak = timeline
        .replicas(subject.target)
        .into_iter()
        .filter(|(t, _, _)| {
            *t >= load_start && *t <= load_stop + intervals.metric_lag().as_secs_f64()
        })
        .map(|(_, r, _)| r)
        .max()
        .unwrap_or(0);
    match first_up {
        None => findings.problems.insert(
            0,
            format!(
                "expected a scale-up above minReplicas={} within {budget:.0}s of the load starting at {load_start:.0}s; replicas never rose (peak {peak})",
                spec.min_replicas
            ),
        ),
        Some(step) if step.t - load_start > budget => findings.problems.insert(
            0,
            format!(
                "the first scale-up came {:.0}s after the load started; expected within {budget:.0}s (metrics resolution x2 + HPA sync x2 + slack)",
                step.t - load_start
            ),
        ),
        Some(_) => {}
    }
    let first_up_at = first_up.map(|s| s.t - load_start);
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let values = vec![
        ("minReplicas".into(), spec.min_replicas.to_string()),
        ("maxReplicas".into(), spec.max_replicas.to_string()),
        (
            "scaleUp".into(),
            format!(
                "{:?} of {}",
                spec.scale_up.select_policy,
                describe_policies(&spec.scale_up.policies)
            ),
        ),
        ("peak replicas".into(), peak.to_string()),
        (
            "first scale-up after load".into(),
            first_up_at.map_or("none".into(), |s| format!("{s:.0}s")),
        ),
        ("first scale-up budget".into(), format!("{budget:.0}s")),
    ];
    let pass = format!(
        "scaled up {} -> {peak} (maxReplicas {}), first step {:.0}s after load started, every step within the scaleUp policies",
        spec.min_replicas,
        spec.max_replicas,
        first_up_at.unwrap_or(0.0)
    );
    findings.verdict(
        HPA_SCALE_UP,
        pass,
        evidence(timeline, subject, baseline, end, values),
    )
}

/// Stable scale-down after the load stops: nothing below a recent recommendation before
/// the stabilization window has passed, every step within the scaleDown policies, no
/// reversal of direction, and back at minReplicas within the budget.
pub fn judge_scale_down(
    spec: &ScalingSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    intervals: &ClusterIntervals,
) -> Verdict {
    let (Some(load_start), Some(load_stop)) =
        (timeline.marker("load-start"), timeline.marker("load-stop"))
    else {
        return error(
            HPA_SCALE_DOWN,
            "the probe recorded no load-start/load-stop markers; nothing to judge".into(),
        );
    };
    let baseline = timeline.marker("baseline").unwrap_or(0.0);
    let slack = intervals.observation_slack.as_secs_f64();
    let window = f64::from(spec.scale_down.stabilization_window_seconds.max(0));
    let steps = timeline.steps(subject.target, baseline);
    let peak = timeline
        .replicas(subject.target)
        .into_iter()
        .filter(|(t, _, _)| *t >= load_start)
        .map(|(_, r, _)| r)
        .max()
        .unwrap_or(0);
    if peak <= spec.min_replicas {
        return Verdict {
            id: HPA_SCALE_DOWN.into(),
            outcome: Outcome::NotRun,
            message: format!(
                "the target never rose above minReplicas={} under load, so there was no scale-down to judge",
                spec.min_replicas
            ),
            findings: Vec::new(),
            evidence: evidence(timeline, subject, baseline, f64::INFINITY, Vec::new()),
        };
    }
    let mut findings = Findings {
        problems: Vec::new(),
    };
    check_steps(spec, &steps, slack, &mut findings, Direction::Down);
    check_ceiling(spec, timeline, subject.target, baseline, &mut findings);

    // The window: a step down to `r` at `t` is early when, less than `window` before
    // `t`, the controller had recommended more than `r` (it scaled up to more, or its
    // status showed CPU over target while it ran more than `r` ready pods).
    let high_recommendations = recommendations_at_least(spec, subject, timeline, &steps);
    for step in steps.iter().filter(|s| s.to < s.from) {
        if let Some((at, wanted)) = high_recommendations
            .iter()
            .filter(|(at, wanted)| {
                *at <= step.t && step.t - at < window - slack && *wanted > step.to
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            findings.problems.push(format!(
                "scale-down {} -> {} at {:.0}s came {:.0}s after the autoscaler still recommended {wanted} (at {at:.0}s); expected no scale-down before the {window:.0}s stabilization window",
                step.from,
                step.to,
                step.t,
                step.t - at
            ));
        }
    }

    // No thrashing: once the target went down, it must not go up again.
    if let Some(down) = steps.iter().find(|s| s.t >= load_start && s.to < s.from)
        && let Some(up) = steps.iter().find(|s| s.t > down.t && s.to > s.from)
    {
        findings.problems.push(format!(
            "direction reversed: down {} -> {} at {:.0}s, then up {} -> {} at {:.0}s (thrashing)",
            down.from, down.to, down.t, up.from, up.to, up.t
        ));
    }

    // Back at minReplicas, within the budget.
    let budget = intervals.scale_down(spec, peak).as_secs_f64();
    let deadline = load_stop + budget;
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let back_at_min = timeline
        .replicas(subject.target)
        .into_iter()
        .filter(|(t, _, _)| *t >= load_stop)
        .find(|(_, r, _)| *r <= spec.min_replicas)
        .map(|(t, _, _)| t);
    match back_at_min {
        Some(t) if t <= deadline + slack => {}
        Some(t) => findings.problems.push(format!(
            "back at minReplicas={} only {:.0}s after the load stopped; expected within {budget:.0}s (metric lag + {window:.0}s window + policy steps)",
            spec.min_replicas,
            t - load_stop
        )),
        None if end < deadline => {
            return error(
                HPA_SCALE_DOWN,
                format!(
                    "the recording ended {:.0}s after the load stopped, before the {budget:.0}s scale-down budget ran out; nothing to conclude",
                    end - load_stop
                ),
            );
        }
        None => findings.problems.push(format!(
            "expected replicas back at minReplicas={} within {budget:.0}s of the load stopping; still {} after {:.0}s",
            spec.min_replicas,
            timeline.replicas_at(subject.target, end).unwrap_or(-1),
            end - load_stop
        )),
    }
    let first_down = steps
        .iter()
        .find(|s| s.t >= load_stop && s.to < s.from)
        .map(|s| s.t - load_stop);
    let values = vec![
        ("stabilizationWindowSeconds".into(), format!("{window:.0}")),
        (
            "scaleDown".into(),
            format!(
                "{:?} of {}",
                spec.scale_down.select_policy,
                describe_policies(&spec.scale_down.policies)
            ),
        ),
        ("peak replicas".into(), peak.to_string()),
        (
            "first scale-down after load stop".into(),
            first_down.map_or("none".into(), |s| format!("{s:.0}s")),
        ),
        (
            "back at minReplicas after load stop".into(),
            back_at_min.map_or("never".into(), |t| format!("{:.0}s", t - load_stop)),
        ),
        ("scale-down budget".into(), format!("{budget:.0}s")),
    ];
    let pass = format!(
        "scaled down {peak} -> {} starting {:.0}s after the load stopped (window {window:.0}s), within the policies, no reversal, done in {:.0}s (budget {budget:.0}s)",
        spec.min_replicas,
        first_down.unwrap_or(0.0),
        back_at_min.map_or(0.0, |t| t - load_stop)
    );
    findings.verdict(
        HPA_SCALE_DOWN,
        pass,
        evidence(timeline, subject, baseline, end, values),
    )
}

/// Moments where the controller demonstrably recommended at least some count:
/// every scale-up step (to its new value), and every HPA status with CPU above target
/// beyond the controller's 10 % tolerance (at least the ready pods it then had).
fn recommendations_at_least(
    spec: &ScalingSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    steps: &[ReplicaStep],
) -> Vec<(f64, i32)> {
    let mut out: Vec<(f64, i32)> = steps
        .iter()
        .filter(|s| s.to > s.from)
        .map(|s| (s.t, s.to))
        .collect();
    if let Some(target) = spec.cpu_target_utilization.filter(|t| *t > 0) {
        for (t, current, _, metrics) in timeline.hpa_states(subject.hpa) {
            let Some(utilization) = metrics
                .iter()
                .find(|m| m.name == "cpu")
                .and_then(|m| m.utilization)
            else {
                continue;
            };
            let ratio = f64::from(utilization) / f64::from(target);
            if ratio > 1.1 {
                let ready = ready_at(timeline, subject.target, t).unwrap_or(current);
                out.push((t, current.min((ratio * f64::from(ready)).floor() as i32)));
            }
        }
    }
    out
}

fn ready_at(timeline: &Timeline, target: &str, t: f64) -> Option<i32> {
    timeline
        .samples
        .iter()
        .take_while(|s| s.t <= t)
        .filter_map(|s| match &s.what {
            crate::timeline::Observation::Scale {
                target: name,
                ready_replicas,
                ..
            } if name == target => Some(*ready_replicas),
            _ => None,
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{MetricReading, Observation};
    use rstest::rstest;

    const SUBJECT: Subject<'static> = Subject {
        target: "fraud-detector-api",
        hpa: "fraud-detector-hpa",
    };

    /// The exercise's HPA: 2..10, up 100 % or 4 pods per 60 s (Max), down 50 % per 60 s after 300 s.
    fn exercise_spec() -> ScalingSpec {
        ScalingSpec {
            min_replicas: 2,
            max_replicas: 10,
            cpu_target_utilization: Some(50),
            scale_up: ScalingRules {
                stabilization_window_seconds: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![
                    Policy {
                        kind: PolicyKind::Percent,
                        value: 100,
                        period_seconds: 60,
                    },
                    Policy {
                        kind: PolicyKind::Pods,
                        value: 4,
                        period_seconds: 60,
                    },
                ],
            },
            scale_down: ScalingRules {
                stabilization_window_seconds: 300,
                select_policy: SelectPolicy::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Percent,
                    value: 50,
                    period_seconds: 60,
                }],
            },
        }
    }

    /// A timeline from (t, replicas) steps, HPA readings (t, cpu %) and markers.
    fn timeline(replicas: &[(f64, i32)], cpu: &[(f64, i32)], markers: &[(f64, &str)]) -> Timeline {
        let mut samples: Vec<(f64, Observation)> = Vec::new();
        for &(t, r) in replicas {
            let manager = Some("kube-controller-manager".to_string());
            samples.push((
                t,
                Observation::Scale {
                    target: SUBJECT.target.into(),
                    replicas: r,
                    ready_replicas: r,
                    manager,
                },
            ));
        }
        for &(t, utilization) in cpu {
            let current = replicas
                .iter()
                .take_while(|(at, _)| *at <= t)
                .last()
                .map_or(2, |(_, r)| *r);
            samples.push((
                t,
                Observation::Hpa {
                    name: SUBJECT.hpa.into(),
                    current_replicas: current,
                    desired_replicas: current,
                    metrics: vec![MetricReading {
                        name: "cpu".into(),
                        utilization: Some(utilization),
                        value: None,
                    }],
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

    const MARKERS: &[(f64, &str)] = &[
        (0.0, "baseline"),
        (10.0, "load-start"),
        (200.0, "load-stop"),
    ];
    /// CPU over target while loaded, idle from 230 s (metrics lag behind the load).
    const CPU: &[(f64, i32)] = &[
        (40.0, 160),
        (100.0, 120),
        (160.0, 90),
        (215.0, 80),
        (230.0, 5),
        (300.0, 3),
    ];

    fn good() -> Vec<(f64, i32)> {
        vec![
            (0.0, 2),
            (40.0, 4),
            (100.0, 8),
            (540.0, 4),
            (600.0, 2),
            (620.0, 2),
        ]
    }

    /// The message and, when several rules broke, the note listing all of them.
    fn all_problems(verdict: &Verdict) -> String {
        let notes = verdict.evidence.iter().filter_map(|e| match e {
            Evidence::Note { text } => Some(text.as_str()),
            _ => None,
        });
        std::iter::once(verdict.message.as_str())
            .chain(notes)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn intervals() -> ClusterIntervals {
        ClusterIntervals::default()
    }

    #[test]
    fn a_textbook_run_passes_both_judges() {
        let timeline = timeline(&good(), CPU, MARKERS);
        let up = judge_scale_up(&exercise_spec(), SUBJECT, &timeline, &intervals());
        assert_eq!(up.outcome, Outcome::Pass, "{}", up.message);
        assert!(up.message.contains("2 -> 8"), "{}", up.message);
        let down = judge_scale_down(&exercise_spec(), SUBJECT, &timeline, &intervals());
        assert_eq!(down.outcome, Outcome::Pass, "{}", down.message);
        assert!(
            down.evidence
                .iter()
                .any(|e| matches!(e, Evidence::Timeline { points } if !points.is_empty()))
        );
    }

    #[rstest]
    // Max of (100 % of 2 = 4, 2 + 4 = 6): 6 is allowed, 7 is not.
    #[case(SelectPolicy::Max, 6, Outcome::Pass)]
    #[case(SelectPolicy::Max, 7, Outcome::Fail)]
    // Min of the two: 4 is the most a single period may reach.
    #[case(SelectPolicy::Min, 4, Outcome::Pass)]
    #[case(SelectPolicy::Min, 6, Outcome::Fail)]
    fn scale_up_steps_honour_select_policy(
        #[case] select: SelectPolicy,
        #[case] first_step_to: i32,
        #[case] expected: Outcome,
    ) {
        let mut spec = exercise_spec();
        spec.scale_up.select_policy = select;
        let replicas = [(0.0, 2), (40.0, first_step_to), (300.0, first_step_to)];
        let verdict = judge_scale_up(
            &spec,
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, expected, "{}", verdict.message);
        if expected == Outcome::Fail {
            assert!(
                verdict
                    .message
                    .contains("exceeds what the scaleUp policies allow"),
                "{}",
                verdict.message
            );
        }
    }

    #[test]
    fn a_second_step_inside_the_same_period_counts_the_first() {
        // 2 -> 4 at 40 s, then 4 -> 8 at 70 s: within 60 s of the first step the period
        // started at 2, so at most max(4, 6) = 6.
        let replicas = [(0.0, 2), (40.0, 4), (70.0, 8)];
        let verdict = judge_scale_up(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("4 -> 8 at 70s"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn never_above_max_replicas() {
        let mut spec = exercise_spec();
        spec.max_replicas = 6;
        let replicas = [(0.0, 2), (40.0, 4), (100.0, 7)];
        let verdict = judge_scale_up(
            &spec,
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            all_problems(&verdict).contains("replicas reached 7 at 100s, above maxReplicas=6"),
            "{}",
            all_problems(&verdict)
        );
    }

    #[test]
    fn no_scale_up_under_load_fails_with_what_was_seen() {
        let verdict = judge_scale_up(
            &exercise_spec(),
            SUBJECT,
            &timeline(&[(0.0, 2), (300.0, 2)], CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .starts_with("expected a scale-up above minReplicas=2"),
            "{}",
            verdict.message
        );
        let down = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&[(0.0, 2), (300.0, 2)], CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(down.outcome, Outcome::NotRun);
    }

    #[test]
    fn a_late_first_scale_up_fails_the_timing_budget() {
        // Budget: 2 x 15 s resolution + 15 s sync + 15 s sync + 5 s slack = 65 s.
        let replicas = [(0.0, 2), (100.0, 4)];
        let verdict = judge_scale_up(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("90s after the load started; expected within 65s"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_manual_scale_is_not_the_autoscaler() {
        let mut timeline = timeline(&good(), CPU, MARKERS);
        for sample in &mut timeline.samples {
            if let Observation::Scale {
                replicas: 4,
                manager,
                ..
            } = &mut sample.what
                && sample.t == 40.0
            {
                *manager = Some("kubectl".into());
            }
        }
        let verdict = judge_scale_up(&exercise_spec(), SUBJECT, &timeline, &intervals());
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("field manager `kubectl`"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn scale_down_before_the_window_fails() {
        // Last CPU-over-target reading at 215 s with 8 pods; 8 -> 4 at 400 s is 185 s later.
        let replicas = [
            (0.0, 2),
            (40.0, 4),
            (100.0, 8),
            (400.0, 4),
            (460.0, 2),
            (480.0, 2),
        ];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("8 -> 4 at 400s came 185s after"),
            "{}",
            verdict.message
        );
        assert!(
            verdict.message.contains("300s stabilization window"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn the_window_counts_from_the_last_high_recommendation_not_the_load_stop() {
        // Without HPA readings only the scale-up at 100 s anchors the window: 8 -> 4 at
        // 410 s is then legal, though less than 300 s after the load stopped at 200 s.
        let replicas = [
            (0.0, 2),
            (40.0, 4),
            (100.0, 8),
            (410.0, 4),
            (470.0, 2),
            (480.0, 2),
        ];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, &[], MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    }

    #[test]
    fn scale_down_faster_than_the_policy_fails() {
        let replicas = [(0.0, 2), (40.0, 4), (100.0, 8), (540.0, 2), (560.0, 2)];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains(
                "8 -> 2 at 540s removes more than the scaleDown policies allow (no lower than 4"
            ),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_reversal_is_thrashing() {
        let replicas = [
            (0.0, 2),
            (40.0, 4),
            (100.0, 8),
            (540.0, 4),
            (560.0, 6),
            (620.0, 3),
            (680.0, 2),
        ];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&replicas, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            all_problems(&verdict)
                .contains("direction reversed: down 8 -> 4 at 540s, then up 4 -> 6 at 560s"),
            "{}",
            all_problems(&verdict)
        );
    }

    #[test]
    fn not_back_at_min_within_budget_fails_and_an_early_end_is_an_error() {
        // Budget from 8: 45 s lag + 300 s + 60 s (8 -> 4 -> 2) + 15 s + 5 s = 425 s after 200 s.
        let stuck = [(0.0, 2), (40.0, 4), (100.0, 8), (540.0, 4), (700.0, 4)];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&stuck, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("expected replicas back at minReplicas=2 within 425s"),
            "{}",
            verdict.message
        );
        let short = [(0.0, 2), (40.0, 4), (100.0, 8), (540.0, 4), (560.0, 4)];
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&short, CPU, MARKERS),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Error, "{}", verdict.message);
    }

    #[test]
    fn missing_markers_are_a_probe_error_not_a_student_failure() {
        let verdict = judge_scale_up(
            &exercise_spec(),
            SUBJECT,
            &timeline(&good(), CPU, &[]),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Error);
        let verdict = judge_scale_down(
            &exercise_spec(),
            SUBJECT,
            &timeline(&good(), CPU, &[(10.0, "load-start")]),
            &intervals(),
        );
        assert_eq!(verdict.outcome, Outcome::Error);
    }

    #[rstest]
    // Go: ceil(periodStart * (1 + value/100)) up, int(periodStart * (1 - value/100)) down.
    #[case(PolicyKind::Percent, 100, Direction::Up, 3, 6)]
    #[case(PolicyKind::Percent, 50, Direction::Up, 3, 5)]
    #[case(PolicyKind::Pods, 4, Direction::Up, 3, 7)]
    #[case(PolicyKind::Percent, 50, Direction::Down, 5, 2)]
    #[case(PolicyKind::Pods, 1, Direction::Down, 5, 4)]
    fn limits_follow_the_controller_arithmetic(
        #[case] kind: PolicyKind,
        #[case] value: i32,
        #[case] direction: Direction,
        #[case] current: i32,
        #[case] limit: i32,
    ) {
        let rules = ScalingRules {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![Policy {
                kind,
                value,
                period_seconds: 60,
            }],
        };
        assert_eq!(
            replica_limit(&rules, direction, current, &[], 100.0, 0.0),
            limit
        );
        // A change of 2 in the same direction 30 s ago moves the period's start back by 2.
        let change = if direction == Direction::Up { 2 } else { -2 };
        let shifted = replica_limit(&rules, direction, current, &[(70.0, change)], 100.0, 0.0);
        assert_ne!(shifted, limit);
        // ... but not once it is older than the period.
        assert_eq!(
            replica_limit(&rules, direction, current, &[(30.0, change)], 100.0, 0.0),
            limit
        );
    }

    #[test]
    fn disabled_rules_allow_no_change() {
        let mut rules = ScalingSpec::default_scale_down();
        rules.select_policy = SelectPolicy::Disabled;
        assert_eq!(replica_limit(&rules, Direction::Down, 5, &[], 0.0, 0.0), 5);
    }

    #[test]
    fn specs_read_from_hpas_get_the_api_server_defaults() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "selectPolicy": "Min"}}
            }
        }))
        .unwrap();
        let spec = ScalingSpec::from_hpa(&hpa);
        assert_eq!(
            (
                spec.min_replicas,
                spec.max_replicas,
                spec.cpu_target_utilization
            ),
            (1, 5, Some(60))
        );
        assert_eq!(spec.scale_up, ScalingSpec::default_scale_up());
        assert_eq!(spec.scale_down.stabilization_window_seconds, 30);
        assert_eq!(spec.scale_down.select_policy, SelectPolicy::Min);
        assert_eq!(
            spec.scale_down.policies,
            ScalingSpec::default_scale_down().policies
        );
    }
}

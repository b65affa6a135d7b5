//! The HPA's judges: verdicts on `hpa-cpu` and `hpa-scale-down` as pure functions of
//! (the HPA's spec, the recorded timeline, the cluster's intervals).
//!
//! They replay the controller's own arithmetic ([`replica_limit`]) over the replica
//! steps the probe observed, using the HPA's own behaviour (defaults filled in as the
//! API server does, see [`ScalingSpec::from_hpa`]). Our timestamps trail the
//! controller's by up to `observation_slack`, so every time comparison leans towards
//! the student: a verdict of "fail" means the rule was broken by more than the
//! measurement error. The scale-up judge and the rules both share are here; the
//! scale-down judge is in `scale_down`.

mod scale_down;

pub use scale_down::judge_scale_down;

use super::scaling::{Direction, Policy, PolicyKind, ScalingSpec, replica_limit};
use super::{SCALE_UP, budget};
use crate::cluster::ClusterIntervals;
use crate::criteria::CriterionId;
use crate::timeline::{ReplicaStep, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};

/// Field managers allowed to change a scale target's replicas: the HPA controller
/// (kube-controller-manager, through the scale subresource). Anything else, such as
/// `kubectl` from a student script, is a manual scale and proves nothing.
pub const AUTOSCALER_MANAGERS: &[&str] = &["kube-controller-manager"];

/// Names the judges need: the scale target and its HPA, as recorded in the timeline.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub target: &'a str,
    pub hpa: &'a str,
}

/// The rules a run broke (shared with the custom-metrics judge).
pub(crate) struct Findings {
    pub(crate) problems: Vec<String>,
}

impl Findings {
    pub(crate) fn verdict(
        self,
        id: CriterionId,
        pass_message: String,
        evidence: Vec<Evidence>,
    ) -> Verdict {
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
        Verdict::new(id, outcome, message, evidence)
    }
}

fn error(id: CriterionId, message: String) -> Verdict {
    Verdict::new(id, Outcome::Error, message, Vec::new())
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
pub(crate) fn check_steps(
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

pub(crate) fn describe_policies(policies: &[Policy]) -> String {
    policies
        .iter()
        .map(|p| match p.kind {
            PolicyKind::Pods => format!("{} pods/{}s", p.value, p.period_seconds),
            PolicyKind::Percent => format!("{}%/{}s", p.value, p.period_seconds),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn check_ceiling(
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
            SCALE_UP,
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

    let budget = budget::first_scale_up(intervals).as_secs_f64();
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
        SCALE_UP,
        pass,
        evidence(timeline, subject, baseline, end, values),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::hpa_cpu::scaling::{ScalingRules, SelectPolicy};
    use crate::timeline::{MetricReading, Observation};
    use rstest::rstest;

    pub(super) const SUBJECT: Subject<'static> = Subject {
        target: "fraud-detector-api",
        hpa: "fraud-detector-hpa",
    };

    /// The exercise's HPA: 2..10, up 100 % or 4 pods per 60 s (Max), down 50 % per 60 s after 300 s.
    pub(super) fn exercise_spec() -> ScalingSpec {
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
    pub(super) fn timeline(
        replicas: &[(f64, i32)],
        cpu: &[(f64, i32)],
        markers: &[(f64, &str)],
    ) -> Timeline {
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

    pub(super) const MARKERS: &[(f64, &str)] = &[
        (0.0, "baseline"),
        (10.0, "load-start"),
        (200.0, "load-stop"),
    ];
    /// CPU over target while loaded, idle from 230 s (metrics lag behind the load).
    pub(super) const CPU: &[(f64, i32)] = &[
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
    pub(super) fn all_problems(verdict: &Verdict) -> String {
        let notes = verdict.evidence.iter().filter_map(|e| match e {
            Evidence::Note { text } => Some(text.as_str()),
            _ => None,
        });
        std::iter::once(verdict.message.as_str())
            .chain(notes)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(super) fn intervals() -> ClusterIntervals {
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
}

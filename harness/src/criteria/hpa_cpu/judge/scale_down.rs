//! The scale-down judge: stable scale-down once the load stops (see
//! [`judge_scale_down`]), from the same timeline as the scale-up.

use super::{Findings, Subject, check_ceiling, check_steps, describe_policies, error, evidence};
use crate::cluster::ClusterIntervals;
use crate::criteria::hpa_cpu::scaling::{Direction, ScalingSpec};
use crate::criteria::hpa_cpu::{SCALE_DOWN, budget};
use crate::timeline::{ReplicaStep, Timeline};
use crate::verdict::{Outcome, Verdict};

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
            SCALE_DOWN,
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
        return Verdict::new(
            SCALE_DOWN,
            Outcome::NotRun,
            format!(
                "the target never rose above minReplicas={} under load, so there was no scale-down to judge",
                spec.min_replicas
            ),
            evidence(timeline, subject, baseline, f64::INFINITY, Vec::new()),
        );
    }
    let mut findings = Findings {
        problems: Vec::new(),
    };
    check_steps(spec, &steps, slack, &mut findings, Direction::Down);
    check_ceiling(spec, timeline, subject.target, baseline, &mut findings);
    check_window(spec, subject, timeline, &steps, slack, &mut findings);
    check_no_reversal(&steps, load_start, &mut findings);
    let budget = budget::scale_down(intervals, spec, peak).as_secs_f64();
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let back_at_min = match check_back_at_min(
        spec,
        subject,
        timeline,
        (load_stop, budget, slack),
        &mut findings,
    ) {
        Ok(back_at_min) => back_at_min,
        Err(cannot_judge) => return cannot_judge,
    };
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
        SCALE_DOWN,
        pass,
        evidence(timeline, subject, baseline, end, values),
    )
}

/// The window: a step down to `r` at `t` is early when, less than the stabilization
/// window before `t`, the controller had recommended more than `r` (it scaled up to
/// more, or its status showed CPU over target while it ran more than `r` ready pods).
fn check_window(
    spec: &ScalingSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    steps: &[ReplicaStep],
    slack: f64,
    findings: &mut Findings,
) {
    let window = f64::from(spec.scale_down.stabilization_window_seconds.max(0));
    let high_recommendations = recommendations_at_least(spec, subject, timeline, steps);
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
}

/// No thrashing: once the target went down, it must not go up again.
fn check_no_reversal(steps: &[ReplicaStep], load_start: f64, findings: &mut Findings) {
    if let Some(down) = steps.iter().find(|s| s.t >= load_start && s.to < s.from)
        && let Some(up) = steps.iter().find(|s| s.t > down.t && s.to > s.from)
    {
        findings.problems.push(format!(
            "direction reversed: down {} -> {} at {:.0}s, then up {} -> {} at {:.0}s (thrashing)",
            down.from, down.to, down.t, up.from, up.to, up.t
        ));
    }
}

/// Back at minReplicas within `budget` seconds of the load stopping (`slack` allowed):
/// when it was back, or an "error" verdict when the recording ended before the budget
/// ran out (nothing to conclude).
fn check_back_at_min(
    spec: &ScalingSpec,
    subject: Subject<'_>,
    timeline: &Timeline,
    (load_stop, budget, slack): (f64, f64, f64),
    findings: &mut Findings,
) -> Result<Option<f64>, Verdict> {
    let window = f64::from(spec.scale_down.stabilization_window_seconds.max(0));
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
            return Err(error(
                SCALE_DOWN,
                format!(
                    "the recording ended {:.0}s after the load stopped, before the {budget:.0}s scale-down budget ran out; nothing to conclude",
                    end - load_stop
                ),
            ));
        }
        None => findings.problems.push(format!(
            "expected replicas back at minReplicas={} within {budget:.0}s of the load stopping; still {} after {:.0}s",
            spec.min_replicas,
            timeline.replicas_at(subject.target, end).unwrap_or(-1),
            end - load_stop
        )),
    }
    Ok(back_at_min)
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
    use super::super::tests::{
        CPU, MARKERS, SUBJECT, all_problems, exercise_spec, intervals, timeline,
    };
    use super::*;

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
}

//! The judge of `keda-cron`: a pure function of the window the probe scheduled, the
//! ScaledObject's settings, the recorded timeline (replicas, KEDA's events) and KEDA's
//! status. The replicas must not rise before the window opens, must reach
//! desiredReplicas within pollingInterval + two HPA syncs + a margin of its opening, hold
//! until it closes, and fall back to minReplicaCount within the submission's own way
//! down (cooldownPeriod to zero, the HPA's stabilization otherwise) after it closes.

use super::ID;
use crate::cluster::ClusterIntervals;
use crate::cluster::keda::KedaRecording;
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// Beyond KEDA's and the HPA's own intervals: the watch, a poll just missed.
pub const MARGIN: Duration = Duration::from_secs(15);
/// The recorder and KEDA read the same clock; this is how early is "before".
const EARLY_SLACK: f64 = 5.0;

/// The window under test and the settings that bound it.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSpec {
    pub scaled_object: String,
    pub target: String,
    /// As written by the submission (`None`: it names none).
    pub timezone: Option<String>,
    /// The rewritten expressions (in the submission's time zone).
    pub start: String,
    pub end: String,
    /// The submission wrote the same start and end: the window is empty.
    pub empty_window: bool,
    /// desiredReplicas, capped at maxReplicaCount.
    pub desired: i32,
    pub min_replicas: i32,
    pub polling: Duration,
    pub cooldown: Duration,
    /// The HPA's scale-down stabilization (used when minReplicaCount > 0).
    pub stabilization: Duration,
    /// The window on the timeline's clock.
    pub opens: f64,
    pub closes: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budgets {
    /// Window opens → desiredReplicas.
    pub rise: Duration,
    /// Window closes → minReplicaCount.
    pub fall: Duration,
}

impl Budgets {
    pub fn new(spec: &CronSpec, intervals: &ClusterIntervals) -> Budgets {
        let down = if spec.min_replicas == 0 {
            spec.cooldown
        } else {
            spec.stabilization + intervals.hpa_sync_period
        };
        Budgets {
            rise: spec.polling + intervals.hpa_sync_period * 2 + MARGIN,
            fall: down + spec.polling + MARGIN,
        }
    }
}

pub fn judge(
    spec: &CronSpec,
    budgets: &Budgets,
    timeline: &Timeline,
    recording: &KedaRecording,
) -> Verdict {
    let target = &spec.target;
    let replicas = timeline.replicas(target);
    let mut values = vec![
        (
            "window (rewritten)".to_string(),
            format!(
                "start `{}` end `{}` in {}, opens at {:.0}s, closes at {:.0}s",
                spec.start,
                spec.end,
                spec.timezone.as_deref().unwrap_or("(no timezone)"),
                spec.opens,
                spec.closes
            ),
        ),
        (
            "settings".to_string(),
            format!(
                "desiredReplicas {}, minReplicaCount {}, pollingInterval {}s, cooldownPeriod {}s",
                spec.desired,
                spec.min_replicas,
                spec.polling.as_secs(),
                spec.cooldown.as_secs()
            ),
        ),
    ];
    let fail = |message: String, values: Vec<(String, String)>| {
        verdict(Outcome::Fail, message, values, spec, timeline, recording)
    };
    // Where the window starts from: the workload at minReplicaCount (a Deployment created
    // with one replica is brought there by KEDA first).
    let Some(low) = replicas
        .iter()
        .find(|(_, r, _)| *r <= spec.min_replicas)
        .map(|(t, _, _)| *t)
    else {
        // KEDA did not act at all: its reason (a scaler it could not build) says why.
        return fail(
            format!(
                "{target} never scaled: it stayed at {} replicas, never at minReplicaCount {} before the window nor moved by it{}",
                replicas
                    .iter()
                    .map(|(_, r, _)| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                spec.min_replicas,
                keda_reason(spec, timeline, recording)
            ),
            values,
        );
    };
    if let Some(step) = timeline
        .steps(target, low)
        .into_iter()
        .find(|s| s.t < spec.opens - EARLY_SLACK && s.from < spec.desired && s.to >= spec.desired)
    {
        return fail(
            format!(
                "{target} rose to {} replicas at {:.0}s, {:.0}s before the window opened: the schedule is not read in the time zone it was written for",
                step.to,
                step.t,
                spec.opens - step.t
            ),
            values,
        );
    }
    let from = low.max(spec.opens - EARLY_SLACK);
    let reached = replicas
        .iter()
        .find(|(t, r, _)| *t >= from && *t <= spec.closes && *r >= spec.desired)
        .map(|(t, _, _)| *t);
    let Some(reached) = reached else {
        let seen = replicas
            .iter()
            .filter(|(t, _, _)| *t >= from)
            .map(|(_, r, _)| *r)
            .max()
            .unwrap_or(0);
        return fail(
            format!(
                "{target} never reached desiredReplicas {} inside the window (at most {seen}){}",
                spec.desired,
                keda_reason(spec, timeline, recording)
            ),
            values,
        );
    };
    let rise = (reached - spec.opens).max(0.0);
    values.push((
        "window opens -> desiredReplicas".to_string(),
        format!("{rise:.0}s (budget {}s)", budgets.rise.as_secs()),
    ));
    if rise > budgets.rise.as_secs_f64() {
        return fail(
            format!(
                "{target} reached desiredReplicas {} {rise:.0}s after the window opened, beyond the {}s budget (pollingInterval {}s + two HPA syncs + {}s)",
                spec.desired,
                budgets.rise.as_secs(),
                spec.polling.as_secs(),
                MARGIN.as_secs()
            ),
            values,
        );
    }
    if let Some((t, r, _)) = replicas
        .iter()
        .find(|(t, r, _)| *t > reached && *t < spec.closes - EARLY_SLACK && *r < spec.desired)
    {
        return fail(
            format!(
                "{target} fell to {r} replicas at {t:.0}s, {:.0}s before the window closed",
                spec.closes - t
            ),
            values,
        );
    }
    let fell = replicas
        .iter()
        .find(|(t, r, _)| *t >= spec.closes - EARLY_SLACK && *r <= spec.min_replicas)
        .map(|(t, _, _)| *t);
    let Some(fell) = fell else {
        return fail(
            format!(
                "{target} did not fall back to minReplicaCount {} within {}s of the window closing (replicas at the end: {})",
                spec.min_replicas,
                budgets.fall.as_secs(),
                replicas.last().map_or(0, |(_, r, _)| *r)
            ),
            values,
        );
    };
    let fall = (fell - spec.closes).max(0.0);
    values.push((
        "window closes -> minReplicaCount".to_string(),
        format!("{fall:.0}s (budget {}s)", budgets.fall.as_secs()),
    ));
    if fall > budgets.fall.as_secs_f64() {
        return fail(
            format!(
                "{target} fell back to {} replicas {fall:.0}s after the window closed, beyond the {}s budget",
                spec.min_replicas,
                budgets.fall.as_secs()
            ),
            values,
        );
    }
    verdict(
        Outcome::Pass,
        format!(
            "{target} reached desiredReplicas {} {rise:.0}s after the window opened and fell back to {} {fall:.0}s after it closed",
            spec.desired, spec.min_replicas
        ),
        values,
        spec,
        timeline,
        recording,
    )
}

/// Why KEDA did not act, in its own words: the empty window, its Ready=False reason, its
/// Warning events about the ScaledObject (a time zone it cannot load).
fn keda_reason(spec: &CronSpec, timeline: &Timeline, recording: &KedaRecording) -> String {
    let mut reasons = Vec::new();
    if spec.empty_window {
        reasons.push(format!(
            "the window is empty: start and end are both `{}`, which KEDA refuses",
            spec.start
        ));
    }
    let warnings: Vec<String> = timeline
        .event_lines()
        .into_iter()
        .filter(|l| l.contains(" Warning ") && l.contains(&spec.scaled_object))
        .collect();
    let said: Vec<String> = recording
        .not_ready()
        .map(|r| format!("KEDA: Ready=False {r}"))
        .into_iter()
        .chain(warnings.last().cloned())
        .collect();
    let zone = said
        .iter()
        .any(|s| s.contains("timezone") || s.contains("time zone"));
    if zone {
        reasons.push(format!(
            "KEDA cannot use the timezone `{}`",
            spec.timezone.as_deref().unwrap_or("")
        ));
    }
    reasons.extend(said);
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join("; "))
    }
}

fn verdict(
    outcome: Outcome,
    message: String,
    values: Vec<(String, String)>,
    spec: &CronSpec,
    timeline: &Timeline,
    recording: &KedaRecording,
) -> Verdict {
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    let mut evidence = vec![
        Evidence::Values { values },
        Evidence::Timeline {
            points: timeline.replica_excerpt(&spec.target, 0.0, end),
        },
    ];
    let events: Vec<String> = timeline
        .event_lines()
        .into_iter()
        .filter(|l| l.contains(&spec.scaled_object) || l.contains("keda-hpa-"))
        .collect();
    if !events.is_empty() {
        evidence.push(Evidence::Events { lines: events });
    }
    if let Some(reason) = recording.not_ready() {
        evidence.push(Evidence::Values {
            values: vec![("KEDA: ScaledObject Ready=False".into(), reason)],
        });
    }
    Verdict::new(ID, outcome, message, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keda::{Condition, ScaledObjectState};
    use crate::timeline::Observation;
    use rstest::rstest;

    fn spec() -> CronSpec {
        CronSpec {
            scaled_object: "trainer-cron".into(),
            target: "trainer".into(),
            timezone: Some("America/New_York".into()),
            start: "31 6 * * *".into(),
            end: "33 6 * * *".into(),
            empty_window: false,
            desired: 2,
            min_replicas: 0,
            polling: Duration::from_secs(5),
            cooldown: Duration::from_secs(15),
            stabilization: Duration::from_secs(300),
            opens: 60.0,
            closes: 180.0,
        }
    }

    fn timeline(steps: &[(f64, i32)]) -> Timeline {
        let mut t = Timeline::new("x", "2026-01-01T00:00:00Z");
        for (at, replicas) in steps {
            t.push(
                *at,
                Observation::Scale {
                    target: "trainer".into(),
                    replicas: *replicas,
                    ready_replicas: *replicas,
                    manager: None,
                },
            );
        }
        t
    }

    /// KEDA's Warning that it cannot build the trigger's scaler: a time zone it cannot
    /// load.
    fn scaler_failed() -> Observation {
        Observation::Event {
            object: "ScaledObject/trainer-cron".into(),
            reason: "KEDAScalerFailed".into(),
            message: "unable to load timezone: unknown time zone America/NewYork".into(),
            type_: "Warning".into(),
        }
    }

    /// Judged with `spec`'s own budgets.
    fn judge_with(spec: &CronSpec, t: &Timeline, recording: &KedaRecording) -> Verdict {
        judge(
            spec,
            &Budgets::new(spec, &ClusterIntervals::default()),
            t,
            recording,
        )
    }

    /// [`spec`] judged on `t`, KEDA's status unrecorded.
    fn run(t: &Timeline) -> Verdict {
        judge_with(&spec(), t, &KedaRecording::default())
    }

    /// Asserts that the verdict's message says each of `says`.
    fn assert_says(v: &Verdict, says: &[&str]) {
        for words in says {
            assert!(v.message.contains(words), "{}", v.message);
        }
    }

    #[test]
    fn the_way_down_is_the_cooldown_at_zero_and_the_stabilization_above() {
        let intervals = ClusterIntervals::default();
        let mut s = spec();
        assert_eq!(
            Budgets::new(&s, &intervals).fall,
            Duration::from_secs(15 + 5 + 15)
        );
        s.min_replicas = 1;
        assert_eq!(
            Budgets::new(&s, &intervals).fall,
            Duration::from_secs(300 + 15 + 5 + 15)
        );
        assert_eq!(
            Budgets::new(&s, &intervals).rise,
            Duration::from_secs(5 + 30 + 15)
        );
    }

    #[test]
    fn a_window_kept_passes() {
        let v = run(&timeline(&[
            (0.0, 1),
            (4.0, 0),
            (66.0, 1),
            (80.0, 2),
            (205.0, 0),
        ]));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.message);
        assert_says(
            &v,
            &["20s after the window opened", "fell back to 0 25s after"],
        );
    }

    #[test]
    fn created_at_desired_then_idled_is_not_early() {
        let mut s = spec();
        s.desired = 1;
        let budgets = Budgets::new(&s, &ClusterIntervals::default());
        let t = timeline(&[(0.0, 1), (4.0, 0), (66.0, 1), (205.0, 0)]);
        let v = judge(&s, &budgets, &t, &KedaRecording::default());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.message);
        let never_low = timeline(&[(0.0, 1), (66.0, 1)]);
        let v = judge(&s, &budgets, &never_low, &KedaRecording::default());
        assert_says(&v, &["never at minReplicaCount 0"]);
    }

    #[test]
    fn scaling_before_the_window_is_a_time_zone_fault() {
        let v = run(&timeline(&[(0.0, 0), (20.0, 2), (205.0, 0)]));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_says(&v, &["before the window opened"]);
    }

    #[rstest]
    #[case::after_idling_it_never_reaches_desired(
        &[(0.0, 1), (4.0, 0)],
        70.0,
        &["never reached desiredReplicas 2", "KEDA cannot use the timezone `America/New_York`"],
    )]
    // As recorded live: KEDA keeps a Deployment created at one replica when its scaler
    // fails, so the workload is never at minReplicaCount.
    #[case::the_workload_stays_where_it_was(
        &[(0.0, 1), (3.0, 1)],
        4.0,
        &["never scaled: it stayed at 1, 1 replicas", "KEDA cannot use the timezone"],
    )]
    fn a_time_zone_keda_refuses_is_the_reason(
        #[case] steps: &[(f64, i32)],
        #[case] refused_at: f64,
        #[case] says: &[&str],
    ) {
        let mut t = timeline(steps);
        t.push(refused_at, scaler_failed());
        let v = run(&t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_says(&v, says);
    }

    #[test]
    fn an_empty_window_says_so_with_keda_s_reason() {
        let mut s = spec();
        s.empty_window = true;
        s.end = s.start.clone();
        let recording = KedaRecording {
            states: vec![ScaledObjectState {
                t: 10.0,
                ready: Some(Condition {
                    status: "False".into(),
                    reason: "ScaledObjectCheckFailed".into(),
                    message: "start and end can not have exactly same time input".into(),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = judge_with(&s, &timeline(&[(0.0, 0)]), &recording);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_says(&v, &["the window is empty", "exactly same time input"]);
    }

    #[rstest]
    #[case::late_rise(
        &[(0.0, 0), (130.0, 2), (205.0, 0)],
        "70s after the window opened, beyond the 50s"
    )]
    #[case::early_fall(&[(0.0, 0), (70.0, 2), (120.0, 0)], "before the window closed")]
    #[case::no_fall(&[(0.0, 0), (70.0, 2)], "did not fall back to minReplicaCount 0")]
    #[case::slow_fall(
        &[(0.0, 0), (70.0, 2), (260.0, 0)],
        "80s after the window closed, beyond the 35s"
    )]
    fn a_missed_window_says_how(#[case] steps: &[(f64, i32)], #[case] says: &str) {
        assert_says(&run(&timeline(steps)), &[says]);
    }
}

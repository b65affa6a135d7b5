//! The judge of `keda-scale-to-zero`: a pure function of the ScaledObject's settings,
//! the recorded timeline (replicas, markers, events) and the recorded query values and
//! KEDA status. It asks, in order: did the workload idle at zero, did the query see the
//! queue, did KEDA activate 0→1 within pollingInterval + scrape + a margin, did it scale
//! to the count the threshold implies (and no further), and did it return to zero no
//! earlier than cooldownPeriod after KEDA last saw the trigger active, and within a budget.

use super::ID;
use crate::cluster::ClusterIntervals;
use crate::cluster::keda::KedaRecording;
use crate::criteria::hpa_custom::budget::SCRAPE_INTERVAL;
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// Probe markers the judge reads.
pub const IDLE: &str = "idle-at-zero";
pub const ENQUEUED: &str = "enqueued";
pub const DRAINED: &str = "queue-emptied";

/// Beyond KEDA's own intervals: the recorder's watch, the API server, a poll that
/// started just before the change. Not a tolerance on KEDA's semantics.
pub const MARGIN: Duration = Duration::from_secs(15);

/// How KEDA's HPA reads the trigger's value (the trigger's `metricType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// The default: the value is divided among the replicas (desired = ⌈value / threshold⌉).
    AverageValue,
    /// The value is compared whole with the threshold.
    Value,
}

/// What the judge needs of the ScaledObject and of the probe's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroSpec {
    pub scaled_object: String,
    pub target: String,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub metric_type: MetricType,
    pub polling: Duration,
    pub cooldown: Duration,
    pub max_replicas: i32,
    /// The queue depth the probe holds while it waits for the scale-up.
    pub queued: f64,
}

impl ZeroSpec {
    /// The replicas `queued` implies: ⌈queued / threshold⌉ (AverageValue), capped at
    /// maxReplicaCount; a Value metric below its threshold keeps the one KEDA activates.
    pub fn expected(&self) -> i32 {
        let wanted = match self.metric_type {
            MetricType::AverageValue => (self.queued / self.threshold).ceil(),
            MetricType::Value => 1.0,
        };
        (wanted as i32).clamp(1, self.max_replicas.max(1))
    }
}

/// The budgets, each from the submission's own settings and the cluster's intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budgets {
    /// Work enqueued → 0→1: one pollingInterval, one scrape, the margin.
    pub activation: Duration,
    /// Work enqueued → the expected count: activation, then two HPA syncs.
    pub scale_up: Duration,
    /// Queue empty (as the query shows) → zero: cooldownPeriod, one pollingInterval, one
    /// scrape, the margin.
    pub return_to_zero: Duration,
}

impl Budgets {
    pub fn new(spec: &ZeroSpec, intervals: &ClusterIntervals) -> Budgets {
        let activation = spec.polling + SCRAPE_INTERVAL + MARGIN;
        Budgets {
            activation,
            scale_up: activation + intervals.hpa_sync_period * 2 + intervals.observation_slack,
            return_to_zero: spec.cooldown + spec.polling + SCRAPE_INTERVAL + MARGIN,
        }
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Judges one recorded run.
pub fn judge(
    spec: &ZeroSpec,
    budgets: &Budgets,
    timeline: &Timeline,
    recording: &KedaRecording,
) -> Verdict {
    let target = &spec.target;
    let expected = spec.expected();
    let mut values = vec![
        (
            "settings".to_string(),
            format!(
                "pollingInterval {}s, cooldownPeriod {}s, threshold {}, activationThreshold {}, maxReplicaCount {}",
                secs(spec.polling),
                secs(spec.cooldown),
                spec.threshold,
                spec.activation_threshold,
                spec.max_replicas
            ),
        ),
        (
            "queue held".to_string(),
            format!(
                "{} items: {expected} replicas by the threshold",
                spec.queued
            ),
        ),
    ];
    let fail = |message: String, values: Vec<(String, String)>| {
        verdict(Outcome::Fail, message, values, spec, timeline, recording)
    };
    let Some(enqueued) = timeline.marker(ENQUEUED) else {
        return verdict(
            Outcome::Error,
            "the probe recorded no enqueue marker: nothing to judge".into(),
            values,
            spec,
            timeline,
            recording,
        );
    };
    // (1) Idle at zero before the work arrived.
    let idle = timeline.replicas_at(target, enqueued).unwrap_or(-1);
    if idle != 0 {
        return fail(
            format!(
                "{target} did not idle at zero: {} replicas when the work was enqueued (minReplicaCount 0 and an inactive trigger should have scaled it to zero)",
                if idle < 0 {
                    "no".to_string()
                } else {
                    idle.to_string()
                }
            ),
            values,
        );
    }
    // (2) The query saw the queue.
    let rose = recording
        .values
        .iter()
        .find(|s| s.t >= enqueued && s.value.is_some_and(|v| v > spec.activation_threshold));
    let Some(rose) = rose else {
        let seen = seen_values(recording, enqueued);
        let keda = recording
            .not_ready()
            .map(|r| format!("; KEDA says Ready=False {r}"))
            .unwrap_or_default();
        return fail(
            format!(
                "the trigger's query never rose above activationThreshold {} while {} items were queued: it does not see the queue (values after the enqueue: {seen}){keda}",
                spec.activation_threshold, spec.queued
            ),
            values,
        );
    };
    values.push((
        "query above activation after".to_string(),
        format!(
            "{:.0}s (value {})",
            rose.t - enqueued,
            rose.value.unwrap_or_default()
        ),
    ));
    // (3) Activation 0→1.
    let replicas = timeline.replicas(target);
    let activated = replicas
        .iter()
        .find(|(t, r, _)| *t >= enqueued && *r >= 1)
        .map(|(t, _, _)| *t);
    let Some(activated) = activated else {
        return fail(
            format!(
                "KEDA never scaled {target} from zero after {} items were queued and the query read {} (budget {}s: pollingInterval {}s + scrape {}s + {}s)",
                spec.queued,
                rose.value.unwrap_or_default(),
                secs(budgets.activation),
                secs(spec.polling),
                secs(SCRAPE_INTERVAL),
                secs(MARGIN)
            ),
            values,
        );
    };
    let activation = activated - enqueued;
    values.push((
        "activation delay (0->1)".to_string(),
        format!(
            "{activation:.0}s (pollingInterval {}s, budget {}s)",
            secs(spec.polling),
            secs(budgets.activation)
        ),
    ));
    if activation > budgets.activation.as_secs_f64() {
        return fail(
            format!(
                "KEDA scaled {target} from zero {activation:.0}s after the work was enqueued, beyond the {}s budget (pollingInterval {}s + scrape {}s + {}s)",
                secs(budgets.activation),
                secs(spec.polling),
                secs(SCRAPE_INTERVAL),
                secs(MARGIN)
            ),
            values,
        );
    }
    // (4) Toward the count the threshold implies, and no further.
    let drained = timeline.marker(DRAINED).unwrap_or(f64::INFINITY);
    let during: Vec<_> = replicas
        .iter()
        .filter(|(t, _, _)| *t >= enqueued && *t <= drained)
        .collect();
    let peak = during.iter().map(|(_, r, _)| *r).max().unwrap_or(0);
    if peak > expected {
        return fail(
            format!(
                "{target} scaled to {peak} replicas, beyond the {expected} that {} queued items imply at threshold {}",
                spec.queued, spec.threshold
            ),
            values,
        );
    }
    let Some(reached) = during
        .iter()
        .find(|(_, r, _)| *r >= expected)
        .map(|(t, _, _)| *t)
    else {
        return fail(
            format!(
                "{target} reached only {peak} of the {expected} replicas that {} queued items imply at threshold {} within {}s",
                spec.queued,
                spec.threshold,
                secs(budgets.scale_up)
            ),
            values,
        );
    };
    let up = reached - enqueued;
    values.push((
        format!("enqueued -> {expected} replicas"),
        format!("{up:.0}s (budget {}s)", secs(budgets.scale_up)),
    ));
    if up > budgets.scale_up.as_secs_f64() {
        return fail(
            format!(
                "{target} reached the {expected} replicas the threshold implies {up:.0}s after the enqueue, beyond the {}s budget",
                secs(budgets.scale_up)
            ),
            values,
        );
    }
    // (5) Back to zero: no earlier than cooldownPeriod after KEDA last saw it active,
    // within the budget of the query going quiet.
    if !drained.is_finite() {
        return verdict(
            Outcome::Error,
            "the probe did not empty the queue: the return to zero was not observed".into(),
            values,
            spec,
            timeline,
            recording,
        );
    }
    let quiet = recording
        .values
        .iter()
        .find(|s| s.t >= drained && s.value.is_none_or(|v| v <= spec.activation_threshold))
        .map_or(drained, |s| s.t);
    let last_seen_active = recording
        .values
        .iter()
        .filter(|s| s.value.is_some_and(|v| v > spec.activation_threshold))
        .map(|s| s.t)
        .fold(f64::NEG_INFINITY, f64::max);
    // KEDA's own lastActiveTime; without it, the last active value we saw less one poll.
    let last_active = recording
        .last_active()
        .unwrap_or(last_seen_active - spec.polling.as_secs_f64());
    let zero = replicas
        .iter()
        .find(|(t, r, _)| *t >= drained && *r == 0)
        .map(|(t, _, _)| *t);
    let Some(zero) = zero else {
        return fail(
            format!(
                "{target} did not return to zero within {}s of the queue emptying (cooldownPeriod {}s + pollingInterval {}s + scrape {}s + {}s); replicas at the end: {}",
                secs(budgets.return_to_zero),
                secs(spec.cooldown),
                secs(spec.polling),
                secs(SCRAPE_INTERVAL),
                secs(MARGIN),
                replicas.last().map_or(0, |(_, r, _)| *r)
            ),
            values,
        );
    };
    let after_active = zero - last_active;
    let after_quiet = zero - quiet;
    values.push((
        "return to zero".to_string(),
        format!(
            "{after_active:.0}s after KEDA last saw the trigger active, {after_quiet:.0}s after the query went quiet (cooldownPeriod {}s, budget {}s)",
            secs(spec.cooldown),
            secs(budgets.return_to_zero)
        ),
    ));
    // One second of slack: lastActiveTime has a resolution of one second.
    if after_active + 1.0 < spec.cooldown.as_secs_f64() {
        return fail(
            format!(
                "{target} returned to zero {after_active:.0}s after KEDA last saw the trigger active, before its cooldownPeriod of {}s",
                secs(spec.cooldown)
            ),
            values,
        );
    }
    if after_quiet > budgets.return_to_zero.as_secs_f64() {
        return fail(
            format!(
                "{target} returned to zero {after_quiet:.0}s after the queue emptied, beyond the {}s budget (cooldownPeriod {}s + pollingInterval {}s + scrape {}s + {}s)",
                secs(budgets.return_to_zero),
                secs(spec.cooldown),
                secs(spec.polling),
                secs(SCRAPE_INTERVAL),
                secs(MARGIN)
            ),
            values,
        );
    }
    verdict(
        Outcome::Pass,
        format!(
            "{target} idled at zero, KEDA activated it {activation:.0}s after the work was enqueued (pollingInterval {}s), scaled it to the {expected} replicas the threshold implies, and returned it to zero {after_active:.0}s after the trigger was last active (cooldownPeriod {}s)",
            secs(spec.polling),
            secs(spec.cooldown)
        ),
        values,
        spec,
        timeline,
        recording,
    )
}

/// The query's values after `since`, for a message: `12s: 0, 27s: (empty)`.
fn seen_values(recording: &KedaRecording, since: f64) -> String {
    let seen: Vec<String> = recording
        .values
        .iter()
        .filter(|s| s.t >= since)
        .take(8)
        .map(|s| {
            let value = match (&s.error, s.value) {
                (Some(e), _) => format!("error {e}"),
                (None, Some(v)) if s.series > 1 => format!("{v} ({} series)", s.series),
                (None, Some(v)) => v.to_string(),
                (None, None) => "(empty)".to_string(),
            };
            format!("{:.0}s: {value}", s.t - since)
        })
        .collect();
    if seen.is_empty() {
        "none recorded".into()
    } else {
        seen.join(", ")
    }
}

fn verdict(
    outcome: Outcome,
    message: String,
    values: Vec<(String, String)>,
    spec: &ZeroSpec,
    timeline: &Timeline,
    recording: &KedaRecording,
) -> Verdict {
    let mut evidence = vec![Evidence::Values { values }];
    let end = timeline.samples.last().map_or(0.0, |s| s.t);
    evidence.push(Evidence::Timeline {
        points: timeline.replica_excerpt(&spec.target, 0.0, end),
    });
    if !recording.values.is_empty() {
        evidence.push(Evidence::Note {
            text: format!(
                "the trigger's query `{}` over time: {}",
                recording.query,
                seen_values(recording, 0.0)
            ),
        });
    }
    let keda_events: Vec<String> = timeline
        .event_lines()
        .into_iter()
        .filter(|l| {
            l.contains(&spec.scaled_object) || l.contains("keda-hpa-") || l.contains(" Warning ")
        })
        .collect();
    if !keda_events.is_empty() {
        evidence.push(Evidence::Events { lines: keda_events });
    }
    Verdict::new(ID, outcome, message, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keda::{QuerySample, ScaledObjectState};
    use crate::timeline::Observation;

    fn spec() -> ZeroSpec {
        ZeroSpec {
            scaled_object: "so".into(),
            target: "worker".into(),
            threshold: 10.0,
            activation_threshold: 0.0,
            metric_type: MetricType::AverageValue,
            polling: Duration::from_secs(5),
            cooldown: Duration::from_secs(30),
            max_replicas: 5,
            queued: 15.0,
        }
    }

    fn scale(timeline: &mut Timeline, t: f64, replicas: i32) {
        timeline.push(
            t,
            Observation::Scale {
                target: "worker".into(),
                replicas,
                ready_replicas: replicas,
                manager: Some("keda".into()),
            },
        );
    }

    fn mark(timeline: &mut Timeline, t: f64, label: &str) {
        timeline.push(
            t,
            Observation::Marker {
                label: label.into(),
            },
        );
    }

    fn value(t: f64, v: f64) -> QuerySample {
        QuerySample {
            t,
            value: Some(v),
            series: 1,
            error: None,
        }
    }

    /// A good run: idle at 0, enqueue at 20, 0→1 at 32, 2 at 50, emptied at 80, KEDA
    /// last active at 85, zero at 117.
    fn good() -> (Timeline, KedaRecording) {
        let mut t = Timeline::new("x", "2026-01-01T00:00:00Z");
        scale(&mut t, 0.0, 1);
        scale(&mut t, 8.0, 0);
        mark(&mut t, 10.0, IDLE);
        mark(&mut t, 20.0, ENQUEUED);
        scale(&mut t, 32.0, 1);
        scale(&mut t, 50.0, 2);
        mark(&mut t, 80.0, DRAINED);
        scale(&mut t, 117.0, 0);
        let recording = KedaRecording {
            scaled_object: "so".into(),
            query: "sum(q)".into(),
            values: vec![
                value(5.0, 0.0),
                value(25.0, 15.0),
                value(60.0, 15.0),
                value(84.0, 15.0),
                value(90.0, 0.0),
            ],
            states: vec![ScaledObjectState {
                t: 86.0,
                last_active: Some(85.0),
                ..Default::default()
            }],
        };
        (t, recording)
    }

    fn run(timeline: &Timeline, recording: &KedaRecording) -> Verdict {
        let spec = spec();
        judge(
            &spec,
            &Budgets::new(&spec, &ClusterIntervals::default()),
            timeline,
            recording,
        )
    }

    #[test]
    fn the_threshold_implies_the_count() {
        let mut s = spec();
        assert_eq!(s.expected(), 2);
        s.queued = 1000.0;
        assert_eq!(s.expected(), 5, "capped at maxReplicaCount");
        s.metric_type = MetricType::Value;
        assert_eq!(s.expected(), 1);
    }

    #[test]
    fn budgets_come_from_the_settings() {
        let b = Budgets::new(&spec(), &ClusterIntervals::default());
        assert_eq!(b.activation, Duration::from_secs(5 + 15 + 15));
        assert_eq!(b.return_to_zero, Duration::from_secs(30 + 5 + 15 + 15));
    }

    #[test]
    fn a_good_run_passes_with_its_numbers() {
        let (t, r) = good();
        let v = run(&t, &r);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.message);
        assert!(
            v.message.contains("activated it 12s after"),
            "{}",
            v.message
        );
        assert!(
            v.message.contains("32s after the trigger was last active"),
            "{}",
            v.message
        );
    }

    #[test]
    fn not_idle_at_zero_fails() {
        let (mut t, r) = good();
        t.samples.retain(|s| s.t != 8.0);
        let v = run(&t, &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.message.contains("did not idle at zero: 1 replicas"),
            "{}",
            v.message
        );
    }

    #[test]
    fn a_query_that_returns_nothing_fails_with_the_values() {
        let (t, mut r) = good();
        for s in &mut r.values {
            s.value = None;
            s.series = 0;
        }
        let v = run(&t, &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.message.contains("never rose above activationThreshold 0"),
            "{}",
            v.message
        );
        assert!(v.message.contains("(empty)"), "{}", v.message);
    }

    #[test]
    fn a_late_activation_fails() {
        let (mut t, r) = good();
        for s in &mut t.samples {
            if s.t == 32.0 {
                s.t = 60.0;
            } else if s.t == 50.0 {
                s.t = 70.0;
            }
        }
        t.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        let v = run(&t, &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.message
                .contains("40s after the work was enqueued, beyond the 35s budget"),
            "{}",
            v.message
        );
    }

    #[test]
    fn short_of_or_beyond_the_count_fails() {
        let (mut t, r) = good();
        t.samples.retain(|s| s.t != 50.0);
        let v = run(&t, &r);
        assert!(
            v.message.contains("reached only 1 of the 2 replicas"),
            "{}",
            v.message
        );
        let (mut t, r) = good();
        scale(&mut t, 55.0, 4);
        t.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        let v = run(&t, &r);
        assert!(
            v.message.contains("scaled to 4 replicas, beyond the 2"),
            "{}",
            v.message
        );
    }

    #[test]
    fn zero_before_the_cooldown_or_never_fails() {
        let (mut t, r) = good();
        for s in &mut t.samples {
            if s.t == 117.0 {
                s.t = 95.0;
            }
        }
        let v = run(&t, &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.message.contains("before its cooldownPeriod of 30s"),
            "{}",
            v.message
        );
        let (mut t, r) = good();
        t.samples.retain(|s| s.t != 117.0);
        let v = run(&t, &r);
        assert!(
            v.message.contains("did not return to zero within 65s"),
            "{}",
            v.message
        );
    }
}

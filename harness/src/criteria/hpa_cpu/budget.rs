//! How long the HPA probe may wait, and what the judge allows: derived from the
//! cluster's intervals and the HPA's own behaviour, never from a fixed number of minutes.

use super::scaling::{Direction, ScalingRules, ScalingSpec, SelectPolicy, replica_limit};
use crate::cluster::ClusterIntervals;
use std::time::Duration;

/// The most the probe may wait on what the submission's own behaviour sets (load on
/// until maxReplicas, then back to minReplicas). Every such wait is derived from the
/// HPA's values, so without a cap `selectPolicy: Disabled` or one pod per 1,800 s
/// would hold the grader for hours; a spec that needs more fails before any wait.
pub const MAX_PROBE: Duration = Duration::from_secs(25 * 60);

/// Once the target scaled up, a stretch this long without a further change ends the
/// load: the longest scale-up policy period, at least two HPA syncs, plus the slack.
pub fn quiet(intervals: &ClusterIntervals, spec: &ScalingSpec) -> Duration {
    let up_period = spec
        .scale_up
        .policies
        .iter()
        .map(|p| p.period_seconds)
        .max()
        .unwrap_or(15)
        .max(0);
    Duration::from_secs(u64::from(up_period.unsigned_abs())).max(intervals.hpa_sync_period * 2)
        + intervals.observation_slack
}

/// The most the load stays on: the first scale-up, the policy-limited walk from
/// minReplicas to maxReplicas, and one quiet stretch.
pub fn load(intervals: &ClusterIntervals, spec: &ScalingSpec) -> Duration {
    first_scale_up(intervals)
        + steps_duration(
            intervals,
            &spec.scale_up,
            spec.min_replicas,
            spec.max_replicas,
        )
        + quiet(intervals, spec)
}

/// The probe's waits on the submission's behaviour at their longest (the load, then the
/// way back from maxReplicas), or why they cannot fit inside [`MAX_PROBE`]: the
/// submission's own settings, a "fail" given before anything is applied.
pub fn within_cap(intervals: &ClusterIntervals, spec: &ScalingSpec) -> Result<Duration, String> {
    let up = load(intervals, spec);
    let down = scale_down(intervals, spec, spec.max_replicas) + intervals.observation_slack;
    let total = up.saturating_add(down);
    if total <= MAX_PROBE {
        return Ok(total);
    }
    let why = match (spec.scale_up.select_policy, spec.scale_down.select_policy) {
        (_, SelectPolicy::Disabled) => {
            "scaleDown selectPolicy Disabled never returns to minReplicas"
        }
        (SelectPolicy::Disabled, _) => "scaleUp selectPolicy Disabled never reaches maxReplicas",
        _ => "its stabilization windows and policy periods are too slow to observe",
    };
    Err(format!(
        "the HPA's own behaviour cannot be observed within the probe's cap of {} s: {why} (load until maxReplicas={} needs up to {} s, back to minReplicas={} up to {} s, scaleDown stabilizationWindowSeconds={})",
        MAX_PROBE.as_secs(),
        spec.max_replicas,
        fmt_secs(up),
        spec.min_replicas,
        fmt_secs(down),
        spec.scale_down.stabilization_window_seconds,
    ))
}

/// Whole seconds, or "more than <cap>" for a walk that was cut off at the cap.
fn fmt_secs(duration: Duration) -> String {
    if duration > MAX_PROBE {
        format!("more than {}", MAX_PROBE.as_secs())
    } else {
        duration.as_secs().to_string()
    }
}

/// From the moment load arrives to the autoscaler's first scale-up.
pub fn first_scale_up(intervals: &ClusterIntervals) -> Duration {
    intervals.metric_lag() + intervals.hpa_sync_period + intervals.observation_slack
}

/// From the end of the load until the target is back at `minReplicas`, starting
/// from `peak`: the metrics drain, the stabilization window, then every policy-limited
/// step at HPA sync granularity, plus one sync and the slack.
pub fn scale_down(intervals: &ClusterIntervals, spec: &ScalingSpec, peak: i32) -> Duration {
    let window = Duration::from_secs(u64::from(
        spec.scale_down.stabilization_window_seconds.max(0) as u32,
    ));
    intervals.metric_lag()
        + window
        + steps_duration(intervals, &spec.scale_down, peak, spec.min_replicas)
        + intervals.hpa_sync_period
        + intervals.observation_slack
}

/// Emulates the controller's policy-limited walk from `from` to `to` at one decision
/// per sync period and returns how long it takes (zero when no step is needed). A walk
/// that takes longer than [`MAX_PROBE`] is cut off there: the result is then just over
/// the cap, which is all a caller needs to refuse it.
pub fn steps_duration(
    intervals: &ClusterIntervals,
    rules: &ScalingRules,
    from: i32,
    to: i32,
) -> Duration {
    let sync = intervals.hpa_sync_period.as_secs_f64().max(1.0);
    let direction = if to < from {
        Direction::Down
    } else {
        Direction::Up
    };
    let mut current = from;
    let mut events: Vec<(f64, i32)> = Vec::new();
    let mut now = 0.0;
    // Bounded: a disabled direction or a zero-valued policy never converges.
    while now <= MAX_PROBE.as_secs_f64() {
        if current == to {
            return Duration::from_secs_f64(now);
        }
        let limit = replica_limit(rules, direction, current, &events, now, 0.0);
        let next = match direction {
            Direction::Down => limit.max(to).min(current),
            Direction::Up => limit.min(to).max(current),
        };
        if next != current {
            events.push((now, next.saturating_sub(current)));
            current = next;
            if current == to {
                return Duration::from_secs_f64(now);
            }
        }
        now += sync;
    }
    Duration::from_secs_f64(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::hpa_cpu::scaling::{Policy, PolicyKind, SelectPolicy};

    fn rules(window: i32, policies: Vec<Policy>) -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: window,
            select_policy: SelectPolicy::Max,
            policies,
        }
    }

    #[test]
    fn scale_down_budget_counts_window_and_policy_periods() {
        let intervals = ClusterIntervals::default();
        // 50 % per 60 s from 8 to 2: 8 -> 4 at 0 s, 4 -> 2 at 60 s.
        let spec = ScalingSpec {
            min_replicas: 2,
            max_replicas: 10,
            cpu_target_utilization: Some(50),
            scale_up: ScalingSpec::default_scale_up(),
            scale_down: rules(
                300,
                vec![Policy {
                    kind: PolicyKind::Percent,
                    value: 50,
                    period_seconds: 60,
                }],
            ),
        };
        assert_eq!(
            steps_duration(&intervals, &spec.scale_down, 8, 2),
            Duration::from_secs(60)
        );
        // 45 s lag + 300 s window + 60 s steps + 15 s sync + 5 s slack.
        assert_eq!(scale_down(&intervals, &spec, 8), Duration::from_secs(425));
        assert_eq!(
            steps_duration(&intervals, &spec.scale_down, 2, 2),
            Duration::ZERO
        );
    }

    #[test]
    fn one_pod_per_period_needs_one_period_per_pod() {
        let intervals = ClusterIntervals::default();
        let down = rules(
            0,
            vec![Policy {
                kind: PolicyKind::Pods,
                value: 1,
                period_seconds: 30,
            }],
        );
        // 4 -> 3 at 0, 3 -> 2 at 30, 2 -> 1 at 60.
        assert_eq!(
            steps_duration(&intervals, &down, 4, 1),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_disabled_direction_runs_out_instead_of_looping() {
        let intervals = ClusterIntervals::default();
        let mut down = rules(0, vec![]);
        down.select_policy = SelectPolicy::Disabled;
        let walk = steps_duration(&intervals, &down, 4, 1);
        assert!(walk > MAX_PROBE && walk < MAX_PROBE + Duration::from_secs(60));
    }

    fn spec(scale_down: ScalingRules) -> ScalingSpec {
        ScalingSpec {
            min_replicas: 1,
            max_replicas: 10,
            cpu_target_utilization: Some(50),
            scale_up: ScalingSpec::default_scale_up(),
            scale_down,
        }
    }

    #[test]
    fn the_default_behaviour_fits_the_cap() {
        let intervals = ClusterIntervals::default();
        let total = within_cap(&intervals, &spec(ScalingSpec::default_scale_down())).unwrap();
        assert!(total > Duration::from_secs(300), "{total:?}");
    }

    /// Issue 12, point 1: these held the probe for about 41 hours and 4.5 hours.
    #[test]
    fn a_scale_down_too_slow_for_the_cap_fails_before_waiting() {
        let intervals = ClusterIntervals::default();
        let mut disabled = ScalingSpec::default_scale_down();
        disabled.select_policy = SelectPolicy::Disabled;
        let message = within_cap(&intervals, &spec(disabled)).unwrap_err();
        assert!(
            message.contains("scaleDown selectPolicy Disabled"),
            "{message}"
        );
        let one_pod_per_half_hour = rules(
            0,
            vec![Policy {
                kind: PolicyKind::Pods,
                value: 1,
                period_seconds: 1800,
            }],
        );
        let message = within_cap(&intervals, &spec(one_pod_per_half_hour)).unwrap_err();
        assert!(message.contains("too slow"), "{message}");
        assert!(message.contains("more than 1500"), "{message}");
        // A window of i32::MAX seconds: no overflow, a "fail" with the numbers.
        let message = within_cap(&intervals, &spec(rules(i32::MAX, vec![]))).unwrap_err();
        assert!(
            message.contains("stabilizationWindowSeconds=2147483647"),
            "{message}"
        );
    }
}

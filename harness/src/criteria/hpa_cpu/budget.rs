//! How long the HPA probe may wait, and what the judge allows: derived from the
//! cluster's intervals and the HPA's own behaviour, never from a fixed number of minutes.

use super::scaling::{Direction, ScalingRules, ScalingSpec, replica_limit};
use crate::cluster::ClusterIntervals;
use std::time::Duration;

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
/// per sync period and returns how long it takes (zero when no step is needed).
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
    for _ in 0..10_000 {
        if current == to {
            return Duration::from_secs_f64(now);
        }
        let limit = replica_limit(rules, direction, current, &events, now, 0.0);
        let next = match direction {
            Direction::Down => limit.max(to).min(current),
            Direction::Up => limit.min(to).max(current),
        };
        if next != current {
            events.push((now, next - current));
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
        assert!(steps_duration(&intervals, &down, 4, 1) > Duration::from_secs(3600));
    }
}

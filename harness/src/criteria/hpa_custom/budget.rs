//! How long the custom-metrics probe may wait, and what its judge allows: the
//! Prometheus scrape interval, the adapter's relist interval and the rule's own rate
//! window on top of the HPA's behaviour (`hpa_cpu::budget` walks its policies).

use crate::cluster::ClusterIntervals;
use crate::criteria::hpa_cpu::budget::{MAX_PROBE, scale_down, steps_duration};
use crate::criteria::hpa_cpu::scaling::ScalingSpec;
use std::time::Duration;

/// The cluster's Prometheus scrapes (and evaluates) every 15 s.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
/// prometheus-adapter `--metrics-relist-interval`: how often it rediscovers series.
pub const ADAPTER_RELIST: Duration = Duration::from_secs(30);
/// A rule without a range (a gauge) reflects a change within one scrape.
const NO_WINDOW: Duration = Duration::ZERO;

/// The pipeline's timing for one rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pipeline {
    pub scrape: Duration,
    pub relist: Duration,
    /// The rule's rate window, if it has one.
    pub window: Duration,
}

impl Pipeline {
    pub fn new(window: Option<Duration>) -> Pipeline {
        Pipeline {
            scrape: SCRAPE_INTERVAL,
            relist: ADAPTER_RELIST,
            window: window.unwrap_or(NO_WINDOW),
        }
    }

    /// A window that holds fewer than two scrapes never yields a rate: the rule's fault.
    pub fn window_problem(&self) -> Option<String> {
        (self.window > Duration::ZERO && self.window < self.scrape * 2).then(|| {
            format!(
                "the rule's rate window of {}s holds fewer than two {}s scrapes, so rate() never has a value",
                self.window.as_secs(),
                self.scrape.as_secs()
            )
        })
    }

    /// From running pods (and the adapter on the new rules) to the metric served for
    /// them: service discovery and a first scrape, a second scrape for rate(), the
    /// adapter's relist, plus the slack.
    pub fn visible(&self, intervals: &ClusterIntervals) -> Duration {
        self.scrape * 3 + self.relist + intervals.observation_slack
    }

    /// From a step in load to the metric fully reflecting it: one scrape plus the
    /// window (the rate averages over all of it).
    pub fn lag(&self) -> Duration {
        self.scrape + self.window
    }

    /// The intervals the CPU judges read, with the metrics' lag made this pipeline's:
    /// their `metric_lag()` (2 x resolution + sync) becomes scrape + window + sync.
    pub fn as_intervals(&self, intervals: &ClusterIntervals) -> ClusterIntervals {
        ClusterIntervals {
            metrics_resolution: self.lag() / 2,
            ..*intervals
        }
    }

    /// From load start to the first scale-up: the lag, a relist (a rule that counts
    /// only the loaded route sees its series appear with the load), the scaleUp
    /// stabilization window, an HPA sync and the slack.
    pub fn first_scale_up(&self, intervals: &ClusterIntervals, spec: &ScalingSpec) -> Duration {
        self.lag()
            + self.relist
            + secs(spec.scale_up.stabilization_window_seconds)
            + intervals.hpa_sync_period
            + intervals.observation_slack
    }

    /// From load start until `expected` replicas: the first scale-up, then the
    /// policy-limited walk from minReplicas, one more sync for a decision that waited on
    /// a metric of the newest pods.
    pub fn reach(
        &self,
        intervals: &ClusterIntervals,
        spec: &ScalingSpec,
        expected: i32,
    ) -> Duration {
        self.first_scale_up(intervals, spec)
            + steps_duration(intervals, &spec.scale_up, spec.min_replicas, expected)
            + intervals.hpa_sync_period
    }

    /// How long the load stays on at most: until `expected`, then a quiet stretch in
    /// which the judge sees that the HPA stays there (longest scale-up period, at least
    /// two syncs).
    pub fn load(
        &self,
        intervals: &ClusterIntervals,
        spec: &ScalingSpec,
        expected: i32,
    ) -> Duration {
        let up_period = spec
            .scale_up
            .policies
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(15);
        self.reach(intervals, spec, expected)
            + secs(up_period).max(intervals.hpa_sync_period * 2)
            + intervals.observation_slack
    }

    /// Everything the probe waits on the submission's settings for, or why it cannot
    /// fit inside [`MAX_PROBE`] (a "fail" before anything is applied).
    pub fn within_cap(
        &self,
        intervals: &ClusterIntervals,
        spec: &ScalingSpec,
        expected: i32,
    ) -> Result<Duration, String> {
        let visible = self.visible(intervals);
        let load = self.load(intervals, spec, expected);
        let down =
            scale_down(&self.as_intervals(intervals), spec, expected) + intervals.observation_slack;
        let total = visible.saturating_add(load).saturating_add(down);
        if total <= MAX_PROBE {
            return Ok(total);
        }
        Err(format!(
            "the HPA's own settings cannot be observed within the probe's cap of {} s: the metric needs up to {} s to be served, the load up to {} s to reach {expected} replicas (scaleUp window {} s, rate window {} s), the way back to minReplicas={} up to {} s (scaleDown window {} s)",
            MAX_PROBE.as_secs(),
            visible.as_secs(),
            load.as_secs().min(MAX_PROBE.as_secs() + 1),
            spec.scale_up.stabilization_window_seconds,
            self.window.as_secs(),
            spec.min_replicas,
            down.as_secs().min(MAX_PROBE.as_secs() + 1),
            spec.scale_down.stabilization_window_seconds,
        ))
    }
}

fn secs(seconds: i32) -> Duration {
    Duration::from_secs(u64::from(seconds.max(0).unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::hpa_cpu::scaling::{Policy, PolicyKind, ScalingRules, SelectPolicy};

    fn spec(up_window: i32, down_window: i32) -> ScalingSpec {
        ScalingSpec {
            min_replicas: 1,
            max_replicas: 4,
            cpu_target_utilization: None,
            scale_up: ScalingRules {
                stabilization_window_seconds: up_window,
                select_policy: SelectPolicy::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Pods,
                    value: 1,
                    period_seconds: 15,
                }],
            },
            scale_down: ScalingRules {
                stabilization_window_seconds: down_window,
                select_policy: SelectPolicy::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_seconds: 15,
                }],
            },
        }
    }

    #[test]
    fn budgets_add_scrape_relist_window_and_policies() {
        let intervals = ClusterIntervals::default();
        let pipeline = Pipeline::new(Some(Duration::from_secs(60)));
        // 3 x 15 s scrapes + 30 s relist + 5 s slack.
        assert_eq!(pipeline.visible(&intervals), Duration::from_secs(80));
        // 15 s scrape + 60 s window + 30 s relist + 0 s window + 15 s sync + 5 s slack.
        assert_eq!(
            pipeline.first_scale_up(&intervals, &spec(0, 0)),
            Duration::from_secs(125)
        );
        // ... + 1 -> 3 at one pod per 15 s (15 s) + one sync.
        assert_eq!(
            pipeline.reach(&intervals, &spec(0, 0), 3),
            Duration::from_secs(155)
        );
        // The CPU judges' metric lag becomes scrape + window + sync.
        let custom = pipeline.as_intervals(&intervals);
        assert_eq!(custom.metric_lag(), Duration::from_secs(90));
        assert!(pipeline.within_cap(&intervals, &spec(0, 30), 3).is_ok());
    }

    #[test]
    fn settings_too_slow_for_the_cap_fail_with_the_numbers() {
        let intervals = ClusterIntervals::default();
        let pipeline = Pipeline::new(Some(Duration::from_secs(600)));
        let message = pipeline
            .within_cap(&intervals, &spec(0, 1200), 3)
            .unwrap_err();
        assert!(message.contains("cap of 1500 s"), "{message}");
        assert!(message.contains("rate window 600 s"), "{message}");
    }

    #[test]
    fn a_window_shorter_than_two_scrapes_never_yields_a_rate() {
        assert!(
            Pipeline::new(Some(Duration::from_secs(20)))
                .window_problem()
                .is_some()
        );
        assert!(
            Pipeline::new(Some(Duration::from_secs(30)))
                .window_problem()
                .is_none()
        );
        assert!(Pipeline::new(None).window_problem().is_none());
    }
}

//! What an HPA promises about its target's replicas, and the controller's arithmetic
//! for how far one decision may move them: the shared vocabulary of the HPA's judge
//! and its budgets.
//!
//! [`ScalingSpec::from_hpa`] fills in the API server's defaults; [`replica_limit`]
//! replays `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`
//! (`pkg/controller/podautoscaler`).

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscaler};
use serde::{Deserialize, Serialize};

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
        let mut added: i32 = 0;
        let mut deleted: i32 = 0;
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
                // Saturating: every number here comes from the submission's HPA.
                if change > 0 {
                    added = added.saturating_add(change);
                } else {
                    deleted = deleted.saturating_sub(change);
                }
            }
        }
        let period_start = current.saturating_sub(added).saturating_add(deleted);
        match (direction, policy.kind) {
            (Direction::Up, PolicyKind::Pods) => period_start.saturating_add(policy.value),
            (Direction::Up, PolicyKind::Percent) => {
                (f64::from(period_start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32
            }
            (Direction::Down, PolicyKind::Pods) => period_start.saturating_sub(policy.value),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

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

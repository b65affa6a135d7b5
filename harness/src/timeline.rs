//! What a live probe observed, in order: the input of the criteria's judges.
//!
//! A timeline is plain data (serde), so judges are pure functions that unit
//! tests feed with synthetic timelines, and a recorded one can be judged again.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one probe saw. `t` of every sample is seconds since `started_at`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The test or criterion that recorded it.
    pub name: String,
    /// RFC 3339 wall-clock time of `t = 0`.
    pub started_at: String,
    pub samples: Vec<Sample>,
    /// Where [`crate::observe::Recorder::finish`] wrote it, if it could.
    #[serde(skip)]
    pub saved_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: f64,
    #[serde(flatten)]
    pub what: Observation,
}

/// One observation. Watches produce most of them; the probe adds markers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Observation {
    /// A scale target (Deployment, StatefulSet) changed.
    Scale {
        target: String,
        /// `spec.replicas`: what was asked for.
        replicas: i32,
        ready_replicas: i32,
        /// Field manager that last wrote `spec.replicas` (managedFields), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manager: Option<String>,
    },
    /// An autoscaler's status changed.
    Hpa {
        name: String,
        current_replicas: i32,
        desired_replicas: i32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        metrics: Vec<MetricReading>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conditions: Vec<ConditionState>,
    },
    /// A pod changed phase, readiness or node.
    Pod {
        name: String,
        phase: String,
        ready: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The scheduler's message while PodScheduled is False (`0/3 nodes are available: ...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A ResourceQuota's status changed: what it allows and what is in use.
    Quota {
        name: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        hard: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        used: BTreeMap<String, String>,
    },
    /// A Kubernetes event in the test's namespace.
    Event {
        object: String,
        reason: String,
        message: String,
        #[serde(rename = "type")]
        type_: String,
    },
    /// Something the probe did or decided (`baseline`, `load-start`, `load-stop`).
    Marker { label: String },
    /// A pod's containers' resources (what it runs with, changed by an in-place resize)
    /// and what the VPA admission controller says it set (annotation `vpaUpdates`).
    PodResources {
        name: String,
        containers: Vec<ContainerResources>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vpa_updates: Option<String>,
    },
    /// A VerticalPodAutoscaler's status changed: its recommendation and conditions.
    Vpa {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recommendation: Vec<ContainerRecommendation>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conditions: Vec<ConditionState>,
    },
}

/// Resource name -> quantity as the API server wrote it (`cpu` -> `250m`).
pub type Quantities = BTreeMap<String, String>;

/// One container's requests and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerResources {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: Quantities,
}

/// One container's recommendation in a VPA's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecommendation {
    pub container_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lower_bound: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upper_bound: Quantities,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uncapped_target: Quantities,
}

/// One of the HPA's current metric values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReading {
    /// `cpu`, `memory`, or a custom metric name.
    pub name: String,
    /// Current average utilization in percent of requests, for Resource metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<i32>,
    /// Current value as written by the HPA (a quantity), for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionState {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One recorded state of a pod (see [`Timeline::pod_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PodState<'a> {
    pub t: f64,
    pub phase: &'a str,
    pub ready: bool,
    pub node: Option<&'a str>,
    /// Reason of a PodScheduled=False condition (`Unschedulable`).
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// One recorded status of a ResourceQuota (see [`Timeline::quota`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaState<'a> {
    pub t: f64,
    pub hard: &'a BTreeMap<String, String>,
    pub used: &'a BTreeMap<String, String>,
}

impl Observation {
    /// One line for a timeline excerpt.
    pub fn describe(&self) -> String {
        match self {
            Observation::Scale {
                target,
                replicas,
                ready_replicas,
                manager,
            } => match manager {
                Some(m) => format!("{target} replicas={replicas} ready={ready_replicas} (by {m})"),
                None => format!("{target} replicas={replicas} ready={ready_replicas}"),
            },
            Observation::Hpa {
                name,
                current_replicas,
                desired_replicas,
                ..
            } => format!("HPA {name} current={current_replicas} desired={desired_replicas}"),
            Observation::Pod {
                name,
                phase,
                ready,
                node,
                reason,
                message,
            } => {
                let mut line = format!("pod {name} {phase}");
                if *ready {
                    line.push_str(" ready");
                }
                if let Some(node) = node {
                    line.push_str(&format!(" on {node}"));
                }
                if let Some(reason) = reason {
                    line.push_str(&format!(" PodScheduled=False {reason}"));
                }
                if let Some(message) = message {
                    line.push_str(&format!(": {message}"));
                }
                line
            }
            Observation::Quota { name, hard, used } => {
                format!(
                    "ResourceQuota {name} hard [{}] used [{}]",
                    pairs(hard),
                    pairs(used)
                )
            }
            Observation::Event {
                object,
                reason,
                message,
                type_,
            } => format!("event {type_} {object} {reason}: {message}"),
            Observation::Marker { label } => format!("[{label}]"),
            Observation::PodResources {
                name,
                containers,
                vpa_updates,
            } => {
                let mut line = format!("pod {name} resources");
                for c in containers {
                    line.push_str(&format!(
                        " {}: requests [{}] limits [{}]",
                        c.name,
                        pairs(&c.requests),
                        pairs(&c.limits)
                    ));
                }
                if let Some(updates) = vpa_updates {
                    line.push_str(&format!(" ({updates})"));
                }
                line
            }
            Observation::Vpa {
                name,
                recommendation,
                ..
            } => {
                if recommendation.is_empty() {
                    return format!("VPA {name} no recommendation");
                }
                let mut line = format!("VPA {name} recommends");
                for r in recommendation {
                    line.push_str(&format!(
                        " {}: target [{}] lower [{}] upper [{}]",
                        r.container_name,
                        pairs(&r.target),
                        pairs(&r.lower_bound),
                        pairs(&r.upper_bound)
                    ));
                }
                line
            }
        }
    }
}

/// `k=v k=v`, for one line of a timeline excerpt.
fn pairs(quantities: &Quantities) -> String {
    quantities
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A change of a scale target's `spec.replicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStep {
    pub t: f64,
    pub from: i32,
    pub to: i32,
    pub manager: Option<String>,
}

impl Timeline {
    /// The evidence a stopped probe attaches: the Warning events it saw (the API server's
    /// and controllers' own reasons), then the saved JSON, when there is one.
    pub fn stop_evidence(&self) -> Vec<crate::verdict::Evidence> {
        let warnings: Vec<String> = self
            .event_lines()
            .into_iter()
            .filter(|line| line.contains(" Warning "))
            .collect();
        let mut evidence = Vec::new();
        if !warnings.is_empty() {
            evidence.push(crate::verdict::Evidence::Events { lines: warnings });
        }
        evidence.extend(self.file_evidence());
        evidence
    }

    /// Evidence that points at the saved JSON, when there is one.
    pub fn file_evidence(&self) -> Option<crate::verdict::Evidence> {
        self.saved_to
            .as_ref()
            .map(|path| crate::verdict::Evidence::TimelineFile { path: path.clone() })
    }

    pub fn new(name: impl Into<String>, started_at: impl Into<String>) -> Self {
        Timeline {
            name: name.into(),
            started_at: started_at.into(),
            samples: Vec::new(),
            saved_to: None,
        }
    }

    pub fn push(&mut self, t: f64, what: Observation) {
        self.samples.push(Sample { t, what });
    }

    /// Time of the first marker with this label.
    pub fn marker(&self, label: &str) -> Option<f64> {
        self.samples.iter().find_map(|s| match &s.what {
            Observation::Marker { label: l } if l == label => Some(s.t),
            _ => None,
        })
    }

    /// `spec.replicas` of `target` as (t, replicas, manager), one entry per observation.
    pub fn replicas(&self, target: &str) -> Vec<(f64, i32, Option<String>)> {
        self.samples
            .iter()
            .filter_map(|s| match &s.what {
                Observation::Scale {
                    target: name,
                    replicas,
                    manager,
                    ..
                } if name == target => Some((s.t, *replicas, manager.clone())),
                _ => None,
            })
            .collect()
    }

    /// The replica count of `target` just before or at `t`.
    pub fn replicas_at(&self, target: &str, t: f64) -> Option<i32> {
        self.replicas(target)
            .into_iter()
            .take_while(|(at, _, _)| *at <= t)
            .last()
            .map(|(_, r, _)| r)
    }

    /// Changes of `spec.replicas` of `target` at or after `since` (repeated values collapse).
    pub fn steps(&self, target: &str, since: f64) -> Vec<ReplicaStep> {
        let mut steps = Vec::new();
        let mut last: Option<i32> = None;
        for (t, replicas, manager) in self.replicas(target) {
            if let Some(previous) = last
                && previous != replicas
                && t >= since
            {
                steps.push(ReplicaStep {
                    t,
                    from: previous,
                    to: replicas,
                    manager,
                });
            }
            last = Some(replicas);
        }
        steps
    }

    /// HPA status observations of `name`: (t, current, desired, metrics).
    pub fn hpa_states(&self, name: &str) -> Vec<(f64, i32, i32, &[MetricReading])> {
        self.samples
            .iter()
            .filter_map(|s| match &s.what {
                Observation::Hpa {
                    name: n,
                    current_replicas,
                    desired_replicas,
                    metrics,
                    ..
                } if n == name => Some((
                    s.t,
                    *current_replicas,
                    *desired_replicas,
                    metrics.as_slice(),
                )),
                _ => None,
            })
            .collect()
    }

    /// A short human excerpt of the replica history around `[from, to]`, for evidence.
    pub fn replica_excerpt(
        &self,
        target: &str,
        from: f64,
        to: f64,
    ) -> Vec<crate::verdict::TimelinePoint> {
        let mut points = Vec::new();
        let mut last: Option<i32> = None;
        for sample in &self.samples {
            let what = match &sample.what {
                Observation::Scale {
                    target: name,
                    replicas,
                    ready_replicas,
                    manager,
                } if name == target => {
                    if last == Some(*replicas) {
                        continue;
                    }
                    last = Some(*replicas);
                    match manager {
                        Some(m) => {
                            format!("{target} replicas={replicas} ready={ready_replicas} (by {m})")
                        }
                        None => format!("{target} replicas={replicas} ready={ready_replicas}"),
                    }
                }
                Observation::Marker { label } => format!("[{label}]"),
                _ => continue,
            };
            if sample.t >= from && sample.t <= to {
                points.push(crate::verdict::TimelinePoint {
                    seconds: (sample.t * 10.0).round() / 10.0,
                    what,
                });
            }
        }
        points
    }

    /// Every recorded state of pod `name`, in order.
    pub fn pod_states(&self, name: &str) -> Vec<PodState<'_>> {
        self.samples
            .iter()
            .filter_map(|s| match &s.what {
                Observation::Pod {
                    name: n,
                    phase,
                    ready,
                    node,
                    reason,
                    message,
                } if n == name => Some(PodState {
                    t: s.t,
                    phase,
                    ready: *ready,
                    node: node.as_deref(),
                    reason: reason.as_deref(),
                    message: message.as_deref(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The last recorded status of ResourceQuota `name`.
    pub fn quota(&self, name: &str) -> Option<QuotaState<'_>> {
        self.samples.iter().rev().find_map(|s| match &s.what {
            Observation::Quota {
                name: n,
                hard,
                used,
            } if n == name => Some(QuotaState { t: s.t, hard, used }),
            _ => None,
        })
    }

    /// The samples `pick` selects, as an evidence excerpt (times rounded to 0.1 s).
    pub fn excerpt(
        &self,
        pick: impl Fn(&Observation) -> bool,
    ) -> Vec<crate::verdict::TimelinePoint> {
        self.samples
            .iter()
            .filter(|s| pick(&s.what))
            .map(|s| crate::verdict::TimelinePoint {
                seconds: (s.t * 10.0).round() / 10.0,
                what: s.what.describe(),
            })
            .collect()
    }

    /// Events of the namespace with their reason, in order, for evidence.
    pub fn event_lines(&self) -> Vec<String> {
        self.events().map(|e| e.line()).collect()
    }

    /// The namespace's events, in order.
    pub fn events(&self) -> impl Iterator<Item = RecordedEvent<'_>> {
        self.samples.iter().filter_map(|s| match &s.what {
            Observation::Event {
                object,
                reason,
                message,
                type_,
            } => Some(RecordedEvent {
                t: s.t,
                type_,
                object,
                reason,
                message,
            }),
            _ => None,
        })
    }
}

/// One Kubernetes event as the timeline recorded it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedEvent<'t> {
    pub t: f64,
    pub type_: &'t str,
    /// `Kind/name`.
    pub object: &'t str,
    pub reason: &'t str,
    pub message: &'t str,
}

impl RecordedEvent<'_> {
    /// `12.3s Warning ReplicaSet/web-5d9f FailedCreate: …`
    pub fn line(&self) -> String {
        format!(
            "{:.1}s {} {} {}: {}",
            self.t, self.type_, self.object, self.reason, self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(replicas: i32) -> Observation {
        Observation::Scale {
            target: "d".into(),
            replicas,
            ready_replicas: replicas,
            manager: None,
        }
    }

    #[test]
    fn steps_collapse_repeats_and_respect_since() {
        let mut timeline = Timeline::new("t", "2026-01-01T00:00:00Z");
        for (t, r) in [(0.0, 2), (1.0, 2), (5.0, 4), (6.0, 4), (9.0, 3)] {
            timeline.push(t, scale(r));
        }
        let steps = timeline.steps("d", 0.0);
        assert_eq!(
            steps.iter().map(|s| (s.from, s.to)).collect::<Vec<_>>(),
            vec![(2, 4), (4, 3)]
        );
        assert_eq!(timeline.steps("d", 6.0).len(), 1);
        assert_eq!(timeline.replicas_at("d", 5.5), Some(4));
        assert_eq!(timeline.replicas_at("d", -1.0), None);
    }

    #[test]
    fn round_trips_through_json_with_kind_tags() {
        let mut timeline = Timeline::new("t", "2026-01-01T00:00:00Z");
        timeline.push(
            0.0,
            Observation::Marker {
                label: "load-start".into(),
            },
        );
        timeline.push(1.0, scale(3));
        let json = serde_json::to_value(&timeline).unwrap();
        assert_eq!(json["samples"][0]["kind"], "marker");
        assert_eq!(json["samples"][1]["kind"], "scale");
        let back: Timeline = serde_json::from_value(json).unwrap();
        assert_eq!(back, timeline);
        assert_eq!(back.marker("load-start"), Some(0.0));
    }

    #[test]
    fn pod_scheduling_and_quota_status_round_trip_and_read_back() {
        let mut timeline = Timeline::new("t", "2026-01-01T00:00:00Z");
        let pod = |node: Option<&str>, message: Option<&str>| Observation::Pod {
            name: "p".into(),
            phase: "Pending".into(),
            ready: false,
            node: node.map(Into::into),
            reason: message.map(|_| "Unschedulable".into()),
            message: message.map(Into::into),
        };
        timeline.push(0.5, pod(None, Some("0/3 nodes are available")));
        timeline.push(2.0, pod(Some("n1"), None));
        let quantities = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        timeline.push(
            1.0,
            Observation::Quota {
                name: "q".into(),
                hard: quantities(&[("requests.cpu", "4")]),
                used: quantities(&[("requests.cpu", "0")]),
            },
        );
        let json = serde_json::to_value(&timeline).unwrap();
        assert_eq!(json["samples"][0]["message"], "0/3 nodes are available");
        assert_eq!(json["samples"][2]["kind"], "quota");
        let back: Timeline = serde_json::from_value(json).unwrap();
        assert_eq!(back, timeline);
        let states = back.pod_states("p");
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].reason, Some("Unschedulable"));
        assert_eq!(states[1].node, Some("n1"));
        let quota = back.quota("q").unwrap();
        assert_eq!((quota.t, quota.hard["requests.cpu"].as_str()), (1.0, "4"));
        assert!(back.quota("other").is_none());
        let excerpt = back.excerpt(|o| matches!(o, Observation::Pod { .. }));
        assert_eq!(
            excerpt[0].what,
            "pod p Pending PodScheduled=False Unschedulable: 0/3 nodes are available"
        );
        assert_eq!(excerpt[1].what, "pod p Pending on n1");
    }
}

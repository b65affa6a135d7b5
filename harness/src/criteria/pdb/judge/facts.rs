//! A drain read back from its timeline: the probe marks every step ([`marker`]) next
//! to the pods' readiness and nodes, and [`drain_facts`] turns them into what the
//! rules judge, so a saved timeline is judged again to the same verdict.

use crate::timeline::{Observation, Timeline};
use crate::verdict::TimelinePoint;
use std::collections::{BTreeMap, BTreeSet};

/// What the Eviction API answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Eviction {
    Allowed,
    /// 429: `cause` is the reason of the Status' first cause (`DisruptionBudget`).
    Refused {
        cause: Option<String>,
        message: String,
    },
    /// 404: the pod was already gone.
    Gone,
}

/// Timeline marker labels: the drain's steps, so that a saved timeline can be judged again.
pub mod marker {
    pub const CORDON: &str = "cordon ";
    pub const UNCORDON: &str = "uncordon ";
    pub const ALLOWED: &str = "eviction allowed ";
    pub const REFUSED: &str = "eviction refused ";
    pub const GONE: &str = "eviction found no pod ";
    pub const COMPLETE: &str = "drain complete";
    pub const STUCK: &str = "drain stuck";
    pub const TIMED_OUT: &str = "drain timed out";
}

pub fn eviction_marker(pod: &str, eviction: &Eviction) -> String {
    match eviction {
        Eviction::Allowed => format!("{}{pod}", marker::ALLOWED),
        Eviction::Gone => format!("{}{pod}", marker::GONE),
        Eviction::Refused { cause, message } => format!(
            "{}{pod}: 429 {}: {message}",
            marker::REFUSED,
            cause.as_deref().unwrap_or("no cause")
        ),
    }
}

/// How the drain ended, as its last marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    Complete,
    /// Every pod healthy, the budget allowing no disruption: nothing will ever change.
    Stuck,
    TimedOut,
}

/// One eviction attempt read back from the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub t: f64,
    pub pod: String,
    pub eviction: Eviction,
}

/// What the timeline says about the drain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainFacts {
    pub cordoned_at: Option<f64>,
    pub uncordoned_at: Option<f64>,
    pub end: Option<(f64, DrainEnd)>,
    pub attempts: Vec<Attempt>,
    /// Fewest healthy pods of the workload between the cordon and the end: (t, count).
    pub min_healthy: Option<(f64, i32)>,
    /// Longest stretch below the required count: (from, to, lowest count).
    pub longest_dip: Option<(f64, f64, i32)>,
}

/// Reads the drain back from a timeline: the markers, and the workload's healthy pods
/// (Running and Ready, not yet evicted: a pod counts as gone from its eviction on).
/// Pods of the workload are those named `<workload>-…` (a Deployment's pods).
pub fn drain_facts(timeline: &Timeline, workload: &str, required: i32) -> DrainFacts {
    let prefix = format!("{workload}-");
    let mut facts = DrainFacts::default();
    let mut healthy: BTreeMap<String, bool> = BTreeMap::new();
    let mut evicted: BTreeSet<String> = BTreeSet::new();
    let mut dip: Option<(f64, i32)> = None;
    let mut samples: Vec<_> = timeline.samples.iter().collect();
    samples.sort_by(|a, b| a.t.total_cmp(&b.t));
    for sample in samples {
        let t = sample.t;
        match &sample.what {
            Observation::Pod {
                name, phase, ready, ..
            } if name.starts_with(&prefix) => {
                healthy.insert(name.clone(), *ready && phase == "Running");
            }
            Observation::Marker { label } => {
                if label.starts_with(marker::CORDON) && facts.cordoned_at.is_none() {
                    facts.cordoned_at = Some(t);
                } else if label.starts_with(marker::UNCORDON) && facts.uncordoned_at.is_none() {
                    facts.uncordoned_at = Some(t);
                } else if let Some(pod) = label.strip_prefix(marker::ALLOWED) {
                    evicted.insert(pod.to_string());
                    facts.attempts.push(Attempt {
                        t,
                        pod: pod.to_string(),
                        eviction: Eviction::Allowed,
                    });
                } else if let Some(pod) = label.strip_prefix(marker::GONE) {
                    facts.attempts.push(Attempt {
                        t,
                        pod: pod.to_string(),
                        eviction: Eviction::Gone,
                    });
                } else if let Some(rest) = label.strip_prefix(marker::REFUSED) {
                    let (pod, rest) = rest.split_once(": 429 ").unwrap_or((rest, ""));
                    let (cause, message) = rest.split_once(": ").unwrap_or((rest, ""));
                    facts.attempts.push(Attempt {
                        t,
                        pod: pod.to_string(),
                        eviction: Eviction::Refused {
                            cause: (cause != "no cause").then(|| cause.to_string()),
                            message: message.to_string(),
                        },
                    });
                } else if facts.end.is_none() {
                    let end = match label.as_str() {
                        marker::COMPLETE => Some(DrainEnd::Complete),
                        marker::STUCK => Some(DrainEnd::Stuck),
                        marker::TIMED_OUT => Some(DrainEnd::TimedOut),
                        _ => None,
                    };
                    facts.end = end.map(|end| (t, end));
                }
            }
            _ => continue,
        }
        let Some(_) = facts.cordoned_at else { continue };
        if let Some((end, _)) = facts.end
            && t > end
        {
            continue;
        }
        let count = healthy
            .iter()
            .filter(|(pod, ok)| **ok && !evicted.contains(*pod))
            .count() as i32;
        if facts.min_healthy.is_none_or(|(_, min)| count < min) {
            facts.min_healthy = Some((t, count));
        }
        match (&mut dip, count < required) {
            (None, true) => dip = Some((t, count)),
            (Some((_, lowest)), true) => *lowest = (*lowest).min(count),
            (Some((from, lowest)), false) => {
                record_dip(&mut facts.longest_dip, *from, t, *lowest);
                dip = None;
            }
            (None, false) => {}
        }
    }
    if let Some((from, lowest)) = dip {
        let to = facts
            .end
            .map(|(t, _)| t)
            .or_else(|| timeline.samples.iter().map(|s| s.t).reduce(f64::max))
            .unwrap_or(from);
        record_dip(&mut facts.longest_dip, from, to, lowest);
    }
    facts
}

fn record_dip(longest: &mut Option<(f64, f64, i32)>, from: f64, to: f64, lowest: i32) {
    if longest.is_none_or(|(a, b, _)| to - from > b - a) {
        *longest = Some((from, to, lowest));
    }
}

/// Whether the timeline saw `pod` terminating.
pub fn terminating_seen(timeline: &Timeline, pod: &str) -> bool {
    timeline.samples.iter().any(|s| {
        matches!(&s.what, Observation::Pod { name, phase, .. } if name == pod && phase == "Terminating")
    })
}

/// The drain's markers and the workload's pod changes, for evidence.
pub fn drain_excerpt(timeline: &Timeline, workload: &str) -> Vec<TimelinePoint> {
    let prefix = format!("{workload}-");
    timeline
        .samples
        .iter()
        .filter_map(|s| {
            let what = match &s.what {
                Observation::Marker { label } => format!("[{label}]"),
                Observation::Pod {
                    name,
                    phase,
                    ready,
                    node,
                    ..
                } if name.starts_with(&prefix) => format!(
                    "pod {name} {phase}{}{}",
                    if *ready { " ready" } else { "" },
                    node.as_deref()
                        .map(|n| format!(" on {n}"))
                        .unwrap_or_default()
                ),
                _ => return None,
            };
            Some(TimelinePoint {
                seconds: (s.t * 10.0).round() / 10.0,
                what,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A timeline from JSON, as the recorder saves it.
    pub fn timeline(samples: serde_json::Value) -> Timeline {
        serde_json::from_value(serde_json::json!({
            "name": "pdb", "started_at": "2026-01-01T00:00:00Z", "samples": samples
        }))
        .expect("a timeline")
    }

    pub fn pod(t: f64, name: &str, phase: &str, ready: bool, node: &str) -> serde_json::Value {
        serde_json::json!({"t": t, "kind": "pod", "name": name, "phase": phase, "ready": ready, "node": node})
    }

    pub fn mark(t: f64, label: &str) -> serde_json::Value {
        serde_json::json!({"t": t, "kind": "marker", "label": label})
    }

    pub const REFUSAL: &str = "DisruptionBudget: The disruption budget fraud-detector-pdb needs 1 healthy pods and has 1 currently";

    /// A good drain of 2 pods under minAvailable 1: one eviction, a refusal, the
    /// replacement Ready on the destination, the second eviction.
    pub fn good_drain() -> Timeline {
        timeline(serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            pod(1.15, "api-x-1", "Terminating", true, "a"),
            mark(1.2, &format!("eviction refused api-x-2: 429 {REFUSAL}")),
            pod(1.25, "api-x-3", "Pending", false, "-"),
            mark(1.3, "uncordon b"),
            mark(1.4, &format!("eviction refused api-x-2: 429 {REFUSAL}")),
            pod(1.9, "api-x-3", "Running", true, "b"),
            mark(2.4, "eviction allowed api-x-2"),
            pod(2.45, "api-x-2", "Terminating", true, "a"),
            pod(2.5, "api-x-4", "Pending", false, "b"),
            mark(2.6, "drain complete"),
            pod(3.0, "api-x-4", "Running", true, "b"),
        ]))
    }

    #[test]
    fn facts_read_markers_and_count_healthy_pods_from_the_eviction_on() {
        let facts = drain_facts(&good_drain(), "api", 1);
        assert_eq!(facts.cordoned_at, Some(1.0));
        assert_eq!(facts.uncordoned_at, Some(1.3));
        assert_eq!(facts.end, Some((2.6, DrainEnd::Complete)));
        assert_eq!(facts.attempts.len(), 4);
        assert_eq!(
            facts.attempts[1].eviction,
            Eviction::Refused {
                cause: Some("DisruptionBudget".into()),
                message:
                    "The disruption budget fraud-detector-pdb needs 1 healthy pods and has 1 currently"
                        .into()
            }
        );
        // One pod evicted at 1.1 s: one healthy until the replacement is Ready.
        assert_eq!(facts.min_healthy, Some((1.1, 1)));
        assert_eq!(facts.longest_dip, None);
    }
}

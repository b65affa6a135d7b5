//! The judge of `vpa`: a pure function of each VPA's spec, the recorded timeline and
//! the budget. For every VPA: a recommendation within the budget; every recommended
//! value inside minAllowed/maxAllowed and only for controlled resources; then by update
//! mode, from the pods' creations, their requests and the updater's events:
//! - `Off`: no eviction and no pod changed by the VPA over the window;
//! - `Initial`: pods created after the recommendation carry it, none is evicted;
//! - `Recreate`/`Auto`: the updater evicts (its `EvictedByVPA` events: it evicts through
//!   the Eviction API, so a PDB is respected) where the requests lie outside the
//!   recommended bounds, and the replacements carry the recommendation;
//! - `InPlaceOrRecreate`: the same, by an in-place resize or by eviction; the verdict
//!   says which happened.

use crate::submission::quantity::parse_quantity;
use crate::timeline::{
    ContainerRecommendation, ContainerResources, Observation, Quantities, Timeline,
};
use crate::verdict::Outcome;
use std::collections::BTreeMap;
use std::time::Duration;

/// The updater's event on a pod it evicted (upstream's `EvictedByVPA`).
pub const EVICTED: &str = "EvictedByVPA";
/// The updater's event on a pod it resized in place.
pub const RESIZED: &str = "InPlaceResizedByVPA";
/// Marker of the probe deleting one pod (to see what an `Initial` VPA sets on a new one).
pub const DELETED_MARKER: &str = "probe-deleted-pod: ";
/// Recommended and applied quantities may differ by rounding (millicores, bytes).
const TOLERANCE: f64 = 0.02;

/// An update mode, as the VPA reads it (no mode: `Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Initial,
    Recreate,
    Auto,
    InPlaceOrRecreate,
}

impl Mode {
    pub fn parse(mode: Option<&str>) -> Option<Mode> {
        Some(match mode.unwrap_or("Auto") {
            "Off" => Mode::Off,
            "Initial" => Mode::Initial,
            "Recreate" => Mode::Recreate,
            "Auto" => Mode::Auto,
            "InPlaceOrRecreate" => Mode::InPlaceOrRecreate,
            _ => return None,
        })
    }

    /// Whether the updater acts on running pods in this mode.
    pub fn updates_running_pods(self) -> bool {
        matches!(self, Mode::Recreate | Mode::Auto | Mode::InPlaceOrRecreate)
    }
}

/// One container policy of a VPA (`*` for all containers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub container: String,
    /// `mode: Off` for this container.
    pub off: bool,
    pub min_allowed: Quantities,
    pub max_allowed: Quantities,
    /// `None`: cpu and memory.
    pub controlled_resources: Option<Vec<String>>,
    /// `RequestsOnly` leaves limits alone.
    pub requests_only: bool,
}

/// What one VPA of the submission promises, and its target as applied.
#[derive(Debug, Clone, PartialEq)]
pub struct VpaSpec {
    pub name: String,
    /// The target Deployment's name.
    pub target: String,
    pub mode: Mode,
    pub policies: Vec<Policy>,
    /// The target's pod template: each container's requests and limits.
    pub template: Vec<ContainerResources>,
    /// `updatePolicy.minReplicas`.
    pub min_replicas: Option<i32>,
    /// Replicas the target runs during the probe.
    pub replicas: i32,
}

impl VpaSpec {
    /// The policy that applies to `container`: its own, else `*`.
    pub fn policy(&self, container: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.container == container)
            .or_else(|| self.policies.iter().find(|p| p.container == "*"))
    }

    /// Whether the VPA changes `resource` of `container`.
    pub fn controls(&self, container: &str, resource: &str) -> bool {
        match self.policy(container) {
            Some(p) if p.off => false,
            Some(Policy {
                controlled_resources: Some(list),
                ..
            }) => list.iter().any(|r| r == resource),
            _ => resource == "cpu" || resource == "memory",
        }
    }
}

/// The budget the judge holds the cluster's VPA to (see `probe::budget`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// From the VPA's creation to its first recommendation.
    pub recommendation: Duration,
    /// From the first recommendation to the updater's action on a pod that needs one.
    pub action: Duration,
    /// The updater's `--min-replicas` (a VPA's `updatePolicy.minReplicas` overrides it).
    pub updater_min_replicas: i32,
    /// Watch delivery: a pod seen this soon after a recommendation may predate it.
    pub slack: Duration,
}

/// One VPA's verdict: pass or fail (error: the probe's own step went wrong), why, and
/// the lines that show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub outcome: Outcome,
    pub message: String,
    /// What happened to the target's pods, in order (`12.0s pod x evicted by the VPA`).
    pub lines: Vec<String>,
}

impl Judgement {
    fn new(outcome: Outcome, message: String, lines: Vec<String>) -> Judgement {
        Judgement {
            outcome,
            message,
            lines,
        }
    }
}

/// One recorded state of a pod's resources: when, its containers, its `vpaUpdates`.
type Recorded<'t> = (f64, &'t [ContainerResources], Option<&'t str>);

/// What the timeline says about one VPA and its target's pods.
#[derive(Debug, Default)]
struct Facts<'t> {
    /// Every recommendation seen, in order (non-empty ones only).
    recommendations: Vec<(f64, &'t [ContainerRecommendation])>,
    /// The VPA's last conditions, for a message when no recommendation came.
    conditions: String,
    /// The target's pods: name -> first seen.
    created: BTreeMap<&'t str, f64>,
    /// Each pod's resources over time.
    resources: BTreeMap<&'t str, Vec<Recorded<'t>>>,
    evictions: Vec<(f64, &'t str)>,
    resizes: Vec<(f64, &'t str)>,
    /// Pods the probe deleted itself.
    deleted: Vec<(f64, &'t str)>,
}

/// Whether `pod` is one of Deployment `target`'s (`<target>-<template hash>-<suffix>`).
pub fn pod_of(target: &str, pod: &str) -> bool {
    pod.strip_prefix(target)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| rest.split('-').count() == 2 && !rest.contains(".."))
}

fn facts<'t>(spec: &VpaSpec, timeline: &'t Timeline) -> Facts<'t> {
    let mut facts = Facts::default();
    for sample in &timeline.samples {
        let t = sample.t;
        match &sample.what {
            Observation::Vpa {
                name,
                recommendation,
                conditions,
            } if *name == spec.name => {
                if !recommendation.is_empty() {
                    facts.recommendations.push((t, recommendation.as_slice()));
                }
                facts.conditions = conditions
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}{}",
                            c.type_,
                            c.status,
                            c.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
            }
            Observation::Pod { name, .. } if pod_of(&spec.target, name) => {
                facts.created.entry(name.as_str()).or_insert(t);
            }
            Observation::PodResources {
                name,
                containers,
                vpa_updates,
            } if pod_of(&spec.target, name) => {
                facts.created.entry(name.as_str()).or_insert(t);
                facts.resources.entry(name.as_str()).or_default().push((
                    t,
                    containers.as_slice(),
                    vpa_updates.as_deref(),
                ));
            }
            Observation::Event { object, reason, .. } => {
                let Some(pod) = object.strip_prefix("Pod/") else {
                    continue;
                };
                if !pod_of(&spec.target, pod) {
                    continue;
                }
                if reason == EVICTED {
                    facts.evictions.push((t, pod));
                } else if reason == RESIZED {
                    facts.resizes.push((t, pod));
                }
            }
            Observation::Marker { label } => {
                if let Some(pod) = label.strip_prefix(DELETED_MARKER)
                    && pod_of(&spec.target, pod)
                {
                    facts.deleted.push((t, pod));
                }
            }
            _ => {}
        }
    }
    facts
}

/// Seconds, for messages.
pub fn seconds(t: f64) -> String {
    format!("{t:.0}s")
}

fn quantity(text: &str) -> Option<f64> {
    parse_quantity(text).ok()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// Judges one VPA (see the module's docs). `applied_at`: when the probe created it;
/// `end`: when the recording stopped.
pub fn judge_vpa(
    spec: &VpaSpec,
    timeline: &Timeline,
    budget: &Budget,
    applied_at: f64,
    end: f64,
) -> Judgement {
    let facts = facts(spec, timeline);
    let mut lines = pod_lines(&facts);
    // 1. A recommendation, in time.
    let Some(&(first_t, first)) = facts.recommendations.first() else {
        return Judgement::new(
            Outcome::Fail,
            format!(
                "expected VPA {} to recommend requests for {} within {} of its creation; it recommended nothing over {} (its conditions: {})",
                spec.name,
                spec.target,
                seconds(budget.recommendation.as_secs_f64()),
                seconds(end - applied_at),
                if facts.conditions.is_empty() {
                    "none"
                } else {
                    &facts.conditions
                }
            ),
            lines,
        );
    };
    lines.insert(
        0,
        format!(
            "{} first recommendation: {}",
            seconds(first_t),
            describe_recommendation(first)
        ),
    );
    let took = first_t - applied_at;
    if took > budget.recommendation.as_secs_f64() {
        return Judgement::new(
            Outcome::Fail,
            format!(
                "VPA {} recommended only after {} (budget {})",
                spec.name,
                seconds(took),
                seconds(budget.recommendation.as_secs_f64())
            ),
            lines,
        );
    }
    // 2. Every recommendation inside the policy's bounds, for controlled resources only.
    for (t, recommendation) in &facts.recommendations {
        if let Err(problem) = within_policy(spec, recommendation) {
            return Judgement::new(
                Outcome::Fail,
                format!("at {}: {problem}", seconds(*t)),
                lines,
            );
        }
    }
    // A recommendation held under what the VPA finds needed by maxAllowed leaves the
    // pods short: judged on the latest, once the recommender has seen the load.
    if let Some((t, latest)) = facts.recommendations.last()
        && let Some(problem) = capped_by_max(spec, latest)
    {
        return Judgement::new(
            Outcome::Fail,
            format!("at {}: {problem}", seconds(*t)),
            lines,
        );
    }
    // 3. What the mode promises.
    let after = |t: f64| {
        facts
            .created
            .iter()
            .filter(move |(_, created)| **created > t)
            .map(|(pod, created)| (*pod, *created))
            .collect::<Vec<_>>()
    };
    let took_text = format!("recommended {} after its creation", seconds(took));
    match spec.mode {
        Mode::Off => {
            if let Some((t, pod)) = facts.evictions.first().or(facts.resizes.first()) {
                return Judgement::new(
                    Outcome::Fail,
                    format!(
                        "VPA {} is Off, yet pod {pod} was changed by the updater at {}",
                        spec.name,
                        seconds(*t)
                    ),
                    lines,
                );
            }
            for (pod, _) in after(applied_at) {
                if let Err(problem) = untouched_by_vpa(spec, &facts, pod) {
                    return Judgement::new(
                        Outcome::Fail,
                        format!("VPA {} is Off, yet {problem}", spec.name),
                        lines,
                    );
                }
            }
            Judgement::new(
                Outcome::Pass,
                format!(
                    "VPA {} (Off) {took_text} and evicted or changed nothing over {}",
                    spec.name,
                    seconds(end - applied_at)
                ),
                lines,
            )
        }
        Mode::Initial => {
            if let Some((t, pod)) = facts.evictions.first().or(facts.resizes.first()) {
                return Judgement::new(
                    Outcome::Fail,
                    format!(
                        "VPA {} is Initial, yet the updater changed running pod {pod} at {}",
                        spec.name,
                        seconds(*t)
                    ),
                    lines,
                );
            }
            // After the probe's own deletion (it deletes once it saw the recommendation),
            // else once the admission controller has surely seen it.
            let since = facts
                .deleted
                .first()
                .map_or(first_t + budget.slack.as_secs_f64(), |(t, _)| *t);
            let new_pods = after(since);
            if new_pods.is_empty() {
                return no_replacement(spec, timeline, since, lines);
            }
            for (pod, created) in &new_pods {
                if let Err(problem) = carries_recommendation(spec, &facts, pod, *created) {
                    return Judgement::new(Outcome::Fail, problem, lines);
                }
            }
            Judgement::new(
                Outcome::Pass,
                format!(
                    "VPA {} (Initial) {took_text}; {} created after it carried the recommended requests, and no running pod was evicted",
                    spec.name,
                    plural(new_pods.len(), "pod")
                ),
                lines,
            )
        }
        Mode::Recreate | Mode::Auto | Mode::InPlaceOrRecreate => {
            judge_updating(spec, &facts, budget, first_t, end, &took_text, lines)
        }
    }
}

/// No pod of an `Initial` VPA's target came after the probe deleted one. Its controller's
/// refusals say why: a quota or LimitRange of the submission's refusing the replacement
/// is the submission's failure; anything else (or silence) the environment's.
fn no_replacement(
    spec: &VpaSpec,
    timeline: &Timeline,
    since: f64,
    mut lines: Vec<String>,
) -> Judgement {
    let refusals: Vec<String> = timeline
        .events()
        .filter(|e| e.t >= since && e.type_ == "Warning" && owned_by_target(&spec.target, e.object))
        .map(|e| e.line())
        .collect();
    let quoted = if refusals.is_empty() {
        "no Warning event from its controllers".to_string()
    } else {
        refusals.join("; ")
    };
    // Admission refusals in the probe's namespace come from the submission's own
    // objects there (ResourceQuota: "exceeded quota"; LimitRange: "is forbidden: [minimum
    // ...]").
    let submission_refused = refusals
        .iter()
        .any(|r| r.contains("exceeded quota") || r.contains("is forbidden:"));
    lines.extend(refusals.iter().cloned());
    if submission_refused {
        Judgement::new(
            Outcome::Fail,
            format!(
                "the replacement of the pod of {} the probe deleted was refused, so VPA {} (Initial) could not set its requests: {quoted}",
                spec.target, spec.name
            ),
            lines,
        )
    } else {
        Judgement::new(
            Outcome::Error,
            format!(
                "no pod of {} was created after VPA {}'s recommendation (the probe deletes one to see what the admission controller sets; {quoted})",
                spec.target, spec.name
            ),
            lines,
        )
    }
}

/// Whether an event's object (`Kind/name`) is `target`, one of its ReplicaSets
/// (`target-<hash>`) or one of its pods (`target-<hash>-<suffix>`).
fn owned_by_target(target: &str, object: &str) -> bool {
    let Some((kind, name)) = object.split_once('/') else {
        return false;
    };
    match kind {
        "Pod" => pod_of(target, name),
        "ReplicaSet" => name
            .strip_prefix(target)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| !hash.is_empty() && !hash.contains('-')),
        "Deployment" | "StatefulSet" => name == target,
        _ => false,
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Recreate, Auto and InPlaceOrRecreate: the updater acts where a pod's requests lie
/// outside the recommended bounds (and the target runs enough replicas), and what it
/// makes carries the recommendation.
fn judge_updating(
    spec: &VpaSpec,
    facts: &Facts<'_>,
    budget: &Budget,
    first_t: f64,
    end: f64,
    took_text: &str,
    lines: Vec<String>,
) -> Judgement {
    let min_replicas = spec.min_replicas.unwrap_or(budget.updater_min_replicas);
    // Why the updater should act: a pod that existed at the recommendation whose
    // requests lie outside a recommended range.
    let needs_update = facts
        .created
        .iter()
        .filter(|(_, created)| **created <= first_t)
        .find_map(|(pod, _)| {
            let (_, containers, _) = facts.resources.get(pod)?.last()?;
            facts
                .recommendations
                .iter()
                .find_map(|(_, rec)| outside_bounds(spec, containers, rec))
                .map(|why| format!("pod {pod}: {why}"))
        });
    let mode = format!("{:?}", spec.mode);
    let actions: Vec<(f64, &str, &str)> = facts
        .evictions
        .iter()
        .map(|(t, p)| (*t, *p, "evicted"))
        .chain(
            facts
                .resizes
                .iter()
                .map(|(t, p)| (*t, *p, "resized in place")),
        )
        .collect();
    if actions.is_empty() {
        return match needs_update {
            Some(why) if spec.replicas >= min_replicas => Judgement::new(
                Outcome::Fail,
                format!(
                    "expected the VPA updater to update {} ({mode}) within {} of the recommendation, since {why}; it neither evicted nor resized any pod over {}",
                    spec.target,
                    seconds(budget.action.as_secs_f64()),
                    seconds(end - first_t)
                ),
                lines,
            ),
            Some(why) => Judgement::new(
                Outcome::Pass,
                format!(
                    "VPA {} ({mode}) {took_text}; {why}, but {} runs {} and the updater acts only from {min_replicas} (updatePolicy.minReplicas, else the updater's --min-replicas): nothing to evict, none evicted",
                    spec.name,
                    spec.target,
                    plural(spec.replicas.max(0) as usize, "replica")
                ),
                lines,
            ),
            None => Judgement::new(
                Outcome::Pass,
                format!(
                    "VPA {} ({mode}) {took_text}; the pods' requests lie within the recommended bounds, so the updater had nothing to do, and did nothing",
                    spec.name
                ),
                lines,
            ),
        };
    }
    if spec.mode != Mode::InPlaceOrRecreate
        && let Some((t, pod)) = facts.resizes.first()
    {
        return Judgement::new(
            Outcome::Fail,
            format!(
                "VPA {} is {mode}, yet pod {pod} was resized in place at {} (the mode recreates pods)",
                spec.name,
                seconds(*t)
            ),
            lines,
        );
    }
    // Evictions: their replacements carry the recommendation.
    let mut replaced = 0;
    if let Some((evicted_at, _)) = facts.evictions.first() {
        let replacements: Vec<(&str, f64)> = facts
            .created
            .iter()
            .filter(|(_, created)| **created > *evicted_at)
            .map(|(p, c)| (*p, *c))
            .collect();
        if replacements.is_empty() {
            return Judgement::new(
                Outcome::Fail,
                format!(
                    "the VPA updater evicted a pod of {} at {}, but no replacement pod appeared by {}",
                    spec.target,
                    seconds(*evicted_at),
                    seconds(end)
                ),
                lines,
            );
        }
        for (pod, created) in &replacements {
            if let Err(problem) = carries_recommendation(spec, facts, pod, *created) {
                return Judgement::new(Outcome::Fail, problem, lines);
            }
        }
        replaced = replacements.len();
    }
    // In-place resizes: the resized pod runs with the recommendation.
    for (t, pod) in &facts.resizes {
        if let Err(problem) = resized_to_recommendation(spec, facts, pod, *t) {
            return Judgement::new(Outcome::Fail, problem, lines);
        }
    }
    let how = match (facts.evictions.len(), facts.resizes.len()) {
        (0, r) => format!("resized {} in place", plural(r, "pod")),
        (e, 0) => format!(
            "evicted {} through the Eviction API ({EVICTED}){}; {} replacement(s) carried the recommended requests",
            plural(e, "pod"),
            if spec.mode == Mode::InPlaceOrRecreate {
                " (no in-place resize here: it fell back to recreating)"
            } else {
                ""
            },
            replaced
        ),
        (e, r) => format!(
            "resized {} in place and evicted {} (fallback); the replacements carried the recommended requests",
            plural(r, "pod"),
            plural(e, "pod")
        ),
    };
    Judgement::new(
        Outcome::Pass,
        format!("VPA {} ({mode}) {took_text}; the updater {how}", spec.name),
        lines,
    )
}

/// Every recommended value within its container policy's minAllowed/maxAllowed, and only
/// for resources the policy controls.
fn within_policy(spec: &VpaSpec, recommendation: &[ContainerRecommendation]) -> Result<(), String> {
    for container in recommendation {
        let name = &container.container_name;
        let policy = spec.policy(name);
        for (what, values) in [
            ("target", &container.target),
            ("lowerBound", &container.lower_bound),
            ("upperBound", &container.upper_bound),
        ] {
            for (resource, value) in values {
                if !spec.controls(name, resource) {
                    return Err(format!(
                        "VPA {} recommends {resource} ({what} {value}) for container {name}, which its policy does not control",
                        spec.name
                    ));
                }
                let Some(v) = quantity(value) else { continue };
                let Some(policy) = policy else { continue };
                if let Some(min) = policy.min_allowed.get(resource)
                    && quantity(min).is_some_and(|m| v < m && !close(v, m))
                {
                    return Err(format!(
                        "VPA {} recommends {resource} {what} {value} for container {name}, below its minAllowed {min}",
                        spec.name
                    ));
                }
                if let Some(max) = policy.max_allowed.get(resource)
                    && quantity(max).is_some_and(|m| v > m && !close(v, m))
                {
                    return Err(format!(
                        "VPA {} recommends {resource} {what} {value} for container {name}, above its maxAllowed {max}",
                        spec.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A recommended target below its uncapped value because maxAllowed caps it.
fn capped_by_max(spec: &VpaSpec, recommendation: &[ContainerRecommendation]) -> Option<String> {
    for rec in recommendation {
        let policy = spec.policy(&rec.container_name)?;
        for (resource, uncapped) in &rec.uncapped_target {
            let (Some(max), Some(target)) =
                (policy.max_allowed.get(resource), rec.target.get(resource))
            else {
                continue;
            };
            let (Some(u), Some(t), Some(m)) = (quantity(uncapped), quantity(target), quantity(max))
            else {
                continue;
            };
            if t < u && !close(t, u) && close(t, m) {
                return Some(format!(
                    "VPA {}'s {resource} recommendation for container {} is capped by maxAllowed {max}: it finds {} needed (uncappedTarget) but may set only {target}",
                    spec.name,
                    rec.container_name,
                    readable(resource, uncapped)
                ));
            }
        }
    }
    None
}

/// A quantity as the VPA wrote it, with bytes also in MiB (`380258472` -> `380258472
/// (363Mi)`).
fn readable(resource: &str, value: &str) -> String {
    match quantity(value) {
        Some(bytes) if resource == "memory" && value.chars().all(|c| c.is_ascii_digit()) => {
            format!("{value} ({:.0}Mi)", bytes / (1024.0 * 1024.0))
        }
        _ => value.to_string(),
    }
}

/// Why `containers` need an update under `recommendation`: a controlled request outside
/// [lowerBound, upperBound]. `None`: within.
fn outside_bounds(
    spec: &VpaSpec,
    containers: &[ContainerResources],
    recommendation: &[ContainerRecommendation],
) -> Option<String> {
    for rec in recommendation {
        let container = containers.iter().find(|c| c.name == rec.container_name)?;
        for (resource, lower) in &rec.lower_bound {
            if !spec.controls(&rec.container_name, resource) {
                continue;
            }
            let upper = rec.upper_bound.get(resource);
            let request = container.requests.get(resource);
            let (Some(l), Some(r)) = (quantity(lower), request.and_then(|r| quantity(r))) else {
                continue;
            };
            let u = upper.and_then(|u| quantity(u)).unwrap_or(f64::INFINITY);
            if r < l || r > u {
                return Some(format!(
                    "its {resource} request {} lies outside the recommended [{lower}, {}]",
                    request.map(String::as_str).unwrap_or("-"),
                    upper.map(String::as_str).unwrap_or("-")
                ));
            }
        }
    }
    None
}

/// The recommendation targets recorded up to `t`, newest first.
fn targets_until<'t>(facts: &Facts<'t>, t: f64) -> Vec<&'t [ContainerRecommendation]> {
    facts
        .recommendations
        .iter()
        .rev()
        .filter(|(at, _)| *at <= t)
        .map(|(_, rec)| *rec)
        .collect()
}

/// Whether `containers`' controlled requests equal a recorded target (any recorded up
/// to `t`: the admission controller reads its own copy of the VPA), and the rest as
/// the template has them.
fn matches_a_target(
    spec: &VpaSpec,
    facts: &Facts<'_>,
    containers: &[ContainerResources],
    t: f64,
) -> Result<(), String> {
    let mut mismatch = None;
    for rec in targets_until(facts, t) {
        match requests_equal_target(spec, containers, rec) {
            Ok(()) => return Ok(()),
            Err(m) => {
                mismatch.get_or_insert(m);
            }
        }
    }
    Err(mismatch.unwrap_or_else(|| "no recommendation was recorded before it".into()))
}

fn requests_equal_target(
    spec: &VpaSpec,
    containers: &[ContainerResources],
    recommendation: &[ContainerRecommendation],
) -> Result<(), String> {
    for rec in recommendation {
        let Some(container) = containers.iter().find(|c| c.name == rec.container_name) else {
            continue;
        };
        for (resource, target) in &rec.target {
            if !spec.controls(&rec.container_name, resource) {
                continue;
            }
            let request = container.requests.get(resource);
            let equal = match (quantity(target), request.and_then(|r| quantity(r))) {
                (Some(a), Some(b)) => close(a, b),
                _ => false,
            };
            if !equal {
                return Err(format!(
                    "container {} requests {resource} {} where the recommendation's target is {target}",
                    rec.container_name,
                    request.map(String::as_str).unwrap_or("nothing")
                ));
            }
        }
    }
    Ok(())
}

/// What the VPA may not change: requests of resources it does not control, and limits
/// under `RequestsOnly`, stay as the template has them.
fn only_controlled_changed(
    spec: &VpaSpec,
    containers: &[ContainerResources],
) -> Result<(), String> {
    for container in containers {
        let Some(template) = spec.template.iter().find(|c| c.name == container.name) else {
            continue;
        };
        for (resource, value) in &template.requests {
            if spec.controls(&container.name, resource) {
                continue;
            }
            let now = container.requests.get(resource);
            if now.and_then(|n| quantity(n)) != quantity(value) {
                return Err(format!(
                    "container {} requests {resource} {} but the template says {value}, and the VPA does not control {resource}",
                    container.name,
                    now.map(String::as_str).unwrap_or("nothing")
                ));
            }
        }
        let requests_only = spec
            .policy(&container.name)
            .is_some_and(|p| p.requests_only);
        if requests_only {
            for (resource, value) in &template.limits {
                let now = container.limits.get(resource);
                if now.and_then(|n| quantity(n)) != quantity(value) {
                    return Err(format!(
                        "container {} has limit {resource} {} but the template says {value}, and controlledValues is RequestsOnly",
                        container.name,
                        now.map(String::as_str).unwrap_or("none")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The first resources recorded for `pod`.
fn first_resources<'t>(
    facts: &Facts<'t>,
    pod: &str,
) -> Option<(&'t [ContainerResources], Option<&'t str>)> {
    facts
        .resources
        .get(pod)
        .and_then(|r| r.first())
        .map(|(_, c, u)| (*c, *u))
}

/// A pod created at `created` carries the recommendation and changes nothing else.
fn carries_recommendation(
    spec: &VpaSpec,
    facts: &Facts<'_>,
    pod: &str,
    created: f64,
) -> Result<(), String> {
    let Some((containers, _)) = first_resources(facts, pod) else {
        return Err(format!(
            "pod {pod} of {} appeared at {} but its resources were never recorded",
            spec.target,
            seconds(created)
        ));
    };
    matches_a_target(spec, facts, containers, created).map_err(|m| {
        format!(
            "pod {pod} of {}, created at {} after VPA {}'s recommendation, does not carry it: {m}",
            spec.target,
            seconds(created),
            spec.name
        )
    })?;
    only_controlled_changed(spec, containers)
        .map_err(|m| format!("pod {pod}, set by VPA {}: {m}", spec.name))
}

/// A pod resized in place at `t` runs with the recommendation afterwards.
fn resized_to_recommendation(
    spec: &VpaSpec,
    facts: &Facts<'_>,
    pod: &str,
    t: f64,
) -> Result<(), String> {
    let latest = facts.resources.get(pod).and_then(|r| r.last());
    let Some((_, containers, _)) = latest else {
        return Err(format!("pod {pod}'s resources were never recorded"));
    };
    matches_a_target(spec, facts, containers, t).map_err(|m| {
        format!(
            "pod {pod} was resized in place at {} but does not run with the recommendation: {m}",
            seconds(t)
        )
    })?;
    only_controlled_changed(spec, containers).map_err(|m| format!("pod {pod}, resized: {m}"))
}

/// A pod an `Off` VPA must leave as the template made it.
fn untouched_by_vpa(spec: &VpaSpec, facts: &Facts<'_>, pod: &str) -> Result<(), String> {
    let Some((containers, updates)) = first_resources(facts, pod) else {
        return Ok(());
    };
    if let Some(updates) = updates {
        return Err(format!(
            "pod {pod} was set by the admission controller: {updates}"
        ));
    }
    for container in containers {
        let Some(template) = spec.template.iter().find(|c| c.name == container.name) else {
            continue;
        };
        for (resource, value) in &template.requests {
            let now = container.requests.get(resource);
            if now.and_then(|n| quantity(n)) != quantity(value) {
                return Err(format!(
                    "pod {pod}'s container {} requests {resource} {} where the template says {value}",
                    container.name,
                    now.map(String::as_str).unwrap_or("nothing")
                ));
            }
        }
    }
    Ok(())
}

/// One line per pod event: creations with their requests, evictions, resizes, the
/// probe's deletions.
fn pod_lines(facts: &Facts<'_>) -> Vec<String> {
    let mut lines: Vec<(f64, String)> = Vec::new();
    for (pod, t) in &facts.created {
        let requests = first_resources(facts, pod)
            .map(|(containers, updates)| {
                let mut text = containers
                    .iter()
                    .map(|c| {
                        format!(
                            "{} [{}]",
                            c.name,
                            c.requests
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if updates.is_some() {
                    text.push_str(" (set by the VPA)");
                }
                text
            })
            .unwrap_or_default();
        lines.push((*t, format!("pod {pod} created, requests {requests}")));
    }
    for (t, pod) in &facts.evictions {
        lines.push((*t, format!("pod {pod} evicted by the VPA updater")));
    }
    for (t, pod) in &facts.resizes {
        lines.push((*t, format!("pod {pod} resized in place by the VPA updater")));
    }
    for (t, pod) in &facts.deleted {
        lines.push((*t, format!("pod {pod} deleted by the probe")));
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    lines
        .into_iter()
        .map(|(t, line)| format!("{} {line}", seconds(t)))
        .collect()
}

fn describe_recommendation(recommendation: &[ContainerRecommendation]) -> String {
    recommendation
        .iter()
        .map(|r| {
            let pairs = |q: &Quantities| {
                q.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!(
                "{}: target [{}] lower [{}] upper [{}]",
                r.container_name,
                pairs(&r.target),
                pairs(&r.lower_bound),
                pairs(&r.upper_bound)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;

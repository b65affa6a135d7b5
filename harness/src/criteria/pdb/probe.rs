//! Live probe of `pdb`: draining a node evicts only as far as the submission's
//! PodDisruptionBudget allows, and the drain still completes.
//!
//! The probe makes two kwok nodes of its own ([`crate::nodes`]): a source and a
//! destination, the destination cordoned at first. The protected Deployment is pinned
//! to them, so all its pods start on the source. Then it drains the source the way
//! `kubectl drain` does: cordon, then evict every pod through the Eviction API
//! (policy/v1), retrying a refused eviction after [`EVICTION_RETRY`].
//! - Phase 1, nowhere for a replacement to start: exactly the budget's disruptions are
//!   allowed and the next eviction is refused with 429 and the DisruptionBudget cause.
//! - Phase 2, the destination uncordoned: replacements become Ready there and each
//!   further eviction goes through only once the budget allows it; the drain completes
//!   within a budget derived from the cluster's intervals.
//!
//! Every eviction is a timeline marker next to the pods' readiness and nodes; the
//! verdict is judged from that timeline against the budget's spec ([`judge_drain`]).

use crate::budget::ClusterIntervals;
use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::nodes::{TestNodes, pin_pod_spec, set_unschedulable};
use crate::observe::Recorder;
use crate::submission::{Object, Submission, Typed};
use crate::timeline::{Observation, Timeline};
use crate::verdict::{Evidence, Outcome, TimelinePoint, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const PDB: &str = "pdb";

/// How long a drain waits before retrying an eviction the budget refused. (`kubectl
/// drain` waits 5 s; the API server decides on the budget's current status either way.)
pub const EVICTION_RETRY: Duration = Duration::from_secs(1);

/// Disruptions a budget allows with `expected` pods, all healthy (the disruption
/// controller's arithmetic: percentages of minAvailable round up, of maxUnavailable round up too).
pub fn allowed_disruptions(pdb: &PodDisruptionBudget, expected: i32) -> i32 {
    let spec = pdb.spec.as_ref();
    let scaled = |value: &IntOrString| match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let percent: f64 = text.trim_end_matches('%').parse().unwrap_or(0.0);
            (percent * f64::from(expected) / 100.0).ceil() as i32
        }
    };
    if let Some(min_available) = spec.and_then(|s| s.min_available.as_ref()) {
        (expected - scaled(min_available)).max(0)
    } else if let Some(max_unavailable) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        scaled(max_unavailable).min(expected).max(0)
    } else {
        // Neither field set: the budget constrains nothing.
        expected
    }
}

/// "minAvailable 1", "maxUnavailable 30%": the budget as the student wrote it.
pub fn budget_text(pdb: &PodDisruptionBudget) -> String {
    let show = |value: &IntOrString| match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let spec = pdb.spec.as_ref();
    match (
        spec.and_then(|s| s.min_available.as_ref()),
        spec.and_then(|s| s.max_unavailable.as_ref()),
    ) {
        (Some(min), _) => format!("minAvailable {}", show(min)),
        (None, Some(max)) => format!("maxUnavailable {}", show(max)),
        (None, None) => "neither minAvailable nor maxUnavailable".into(),
    }
}

/// How long draining `pods` pods may take once replacements can start: one wave of
/// `allowed` evictions per replacement start-up (plus a retry and the observation slack),
/// and the last pods' termination grace period.
pub fn drain_budget(
    intervals: &ClusterIntervals,
    pods: i32,
    allowed: i32,
    termination_grace: Duration,
) -> Duration {
    let per_wave = allowed.max(1);
    let waves = (pods.max(0) + per_wave - 1) / per_wave;
    (intervals.pod_ready + EVICTION_RETRY + intervals.observation_slack) * waves.max(1) as u32
        + termination_grace
}

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
mod marker {
    pub const CORDON: &str = "cordon ";
    pub const UNCORDON: &str = "uncordon ";
    pub const ALLOWED: &str = "eviction allowed ";
    pub const REFUSED: &str = "eviction refused ";
    pub const GONE: &str = "eviction found no pod ";
    pub const COMPLETE: &str = "drain complete";
    pub const STUCK: &str = "drain stuck";
    pub const TIMED_OUT: &str = "drain timed out";
}

fn eviction_marker(pod: &str, eviction: &Eviction) -> String {
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

/// What the budget's spec and the cluster say the drain must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainExpectation {
    /// `PodDisruptionBudget <name>` as the report names it.
    pub pdb: String,
    /// "minAvailable 1" …
    pub budget: String,
    pub selector: String,
    pub replicas: i32,
    /// Disruptions the spec allows with `replicas` healthy pods.
    pub allowed: i32,
    /// `status.expectedPods`: the pods the budget counts.
    pub counted_pods: i32,
    pub source: String,
    pub destination: String,
    /// Pods on the source when it was cordoned.
    pub pods_on_source: i32,
    /// From the uncordon of the destination to the end of the drain.
    pub drain_budget: Duration,
    /// A dip below the required count shorter than this may be watch delivery.
    pub slack: Duration,
}

impl DrainExpectation {
    /// Healthy pods the budget requires during the drain.
    pub fn required(&self) -> i32 {
        self.replicas - self.allowed
    }
}

fn seconds(t: f64) -> String {
    format!("{t:.1}s")
}

/// The verdict on a drain, from the timeline's facts and the spec (pure).
pub fn judge_drain(expect: &DrainExpectation, facts: &DrainFacts) -> (Outcome, String) {
    let required = expect.required();
    let (phase1, phase2): (Vec<&Attempt>, Vec<&Attempt>) = facts
        .attempts
        .iter()
        .partition(|a| facts.uncordoned_at.is_none_or(|u| a.t < u));
    let allowed_first = phase1
        .iter()
        .filter(|a| a.eviction == Eviction::Allowed)
        .count() as i32;
    let first_refusal = phase1.iter().find_map(|a| match &a.eviction {
        Eviction::Refused { cause, message } => Some(format!(
            "{} at {}: 429 {}: {message}",
            a.pod,
            seconds(a.t),
            cause.as_deref().unwrap_or("(no cause)")
        )),
        _ => None,
    });
    let min_healthy = facts
        .min_healthy
        .map(|(t, n)| format!("{n} at {}", seconds(t)))
        .unwrap_or_else(|| "unknown".into());
    let evidence = "(see the eviction lines and the timeline)";
    if expect.counted_pods == 0 {
        return (
            Outcome::Fail,
            format!(
                "{} matches no pod (selector {}), so it protects nothing: with no node free for replacements, the drain of {} evicted {allowed_first} of {} pods at once; expected its {} to keep at least {required} of {} healthy, healthy pods fell to {min_healthy} {evidence}",
                expect.pdb,
                expect.selector,
                expect.source,
                expect.pods_on_source,
                expect.budget,
                expect.replicas
            ),
        );
    }
    let expected_first = expect.allowed.min(expect.pods_on_source);
    if allowed_first > expected_first {
        return (
            Outcome::Fail,
            format!(
                "expected the drain of {} to evict at most {} pod(s) while no replacement could start ({} of {} pods); {allowed_first} evictions were allowed and healthy pods fell to {min_healthy} {evidence}",
                expect.source, expect.allowed, expect.budget, expect.replicas
            ),
        );
    }
    if allowed_first < expected_first {
        return (
            Outcome::Fail,
            format!(
                "expected {} ({} of {} pods) to allow {expected_first} eviction(s) before refusing; only {allowed_first} were allowed, then {} {evidence}",
                expect.pdb,
                expect.budget,
                expect.replicas,
                first_refusal.as_deref().unwrap_or("no answer")
            ),
        );
    }
    let not_budget: Vec<String> = facts
        .attempts
        .iter()
        .filter_map(|a| match &a.eviction {
            Eviction::Refused { cause, message }
                if cause.as_deref() != Some("DisruptionBudget") =>
            {
                Some(format!(
                    "{} at {}: {}: {message}",
                    a.pod,
                    seconds(a.t),
                    cause.as_deref().unwrap_or("no cause")
                ))
            }
            _ => None,
        })
        .collect();
    if !not_budget.is_empty() {
        return (
            Outcome::Fail,
            format!(
                "expected refused evictions to carry the DisruptionBudget cause; {} did not: {} {evidence}",
                not_budget.len(),
                not_budget.join("; ")
            ),
        );
    }
    if expected_first < expect.pods_on_source && first_refusal.is_none() {
        return (
            Outcome::Fail,
            format!(
                "expected the eviction after the {expected_first} allowed one(s) to be refused with 429 DisruptionBudget; the drain saw no refusal {evidence}"
            ),
        );
    }
    if let Some((from, to, lowest)) = facts.longest_dip
        && to - from > expect.slack.as_secs_f64()
    {
        return (
            Outcome::Fail,
            format!(
                "expected at least {required} healthy pod(s) throughout the drain ({} of {} pods); only {lowest} from {} to {} {evidence}",
                expect.budget,
                expect.replicas,
                seconds(from),
                seconds(to)
            ),
        );
    }
    let last_refusal = facts
        .attempts
        .iter()
        .rev()
        .find_map(|a| match &a.eviction {
            Eviction::Refused { message, .. } => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let left_on_source = {
        let mut last: BTreeMap<&str, &Eviction> = BTreeMap::new();
        for a in &facts.attempts {
            last.insert(&a.pod, &a.eviction);
        }
        last.values()
            .filter(|e| matches!(e, Eviction::Refused { .. }))
            .count()
    };
    let started = facts.uncordoned_at.or(facts.cordoned_at).unwrap_or(0.0);
    match facts.end {
        Some((_, DrainEnd::Stuck)) => {
            return (
                Outcome::Fail,
                format!(
                    "the drain of {} did not complete: {left_on_source} pod(s) stayed on it, every eviction refused with 429 DisruptionBudget ({last_refusal}) although all {} counted pods were healthy and {} had room; {} of {} pods allows {} disruption(s), so a node running these pods can never be drained {evidence}",
                    expect.source,
                    expect.counted_pods,
                    expect.destination,
                    expect.budget,
                    expect.replicas,
                    expect.allowed
                ),
            );
        }
        Some((t, DrainEnd::TimedOut)) => {
            return (
                Outcome::Fail,
                format!(
                    "expected the drain of {} to complete within {:.0}s of uncordoning {} (replacements' start-up per wave of {} eviction(s)); {left_on_source} pod(s) were still on it after {} (last refusal: {last_refusal}) {evidence}",
                    expect.source,
                    expect.drain_budget.as_secs_f64(),
                    expect.destination,
                    expect.allowed.max(1),
                    seconds(t - started)
                ),
            );
        }
        None => {
            return (
                Outcome::Error,
                format!(
                    "the drain of {} left no end marker in the timeline",
                    expect.source
                ),
            );
        }
        Some((_, DrainEnd::Complete)) => {}
    }
    let (t_end, _) = facts.end.unwrap_or((started, DrainEnd::Complete));
    let took = t_end - started;
    if took > expect.drain_budget.as_secs_f64() {
        return (
            Outcome::Fail,
            format!(
                "expected the drain of {} to complete within {:.0}s of uncordoning {}; it took {} {evidence}",
                expect.source,
                expect.drain_budget.as_secs_f64(),
                expect.destination,
                seconds(took)
            ),
        );
    }
    let allowed_later = phase2
        .iter()
        .filter(|a| a.eviction == Eviction::Allowed)
        .count();
    let refused_later = phase2
        .iter()
        .filter(|a| matches!(a.eviction, Eviction::Refused { .. }))
        .count();
    let first = match &first_refusal {
        Some(_) => format!(
            "{allowed_first} eviction(s) allowed, the next refused with 429 DisruptionBudget"
        ),
        None => format!("all {allowed_first} evictions allowed"),
    };
    (
        Outcome::Pass,
        format!(
            "{} ({} of {} pods) gated the drain of {}: with no node free for replacements, {first}; after uncordoning {}, {allowed_later} more allowed as replacements became Ready ({refused_later} refused meanwhile); drained in {} (budget {:.0}s), never fewer than {required} healthy pods (lowest {min_healthy})",
            expect.pdb,
            expect.budget,
            expect.replicas,
            expect.source,
            expect.destination,
            seconds(took),
            expect.drain_budget.as_secs_f64()
        ),
    )
}

fn verdict(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Verdict {
    Verdict {
        id: PDB.into(),
        outcome,
        message,
        findings: Vec::new(),
        evidence,
    }
}

/// The workloads a PDB's selector picks among the submission's objects.
fn protected_workload<'a>(submission: &'a Submission, pdb: &Object) -> Option<&'a Object> {
    let Typed::PodDisruptionBudget(typed) = &pdb.typed else {
        return None;
    };
    let selector = typed
        .spec
        .as_ref()?
        .selector
        .as_ref()?
        .match_labels
        .clone()
        .unwrap_or_default();
    submission.objects.iter().find(|o| {
        matches!(o.typed, Typed::Deployment(_))
            && o.same_namespace(pdb.namespace.as_deref())
            && o.pod_template()
                .and_then(|t| t.labels)
                .is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
    })
}

/// A probe's own step failed: the environment, not the student (verdict "error").
fn environment(message: String, notes: &[String], timeline: Option<Timeline>) -> Verdict {
    let mut evidence = Vec::new();
    if !notes.is_empty() {
        evidence.push(Evidence::Note {
            text: notes.join("\n"),
        });
    }
    if let Some(file) = timeline.as_ref().and_then(Timeline::file_evidence) {
        evidence.push(file);
    }
    verdict(Outcome::Error, message, evidence)
}

/// Drains a node through the submission's first PDB named `pdb_name`; `workload` names
/// the Deployment it is meant to protect when the selector matches none (a broken
/// budget), so that the drain is still tried.
pub async fn probe(
    namespace: &mut TestNamespace,
    submission: &Submission,
    pdb_name: &str,
    workload: &str,
) -> Verdict {
    let Some(pdb_object) = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::PodDisruptionBudget(_)) && o.name == pdb_name)
    else {
        return verdict(
            Outcome::Fail,
            format!("expected a PodDisruptionBudget {pdb_name}; none found"),
            Vec::new(),
        );
    };
    let Typed::PodDisruptionBudget(spec) = &pdb_object.typed else {
        unreachable!("found as a PDB")
    };
    let Some(target) = protected_workload(submission, pdb_object).or_else(|| {
        submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::Deployment(_)) && o.name == workload)
    }) else {
        return verdict(
            Outcome::Fail,
            format!("no Deployment for {} to protect", pdb_object.describe()),
            Vec::new(),
        );
    };
    // An HPA-managed target may leave spec.replicas to the HPA: then its minReplicas
    // is what runs when nothing is under load.
    let hpa_min = submission.objects.iter().find_map(|o| match &o.typed {
        Typed::HorizontalPodAutoscaler(h)
            if h.spec.scale_target_ref.name == target.name
                && o.same_namespace(target.namespace.as_deref()) =>
        {
            h.spec.min_replicas
        }
        _ => None,
    });
    let written = target
        .value()
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_i64)
        .map(|r| r as i32);
    let replicas = written.or(hpa_min).unwrap_or(1);
    let intervals = namespace.cluster.intervals;
    let client = namespace.client();
    let mut notes = Vec::new();

    // The test's own nodes: the source runs the pods, the destination is cordoned.
    let nodes = match TestNodes::create(namespace, &[("drain-a", false), ("drain-b", true)]).await {
        Ok(nodes) => nodes,
        Err(e) => {
            return environment(
                format!("could not create the test nodes: {e}"),
                &notes,
                None,
            );
        }
    };
    let (source, destination) = (nodes.names[0].clone(), nodes.names[1].clone());
    if let Err(e) = nodes.wait_ready(&client, intervals.pod_ready).await {
        return environment(
            format!("the test nodes never became Ready: {e} (is kwok running? see ci/README.md)"),
            &notes,
            None,
        );
    }
    let recorder = Recorder::start(namespace, &format!("{PDB}-{}", namespace.name));

    let mut target_value = target.value().clone();
    target_value["spec"]["replicas"] = serde_json::json!(replicas);
    if let Some(pod_spec) = target_value.pointer_mut("/spec/template/spec") {
        for note in pin_pod_spec(pod_spec, &namespace.name) {
            notes.push(format!(
                "Deployment {} rewritten for the drain only: {note}",
                target.name
            ));
        }
    }
    notes.push(format!(
        "Deployment {} applied with {replicas} replica(s) ({})",
        target.name,
        if written.is_some() {
            "its spec.replicas"
        } else if hpa_min.is_some() {
            "its HPA's minReplicas"
        } else {
            "no replica count given"
        }
    ));
    let termination_grace = Duration::from_secs(
        target_value
            .pointer("/spec/template/spec/terminationGracePeriodSeconds")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(30),
    );
    let mut objects = vec![target_value, pdb_object.value().clone()];
    // A PriorityClass the pods name must exist (it is applied under a per-test name).
    if let Some(class) = target
        .value()
        .pointer("/spec/template/spec/priorityClassName")
        .and_then(serde_json::Value::as_str)
        && let Some(priority) = submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::PriorityClass(_)) && o.name == class)
    {
        objects.insert(0, priority.value().clone());
    }
    match namespace.apply(&objects).await {
        Ok(applied) => notes.extend(applied.notes),
        Err(e) => {
            let timeline = recorder.finish();
            return verdict(
                Outcome::Fail,
                format!("the cluster refused the objects: {}", e.api_message()),
                timeline.file_evidence().into_iter().collect(),
            );
        }
    }
    let deployments: Api<Deployment> = namespace.api();
    if let Err(e) = wait_for(
        &deployments,
        &target.name,
        "the protected Deployment to be Available with all replicas ready",
        intervals.pod_ready * 4,
        move |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                deployment_available(d)
                    && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(replicas)
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    {
        return environment(
            format!("the workload never became ready on {source}: {e}"),
            &notes,
            Some(recorder.finish()),
        );
    }
    // The disruption controller must have counted the pods before evictions are judged.
    let pdbs: Api<PodDisruptionBudget> = namespace.api();
    let observed = wait_for(
        &pdbs,
        &pdb_object.name,
        "the disruption controller to count the budget's pods",
        Duration::from_secs(60),
        |p: Option<&PodDisruptionBudget>| {
            p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                s.observed_generation.is_some() && s.current_healthy == s.expected_pods
            })
        },
        |p| format!("{:?}", p.and_then(|p| p.status.as_ref())),
    )
    .await;
    let status = match observed {
        Ok(Some(pdb)) => pdb.status.unwrap_or_default(),
        Ok(None) | Err(_) => pdbs
            .get_opt(&pdb_object.name)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status)
            .unwrap_or_default(),
    };
    let expected_allowed = allowed_disruptions(spec, replicas);
    let selector = spec
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let label_selector = target
        .pod_template()
        .and_then(|t| t.labels)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();

    // kube's default client retries 429 with backoff for minutes: an eviction refused
    // by the budget must come back as the refusal, at once.
    let mut config = namespace.cluster.config.clone();
    config.default_retry = false;
    let evictions: Api<Pod> = match kube::Client::try_from(config) {
        Ok(client) => Api::namespaced(client, &namespace.name),
        Err(e) => {
            return environment(
                format!("no client for evictions: {e}"),
                &notes,
                Some(recorder.finish()),
            );
        }
    };
    let pods: Api<Pod> = namespace.api();
    let on_source = ListParams::default()
        .labels(&label_selector)
        .fields(&format!("spec.nodeName={source}"));

    // Phase 1: cordon the source and evict with nowhere for replacements to go.
    recorder.mark(&format!("{}{source}", marker::CORDON));
    if let Err(e) = set_unschedulable(&client, &source, true).await {
        return environment(e.to_string(), &notes, Some(recorder.finish()));
    }
    let mut first_pods = match pods.list(&on_source).await {
        Ok(list) => list.items,
        Err(e) => {
            return environment(
                format!("listing the pods on {source}: {e}"),
                &notes,
                Some(recorder.finish()),
            );
        }
    };
    first_pods.sort_by_key(|p| p.name_any());
    let pods_on_source = first_pods.len() as i32;
    for pod in &first_pods {
        match evict(&evictions, &pod.name_any()).await {
            Ok(eviction) => {
                recorder.mark(&eviction_marker(&pod.name_any(), &eviction));
                if matches!(eviction, Eviction::Refused { .. }) {
                    break;
                }
            }
            Err(e) => {
                return environment(
                    format!("eviction of {} failed unexpectedly: {e}", pod.name_any()),
                    &notes,
                    Some(recorder.finish()),
                );
            }
        }
    }

    // Phase 2: uncordon the destination and drain what is left, as the budget allows.
    recorder.mark(&format!("{}{destination}", marker::UNCORDON));
    if let Err(e) = set_unschedulable(&client, &destination, false).await {
        return environment(e.to_string(), &notes, Some(recorder.finish()));
    }
    let budget = drain_budget(
        &intervals,
        pods_on_source,
        expected_allowed,
        termination_grace,
    );
    let drained = drain(
        &evictions,
        &pods,
        &pdbs,
        &pdb_object.name,
        &on_source,
        &recorder,
        budget,
    )
    .await;
    let end = match drained {
        Ok(end) => end,
        Err(e) => {
            return environment(
                format!("the drain of {source} failed unexpectedly: {e}"),
                &notes,
                Some(recorder.finish()),
            );
        }
    };
    recorder.mark(match end {
        DrainEnd::Complete => marker::COMPLETE,
        DrainEnd::Stuck => marker::STUCK,
        DrainEnd::TimedOut => marker::TIMED_OUT,
    });
    // Let the pod watch catch up with what the evictions did before judging.
    recorder
        .caught_up(intervals.observation_slack, |t| {
            let facts = drain_facts(t, &target.name, 0);
            facts
                .attempts
                .iter()
                .filter(|a| a.eviction == Eviction::Allowed)
                .all(|a| terminating_seen(t, &a.pod))
        })
        .await;
    let timeline = recorder.finish();

    let expectation = DrainExpectation {
        pdb: pdb_object.describe(),
        budget: budget_text(spec),
        selector: selector.clone(),
        replicas,
        allowed: expected_allowed,
        counted_pods: status.expected_pods.unwrap_or(0),
        source: source.clone(),
        destination: destination.clone(),
        pods_on_source,
        drain_budget: budget,
        slack: intervals.observation_slack,
    };
    let facts = drain_facts(&timeline, &target.name, expectation.required());
    let (outcome, message) = judge_drain(&expectation, &facts);

    let values = vec![
        ("replicas".to_string(), replicas.to_string()),
        ("budget".into(), expectation.budget.clone()),
        ("selector".into(), selector),
        (
            "pods the budget counts (expectedPods)".into(),
            expectation.counted_pods.to_string(),
        ),
        (
            "disruptions allowed by the spec".into(),
            expected_allowed.to_string(),
        ),
        (
            "healthy pods required during the drain".into(),
            expectation.required().to_string(),
        ),
        (
            "PDB status before the drain".into(),
            format!(
                "currentHealthy={:?} desiredHealthy={:?} disruptionsAllowed={:?}",
                status.current_healthy, status.desired_healthy, status.disruptions_allowed
            ),
        ),
        (
            "nodes (kwok, this test's own)".into(),
            format!("source {source}, destination {destination} (cordoned until phase 2)"),
        ),
        (
            "lowest healthy count during the drain".into(),
            facts
                .min_healthy
                .map(|(t, n)| format!("{n} at {}", seconds(t)))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "drain budget after uncordoning".into(),
            format!("{:.0}s", budget.as_secs_f64()),
        ),
        (
            "drain duration".into(),
            match (facts.cordoned_at, facts.uncordoned_at, facts.end) {
                (Some(cordon), Some(uncordon), Some((t, end))) => format!(
                    "{} from the cordon, {} from the uncordon ({end:?})",
                    seconds(t - cordon),
                    seconds(t - uncordon)
                ),
                _ => "-".into(),
            },
        ),
    ];
    let mut evidence = vec![
        Evidence::Values { values },
        Evidence::Events {
            lines: facts
                .attempts
                .iter()
                .map(|a| format!("{} {}", seconds(a.t), eviction_marker(&a.pod, &a.eviction)))
                .collect(),
        },
        Evidence::Timeline {
            points: drain_excerpt(&timeline, &target.name),
        },
        Evidence::Note {
            text: notes.join("\n"),
        },
    ];
    evidence.extend(timeline.file_evidence());
    verdict(outcome, message, evidence)
}

/// Whether the timeline saw `pod` terminating.
fn terminating_seen(timeline: &Timeline, pod: &str) -> bool {
    timeline.samples.iter().any(|s| {
        matches!(&s.what, Observation::Pod { name, phase, .. } if name == pod && phase == "Terminating")
    })
}

/// The drain's markers and the workload's pod changes, for evidence.
fn drain_excerpt(timeline: &Timeline, workload: &str) -> Vec<TimelinePoint> {
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

/// Evicts what is left on the source until none of the workload's pods is there,
/// retrying refusals after [`EVICTION_RETRY`] (bounded by `budget`). Stops early when
/// the budget can never allow an eviction: every pod it counts healthy, none allowed.
async fn drain(
    evictions: &Api<Pod>,
    pods: &Api<Pod>,
    pdbs: &Api<PodDisruptionBudget>,
    pdb_name: &str,
    on_source: &ListParams,
    recorder: &Recorder,
    budget: Duration,
) -> Result<DrainEnd, kube::Error> {
    let deadline = tokio::time::Instant::now() + budget;
    // Two passes in a row must see the budget exhausted with every pod healthy: one
    // could precede the disruption controller's reaction to a replacement.
    let mut stuck_passes = 0;
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Ok(DrainEnd::TimedOut);
        }
        let remaining = pods.list(on_source).await?.items;
        if remaining.is_empty() {
            return Ok(DrainEnd::Complete);
        }
        let (terminating, running): (Vec<Pod>, Vec<Pod>) = remaining
            .into_iter()
            .partition(|p| p.metadata.deletion_timestamp.is_some());
        if running.is_empty() {
            // All evicted: like `kubectl drain`, wait until they are gone.
            for pod in terminating {
                let uid = pod.uid().unwrap_or_default();
                let gone = tokio::time::timeout_at(
                    deadline,
                    kube::runtime::wait::await_condition(
                        pods.clone(),
                        &pod.name_any(),
                        kube::runtime::conditions::is_deleted(&uid),
                    ),
                )
                .await;
                if gone.is_err() {
                    return Ok(DrainEnd::TimedOut);
                }
            }
            continue;
        }
        let mut refused = false;
        for pod in &running {
            let eviction = evict(evictions, &pod.name_any()).await?;
            recorder.mark(&eviction_marker(&pod.name_any(), &eviction));
            refused |= matches!(eviction, Eviction::Refused { .. });
        }
        if refused {
            let status = pdbs.get_opt(pdb_name).await?.and_then(|p| p.status);
            let exhausted = status.is_some_and(|s| {
                s.expected_pods.unwrap_or(0) > 0
                    && s.current_healthy == s.expected_pods
                    && s.disruptions_allowed == Some(0)
            });
            stuck_passes = if exhausted { stuck_passes + 1 } else { 0 };
            if stuck_passes >= 2 {
                return Ok(DrainEnd::Stuck);
            }
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + EVICTION_RETRY))
                .await;
        }
    }
}

/// A policy/v1 Eviction of one pod, its answer classified.
async fn evict(pods: &Api<Pod>, name: &str) -> Result<Eviction, kube::Error> {
    let namespace = pods.namespace().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    });
    let answer: Result<kube::core::Status, kube::Error> = pods
        .create_subresource("eviction", name, &PostParams::default(), &body)
        .await;
    match answer {
        Ok(_) => Ok(Eviction::Allowed),
        Err(kube::Error::Api(status)) if status.code == 429 => Ok(Eviction::Refused {
            cause: status
                .details
                .as_ref()
                .and_then(|d| d.causes.first())
                .map(|c| c.reason.clone()),
            message: status
                .details
                .as_ref()
                .and_then(|d| d.causes.first())
                .map(|c| c.message.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| status.message.clone()),
        }),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Eviction::Gone),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pdb(
        min_available: Option<IntOrString>,
        max_unavailable: Option<IntOrString>,
    ) -> PodDisruptionBudget {
        PodDisruptionBudget {
            spec: Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec {
                min_available,
                max_unavailable,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[rstest]
    #[case(Some(IntOrString::Int(1)), None, 2, 1)]
    #[case(Some(IntOrString::Int(3)), None, 2, 0)]
    #[case(Some(IntOrString::String("50%".into())), None, 3, 1)]
    #[case(None, Some(IntOrString::String("30%".into())), 2, 1)]
    #[case(None, Some(IntOrString::Int(1)), 4, 1)]
    fn allowed_disruptions_follow_the_controller(
        #[case] min: Option<IntOrString>,
        #[case] max: Option<IntOrString>,
        #[case] pods: i32,
        #[case] allowed: i32,
    ) {
        assert_eq!(allowed_disruptions(&pdb(min, max), pods), allowed);
    }

    #[test]
    fn budget_text_names_the_field_the_student_set() {
        assert_eq!(
            budget_text(&pdb(Some(IntOrString::Int(1)), None)),
            "minAvailable 1"
        );
        assert_eq!(
            budget_text(&pdb(None, Some(IntOrString::String("30%".into())))),
            "maxUnavailable 30%"
        );
    }

    #[test]
    fn drain_budget_counts_one_start_up_per_wave_and_the_grace_period() {
        let intervals = ClusterIntervals::default();
        let wave = intervals.pod_ready + EVICTION_RETRY + intervals.observation_slack;
        let grace = Duration::from_secs(10);
        // 4 pods, 1 at a time: 4 waves; 2 at a time: 2; a blocking budget still gets one.
        assert_eq!(drain_budget(&intervals, 4, 1, grace), wave * 4 + grace);
        assert_eq!(drain_budget(&intervals, 4, 2, grace), wave * 2 + grace);
        assert_eq!(drain_budget(&intervals, 2, 0, grace), wave * 2 + grace);
        assert_eq!(drain_budget(&intervals, 0, 1, grace), wave + grace);
    }

    /// A timeline from JSON, as the recorder saves it.
    fn timeline(samples: serde_json::Value) -> Timeline {
        serde_json::from_value(serde_json::json!({
            "name": "pdb", "started_at": "2026-01-01T00:00:00Z", "samples": samples
        }))
        .expect("a timeline")
    }

    fn pod(t: f64, name: &str, phase: &str, ready: bool, node: &str) -> serde_json::Value {
        serde_json::json!({"t": t, "kind": "pod", "name": name, "phase": phase, "ready": ready, "node": node})
    }

    fn mark(t: f64, label: &str) -> serde_json::Value {
        serde_json::json!({"t": t, "kind": "marker", "label": label})
    }

    const REFUSAL: &str = "DisruptionBudget: The disruption budget fraud-detector-pdb needs 1 healthy pods and has 1 currently";

    /// A good drain of 2 pods under minAvailable 1: one eviction, a refusal, the
    /// replacement Ready on the destination, the second eviction.
    fn good_drain() -> Timeline {
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

    fn expectation(counted: i32, allowed: i32) -> DrainExpectation {
        DrainExpectation {
            pdb: "PodDisruptionBudget fraud-detector-pdb".into(),
            budget: "minAvailable 1".into(),
            selector: "app=api".into(),
            replicas: 2,
            allowed,
            counted_pods: counted,
            source: "a".into(),
            destination: "b".into(),
            pods_on_source: 2,
            drain_budget: Duration::from_secs(60),
            slack: Duration::from_secs(5),
        }
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

    #[test]
    fn a_budget_that_gated_the_drain_passes() {
        let facts = drain_facts(&good_drain(), "api", 1);
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Pass, "{message}");
        assert!(
            message.contains("1 eviction(s) allowed, the next refused"),
            "{message}"
        );
        assert!(message.contains("1 more allowed"), "{message}");
    }

    #[test]
    fn a_budget_that_counts_no_pod_fails_as_protecting_nothing() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(1.2, "eviction allowed api-x-2"),
            mark(1.3, "uncordon b"),
            pod(2.0, "api-x-3", "Running", true, "b"),
            mark(2.1, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        assert_eq!(facts.min_healthy, Some((1.2, 0)));
        assert_eq!(facts.longest_dip, Some((1.2, 2.0, 0)));
        let (outcome, message) = judge_drain(&expectation(0, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("matches no pod"), "{message}");
        assert!(message.contains("evicted 2 of 2 pods at once"), "{message}");
        // Counted by the budget but not enforced: too many evictions at once.
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("at most 1 pod(s)"), "{message}");
    }

    #[test]
    fn a_budget_that_allows_nothing_leaves_the_drain_stuck() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(
                1.1,
                "eviction refused api-x-1: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(1.3, "uncordon b"),
            mark(
                1.4,
                "eviction refused api-x-1: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(
                1.5,
                "eviction refused api-x-2: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(2.6, "drain stuck"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 2);
        let (outcome, message) = judge_drain(&expectation(2, 0), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(
            message.contains("did not complete: 2 pod(s) stayed"),
            "{message}"
        );
        assert!(message.contains("allows 0 disruption(s)"), "{message}");
    }

    #[test]
    fn refusals_without_the_budget_cause_fail() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(
                1.2,
                "eviction refused api-x-2: 429 no cause: too many requests"
            ),
            mark(1.3, "uncordon b"),
            mark(2.1, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("DisruptionBudget cause"), "{message}");
    }

    #[test]
    fn a_long_dip_below_the_budget_fails_and_a_slow_drain_too() {
        // The second eviction allowed while the replacement is not Ready yet, for 10 s.
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(1.2, &format!("eviction refused api-x-2: 429 {REFUSAL}")),
            mark(1.3, "uncordon b"),
            mark(2.0, "eviction allowed api-x-2"),
            pod(12.0, "api-x-3", "Running", true, "b"),
            mark(12.5, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        assert_eq!(facts.longest_dip, Some((2.0, 12.0, 0)));
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("only 0 from 2.0s to 12.0s"), "{message}");

        let mut slow = expectation(2, 1);
        slow.drain_budget = Duration::from_secs(1);
        let (outcome, message) = judge_drain(&slow, &drain_facts(&good_drain(), "api", 1));
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("complete within 1s"), "{message}");
    }
}

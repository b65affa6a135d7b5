//! Live probe of `pdb`: draining a node evicts only as far as the submission's
//! PodDisruptionBudget allows, and the drain still completes.
//!
//! The probe makes two kwok nodes of its own ([`crate::cluster::nodes`]): a source and a
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

use super::ID;
use super::judge::facts::{
    DrainEnd, Eviction, drain_excerpt, drain_facts, eviction_marker, marker, terminating_seen,
};
use super::judge::{
    DrainExpectation, EVICTION_RETRY, MAX_DRAIN, allowed_disruptions, budget_text, drain_budget,
    drain_within_cap, judge_drain, seconds, termination_grace,
};
use crate::cluster::ClusterIntervals;
use crate::cluster::nodes::{TestNodes, pin_pod_spec, set_unschedulable};
use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::criteria::ProbeContext;
use crate::criteria::demand::CpuDemand;
use crate::observe::Recorder;
use crate::submission::{Object, Submission, Typed, selector};
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use std::time::Duration;

/// Drains a node through the submission's budget ([`Protected::pick`]).
pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    vec![Box::pin(probe(namespace, context)).await]
}

async fn probe(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Verdict {
    let protected = match Protected::pick(context.submission) {
        Ok(protected) => protected,
        Err(verdict) => return verdict,
    };
    let intervals = namespace.cluster.intervals;
    // Before anything is created: a drain the submission's numbers cannot finish fails.
    if let Err(message) = drain_within_cap(
        &intervals,
        protected.replicas,
        allowed_disruptions(protected.spec, protected.replicas),
        termination_grace(protected.target.value()),
    ) {
        return Verdict::new(ID, Outcome::Fail, message, Vec::new());
    }
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
    if let Err(e) = nodes
        .wait_ready(&namespace.client(), intervals.pod_ready)
        .await
    {
        return environment(
            format!("the test nodes never became Ready: {e} (is kwok running? see ci/README.md)"),
            &notes,
            None,
        );
    }
    let recorder = Recorder::start(
        namespace,
        &format!("{ID}-{}", namespace.name),
        context.timelines,
    );
    let (source, destination) = (&nodes.names[0], &nodes.names[1]);
    let drained = drain(
        namespace,
        &protected,
        (source, destination),
        &recorder,
        &mut notes,
    )
    .await;
    let timeline = recorder.finish();
    match drained {
        Ok(drained) => judge(&protected, &drained, &timeline, &intervals, &notes),
        Err(Stop::Environment(message)) => environment(message, &notes, Some(timeline)),
        Err(Stop::Refused(message)) => Verdict::new(
            ID,
            Outcome::Fail,
            message,
            timeline.file_evidence().into_iter().collect(),
        ),
    }
}

/// The budget the probe drains against and the Deployment it protects.
struct Protected<'s> {
    submission: &'s Submission,
    object: &'s Object,
    spec: &'s PodDisruptionBudget,
    target: &'s Object,
    /// What runs when nothing is under load: the target's `spec.replicas`, else its
    /// HPA's minReplicas, else 1.
    replicas: i32,
    /// Where `replicas` comes from, for the notes.
    replicas_from: &'static str,
    /// The PriorityClass the target's pods name, when the submission defines it.
    priority_class: Option<&'s Object>,
}

impl<'s> Protected<'s> {
    /// The budget ([`budget_to_drain`]) and the Deployment it is meant to protect: the
    /// first it selects; for a budget that selects none (a broken one), the one it was
    /// picked for, else the first Deployment, so that the drain is still tried.
    fn pick(submission: &'s Submission) -> Result<Protected<'s>, Verdict> {
        let Some((object, meant_for)) = budget_to_drain(submission) else {
            return Err(Verdict::new(
                ID,
                Outcome::Fail,
                "expected a PodDisruptionBudget (policy/v1) that protects the serving Deployment; the submission has none",
                Vec::new(),
            ));
        };
        let Typed::PodDisruptionBudget(spec) = &object.typed else {
            unreachable!("found as a PDB")
        };
        let deployments = || {
            submission
                .objects
                .iter()
                .filter(|o| matches!(o.typed, Typed::Deployment(_)))
        };
        let target = protected_workload(submission, object)
            .or_else(|| deployments().find(|o| Some(o.name.as_str()) == meant_for))
            .or_else(|| deployments().next());
        let Some(target) = target else {
            return Err(Verdict::new(
                ID,
                Outcome::Fail,
                format!("no Deployment for {} to protect", object.describe()),
                Vec::new(),
            ));
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
        let replicas_from = if written.is_some() {
            "its spec.replicas"
        } else if hpa_min.is_some() {
            "its HPA's minReplicas"
        } else {
            "no replica count given"
        };
        let priority_class = submission.priority_class_of(target);
        Ok(Protected {
            submission,
            object,
            spec,
            target,
            replicas: written.or(hpa_min).unwrap_or(1),
            replicas_from,
            priority_class,
        })
    }
}

/// The drained Deployment's pods are pinned to the test's own simulated nodes
/// ([`pin_pod_spec`]): they take none of the real nodes' CPU.
pub fn cpu_demand(_: &Submission) -> CpuDemand {
    CpuDemand::NONE
}

/// Whether `pdb` (non-empty selector) selects the pods of `workload`, in its namespace.
fn selects(pdb: &Object, workload: &Object) -> bool {
    let Typed::PodDisruptionBudget(p) = &pdb.typed else {
        return false;
    };
    let Some(pdb_selector) = p.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    !selector::is_empty(pdb_selector)
        && pdb.same_namespace(workload.namespace.as_deref())
        && workload
            .pod_template()
            .and_then(|t| t.labels)
            .is_some_and(|labels| selector::matches(pdb_selector, labels))
}

/// The budget to drain against: the one protecting the CPU HPA's target (the serving
/// API the exercise asks to keep available), else the first. With it, the name of the
/// workload it was picked for (the HPA's target; for the first budget, a Deployment it
/// selects, else the first HPA target).
fn budget_to_drain(submission: &Submission) -> Option<(&Object, Option<&str>)> {
    let pdbs: Vec<&Object> = submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::PodDisruptionBudget(_)))
        .collect();
    let hpa_targets = submission.hpa_targets();
    for target in &hpa_targets {
        if let Some(pdb) = pdbs.iter().find(|p| selects(p, target)) {
            return Some((pdb, Some(target.name.as_str())));
        }
    }
    let pdb = pdbs.first()?;
    let workload = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::Deployment(_)) && selects(pdb, o))
        .or(hpa_targets.first().copied())
        .map(|o| o.name.as_str());
    Some((pdb, workload))
}

/// The first Deployment a PDB's selector picks among the submission's objects.
fn protected_workload<'a>(submission: &'a Submission, pdb: &Object) -> Option<&'a Object> {
    let Typed::PodDisruptionBudget(typed) = &pdb.typed else {
        return None;
    };
    let pdb_selector = typed.spec.as_ref()?.selector.as_ref()?;
    submission.objects.iter().find(|o| {
        matches!(o.typed, Typed::Deployment(_))
            && o.same_namespace(pdb.namespace.as_deref())
            && o.pod_template()
                .and_then(|t| t.labels)
                .is_some_and(|labels| selector::matches(pdb_selector, labels))
    })
}

/// A probe's own step failed: the environment, not the student (verdict "error").
fn environment(message: String, notes: &[String], timeline: Option<Timeline>) -> Verdict {
    let mut evidence = Vec::new();
    evidence.extend(Evidence::notes(notes));
    if let Some(file) = timeline.as_ref().and_then(Timeline::file_evidence) {
        evidence.push(file);
    }
    Verdict::new(ID, Outcome::Error, message, evidence)
}

/// Why the drain stopped before there was anything to judge.
enum Stop {
    /// The cluster refused the submission's objects: its failure.
    Refused(String),
    /// A step of the probe's own failed.
    Environment(String),
}

/// What the drain did, besides the timeline, for the judge.
struct Drained {
    /// The budget's status once the disruption controller counted its pods.
    status: PodDisruptionBudgetStatus,
    /// Disruptions the spec allows with all replicas healthy.
    allowed: i32,
    /// The budget's selector, as a label query.
    selector: String,
    source: String,
    destination: String,
    pods_on_source: i32,
    /// The drain's budget from the uncordon on.
    budget: Duration,
}

/// The drain, marked on the recorder's timeline: the protected Deployment pinned to the
/// test's nodes and counted by the budget, then both phases (see the module's docs).
async fn drain(
    namespace: &mut TestNamespace,
    protected: &Protected<'_>,
    (source, destination): (&str, &str),
    recorder: &Recorder,
    notes: &mut Vec<String>,
) -> Result<Drained, Stop> {
    let termination_grace = apply_pinned(namespace, protected, notes).await?;
    let status = wait_counted(namespace, protected, source).await?;
    let allowed = allowed_disruptions(protected.spec, protected.replicas);
    // kube's default client retries 429 with backoff for minutes: an eviction refused
    // by the budget must come back as the refusal, at once.
    let mut config = namespace.cluster.config.clone();
    config.default_retry = false;
    let evictions: Api<Pod> = match kube::Client::try_from(config) {
        Ok(client) => Api::namespaced(client, &namespace.name),
        Err(e) => return Err(Stop::Environment(format!("no client for evictions: {e}"))),
    };
    let label_selector = protected
        .target
        .pod_template()
        .and_then(|t| t.labels)
        .map(|labels| selector::to_query(&selector::of_labels(labels)))
        .unwrap_or_default();
    let on_source = ListParams::default()
        .labels(&label_selector)
        .fields(&format!("spec.nodeName={source}"));
    let pods_on_source = first_phase(namespace, &evictions, &on_source, source, recorder).await?;

    // Phase 2: uncordon the destination and drain what is left, as the budget allows.
    recorder.mark(&format!("{}{destination}", marker::UNCORDON));
    if let Err(e) = set_unschedulable(&namespace.client(), destination, false).await {
        return Err(Stop::Environment(e.to_string()));
    }
    // Checked against the cap before anything was applied, for `replicas` pods.
    let budget = drain_budget(
        &namespace.cluster.intervals,
        pods_on_source,
        allowed,
        termination_grace,
    )
    .min(MAX_DRAIN);
    let pods: Api<Pod> = namespace.api();
    let pdbs: Api<PodDisruptionBudget> = namespace.api();
    let end = evict_until_drained(
        &evictions,
        &pods,
        &pdbs,
        &protected.object.name,
        &on_source,
        recorder,
        budget,
    )
    .await
    .map_err(|e| Stop::Environment(format!("the drain of {source} failed unexpectedly: {e}")))?;
    recorder.mark(match end {
        DrainEnd::Complete => marker::COMPLETE,
        DrainEnd::Stuck => marker::STUCK,
        DrainEnd::TimedOut => marker::TIMED_OUT,
    });
    // Let the pod watch catch up with what the evictions did before judging.
    recorder
        .caught_up(namespace.cluster.intervals.observation_slack, |t| {
            let facts = drain_facts(t, &protected.target.name, 0);
            facts
                .attempts
                .iter()
                .filter(|a| a.eviction == Eviction::Allowed)
                .all(|a| terminating_seen(t, &a.pod))
        })
        .await;
    Ok(Drained {
        status,
        allowed,
        selector: pdb_selector_query(protected.spec),
        source: source.to_string(),
        destination: destination.to_string(),
        pods_on_source,
        budget,
    })
}

/// The budget's selector as a label query (`app=api`), for the evidence.
fn pdb_selector_query(pdb: &PodDisruptionBudget) -> String {
    pdb.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(selector::to_query)
        .unwrap_or_default()
}

/// Applies the protected Deployment, pinned to the test's nodes with its replica count
/// (and the PriorityClass its pods name), and the budget. Returns the pods'
/// termination grace period.
async fn apply_pinned(
    namespace: &mut TestNamespace,
    protected: &Protected<'_>,
    notes: &mut Vec<String>,
) -> Result<Duration, Stop> {
    let target = protected.target;
    let replicas = protected.replicas;
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
        target.name, protected.replicas_from
    ));
    let termination_grace = termination_grace(&target_value);
    let mut objects = vec![target_value, protected.object.value().clone()];
    // A PriorityClass the pods name must exist (it is applied under a per-test name).
    if let Some(priority) = protected.priority_class {
        objects.insert(0, priority.value().clone());
    }
    match namespace
        .apply(&protected.submission.as_kubectl_sends(&objects))
        .await
    {
        Ok(applied) => notes.extend(applied.notes),
        Err(e) => {
            let refusal = crate::criteria::refusal(protected.submission, &e);
            return Err(match crate::criteria::refusal_outcome(&e) {
                Outcome::Error => Stop::Environment(refusal),
                _ => Stop::Refused(refusal),
            });
        }
    }
    Ok(termination_grace)
}

/// Waits for the protected Deployment to be Available with all replicas ready on
/// `source`, then for the disruption controller to count the budget's pods (evictions
/// are judged against that count). Returns the budget's status.
async fn wait_counted(
    namespace: &TestNamespace,
    protected: &Protected<'_>,
    source: &str,
) -> Result<PodDisruptionBudgetStatus, Stop> {
    let intervals = namespace.cluster.intervals;
    let replicas = protected.replicas;
    let deployments: Api<Deployment> = namespace.api();
    if let Err(e) = wait_for(
        &deployments,
        &protected.target.name,
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
        return Err(Stop::Environment(format!(
            "the workload never became ready on {source}: {e}"
        )));
    }
    let pdbs: Api<PodDisruptionBudget> = namespace.api();
    let name = &protected.object.name;
    let observed = wait_for(
        &pdbs,
        name,
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
    Ok(match observed {
        Ok(Some(pdb)) => pdb.status.unwrap_or_default(),
        Ok(None) | Err(_) => pdbs
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status)
            .unwrap_or_default(),
    })
}

/// Phase 1: cordons the source and evicts its pods, in name order, with nowhere for
/// replacements to go, until the first refusal. Returns how many pods were on it.
async fn first_phase(
    namespace: &TestNamespace,
    evictions: &Api<Pod>,
    on_source: &ListParams,
    source: &str,
    recorder: &Recorder,
) -> Result<i32, Stop> {
    recorder.mark(&format!("{}{source}", marker::CORDON));
    if let Err(e) = set_unschedulable(&namespace.client(), source, true).await {
        return Err(Stop::Environment(e.to_string()));
    }
    let pods: Api<Pod> = namespace.api();
    let mut first_pods = match pods.list(on_source).await {
        Ok(list) => list.items,
        Err(e) => {
            return Err(Stop::Environment(format!(
                "listing the pods on {source}: {e}"
            )));
        }
    };
    first_pods.sort_by_key(|p| p.name_any());
    for pod in &first_pods {
        match evict(evictions, &pod.name_any()).await {
            Ok(eviction) => {
                recorder.mark(&eviction_marker(&pod.name_any(), &eviction));
                if matches!(eviction, Eviction::Refused { .. }) {
                    break;
                }
            }
            Err(e) => {
                return Err(Stop::Environment(format!(
                    "eviction of {} failed unexpectedly: {e}",
                    pod.name_any()
                )));
            }
        }
    }
    Ok(first_pods.len() as i32)
}

/// The verdict from the recorded drain: [`judge_drain`] on the timeline's facts against
/// what the budget's spec allows, with the numbers, the evictions, the drain's excerpt
/// and the notes as evidence.
fn judge(
    protected: &Protected<'_>,
    drained: &Drained,
    timeline: &Timeline,
    intervals: &ClusterIntervals,
    notes: &[String],
) -> Verdict {
    let status = &drained.status;
    let expectation = DrainExpectation {
        pdb: protected.object.describe(),
        budget: budget_text(protected.spec),
        selector: drained.selector.clone(),
        replicas: protected.replicas,
        allowed: drained.allowed,
        counted_pods: status.expected_pods.unwrap_or(0),
        source: drained.source.clone(),
        destination: drained.destination.clone(),
        pods_on_source: drained.pods_on_source,
        drain_budget: drained.budget,
        slack: intervals.observation_slack,
    };
    let workload = &protected.target.name;
    let facts = drain_facts(timeline, workload, expectation.required());
    let (outcome, message) = judge_drain(&expectation, &facts);
    let (source, destination) = (&drained.source, &drained.destination);
    let values = vec![
        ("replicas".to_string(), protected.replicas.to_string()),
        ("budget".into(), expectation.budget.clone()),
        ("selector".into(), drained.selector.clone()),
        (
            "pods the budget counts (expectedPods)".into(),
            expectation.counted_pods.to_string(),
        ),
        (
            "disruptions allowed by the spec".into(),
            drained.allowed.to_string(),
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
            format!("{:.0}s", drained.budget.as_secs_f64()),
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
            points: drain_excerpt(timeline, workload),
        },
        Evidence::Note {
            text: notes.join("\n"),
        },
    ];
    evidence.extend(timeline.file_evidence());
    Verdict::new(ID, outcome, message, evidence)
}

/// Evicts what is left on the source until none of the workload's pods is there,
/// retrying refusals after [`EVICTION_RETRY`] (bounded by `budget`). Stops early when
/// the budget can never allow an eviction: every pod it counts healthy, none allowed.
async fn evict_until_drained(
    evictions: &Api<Pod>,
    pods: &Api<Pod>,
    pdbs: &Api<PodDisruptionBudget>,
    pdb_name: &str,
    on_source: &ListParams,
    recorder: &Recorder,
    budget: Duration,
) -> Result<DrainEnd, kube::Error> {
    let deadline = tokio::time::Instant::now() + budget.min(MAX_DRAIN);
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
    use crate::submission::load_fixture;

    fn picked(submission: &Submission) -> (String, String) {
        let Ok(protected) = Protected::pick(submission) else {
            panic!("a budget and a Deployment to drain")
        };
        (protected.object.name.clone(), protected.target.name.clone())
    }

    #[test]
    fn the_reference_drains_the_serving_apis_budget() {
        let reference = load_fixture("submissions/reference");
        assert_eq!(
            budget_to_drain(&reference).map(|(pdb, meant_for)| (&pdb.name, meant_for)),
            Some((
                &"fraud-detector-pdb".to_string(),
                Some("fraud-detector-api")
            ))
        );
        assert_eq!(
            picked(&reference),
            ("fraud-detector-pdb".into(), "fraud-detector-api".into())
        );
    }

    /// The cap of issue 12 leaves the reference's drain alone.
    #[test]
    fn the_references_drain_fits_the_cap() {
        let reference = load_fixture("submissions/reference");
        let Ok(p) = Protected::pick(&reference) else {
            panic!("a budget and a Deployment to drain")
        };
        let (grace, allowed) = (termination_grace(p.target.value()), 1);
        assert_eq!(grace, Duration::from_secs(30));
        assert_eq!(allowed_disruptions(p.spec, p.replicas), allowed);
        let intervals = crate::cluster::ClusterIntervals::default();
        let fits = drain_within_cap(&intervals, p.replicas, allowed, grace);
        assert!(fits.is_ok(), "{fits:?}");
    }

    /// A budget that selects nothing is still drained against the Deployment it was
    /// written for, so the drain shows what it fails to protect.
    #[test]
    fn a_budget_selecting_nothing_drains_the_deployment_it_was_meant_for() {
        for broken in ["pdb/broken-selector", "pdb/blocks-all-evictions"] {
            assert_eq!(
                picked(&load_fixture(broken)),
                ("fraud-detector-pdb".into(), "fraud-detector-api".into()),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_submission_without_a_budget_fails_at_once() {
        let Err(verdict) = Protected::pick(&load_fixture("metrics_server/fresh-pod")) else {
            panic!("no budget in that fixture")
        };
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(
            verdict.message,
            "expected a PodDisruptionBudget (policy/v1) that protects the serving Deployment; the submission has none"
        );
    }
}

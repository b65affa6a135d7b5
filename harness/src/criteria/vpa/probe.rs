//! Live probe of `vpa`: every VPA of the submission, applied with its target Deployment
//! (and what that needs: Services, LimitRanges, quotas, the PDBs that protect it) into
//! the test's namespace, under steady load from the load generator. The recorder adds
//! the pods' resources and the VPAs' status to its usual watches (pods, events); the
//! probe waits for every recommendation, deletes one pod of each `Initial` VPA's target
//! (to see what the admission controller sets on a new one), then keeps watching for
//! the updater's window. [`judge_vpa`] holds each VPA to its mode.
//!
//! Budgets come from the cluster's VPA settings (the recommender's and updater's
//! intervals and `--min-replicas`, read from their Deployments in kube-system) and its
//! measured intervals, capped by [`MAX_WINDOW`]: settings that cannot finish inside the
//! cap fail at once with that reason.

use super::ID;
use super::checks::{container_policies, hpa_conflict, update_mode};
use super::judge::{
    Budget, DELETED_MARKER, EVICTED, Judgement, Mode, Policy, RESIZED, VpaSpec, judge_vpa, pod_of,
    seconds,
};
use crate::cluster::load_generator::{LoadGenerator, LoadSpec};
use crate::cluster::{ClusterIntervals, TestNamespace, deployment_available, wait_for};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::hpa_cpu::probe::{container_cpu, service_port, workload_objects};
use crate::criteria::{ProbeContext, Stop};
use crate::observe::{Recorder, pod_resources_observation, vpa_observation};
use crate::submission::crds::VerticalPodAutoscaler;
use crate::submission::{Object, Submission, Typed, selector};
use crate::timeline::{ContainerResources, Observation, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// The most the probe's recording may take, from the VPAs' creation to the end of the
/// updater's window: the grader's cap on this criterion.
pub const MAX_WINDOW: Duration = Duration::from_secs(8 * 60);
/// The load per target, in cores: steady, small next to anything else on the node.
const LOAD_CORES: f64 = 0.1;

/// Runs the probe on every VPA of the submission; one verdict.
pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    vec![Box::pin(probe(namespace, context)).await]
}

async fn probe(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Verdict {
    let (subjects, skipped) = match subjects(context.submission) {
        Ok(found) => found,
        Err(message) => return Verdict::new(ID, Outcome::Fail, message, Vec::new()),
    };
    if subjects.is_empty() {
        return Verdict::not_run(ID.as_str(), skipped.join("; "));
    }
    let settings = match VpaSettings::read(&namespace.client()).await {
        Ok(settings) => settings,
        Err(message) => return Verdict::new(ID, Outcome::Error, message, Vec::new()),
    };
    let intervals = namespace.cluster.intervals;
    let budget = budget(&intervals, &settings);
    if let Err(message) = within_cap(&budget, &settings, &intervals) {
        return Verdict::new(ID, Outcome::Fail, message, Vec::new());
    }
    let name = namespace.name.clone();
    let mut recorder = Recorder::start(namespace, &name, context.timelines);
    let client = namespace.client();
    recorder.also_watch(
        Api::<Pod>::namespaced(client.clone(), &name),
        pod_resources_observation,
    );
    recorder.also_watch(
        Api::<DynamicObject>::namespaced_with(client, &name, &vpa_resource()),
        vpa_observation,
    );
    let mut notes = vec![settings.describe()];
    notes.extend(skipped);
    let mut load_namespace = None;
    let driven = drive(
        namespace,
        context.submission,
        &subjects,
        &settings,
        &budget,
        &recorder,
        &mut notes,
        &mut load_namespace,
    )
    .await;
    let end = recorder.now();
    let timeline = recorder.finish();
    drop(load_namespace);
    match driven {
        Ok(applied_at) => judge(
            &subjects, &timeline, &budget, &settings, applied_at, end, &notes,
        ),
        Err(stop) => stopped(stop, &notes, &timeline),
    }
}

/// The VerticalPodAutoscaler resource, for the untyped watch of their status.
fn vpa_resource() -> ApiResource {
    ApiResource::erase::<VerticalPodAutoscaler>(&())
}

/// One VPA under test: the submission's object, what it promises, and its target.
struct Subject<'s> {
    object: &'s Object,
    spec: VpaSpec,
    /// `None`: its targetRef names nothing the submission defines (the VPA is applied
    /// alone, and the cluster says what it makes of it).
    target: Option<&'s Object>,
    /// The HPAs that scale the target on a resource this VPA changes (the static
    /// `vpa.hpa-conflict`): applied too, so that the timeline shows what both do.
    conflicting_hpas: Vec<(&'s Object, String)>,
}

/// Every VPA of the submission, with its target Deployment; and what is left out: a VPA
/// on another kind of workload is not judged live (its pods are not told apart here),
/// which the verdict says.
fn subjects(submission: &Submission) -> Result<(Vec<Subject<'_>>, Vec<String>), String> {
    let mut subjects = Vec::new();
    let mut skipped = Vec::new();
    for object in &submission.objects {
        let Typed::VerticalPodAutoscaler(vpa) = &object.typed else {
            continue;
        };
        let reference = vpa.spec.target_ref.clone().unwrap_or_default();
        let kind = reference.kind.as_deref().unwrap_or("Deployment");
        let mode_text = update_mode(vpa);
        let Some(mode) = Mode::parse(mode_text.as_deref()) else {
            return Err(format!(
                "{} has updateMode {:?}, which no VPA knows (Off, Initial, Recreate, InPlaceOrRecreate, Auto)",
                object.describe(),
                mode_text.unwrap_or_default()
            ));
        };
        if kind != "Deployment" {
            skipped.push(format!(
                "{} targets a {kind}: not judged live (the probe judges VPAs on Deployments)",
                object.describe()
            ));
            continue;
        }
        let target =
            submission.find_workload(Some(kind), &reference.name, object.namespace.as_deref());
        let template = target
            .and_then(|t| t.pod_template())
            .map(|t| {
                t.spec
                    .containers
                    .iter()
                    .map(|c| {
                        let quantities = |m: Option<
                            &std::collections::BTreeMap<
                                String,
                                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                            >,
                        >| {
                            m.into_iter()
                                .flatten()
                                .map(|(k, v)| (k.clone(), v.0.clone()))
                                .collect()
                        };
                        ContainerResources {
                            name: c.name.clone(),
                            requests: quantities(
                                c.resources.as_ref().and_then(|r| r.requests.as_ref()),
                            ),
                            limits: quantities(
                                c.resources.as_ref().and_then(|r| r.limits.as_ref()),
                            ),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let replicas = target
            .and_then(|t| t.value().pointer("/spec/replicas"))
            .and_then(Value::as_i64)
            .map_or(1, |r| r as i32);
        let policies = container_policies(vpa)
            .iter()
            .map(|p| Policy {
                container: p.container_name.clone().unwrap_or_else(|| "*".into()),
                off: p.mode.as_deref() == Some("Off"),
                min_allowed: quantities_of(p.min_allowed.as_ref()),
                max_allowed: quantities_of(p.max_allowed.as_ref()),
                controlled_resources: p.controlled_resources.clone(),
                requests_only: p.controlled_values.as_deref() == Some("RequestsOnly"),
            })
            .collect();
        let conflicting_hpas = target
            .map(|target| {
                submission
                    .objects
                    .iter()
                    .filter_map(|o| match &o.typed {
                        Typed::HorizontalPodAutoscaler(h)
                            if h.spec.scale_target_ref.name == target.name
                                && h.spec.scale_target_ref.kind == "Deployment"
                                && o.same_namespace(target.namespace.as_deref()) =>
                        {
                            hpa_conflict(vpa, h).map(|(_, shared)| {
                                (o, shared.into_iter().collect::<Vec<_>>().join("/"))
                            })
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        subjects.push(Subject {
            object,
            conflicting_hpas,
            spec: VpaSpec {
                name: object.name.clone(),
                target: reference.name.clone(),
                mode,
                policies,
                template,
                min_replicas: vpa.spec.update_policy.as_ref().and_then(|p| p.min_replicas),
                replicas,
            },
            target,
        });
    }
    if subjects.is_empty() && skipped.is_empty() {
        return Err(
            "expected a VerticalPodAutoscaler (autoscaling.k8s.io/v1); the submission has none"
                .into(),
        );
    }
    Ok((subjects, skipped))
}

fn quantities_of(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> crate::timeline::Quantities {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// The cluster's VPA settings, read from the recommender's and updater's Deployments
/// (kube-system, as upstream installs them); flags they do not set keep upstream's
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpaSettings {
    /// `--recommender-interval` (upstream: 1m).
    pub recommender_interval: Duration,
    /// `--updater-interval` (upstream: 1m).
    pub updater_interval: Duration,
    /// `--min-replicas` of the updater (upstream: 2).
    pub min_replicas: i32,
}

impl Default for VpaSettings {
    fn default() -> Self {
        VpaSettings {
            recommender_interval: Duration::from_secs(60),
            updater_interval: Duration::from_secs(60),
            min_replicas: 2,
        }
    }
}

impl VpaSettings {
    async fn read(client: &kube::Client) -> Result<VpaSettings, String> {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
        let mut settings = VpaSettings::default();
        for component in ["vpa-recommender", "vpa-updater", "vpa-admission-controller"] {
            let deployment = deployments
                .get_opt(component)
                .await
                .map_err(|e| format!("reading kube-system/{component}: {e}"))?
                .ok_or_else(|| {
                    format!(
                        "the cluster has no VPA {component} (Deployment kube-system/{component}): the VPA is an addon of the cluster (ci/addons/vpa, see ci/README.md)"
                    )
                })?;
            if !deployment_available(&deployment) {
                return Err(format!(
                    "the cluster's VPA is not ready: Deployment kube-system/{component} is not Available"
                ));
            }
            let args: Vec<String> = deployment
                .spec
                .template
                .spec
                .and_then(|s| s.containers.into_iter().next())
                .map(|c| {
                    c.command
                        .unwrap_or_default()
                        .into_iter()
                        .chain(c.args.unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            settings.apply_flags(&args);
        }
        Ok(settings)
    }

    /// Reads the flags this probe's budgets depend on (`--flag=value` or `--flag value`).
    fn apply_flags(&mut self, args: &[String]) {
        let value = |flag: &str| {
            args.iter().enumerate().find_map(|(i, arg)| {
                let rest = arg.strip_prefix(flag)?;
                match rest.strip_prefix('=') {
                    Some(v) => Some(v.to_string()),
                    None if rest.is_empty() => args.get(i + 1).cloned(),
                    None => None,
                }
            })
        };
        if let Some(d) = value("--recommender-interval").and_then(|v| go_duration(&v)) {
            self.recommender_interval = d;
        }
        if let Some(d) = value("--updater-interval").and_then(|v| go_duration(&v)) {
            self.updater_interval = d;
        }
        if let Some(n) = value("--min-replicas").and_then(|v| v.parse().ok()) {
            self.min_replicas = n;
        }
    }

    fn describe(&self) -> String {
        format!(
            "cluster's VPA: recommender interval {}, updater interval {}, updater --min-replicas {}",
            seconds(self.recommender_interval.as_secs_f64()),
            seconds(self.updater_interval.as_secs_f64()),
            self.min_replicas
        )
    }
}

/// A Go duration as flags take it (`10s`, `1m30s`, `500ms`, `1h`).
pub fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// The budgets: a recommendation once the target's pods have metrics and two
/// recommender loops ran; the updater's action within two of its loops and a
/// replacement's start.
pub fn budget(intervals: &ClusterIntervals, settings: &VpaSettings) -> Budget {
    Budget {
        recommendation: intervals.first_pod_metrics()
            + settings.recommender_interval * 2
            + intervals.observation_slack,
        action: settings.updater_interval * 2 + intervals.pod_ready + intervals.observation_slack,
        updater_min_replicas: settings.min_replicas,
        slack: intervals.observation_slack,
    }
}

/// How long the recording takes at most: the recommendation, an `Initial` VPA's new pod,
/// then the updater's window.
fn window(budget: &Budget, intervals: &ClusterIntervals) -> Duration {
    budget.recommendation + intervals.pod_ready + budget.action
}

/// Settings whose budgets cannot finish inside [`MAX_WINDOW`] fail at once.
pub fn within_cap(
    budget: &Budget,
    settings: &VpaSettings,
    intervals: &ClusterIntervals,
) -> Result<(), String> {
    let needed = window(budget, intervals);
    if needed > MAX_WINDOW {
        return Err(format!(
            "the VPA cannot be judged within the grader's cap of {}: with the cluster's {} it needs {} (a recommendation within {}, the updater's window {})",
            seconds(MAX_WINDOW.as_secs_f64()),
            settings.describe().trim_start_matches("cluster's VPA: "),
            seconds(needed.as_secs_f64()),
            seconds(budget.recommendation.as_secs_f64()),
            seconds(budget.action.as_secs_f64())
        ));
    }
    Ok(())
}

/// Applies, loads, waits for the recommendations, makes the `Initial` VPAs' new pods,
/// and watches the updater's window. Returns when the VPAs were applied.
#[allow(clippy::too_many_arguments)]
async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    subjects: &[Subject<'_>],
    settings: &VpaSettings,
    budget: &Budget,
    recorder: &Recorder,
    notes: &mut Vec<String>,
    load_namespace: &mut Option<TestNamespace>,
) -> Result<f64, Stop> {
    let intervals = namespace.cluster.intervals;
    let objects = objects_for(submission, subjects);
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes);
    let applied_at = recorder.mark("vpa-applied");
    let deployments: Api<Deployment> = namespace.api();
    for target in targets(subjects) {
        wait_for(
            &deployments,
            &target.name,
            "the VPA's target to be Available",
            intervals.pod_ready * 4,
            |d: Option<&Deployment>| d.is_some_and(deployment_available),
            |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
        )
        .await
        .map_err(|e| {
            Stop::fail(format!(
                "the VPA's target {} never became Available: {e}",
                target.name
            ))
        })?;
    }
    let loads = start_load(
        namespace,
        submission,
        subjects,
        budget,
        &intervals,
        notes,
        load_namespace,
    )
    .await?;
    recorder.mark("load-start");
    // Every VPA's first recommendation (the judge says which never came).
    let names: Vec<String> = subjects.iter().map(|s| s.spec.name.clone()).collect();
    let recommended = recorder
        .caught_up(budget.recommendation, |t| {
            names
                .iter()
                .all(|n| first_recommendation(t, n).is_some() || config_unsupported(t, n))
        })
        .await;
    let recommended_at = recorder.mark("recommendations");
    if recommended {
        renew_initial_pods(namespace, subjects, recorder, &intervals).await?;
    }
    // The updater's window: until every updating VPA acted and its replacements started,
    // at most the action budget; and never shorter than two updater loops, so that an
    // `Off` or `Initial` VPA that stays quiet has been given the chance not to.
    recorder
        .caught_up(budget.action, |t| {
            subjects
                .iter()
                .filter(|s| s.spec.mode.updates_running_pods())
                .all(|s| acted_and_replaced(t, &s.spec.target))
        })
        .await;
    let quiet_end = recommended_at + (settings.updater_interval * 2 + budget.slack).as_secs_f64();
    let now = recorder.now();
    if now < quiet_end {
        crate::progress::waiting(
            "the VPA updater's window",
            Some(Duration::from_secs_f64(quiet_end - now)),
        );
        tokio::time::sleep(Duration::from_secs_f64(quiet_end - now)).await;
    }
    recorder.mark("window-end");
    for load in &loads {
        // Best effort: the load namespace's deletion ends it anyway.
        let _ = load.stop().await;
    }
    Ok(applied_at)
}

/// What the probe's pods request at most: every target at its written replicas (at an
/// HPA's maxReplicas when a conflicting HPA is applied beside it), each under one load
/// generator. Replacements carry the recommendation, which follows that load's usage.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let Ok((subjects, _)) = subjects(submission) else {
        return CpuDemand::NONE;
    };
    targets(&subjects)
        .into_iter()
        .map(|target| {
            let written = target.spec_replicas().map_or(1, i64::from);
            let by_hpa = subjects
                .iter()
                .filter(|s| s.target.is_some_and(|t| std::ptr::eq(t, target)))
                .flat_map(|s| &s.conflicting_hpas)
                .filter_map(|(hpa, _)| match &hpa.typed {
                    Typed::HorizontalPodAutoscaler(h) => Some(i64::from(h.spec.max_replicas)),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            demand::pods_of(submission, target, written.max(by_hpa)) + demand::LOAD_GENERATOR
        })
        .sum()
}

/// The distinct target Deployments of the subjects.
fn targets<'s>(subjects: &[Subject<'s>]) -> Vec<&'s Object> {
    let mut seen = BTreeSet::new();
    subjects
        .iter()
        .filter_map(|s| s.target)
        .filter(|t| seen.insert(t.name.clone()))
        .collect()
}

/// Every target with what it needs, the PDBs that protect it (evictions go through
/// them), then the VPAs; each object once.
fn objects_for(submission: &Submission, subjects: &[Subject<'_>]) -> Vec<Value> {
    let mut objects: Vec<Value> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |objects: &mut Vec<Value>, value: &Value| {
        let key = (
            value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        );
        if seen.insert(key) {
            objects.push(value.clone());
        }
    };
    for subject in subjects {
        let Some(target) = subject.target else {
            continue;
        };
        for value in workload_objects(submission, target) {
            add(&mut objects, &value);
        }
        let labels = target
            .pod_template()
            .and_then(|t| t.labels.cloned())
            .unwrap_or_default();
        for pdb in &submission.objects {
            if let Typed::PodDisruptionBudget(p) = &pdb.typed
                && pdb.same_namespace(target.namespace.as_deref())
                && p.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| !selector::is_empty(s) && selector::matches(s, &labels))
            {
                add(&mut objects, pdb.value());
            }
        }
    }
    for subject in subjects {
        for (hpa, _) in &subject.conflicting_hpas {
            add(&mut objects, hpa.value());
        }
        add(&mut objects, subject.object.value());
    }
    objects
}

/// Steady load on every target a Service selects: [`LOAD_CORES`] of work each, through
/// the Service, from the load generator in a namespace of its own (left in
/// `load_namespace`), for the whole window.
async fn start_load(
    namespace: &TestNamespace,
    submission: &Submission,
    subjects: &[Subject<'_>],
    budget: &Budget,
    intervals: &ClusterIntervals,
    notes: &mut Vec<String>,
    load_namespace: &mut Option<TestNamespace>,
) -> Result<Vec<LoadGenerator>, Stop> {
    let mut plans = Vec::new();
    for target in targets(subjects) {
        let objects = workload_objects(submission, target);
        let Some((service, port)) = service_port(&objects) else {
            notes.push(format!(
                "no Service selects the pods of {}: no load sent, the VPA sees them idle",
                target.name
            ));
            continue;
        };
        let (_, cpu_ms) = container_cpu(target.value());
        let rate = (LOAD_CORES / (cpu_ms / 1000.0).max(0.001))
            .clamp(1.0, 100.0)
            .round();
        plans.push((target.name.clone(), service, port, rate, cpu_ms));
    }
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let own = namespace
        .load_namespace()
        .await
        .map_err(|e| Stop::error(format!("no namespace for the load generator: {e}")))?;
    let own = load_namespace.insert(own);
    let duration = window(budget, intervals);
    let mut generators = Vec::new();
    for (i, (target, service, port, rate, cpu_ms)) in plans.into_iter().enumerate() {
        let spec = LoadSpec {
            url: LoadSpec::service_url(&service, &namespace.name, port, "/predict"),
            rate_rps: rate,
            duration,
            concurrency: 8,
        };
        notes.push(format!(
            "load on {target}: {rate} req/s of {cpu_ms} ms CPU each to {}",
            spec.url
        ));
        let load = LoadGenerator::start(own, &format!("vpa-load-{i}"), spec)
            .await
            .map_err(|e| Stop::error(format!("could not start the load: {e}")))?;
        load.wait_running(intervals.pod_ready * 2)
            .await
            .map_err(|e| Stop::error(format!("the load generator did not start: {e}")))?;
        generators.push(load);
    }
    Ok(generators)
}

/// When `vpa` first had a recommendation in `timeline`.
fn first_recommendation(timeline: &Timeline, vpa: &str) -> Option<f64> {
    timeline.samples.iter().find_map(|s| match &s.what {
        Observation::Vpa {
            name,
            recommendation,
            ..
        } if name == vpa && !recommendation.is_empty() => Some(s.t),
        _ => None,
    })
}

/// Whether `vpa` says it cannot work with its configuration (`ConfigUnsupported=True`:
/// a targetRef that names nothing, a selector-less target): no recommendation will come.
fn config_unsupported(timeline: &Timeline, vpa: &str) -> bool {
    timeline.samples.iter().rev().find_map(|s| match &s.what {
        Observation::Vpa {
            name, conditions, ..
        } if name == vpa => Some(
            conditions
                .iter()
                .any(|c| c.type_ == "ConfigUnsupported" && c.status == "True"),
        ),
        _ => None,
    }) == Some(true)
}

/// Whether the updater acted on a pod of `target` (evicted or resized) and, after an
/// eviction, a replacement's resources are recorded.
fn acted_and_replaced(timeline: &Timeline, target: &str) -> bool {
    let action = timeline.samples.iter().find_map(|s| match &s.what {
        Observation::Event { object, reason, .. }
            if (reason == EVICTED || reason == RESIZED)
                && object
                    .strip_prefix("Pod/")
                    .is_some_and(|p| pod_of(target, p)) =>
        {
            Some((s.t, reason == EVICTED))
        }
        _ => None,
    });
    match action {
        None => false,
        Some((_, false)) => true,
        Some((at, true)) => timeline.samples.iter().any(|s| {
            s.t > at
                && matches!(&s.what, Observation::PodResources { name, .. } if pod_of(target, name))
        }),
    }
}

/// For each `Initial` VPA: deletes one running pod of its target (the probe's own
/// deletion, marked) and waits for the replacement the admission controller sets.
async fn renew_initial_pods(
    namespace: &TestNamespace,
    subjects: &[Subject<'_>],
    recorder: &Recorder,
    intervals: &ClusterIntervals,
) -> Result<(), Stop> {
    let pods: Api<Pod> = namespace.api();
    for subject in subjects.iter().filter(|s| s.spec.mode == Mode::Initial) {
        let Some(target) = subject.target else {
            continue;
        };
        let query = target
            .pod_template()
            .and_then(|t| t.labels)
            .map(|labels| selector::to_query(&selector::of_labels(labels)))
            .unwrap_or_default();
        let list = pods
            .list(&ListParams::default().labels(&query))
            .await
            .map_err(|e| Stop::error(format!("listing the pods of {}: {e}", target.name)))?;
        let Some(pod) = list
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none() && pod_of(&target.name, &p.name_any())
            })
            .min_by_key(|p| p.name_any())
        else {
            continue;
        };
        let name = pod.name_any();
        let deleted_at = recorder.mark(&format!("{DELETED_MARKER}{name}"));
        pods.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| Stop::error(format!("deleting pod {name}: {e}")))?;
        let target_name = target.name.clone();
        recorder
            .caught_up(intervals.pod_ready + intervals.observation_slack, |t| {
                t.samples.iter().any(|s| {
                    s.t > deleted_at
                        && matches!(&s.what, Observation::PodResources { name: p, .. }
                            if *p != name && pod_of(&target_name, p)
                                && !t.samples.iter().any(|e| e.t <= deleted_at
                                    && matches!(&e.what, Observation::PodResources { name: q, .. } if q == p)))
                })
            })
            .await;
    }
    Ok(())
}

/// The verdict: every VPA's judgement; it fails if one fails (an error of the probe's
/// own wins: the run cannot be trusted), with each VPA's story as evidence.
fn judge(
    subjects: &[Subject<'_>],
    timeline: &Timeline,
    budget: &Budget,
    settings: &VpaSettings,
    applied_at: f64,
    end: f64,
    notes: &[String],
) -> Verdict {
    let judgements: Vec<Judgement> = subjects
        .iter()
        .map(|s| judge_vpa(&s.spec, timeline, budget, applied_at, end))
        .collect();
    let outcome = if judgements.iter().any(|j| j.outcome == Outcome::Error) {
        Outcome::Error
    } else if judgements.iter().any(|j| j.outcome == Outcome::Fail) {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    // The failing ones first: they are the reason.
    let mut messages: Vec<&str> = judgements
        .iter()
        .filter(|j| j.outcome != Outcome::Pass)
        .chain(judgements.iter().filter(|j| j.outcome == Outcome::Pass))
        .map(|j| j.message.as_str())
        .collect();
    messages.dedup();
    let values = vec![
        (
            "recommender interval".to_string(),
            seconds(settings.recommender_interval.as_secs_f64()),
        ),
        (
            "updater interval".into(),
            seconds(settings.updater_interval.as_secs_f64()),
        ),
        (
            "updater --min-replicas".into(),
            settings.min_replicas.to_string(),
        ),
        (
            "recommendation budget".into(),
            seconds(budget.recommendation.as_secs_f64()),
        ),
        (
            "updater budget".into(),
            seconds(budget.action.as_secs_f64()),
        ),
        ("window recorded".into(), seconds(end - applied_at)),
    ];
    let mut lines = Vec::new();
    for (subject, judgement) in subjects.iter().zip(&judgements) {
        lines.push(format!(
            "VPA {} ({:?}) on {}:",
            subject.spec.name, subject.spec.mode, subject.spec.target
        ));
        lines.extend(judgement.lines.iter().map(|l| format!("  {l}")));
    }
    let mut evidence = vec![Evidence::Values { values }, Evidence::Events { lines }];
    for subject in subjects {
        evidence.extend(conflict_evidence(subject, timeline));
    }
    evidence.push(Evidence::Note {
        text: notes.join("\n"),
    });
    evidence.extend(timeline.file_evidence());
    Verdict::new(ID, outcome, messages.join("; "), evidence)
}

/// For a VPA that fights an HPA over its target (the static `vpa.hpa-conflict`): what
/// the two controllers did, side by side: the HPA's desired replicas, the target's
/// replicas, the VPA's evictions and resizes, the pods it set.
fn conflict_evidence(subject: &Subject<'_>, timeline: &Timeline) -> Vec<Evidence> {
    if subject.conflicting_hpas.is_empty() {
        return Vec::new();
    }
    let target = &subject.spec.target;
    let hpas: Vec<&str> = subject
        .conflicting_hpas
        .iter()
        .map(|(h, _)| h.name.as_str())
        .collect();
    let mut points: Vec<crate::verdict::TimelinePoint> = Vec::new();
    for sample in &timeline.samples {
        let relevant = match &sample.what {
            Observation::Hpa { name, .. } => hpas.contains(&name.as_str()),
            Observation::Scale { target: t, .. } => t == target,
            Observation::Event { object, reason, .. } => {
                (reason == EVICTED || reason == RESIZED)
                    && object
                        .strip_prefix("Pod/")
                        .is_some_and(|p| pod_of(target, p))
            }
            Observation::PodResources {
                name, vpa_updates, ..
            } => vpa_updates.is_some() && pod_of(target, name),
            _ => false,
        };
        let what = sample.what.describe();
        if relevant && points.last().is_none_or(|p| p.what != what) {
            points.push(crate::verdict::TimelinePoint {
                seconds: sample.t,
                what,
            });
        }
    }
    let hpa_changes = timeline.steps(target, 0.0).len();
    let evictions = points.iter().filter(|p| p.what.contains(EVICTED)).count();
    let shared: Vec<String> = subject
        .conflicting_hpas
        .iter()
        .map(|(h, resources)| format!("HPA {} on {resources}", h.name))
        .collect();
    vec![
        Evidence::Note {
            text: format!(
                "vpa.hpa-conflict, live: VPA {} ({:?}) and {} both act on {target}: its replicas changed {hpa_changes} time(s) while the VPA evicted {evictions} pod(s); what each did is below",
                subject.spec.name,
                subject.spec.mode,
                shared.join(", ")
            ),
        },
        Evidence::Timeline { points },
    ]
}

/// The verdict of a run that stopped early, with what the cluster said meanwhile.
fn stopped(stop: Stop, notes: &[String], timeline: &Timeline) -> Verdict {
    let mut evidence = vec![Evidence::Note {
        text: notes.join("\n"),
    }];
    evidence.extend(timeline.stop_evidence());
    Verdict::new(ID, stop.outcome, stop.message, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn go_durations_as_flags_take_them() {
        assert_eq!(go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("ten"), None);
        assert_eq!(go_duration("10x"), None);
    }

    #[test]
    fn flags_override_upstreams_defaults() {
        let mut settings = VpaSettings::default();
        settings.apply_flags(&[
            "--recommender-interval=10s".into(),
            "--min-replicas".into(),
            "1".into(),
            "--updater-interval-extra=5s".into(),
        ]);
        assert_eq!(settings.recommender_interval, Duration::from_secs(10));
        assert_eq!(settings.updater_interval, Duration::from_secs(60));
        assert_eq!(settings.min_replicas, 1);
    }

    #[test]
    fn upstreams_intervals_fit_the_cap_and_slow_ones_fail() {
        let intervals = ClusterIntervals::default();
        let upstream = VpaSettings::default();
        assert!(within_cap(&budget(&intervals, &upstream), &upstream, &intervals).is_ok());
        let slow = VpaSettings {
            recommender_interval: Duration::from_secs(300),
            ..upstream
        };
        let Err(message) = within_cap(&budget(&intervals, &slow), &slow, &intervals) else {
            panic!("a 5-minute recommender fits an 8-minute cap")
        };
        assert!(message.contains("recommender interval 300s"), "{message}");
    }

    #[test]
    fn a_submission_without_a_vpa_fails_at_once() {
        let Err(message) = subjects(&load_fixture("metrics_server/fresh-pod")) else {
            panic!("no VPA in that fixture")
        };
        assert!(message.contains("the submission has none"), "{message}");
    }

    #[test]
    fn the_references_three_vpas_are_probed_with_their_modes() {
        let reference = load_fixture("submissions/reference");
        let Ok((subjects, skipped)) = subjects(&reference) else {
            panic!("the reference has VPAs")
        };
        assert!(skipped.is_empty(), "{skipped:?}");
        let modes: Vec<(&str, Mode, &str)> = subjects
            .iter()
            .map(|s| (s.spec.name.as_str(), s.spec.mode, s.spec.target.as_str()))
            .collect();
        assert_eq!(
            modes,
            vec![
                ("model-training-vpa", Mode::Recreate, "model-training-job"),
                ("vpa-mode-off", Mode::Off, "fraud-detector-api"),
                ("vpa-mode-initial", Mode::Initial, "feature-store"),
            ]
        );
        let objects = objects_for(&reference, &subjects);
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "VerticalPodAutoscaler")
                .count(),
            3
        );
        // The serving API's PDB comes along: the updater's evictions go through it.
        assert!(kinds.contains(&"PodDisruptionBudget"), "{kinds:?}");
        assert!(!kinds.contains(&"HorizontalPodAutoscaler"), "{kinds:?}");
    }
}

//! Live probe of `monitoring`, against the cluster's Prometheus
//! ([`crate::cluster::prometheus`], the Prometheus Operator's, which loads
//! PrometheusRules and ServiceMonitors from every namespace):
//! 1. the submission's rule groups (rule files, Helm values, ConfigMaps or
//!    PrometheusRules alike) become PrometheusRule objects of the probe's namespace,
//!    their `namespace` matchers rewritten to it ([`super::promql::rewrite`]); its
//!    serving workloads (Deployments, Services, HPAs, monitors; no Jobs, GPU pods,
//!    quotas or KEDA/VPA objects) are applied beside them, replicas capped;
//! 2. the load generator drives its serving Services, beyond what their pods serve when
//!    there is a latency or CPU alert to judge, moderately otherwise (bounded);
//! 3. once Prometheus has loaded the groups (found by the operator's rule file name,
//!    which holds the namespace), every evaluation interval the probe reads each rule's
//!    health and state, asks `/api/v1/series` for each selector still unmatched and runs
//!    each dashboard panel query still empty, until all are seen or the budget ends;
//! 4. [`super::judge::judge`] decides.

use super::ID;
use super::judge::{
    AlertOutcome, AlertSeen, Observed, PanelSeen, RuleHealth, Seen, SelectorSeen, judge,
};
use super::promql::{self, Rewritten};
use crate::cluster::load_generator::{LoadGenerator, LoadSpec};
use crate::cluster::prometheus::{Prometheus, PrometheusError};
use crate::cluster::{ApplyError, TestNamespace, deployment_available, wait_for};
use crate::criteria::ProbeContext;
use crate::criteria::demand::{self, CpuDemand};
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// The longest `for` the probe waits out; a longer one is a note.
pub const ALERT_CAP: Duration = Duration::from_secs(300);
/// How long Prometheus may take to load a PrometheusRule: the operator's reconcile, the
/// ConfigMap reaching the pod's volume (kubelet sync, up to a minute, and its cache's
/// TTL), the reloader. 180 s ran out once on a loaded 2-CPU CI machine (2026-12-01: the
/// reference's rule groups never loaded, its last probe of a 40-minute grade).
const RULES_LOAD_BUDGET: Duration = Duration::from_secs(300);
/// The observation after the rules are loaded, when no alert needs longer.
const OBSERVE_BUDGET: Duration = Duration::from_secs(120);
/// Rounds of evaluation every rule must have passed through.
const HEALTH_ROUNDS: usize = 3;
/// The probe's replicas: enough to be a workload, little enough to share the node.
const MAX_REPLICAS: i64 = 2;
/// Requests per second: moderate load, and the cap on overload.
const MODERATE_RPS: f64 = 5.0;
const MAX_OVERLOAD_RPS: f64 = 80.0;
/// Prometheus's scrape interval on this cluster (the evaluation interval is read).
const SCRAPE_INTERVAL: Duration = Duration::from_secs(15);

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    vec![Box::pin(probe(namespace, context)).await]
}

fn error(message: impl Into<String>, notes: &[String]) -> Verdict {
    let evidence = if notes.is_empty() {
        Vec::new()
    } else {
        vec![Evidence::Note {
            text: notes.join("\n"),
        }]
    };
    Verdict::new(ID, Outcome::Error, message, evidence)
}

async fn probe(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Verdict {
    let submission = context.submission;
    let plan = Plan::build(submission, &namespace.name);
    let mut notes = plan.notes.clone();
    if plan.rule_objects.is_empty() && plan.panels.is_empty() {
        return judge(&Observed::default());
    }
    let prometheus = Prometheus::new(namespace.client());
    if let Err(e) = prometheus.ready().await {
        return error(format!("Prometheus is not reachable: {e}"), &notes);
    }
    let client = namespace.client();
    let have_keda = served(&client, "keda.sh", "v1alpha1", "ScaledObject").await;
    let have_vpa = served(&client, "autoscaling.k8s.io", "v1", "VerticalPodAutoscaler").await;
    if !served(&client, "monitoring.coreos.com", "v1", "PrometheusRule").await {
        return error(
            "the cluster does not serve monitoring.coreos.com/v1 PrometheusRule (Prometheus Operator missing)",
            &notes,
        );
    }
    let mut objects = plan.workloads.clone();
    if have_vpa && !plan.vpas.is_empty() {
        objects.extend(plan.vpas.iter().cloned());
        notes.push(format!(
            "{} VerticalPodAutoscaler(s) of the applied Deployments applied in updateMode Off, for their recommendations' series (the vpa criterion judges their modes)",
            plan.vpas.len()
        ));
    }
    objects.extend(plan.rule_objects.iter().cloned());
    match namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
    {
        Ok(applied) => notes.extend(applied.notes),
        Err(e @ ApplyError::Discovery { .. }) => {
            return error(format!("applying the submission: {e}"), &notes);
        }
        Err(e) => {
            return Verdict::new(
                ID,
                crate::criteria::refusal_outcome(&e),
                crate::criteria::refusal(submission, &e),
                vec![Evidence::Note {
                    text: notes.join("\n"),
                }],
            );
        }
    }
    // The load generator runs in a namespace of its own, like the HPA probe's.
    let load_namespace = match namespace.load_namespace().await {
        Ok(own) => own,
        Err(e) => return error(format!("no namespace for the load generator: {e}"), &notes),
    };
    wait_ready(namespace, &plan, &mut notes).await;
    let overload = plan.alerts.iter().any(|a| a.for_ <= ALERT_CAP);
    let mut loads = Vec::new();
    for (i, target) in plan.load_targets.iter().enumerate() {
        let primary = i == 0;
        let rate = if overload && primary {
            target.overload_rps
        } else {
            MODERATE_RPS
        };
        let spec = LoadSpec {
            url: LoadSpec::service_url(&target.service, &namespace.name, target.port, "/predict"),
            rate_rps: rate,
            duration: RULES_LOAD_BUDGET + OBSERVE_BUDGET + ALERT_CAP,
            concurrency: if rate > MODERATE_RPS { 32 } else { 4 },
        };
        notes.push(format!(
            "load: {rate} req/s to {} ({})",
            spec.url,
            if rate > MODERATE_RPS {
                "overload: about twice what the pods serve"
            } else {
                "moderate"
            }
        ));
        match LoadGenerator::start(&load_namespace, &format!("monitoring-load-{i}"), spec).await {
            Ok(load) => loads.push(load),
            Err(e) => return error(format!("could not start the load: {e}"), &notes),
        }
    }
    for load in &loads {
        if let Err(e) = load
            .wait_running(namespace.cluster.intervals.pod_ready * 2)
            .await
        {
            return error(format!("the load generator did not start: {e}"), &notes);
        }
    }
    let load_began = Instant::now();
    let observed = observe(
        &prometheus,
        namespace,
        &plan,
        (have_keda, have_vpa),
        load_began,
        &mut notes,
    )
    .await;
    for load in &loads {
        let _ = load.stop().await;
    }
    drop(load_namespace);
    match observed {
        Ok(mut observed) => {
            observed.notes = notes;
            judge(&observed)
        }
        Err(e) => error(format!("Prometheus failed during the probe: {e}"), &notes),
    }
}

/// Whether the cluster serves a kind (its CRD is installed).
async fn served(client: &kube::Client, group: &str, version: &str, kind: &str) -> bool {
    kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .is_ok()
}

/// Waits (bounded) for the applied Deployments to be Available; one that never is is
/// noted (its selectors will then match nothing, the submission's fault).
async fn wait_ready(namespace: &TestNamespace, plan: &Plan, notes: &mut Vec<String>) {
    let deployments: kube::Api<Deployment> = namespace.api();
    let budget = namespace.cluster.intervals.pod_ready * 4;
    for name in &plan.deployments {
        if let Err(e) = wait_for(
            &deployments,
            name,
            "the Deployment to be Available",
            budget,
            |d: Option<&Deployment>| d.is_some_and(deployment_available),
            |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
        )
        .await
        {
            notes.push(format!("Deployment {name} never became Available: {e}"));
        }
    }
}

/// Steps 3 and 4 of the module's docs, up to the verdict's data.
async fn observe(
    prometheus: &Prometheus,
    namespace: &TestNamespace,
    plan: &Plan,
    (have_keda, have_vpa): (bool, bool),
    load_began: Instant,
    notes: &mut Vec<String>,
) -> Result<Observed, crate::cluster::EnvironmentError> {
    let mut observed = Observed {
        groups: plan.groups.iter().map(|g| g.name.clone()).collect(),
        monitor_problems: plan.monitor_problems.clone(),
        ..Observed::default()
    };
    // Rules loaded?
    let file_part = format!("/{}-{RULE_OBJECT_PREFIX}", namespace.name);
    let loaded = prometheus
        .wait_for_rule_groups(&file_part, plan.groups.len(), RULES_LOAD_BUDGET)
        .await
        .map_err(environment)?;
    let loaded_names: BTreeSet<&str> = loaded.iter().map(|g| g.name.as_str()).collect();
    observed.groups_missing = plan
        .groups
        .iter()
        .filter(|g| !loaded_names.contains(g.name.as_str()))
        .map(|g| g.name.clone())
        .collect();
    if !observed.groups_missing.is_empty() {
        return Ok(observed);
    }
    let rules_loaded = Instant::now();
    let evaluation = loaded
        .iter()
        .map(|g| g.interval)
        .filter(|i| i.is_finite() && *i > 0.0)
        .fold(15.0_f64, f64::max);
    let evaluation = Duration::from_secs_f64(evaluation.min(120.0));
    notes.push(format!(
        "rule groups loaded {:.0}s after the load began; evaluation interval {:.0}s",
        load_began.elapsed().as_secs_f64(),
        evaluation.as_secs_f64()
    ));
    // What is judged and what not.
    let not_judged = |metric: Option<&str>| -> Option<String> {
        let metric = metric?;
        let needs = component_needed(metric, have_keda, have_vpa)
            .map(str::to_string)
            .or_else(|| {
                plan.derived
                    .get(metric)
                    .and_then(|inputs| {
                        inputs
                            .iter()
                            .find_map(|m| component_needed(m, have_keda, have_vpa))
                    })
                    .map(|needs| format!("{needs}: recorded from its metrics"))
            })?;
        Some(needs)
    };
    let mut selectors: Vec<SelectorSeen> = plan
        .selectors
        .iter()
        .map(|(asked, (written, metric, used_by))| SelectorSeen {
            written: written.clone(),
            asked: asked.clone(),
            used_by: used_by.clone(),
            seen: not_judged(metric.as_deref()).map_or(Seen::Nothing, Seen::NotJudged),
        })
        .collect();
    let mut panels: Vec<PanelSeen> = plan
        .panels
        .iter()
        .map(|p| PanelSeen {
            panel: p.panel.clone(),
            written: p.written.clone(),
            asked: p.asked.clone(),
            seen: match (
                &p.unparsable,
                p.metrics.iter().find_map(|m| not_judged(Some(m))),
            ) {
                (Some(why), _) => {
                    Seen::NotJudged(format!("not PromQL once its variables are filled: {why}"))
                }
                (None, Some(why)) => Seen::NotJudged(why),
                (None, None) => Seen::Nothing,
            },
        })
        .collect();
    let mut alerts: Vec<(usize, AlertSeen, Duration)> = Vec::new();
    for (i, alert) in plan.alerts.iter().enumerate() {
        let budget = alert.for_ + evaluation * 2 + SCRAPE_INTERVAL * 2;
        let outcome = if alert.for_ > ALERT_CAP {
            AlertOutcome::TooLong {
                cap: ALERT_CAP,
                expression: String::new(),
            }
        } else {
            AlertOutcome::NotReached { waited: budget }
        };
        alerts.push((
            i,
            AlertSeen {
                alert: alert.name.clone(),
                for_: alert.for_,
                outcome,
            },
            budget,
        ));
    }
    // The overload counts from when both the load ran and the rules were loaded.
    let overload_began = rules_loaded.max(load_began);
    let alert_deadline = alerts
        .iter()
        .filter(|(_, a, _)| matches!(a.outcome, AlertOutcome::NotReached { .. }))
        .map(|(_, _, budget)| overload_began + *budget)
        .max();
    let deadline = (rules_loaded + OBSERVE_BUDGET).max(alert_deadline.unwrap_or(rules_loaded));
    let mut health: BTreeMap<(String, String), (RuleHealth, BTreeSet<String>)> = BTreeMap::new();
    let mut first_values: Vec<(String, String)> = Vec::new();
    loop {
        // Rule health and alert states.
        let groups = prometheus.rules().await.map_err(environment)?;
        for group in groups.iter().filter(|g| g.file.contains(&file_part)) {
            for rule in &group.rules {
                let label = format!(
                    "{} {}",
                    if rule.kind == "alerting" {
                        "alert"
                    } else {
                        "record"
                    },
                    rule.name
                );
                let entry = health
                    .entry((group.name.clone(), label.clone()))
                    .or_insert_with(|| {
                        (
                            RuleHealth {
                                group: group.name.clone(),
                                rule: label.clone(),
                                rounds: 0,
                                errors: 0,
                                last_health: String::new(),
                                last_error: None,
                                state: None,
                            },
                            BTreeSet::new(),
                        )
                    });
                let evaluated = rule
                    .last_evaluation
                    .clone()
                    .filter(|t| !t.starts_with("0001-"));
                if let Some(at) = evaluated
                    && entry.1.insert(at)
                {
                    entry.0.rounds += 1;
                    if rule.health == "err" {
                        entry.0.errors += 1;
                    }
                }
                entry.0.last_health = rule.health.clone();
                entry.0.last_error = rule.last_error.clone().filter(|e| !e.is_empty());
                entry.0.state = rule.state.clone();
                if let Some(state) = rule
                    .state
                    .as_deref()
                    .filter(|s| matches!(*s, "pending" | "firing"))
                {
                    for (_, alert, budget) in &mut alerts {
                        if alert.alert == rule.name
                            && matches!(alert.outcome, AlertOutcome::NotReached { .. })
                        {
                            let after = overload_began.elapsed();
                            if after <= *budget + evaluation {
                                alert.outcome = AlertOutcome::Reached {
                                    state: state.to_string(),
                                    after,
                                };
                            }
                        }
                    }
                }
            }
        }
        // Selectors still unmatched.
        for selector in selectors.iter_mut().filter(|s| s.seen == Seen::Nothing) {
            match prometheus.series(&selector.asked).await {
                Ok(series) if !series.is_empty() => {
                    selector.seen = Seen::Matched(series.len());
                    if let Ok(samples) = prometheus.query(&selector.asked).await
                        && let Some(sample) = samples.first()
                    {
                        first_values.push((
                            format!("value of {}", selector.asked),
                            format!("{} (one of {} sample(s))", sample.value, samples.len()),
                        ));
                    }
                }
                Ok(_) => {}
                Err(PrometheusError::Rejected { error, .. }) => {
                    selector.seen = Seen::Refused(error)
                }
                Err(PrometheusError::Environment(e)) => return Err(e),
            }
        }
        for panel in panels.iter_mut().filter(|p| p.seen == Seen::Nothing) {
            match prometheus.query(&panel.asked).await {
                Ok(samples) if !samples.is_empty() => panel.seen = Seen::Matched(samples.len()),
                Ok(_) => {}
                Err(PrometheusError::Rejected { error, .. }) => panel.seen = Seen::Refused(error),
                Err(PrometheusError::Environment(e)) => return Err(e),
            }
        }
        let now = Instant::now();
        let healthy_enough = health.len() >= plan.rule_count
            && health.values().all(|(h, _)| h.rounds >= HEALTH_ROUNDS);
        let all_seen = selectors.iter().all(|s| s.seen != Seen::Nothing)
            && panels.iter().all(|p| p.seen != Seen::Nothing);
        let alerts_done = alerts.iter().all(|(_, a, budget)| match a.outcome {
            AlertOutcome::NotReached { .. } => now >= overload_began + *budget + evaluation,
            _ => true,
        });
        if (healthy_enough && all_seen && alerts_done) || now >= deadline {
            break;
        }
        tokio::time::sleep(
            evaluation
                .min(deadline.saturating_duration_since(now))
                .max(Duration::from_secs(1)),
        )
        .await;
    }
    // Alerts too long to wait for: their expression under overload, as evidence.
    for (i, alert, _) in &mut alerts {
        if let AlertOutcome::TooLong { expression, .. } = &mut alert.outcome {
            *expression = match prometheus.query(&plan.alerts[*i].expr).await {
                Ok(samples) if samples.is_empty() => "no series (not true now)".into(),
                Ok(samples) => format!(
                    "true for {} series, e.g. value {}",
                    samples.len(),
                    samples[0].value
                ),
                Err(PrometheusError::Rejected { error, .. }) => format!("refused: {error}"),
                Err(PrometheusError::Environment(e)) => return Err(e),
            };
        }
    }
    // The monitors' targets, as Prometheus sees them.
    if let Ok(targets) = prometheus.targets().await {
        let mut pools: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for target in targets.iter().filter(|t| {
            t.labels.get("namespace").map(String::as_str) == Some(namespace.name.as_str())
                || t.scrape_pool.contains(&format!("/{}/", namespace.name))
        }) {
            let entry = pools.entry(target.scrape_pool.clone()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(target.health == "up");
        }
        for (pool, (all, up)) in pools {
            observed.values.push((
                format!("scrape pool {pool}"),
                format!("{up} of {all} target(s) up"),
            ));
        }
    }
    observed.values.extend(first_values);
    observed.health = health.into_values().map(|(h, _)| h).collect();
    observed.selectors = selectors;
    observed.panels = panels;
    observed.alerts = alerts.into_iter().map(|(_, a, _)| a).collect();
    Ok(observed)
}

fn environment(e: PrometheusError) -> crate::cluster::EnvironmentError {
    match e {
        PrometheusError::Environment(e) => e,
        PrometheusError::Rejected {
            query,
            error_type,
            error,
        } => crate::cluster::EnvironmentError::NotReady {
            what: format!("Prometheus answering {query}"),
            detail: format!("{error_type}: {error}"),
        },
    }
}

/// The component a metric comes from, when this cluster does not run it.
pub fn component_needed(metric: &str, have_keda: bool, have_vpa: bool) -> Option<&'static str> {
    let metric = metric.to_ascii_lowercase();
    if !have_keda && metric.starts_with("keda_") {
        return Some("needs KEDA");
    }
    // KEDA runs here, but its operator's own metrics are not scraped; and the cluster's
    // kube-state-metrics exports a VPA's recommendations and mode, not its resource policy.
    if metric.starts_with("keda_") {
        return Some("needs KEDA's own metrics scraped, which this cluster does not");
    }
    let vpa = metric.starts_with("kube_verticalpodautoscaler_")
        || (metric.starts_with("kube_customresource_")
            && (metric.contains("vpa") || metric.contains("verticalpodautoscaler")));
    if !have_vpa && vpa {
        return Some("needs VPA");
    }
    metric
        .starts_with("kube_verticalpodautoscaler_spec_resourcepolicy")
        .then_some("needs a VPA resource-policy series, which this cluster's kube-state-metrics does not export")
}

/// PrometheusRule objects the probe applies are named `<prefix><index>`.
const RULE_OBJECT_PREFIX: &str = "submission-rules-";

/// One rule group the submission has.
#[derive(Debug, Clone)]
struct Group {
    name: String,
}

/// A latency or CPU alert of the submission.
#[derive(Debug, Clone)]
struct Alert {
    name: String,
    /// Its expression, rewritten.
    expr: String,
    for_: Duration,
}

/// A dashboard panel query, ready to run.
#[derive(Debug, Clone)]
struct Panel {
    panel: String,
    written: String,
    asked: String,
    metrics: BTreeSet<String>,
    unparsable: Option<String>,
}

/// A Service the load generator drives.
#[derive(Debug, Clone)]
struct LoadTarget {
    service: String,
    port: i32,
    overload_rps: f64,
}

/// Everything the probe does, decided from the submission alone (pure).
#[derive(Debug, Clone, Default)]
struct Plan {
    workloads: Vec<Value>,
    /// The submission's VPAs of applied Deployments, in mode `Off`: applied where the
    /// cluster serves VPA, so that its recommendations (the dashboards' VPA series)
    /// exist without a VPA evicting the probe's pods.
    vpas: Vec<Value>,
    deployments: Vec<String>,
    rule_objects: Vec<Value>,
    groups: Vec<Group>,
    rule_count: usize,
    /// By selector as asked: as written, its metric, and the rules using it.
    selectors: BTreeMap<String, (String, Option<String>, Vec<String>)>,
    /// Recording rule name → the metrics it is recorded from.
    derived: HashMap<String, BTreeSet<String>>,
    alerts: Vec<Alert>,
    panels: Vec<Panel>,
    load_targets: Vec<LoadTarget>,
    monitor_problems: Vec<String>,
    notes: Vec<String>,
}

impl Plan {
    fn build(submission: &Submission, test_namespace: &str) -> Plan {
        let mut plan = Plan::default();
        let namespaces = submission_namespaces(submission);
        let mut rewrites = BTreeSet::new();
        for (index, source) in submission.rule_sources.iter().enumerate() {
            let mut groups = source
                .content
                .get("groups")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for group in &mut groups {
                let name = group
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                plan.groups.push(Group { name });
                let Some(rules) = group.get_mut("rules").and_then(Value::as_array_mut) else {
                    continue;
                };
                for rule in rules {
                    plan.rule_count += 1;
                    let (label, alert) = match (
                        rule.get("alert").and_then(Value::as_str),
                        rule.get("record").and_then(Value::as_str),
                    ) {
                        (Some(alert), _) => (format!("alert {alert}"), Some(alert.to_string())),
                        (None, Some(record)) => (format!("record {record}"), None),
                        (None, None) => ("rule without a name".to_string(), None),
                    };
                    let expr = match rule.get("expr") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => continue,
                    };
                    let Ok(rewritten) = promql::rewrite(&expr, &namespaces, test_namespace) else {
                        // promtool's check reports it; Prometheus will say it too.
                        continue;
                    };
                    rule["expr"] = Value::String(rewritten.expr.clone());
                    rewrites.extend(rewritten.rewrites.iter().cloned());
                    if let Some(record) = rule.get("record").and_then(Value::as_str) {
                        plan.derived
                            .entry(record.to_string())
                            .or_default()
                            .extend(rewritten.selectors.iter().filter_map(|s| s.metric.clone()));
                    }
                    if let Some(alert) = alert
                        && is_latency_or_cpu(&alert, &expr)
                    {
                        let for_ = rule
                            .get("for")
                            .and_then(Value::as_str)
                            .and_then(parse_duration)
                            .unwrap_or_default();
                        plan.alerts.push(Alert {
                            name: alert,
                            expr: rewritten.expr.clone(),
                            for_,
                        });
                    }
                    plan.add_selectors(&rewritten, &label);
                }
            }
            plan.rule_objects.push(json!({
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {"name": format!("{RULE_OBJECT_PREFIX}{index}")},
                "spec": {"groups": groups},
            }));
        }
        // Derived metrics: a recording rule of a recording rule needs what that one needs.
        let derived = plan.derived.clone();
        for inputs in plan.derived.values_mut() {
            let extra: Vec<String> = inputs
                .iter()
                .filter_map(|m| derived.get(m))
                .flatten()
                .cloned()
                .collect();
            inputs.extend(extra);
        }
        for dashboard in submission.dashboards.iter().filter(|d| d.invalid.is_none()) {
            for query in &dashboard.queries {
                if query.expr.trim().is_empty() {
                    continue;
                }
                let filled = promql::fill_grafana_variables(&query.expr);
                let panel = match promql::rewrite(&filled, &namespaces, test_namespace) {
                    Ok(rewritten) => {
                        rewrites.extend(rewritten.rewrites.iter().cloned());
                        Panel {
                            panel: query.panel.clone(),
                            written: query.expr.clone(),
                            asked: rewritten.expr.clone(),
                            metrics: rewritten
                                .selectors
                                .iter()
                                .filter_map(|s| s.metric.clone())
                                .collect(),
                            unparsable: None,
                        }
                    }
                    Err(why) => Panel {
                        panel: query.panel.clone(),
                        written: query.expr.clone(),
                        asked: filled,
                        metrics: BTreeSet::new(),
                        unparsable: Some(why),
                    },
                };
                plan.panels.push(panel);
            }
        }
        if !rewrites.is_empty() {
            plan.notes.push(format!(
                "namespace matchers rewritten to the probe's namespace {test_namespace}: {}",
                rewrites.into_iter().collect::<Vec<_>>().join("; ")
            ));
        }
        plan.workloads(submission);
        plan.monitor_problems = monitor_problems(submission);
        plan
    }

    fn add_selectors(&mut self, rewritten: &Rewritten, label: &str) {
        for selector in &rewritten.selectors {
            let entry = self
                .selectors
                .entry(selector.asked.clone())
                .or_insert_with(|| {
                    (
                        selector.written.clone(),
                        selector.metric.clone(),
                        Vec::new(),
                    )
                });
            if !entry.2.iter().any(|l| l == label) {
                entry.2.push(label.to_string());
            }
        }
    }

    /// The serving workloads to apply, replicas capped, and the Services to load.
    fn workloads(&mut self, submission: &Submission) {
        let mut skipped = Vec::new();
        let mut deployments: Vec<&Object> = Vec::new();
        for object in &submission.objects {
            let mut value = object.value().clone();
            match &object.typed {
                Typed::Deployment(_) => {
                    if uses_gpu(&value) {
                        skipped.push(format!("{} (GPU pool)", object.describe()));
                        continue;
                    }
                    let replicas = value
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                        .clamp(1, 1);
                    value["spec"]["replicas"] = json!(replicas);
                    self.deployments.push(object.name.clone());
                    deployments.push(object);
                }
                Typed::HorizontalPodAutoscaler(_) => {
                    let max = value
                        .pointer("/spec/maxReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    value["spec"]["maxReplicas"] = json!(max.clamp(1, MAX_REPLICAS));
                    value["spec"]["minReplicas"] = json!(1);
                }
                Typed::Service(_)
                | Typed::ServiceMonitor(_)
                | Typed::PodMonitor(_)
                | Typed::ConfigMap(_)
                | Typed::PriorityClass(_)
                | Typed::LimitRange(_) => {}
                Typed::Namespace(_) | Typed::PrometheusRule(_) => continue,
                _ if object.kind == "ServiceAccount" || object.kind == "Secret" => {}
                _ => {
                    skipped.push(object.describe());
                    continue;
                }
            }
            self.workloads.push(value);
        }
        for object in &submission.objects {
            let target = object.value().pointer("/spec/targetRef");
            let targets_applied = target.and_then(|t| t.get("kind")).and_then(Value::as_str)
                == Some("Deployment")
                && target
                    .and_then(|t| t.get("name"))
                    .and_then(Value::as_str)
                    .is_some_and(|name| self.deployments.iter().any(|d| d == name));
            if object.kind != "VerticalPodAutoscaler" || !targets_applied {
                continue;
            }
            let mut value = object.value().clone();
            value["spec"]["updatePolicy"] = json!({"updateMode": "Off"});
            self.vpas.push(value);
            let described = object.describe();
            skipped.retain(|s| *s != described);
        }
        if !skipped.is_empty() {
            self.notes.push(format!(
                "not applied for this probe (other criteria judge them, or this cluster lacks their component): {}",
                skipped.join(", ")
            ));
        }
        if !self.workloads.is_empty() {
            self.notes.push(format!(
                "serving workloads applied with 1 replica, their HPAs capped at {MAX_REPLICAS} replicas"
            ));
        }
        // Services that select an applied Deployment, the HPA targets' first.
        let hpa_targets: Vec<&str> = submission
            .hpa_targets()
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        let mut targets: Vec<(bool, LoadTarget)> = Vec::new();
        for service in &submission.objects {
            let Typed::Service(typed) = &service.typed else {
                continue;
            };
            let Some(spec) = &typed.spec else { continue };
            let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
                continue;
            };
            let Some(port) = spec.ports.as_ref().and_then(|p| p.first()).map(|p| p.port) else {
                continue;
            };
            let Some(deployment) = deployments.iter().find(|d| {
                d.same_namespace(service.namespace.as_deref())
                    && d.pod_template()
                        .and_then(|t| t.labels)
                        .is_some_and(|labels| {
                            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                        })
            }) else {
                continue;
            };
            targets.push((
                hpa_targets.contains(&deployment.name.as_str()),
                LoadTarget {
                    service: service.name.clone(),
                    port,
                    overload_rps: overload_rps(deployment.value()),
                },
            ));
        }
        targets.sort_by_key(|(hpa, _)| !hpa);
        self.load_targets = targets.into_iter().map(|(_, t)| t).collect();
    }
}

/// Twice what the workload serves at the probe's replica cap, by its inference
/// server's `CPU_MS` and its CPU limit (else request, else one core), bounded.
fn overload_rps(deployment: &Value) -> f64 {
    let container = deployment.pointer("/spec/template/spec/containers/0");
    let cpu_ms = container
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some("CPU_MS"))
        })
        .and_then(|e| e.get("value").and_then(Value::as_str))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(20.0);
    let cores = ["/resources/limits/cpu", "/resources/requests/cpu"]
        .iter()
        .find_map(|p| container.and_then(|c| c.pointer(p)))
        .and_then(cpu_cores)
        .unwrap_or(1.0);
    (2.0 * MAX_REPLICAS as f64 * cores * 1000.0 / cpu_ms)
        .clamp(MODERATE_RPS * 2.0, MAX_OVERLOAD_RPS)
}

fn cpu_cores(value: &Value) -> Option<f64> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => text.parse().ok(),
    }
    .filter(|c: &f64| c.is_finite() && *c > 0.0)
}

/// What the probe's pods request at most: each Deployment it applies at 1 replica, or at
/// [`MAX_REPLICAS`] when an HPA scales it (the probe's load may drive it there), and one
/// load generator per Deployment (at most one per Service it loads).
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let scaled = submission.hpa_targets();
    submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::Deployment(_)) && !uses_gpu(o.value()))
        .map(|deployment| {
            let replicas = if scaled.iter().any(|t| std::ptr::eq(*t, deployment)) {
                MAX_REPLICAS
            } else {
                1
            };
            demand::pods_of(submission, deployment, replicas) + demand::LOAD_GENERATOR
        })
        .sum()
}

fn uses_gpu(deployment: &Value) -> bool {
    let text = deployment
        .pointer("/spec/template/spec")
        .map(Value::to_string)
        .unwrap_or_default();
    text.contains(crate::cluster::GPU_RESOURCE)
}

/// The submission's namespaces: those its objects name and those it creates.
fn submission_namespaces(submission: &Submission) -> BTreeSet<String> {
    let mut namespaces: BTreeSet<String> = submission
        .objects
        .iter()
        .filter_map(|o| o.namespace.clone())
        .collect();
    namespaces.extend(
        submission
            .objects
            .iter()
            .filter(|o| matches!(o.typed, Typed::Namespace(_)))
            .map(|o| o.name.clone()),
    );
    namespaces
}

fn is_latency_or_cpu(alert: &str, expr: &str) -> bool {
    let text = format!("{alert} {expr}").to_ascii_lowercase();
    text.contains("latency") || text.contains("cpu")
}

/// A Prometheus duration (`30s`, `1h30m`, `5m`).
fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86_400.0,
                'w' => 604_800.0,
                'y' => 31_536_000.0,
                _ => return None,
            }
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
        any = true;
    }
    (any && number.is_empty() && total.is_finite() && total < 1e9)
        .then(|| Duration::from_secs_f64(total))
}

/// Why a ServiceMonitor or PodMonitor of the submission scrapes nothing, where its
/// objects tell: an endpoint port no selected Service (or pod) has, or nothing selected.
fn monitor_problems(submission: &Submission) -> Vec<String> {
    let mut problems = Vec::new();
    let labels_match = |selector: &Value, labels: &BTreeMap<String, String>| {
        selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .is_some_and(|wanted| {
                wanted
                    .iter()
                    .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
            })
    };
    for monitor in &submission.objects {
        let value = monitor.value();
        let selector = value.pointer("/spec/selector").cloned().unwrap_or_default();
        match &monitor.typed {
            Typed::ServiceMonitor(_) => {
                let services: Vec<&Object> = submission
                    .objects
                    .iter()
                    .filter(|s| {
                        matches!(s.typed, Typed::Service(_)) && labels_match(&selector, &s.labels())
                    })
                    .collect();
                if services.is_empty() {
                    problems.push(format!("{} selects no Service", monitor.describe()));
                    continue;
                }
                let ports: BTreeSet<String> = services
                    .iter()
                    .flat_map(|s| {
                        s.value()
                            .pointer("/spec/ports")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect();
                for endpoint in value
                    .pointer("/spec/endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(port) = endpoint.get("port").and_then(Value::as_str)
                        && !ports.contains(port)
                    {
                        problems.push(format!(
                            "{}: endpoint port `{port}` names no port of Service {} (its ports: {})",
                            monitor.describe(),
                            services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                            ports.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
            Typed::PodMonitor(_) => {
                let pods: Vec<&Object> = submission
                    .objects
                    .iter()
                    .filter(|o| {
                        o.pod_template()
                            .and_then(|t| t.labels)
                            .is_some_and(|labels| labels_match(&selector, labels))
                    })
                    .collect();
                if pods.is_empty() {
                    problems.push(format!("{} selects no pod", monitor.describe()));
                    continue;
                }
                let ports: BTreeSet<String> = pods
                    .iter()
                    .filter_map(|o| o.pod_template())
                    .flat_map(|t| t.spec.containers.iter())
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| p.name.clone())
                    .collect();
                for endpoint in value
                    .pointer("/spec/podMetricsEndpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(port) = endpoint.get("port").and_then(Value::as_str)
                        && !ports.contains(port)
                    {
                        problems.push(format!(
                            "{}: endpoint port `{port}` names no container port of the pods it selects",
                            monitor.describe()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

/// What the probe would do with a submission, for tests and dry runs: the rule
/// objects, selectors and panel queries for `test_namespace`.
pub fn plan_summary(submission: &Submission, test_namespace: &str) -> PlanSummary {
    let plan = Plan::build(submission, test_namespace);
    PlanSummary {
        rule_objects: plan.rule_objects,
        selectors: plan
            .selectors
            .into_iter()
            .map(|(asked, (_, metric, used_by))| (asked, metric, used_by))
            .collect(),
        panels: plan
            .panels
            .into_iter()
            .map(|p| (p.panel, p.asked))
            .collect(),
        alerts: plan.alerts.into_iter().map(|a| (a.name, a.for_)).collect(),
        workloads: plan.workloads,
        vpas: plan.vpas,
        load_targets: plan
            .load_targets
            .into_iter()
            .map(|t| (t.service, t.overload_rps))
            .collect(),
        monitor_problems: plan.monitor_problems,
    }
}

/// See [`plan_summary`].
#[derive(Debug, Clone)]
pub struct PlanSummary {
    pub rule_objects: Vec<Value>,
    /// Selector as asked, its metric, the rules using it.
    pub selectors: Vec<(String, Option<String>, Vec<String>)>,
    /// Panel title and query as asked.
    pub panels: Vec<(String, String)>,
    pub alerts: Vec<(String, Duration)>,
    pub workloads: Vec<Value>,
    pub vpas: Vec<Value>,
    pub load_targets: Vec<(String, f64)>,
    pub monitor_problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn the_references_rules_are_rewritten_to_the_test_namespace() {
        let plan = plan_summary(&load_fixture("submissions/reference"), "ac-t-1");
        assert_eq!(plan.rule_objects.len(), 1);
        let text = plan.rule_objects[0].to_string();
        assert!(!text.contains(r#"namespace=\"ml-platform"#), "{text}");
        assert!(text.contains("ac-t-1"), "{text}");
        assert!(
            plan.selectors.iter().any(|(asked, _, used)| asked
                == r#"http_requests_total{namespace="ac-t-1"}"#
                && used.contains(&"record ml_platform:http_requests:rate1m".to_string())),
            "{:?}",
            plan.selectors
        );
        assert!(plan.panels.iter().all(|(_, q)| !q.contains("ml-platform")));
        // The latency alert's `for` (10m) is past the cap: noted, not waited for.
        assert_eq!(
            plan.alerts,
            [(
                "InferenceLatencyP95High".to_string(),
                Duration::from_secs(600)
            )]
        );
        assert_eq!(
            plan.load_targets.first().map(|t| t.0.as_str()),
            Some("fraud-detector-api")
        );
        // The VPAs of applied Deployments, apart and in mode Off.
        assert!(!plan.vpas.is_empty());
        for vpa in &plan.vpas {
            assert_eq!(vpa["spec"]["updatePolicy"]["updateMode"], "Off", "{vpa}");
        }
        // No Jobs (training), no VPA or KEDA objects, no quota.
        for object in &plan.workloads {
            let kind = object["kind"].as_str().unwrap_or_default();
            assert!(
                !matches!(
                    kind,
                    "Job" | "VerticalPodAutoscaler" | "ScaledObject" | "ResourceQuota"
                ),
                "{kind}"
            );
        }
        assert!(
            plan.monitor_problems.is_empty(),
            "{:?}",
            plan.monitor_problems
        );
    }

    /// What the probe loads into Prometheus still passes promtool: the rewrite keeps PromQL.
    #[test]
    fn the_rewritten_rules_pass_promtool() {
        let promtool = std::path::Path::new("/usr/bin/promtool");
        if !promtool.exists() {
            eprintln!("promtool not installed: skipped");
            return;
        }
        for fixture_dir in ["submissions/reference", "monitoring/fast"] {
            let plan = plan_summary(&load_fixture(fixture_dir), "ac-t-1");
            let dir = tempfile::tempdir().unwrap();
            for (i, object) in plan.rule_objects.iter().enumerate() {
                let path = dir.path().join(format!("rules-{i}.yaml"));
                std::fs::write(&path, object["spec"].to_string()).unwrap();
                let out = std::process::Command::new(promtool)
                    .args(["check", "rules"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{fixture_dir}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    #[test]
    fn keda_and_vpa_metrics_are_not_judged_without_them() {
        assert_eq!(
            component_needed("keda_scaler_errors_total", false, false),
            Some("needs KEDA")
        );
        assert_eq!(
            component_needed("keda_scaler_errors_total", true, false),
            Some("needs KEDA's own metrics scraped, which this cluster does not")
        );
        assert_eq!(
            component_needed(
                "kube_verticalpodautoscaler_spec_resourcepolicy_container_policies_maxallowed",
                false,
                false
            ),
            Some("needs VPA")
        );
        assert_eq!(
            component_needed("kube_customresource_vpa_target", true, false),
            Some("needs VPA")
        );
        assert_eq!(
            component_needed(
                "kube_horizontalpodautoscaler_spec_max_replicas",
                false,
                false
            ),
            None
        );
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        for bad in ["", "5 minutes", "5", "m", "99999999999999999999y"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn overload_follows_the_workloads_cost_and_is_bounded() {
        let d = json!({"spec": {"template": {"spec": {"containers": [{
            "env": [{"name": "CPU_MS", "value": "20"}],
            "resources": {"limits": {"cpu": "200m"}}}]}}}});
        assert_eq!(overload_rps(&d), 40.0);
        assert_eq!(overload_rps(&json!({})), MAX_OVERLOAD_RPS);
        assert_eq!(cpu_cores(&json!("1")), Some(1.0));
        assert_eq!(cpu_cores(&json!("-1")), None);
    }
}

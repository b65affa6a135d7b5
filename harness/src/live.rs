//! Live grading: the suite's probes run on one submission, each criterion in a
//! namespace of its own: the quick ones at once, then the HPA's, which waits out the
//! student's own windows and takes most of the time.
//! The probes are the ones the live tests run; this module only picks, from the
//! submission, what each probe is pointed at.

use crate::checks::Tools;
use crate::cluster::{Cluster, EnvironmentError, TestNamespace};
use crate::criteria::{self, ProbeContext};
use crate::report::{Report, ReportError, Rubric, load_and_check};
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Outcome, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Criteria this suite judges live today, in rubric order.
pub const PROBED: &[&str] = &[
    criteria::metrics_server::ID.as_str(),
    criteria::quota_limits::ID.as_str(),
    criteria::hpa_cpu::SCALE_UP.as_str(),
    criteria::hpa_cpu::SCALE_DOWN.as_str(),
    criteria::pdb::ID.as_str(),
    criteria::gpu_pool::ID.as_str(),
];

/// Why a live criterion is not probed yet (it is graded on its static checks only).
pub fn not_probed_reason(criterion: &str) -> String {
    let needs = match criterion {
        "hpa-custom" => "Prometheus and prometheus-adapter in the cluster",
        "vpa" => "the VPA recommender and updater in the cluster",
        "keda-scale-to-zero" | "keda-cron" => "KEDA (and Prometheus) in the cluster",
        "monitoring" => "Prometheus and Grafana in the cluster",
        "load-testing" => "running the submission's own load scripts in a sandbox",
        _ => "a live probe",
    };
    format!(
        "live criterion {criterion}: not run: this suite has no live probe for it yet (it needs {needs}); its static checks are graded"
    )
}

/// Loads `dir`, runs the static checks and every live probe against the cluster
/// (KUBECONFIG), and folds both into the rubric. A cluster that is unreachable or
/// fails the preflight gives "error" verdicts for the live criteria, never "fail".
/// The probes save their timelines in `timelines`.
pub async fn grade_live(
    dir: &Path,
    tools: &Tools,
    timelines: &Path,
) -> Result<Report, ReportError> {
    let started = Instant::now();
    let rubric = Rubric::builtin()?;
    let (submission, check_verdicts) = load_and_check(dir, tools)?;
    let live = match Cluster::connect().await {
        Ok(cluster) => run_probes(&cluster, &submission, timelines).await,
        Err(environment) => PROBED
            .iter()
            .map(|id| (id.to_string(), environment_error(id, &environment)))
            .collect(),
    };
    let mut live_verdicts: BTreeMap<String, Verdict> = live;
    for line in &rubric.lines {
        for item in &line.live {
            live_verdicts
                .entry(item.criterion.clone())
                .or_insert_with(|| {
                    Verdict::not_run(&item.criterion, not_probed_reason(&item.criterion))
                });
        }
    }
    Ok(Report::build(
        &rubric,
        &dir.display().to_string(),
        check_verdicts,
        &live_verdicts,
        started.elapsed(),
    ))
}

fn environment_error(id: &str, error: &EnvironmentError) -> Verdict {
    Verdict {
        id: id.to_string(),
        outcome: Outcome::Error,
        message: format!("environment error (not the submission's fault): {error}"),
        findings: Vec::new(),
        evidence: Vec::new(),
    }
}

/// Runs every probe of [`PROBED`] on `submission`, concurrently, each in its own
/// namespace; returns one verdict per criterion.
pub async fn run_probes(
    cluster: &Cluster,
    submission: &Submission,
    timelines: &Path,
) -> BTreeMap<String, Verdict> {
    let context = ProbeContext {
        submission,
        timelines,
        run: "grade",
    };
    let context = &context;
    let metrics = Box::pin(async {
        let mut ns = cluster.namespace("grade-metrics-server").await?;
        let verdicts = criteria::metrics_server::probe::run(&mut ns, context).await;
        Ok(finish(ns, verdicts).await)
    });
    let quota = Box::pin(async {
        let mut ns = cluster.namespace("grade-quota-limits").await?;
        let verdicts = criteria::quota_limits::probe::run(&mut ns, context).await;
        Ok(finish(ns, verdicts).await)
    });
    let hpa = Box::pin(async {
        let mut ns = cluster.namespace("grade-hpa-cpu").await?;
        let verdicts = criteria::hpa_cpu::probe::run(&mut ns, context).await;
        Ok(finish(ns, verdicts).await)
    });
    let pdb = Box::pin(async {
        let mut ns = cluster.namespace("grade-pdb").await?;
        let verdicts = criteria::pdb::probe::run(&mut ns, context).await;
        Ok(finish(ns, verdicts).await)
    });
    let gpu = Box::pin(async {
        let mut ns = cluster.namespace("grade-gpu-pool").await?;
        let verdicts = criteria::gpu_pool::probe::run(&mut ns, context).await;
        Ok(finish(ns, verdicts).await)
    });
    // Each probe's state is boxed: joined on one stack, it overflowed a test thread's.
    // The quick probes first, together; then the HPA alone: at its peak it requests
    // most of a small node's CPU, and a pod of another probe left Pending for want of
    // CPU would be judged as the submission's failure.
    let (metrics, quota, pdb, gpu): (Probed, Probed, Probed, Probed) =
        tokio::join!(metrics, quota, pdb, gpu);
    let hpa: Probed = hpa.await;
    let mut verdicts = BTreeMap::new();
    for (ids, result) in [
        (criteria::metrics_server::ABOUT, metrics),
        (criteria::quota_limits::ABOUT, quota),
        (criteria::hpa_cpu::ABOUT, hpa),
        (criteria::pdb::ABOUT, pdb),
        (criteria::gpu_pool::ABOUT, gpu),
    ] {
        match result {
            Ok(found) => {
                for verdict in found {
                    verdicts.insert(verdict.id.clone(), verdict);
                }
            }
            Err(environment) => {
                for id in ids.iter().map(|c| c.id.as_str()) {
                    verdicts.insert(id.to_string(), environment_error(id, &environment));
                }
            }
        }
    }
    verdicts
}

type Probed = Result<Vec<Verdict>, EnvironmentError>;

/// Deletes a probe's namespace (bounded; what finalizers hold back is printed, not
/// hidden) and hands back its verdicts.
async fn finish(namespace: TestNamespace, verdicts: Vec<Verdict>) -> Vec<Verdict> {
    let stuck = namespace.cleanup().await;
    if !stuck.is_empty() {
        eprintln!(
            "cleanup of {} incomplete:\n  {}",
            namespace.name,
            stuck.join("\n  ")
        );
    }
    verdicts
}

/// The workloads the submission's HPAs scale, in the order of the HPAs.
fn hpa_targets(submission: &Submission) -> Vec<&Object> {
    submission
        .objects
        .iter()
        .filter_map(|o| match &o.typed {
            Typed::HorizontalPodAutoscaler(h) => {
                let reference = &h.spec.scale_target_ref;
                submission.find_workload(
                    Some(&reference.kind),
                    &reference.name,
                    o.namespace.as_deref(),
                )
            }
            _ => None,
        })
        .collect()
}

/// A fresh pod for the metrics-server criterion: the pod the CPU HPA's target would
/// run (its metrics are what the HPA needs), else the first Deployment's, else the
/// suite's own inference pod.
pub fn fresh_pod(submission: &Submission) -> Value {
    let hpa_target = hpa_targets(submission).into_iter().next();
    let workload = hpa_target.or_else(|| {
        submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::Deployment(_)))
    });
    let template = workload.and_then(|w| {
        w.value()
            .pointer("/spec/template")
            .filter(|t| t.pointer("/spec/containers").is_some())
            .map(|t| (w.name.clone(), t.clone()))
    });
    match template {
        Some((name, template)) => json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("fresh-{name}").chars().take(63).collect::<String>(),
                "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            },
            "spec": template["spec"].clone(),
        }),
        None => json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "fresh-inference" },
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "server",
                    "image": "localhost/autoscale-conformance/inference-server:0.1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "resources": { "requests": { "cpu": "20m", "memory": "32Mi" } },
                }],
            },
        }),
    }
}

/// The budget to drain against: the one protecting the CPU HPA's target (the serving
/// API the exercise asks to keep available), else the first. Returns the PDB's name
/// and the Deployment it is meant to protect.
pub fn pdb_to_probe(submission: &Submission) -> Option<(String, String)> {
    let pdbs: Vec<_> = submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::PodDisruptionBudget(_)))
        .collect();
    let selects = |pdb: &Object, workload: &Object| {
        let Typed::PodDisruptionBudget(p) = &pdb.typed else {
            return false;
        };
        let selector = p
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        !selector.is_empty()
            && pdb.same_namespace(workload.namespace.as_deref())
            && workload
                .pod_template()
                .and_then(|t| t.labels)
                .is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };
    let hpa_targets = hpa_targets(submission);
    for target in &hpa_targets {
        if let Some(pdb) = pdbs.iter().find(|p| selects(p, target)) {
            return Some((pdb.name.clone(), target.name.clone()));
        }
    }
    let pdb = pdbs.first()?;
    let workload = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::Deployment(_)) && selects(pdb, o))
        .or(hpa_targets.first().copied())
        .map(|o| o.name.clone())
        .unwrap_or_default();
    Some((pdb.name.clone(), workload))
}

/// Every live criterion of the rubric is either probed here or has a reason not to be.
pub fn coverage() -> Vec<(&'static str, bool)> {
    criteria::all()
        .filter(|c| c.has_live_part)
        .map(|c| (c.id.as_str(), PROBED.contains(&c.id.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn reference() -> Submission {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/submissions/reference");
        crate::submission::load(&dir, &crate::submission::LoadOptions::default()).unwrap()
    }

    #[test]
    fn the_reference_drains_the_serving_apis_budget() {
        assert_eq!(
            pdb_to_probe(&reference()),
            Some(("fraud-detector-pdb".into(), "fraud-detector-api".into()))
        );
    }

    #[test]
    fn the_fresh_pod_is_the_hpa_targets_pod() {
        let pod = fresh_pod(&reference());
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["labels"]["app"], "fraud-detector");
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "200m"
        );
    }

    #[test]
    fn every_live_criterion_is_probed_or_says_why_not() {
        let rubric = Rubric::builtin().unwrap();
        for line in &rubric.lines {
            for item in &line.live {
                let probed = PROBED.contains(&item.criterion.as_str());
                let reason = not_probed_reason(&item.criterion);
                assert!(
                    probed || !reason.contains("needs a live probe"),
                    "{}: {reason}",
                    item.criterion
                );
            }
        }
        assert!(coverage().iter().filter(|(_, probed)| *probed).count() == PROBED.len());
    }
}

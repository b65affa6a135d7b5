//! Static checks over a loaded [`Submission`]: no cluster, no execution of
//! student code (scripts are only parsed by `bash -n` and shellcheck).
//!
//! Every check has a stable ID (the fixtures and the rubric name it), the
//! criterion it evidences, a severity and a fixing hint. Each returns findings
//! with `file:line`; [`run`] folds them into one [`Verdict`] per check.

mod content;
mod cron;
mod tools;
mod workloads;

use crate::submission::Submission;
use crate::verdict::{Evidence, Finding, Location, Outcome, Severity, Verdict};
pub use tools::Tools;

/// What a criterion's static checks are given.
pub struct Input<'a> {
    pub submission: &'a Submission,
    pub tools: &'a Tools,
}

/// What a check is and how to fix it.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    pub id: &'static str,
    /// The criterion (see [`crate::criteria`]) this check evidences.
    pub criterion: &'static str,
    pub severity: Severity,
    /// The success criterion, phrased as what must hold.
    pub expectation: &'static str,
    pub hint: &'static str,
}

macro_rules! check {
    ($id:literal, $criterion:literal, $severity:ident, $expectation:literal, $hint:literal) => {
        CheckInfo {
            id: $id,
            criterion: $criterion,
            severity: Severity::$severity,
            expectation: $expectation,
            hint: $hint,
        }
    };
}

/// The check catalogue. IDs are stable: fixtures and `rubric.toml` use them.
pub const CATALOGUE: &[CheckInfo] = &[
    check!(
        "api.removed-version",
        "manifests-valid",
        Error,
        "manifests use API versions the cluster still serves",
        "change apiVersion to the named replacement and adjust fields that changed"
    ),
    check!(
        "ref.hpa-target-missing",
        "hpa-cpu",
        Error,
        "every HPA's scaleTargetRef names a workload in the submission",
        "make scaleTargetRef kind/name match the Deployment's metadata.name (not its app label)"
    ),
    check!(
        "ref.vpa-target-missing",
        "vpa",
        Error,
        "every VPA's targetRef names a workload in the submission",
        "make targetRef kind/name match the workload's metadata.name"
    ),
    check!(
        "ref.scaledobject-target-missing",
        "keda-scale-to-zero",
        Error,
        "every ScaledObject's scaleTargetRef names a workload in the submission",
        "make scaleTargetRef.name match the Deployment's metadata.name"
    ),
    check!(
        "ref.pdb-selector-unmatched",
        "pdb",
        Error,
        "every PodDisruptionBudget selects the pods of some workload",
        "copy the workload's pod template labels into the PDB's selector.matchLabels"
    ),
    check!(
        "ref.service-selector-unmatched",
        "hpa-custom",
        Error,
        "every Service selects the pods of some workload",
        "make spec.selector equal to labels on the pod template (spec.template.metadata.labels)"
    ),
    check!(
        "hpa.cpu-missing",
        "hpa-cpu",
        Error,
        "an autoscaling/v2 HPA scales a workload on CPU utilization",
        "add an HPA with a `type: Resource` metric on `cpu` (target type Utilization)"
    ),
    check!(
        "hpa.custom-missing",
        "hpa-custom",
        Error,
        "an HPA scales on a custom (Pods/Object/External) Prometheus metric",
        "add a `type: Pods` metric naming a metric exposed by prometheus-adapter"
    ),
    check!(
        "hpa.requests-missing",
        "hpa-cpu",
        Error,
        "every container of an HPA target requests the resource its utilization metric is computed from (in its manifest, or by a LimitRange default of its namespace)",
        "set resources.requests for that resource on every container, sidecars included, or give the namespace a LimitRange defaultRequest for it"
    ),
    check!(
        "hpa.min-exceeds-max",
        "hpa-cpu",
        Error,
        "1 ≤ minReplicas ≤ maxReplicas",
        "swap or fix minReplicas/maxReplicas"
    ),
    check!(
        "hpa.serving-min-replicas",
        "hpa-cpu",
        Error,
        "HPAs of serving workloads keep minReplicas ≥ 2",
        "set minReplicas: 2 (or more) so one eviction or crash does not take the API down"
    ),
    check!(
        "hpa.scale-down-unstable",
        "hpa-scale-down",
        Error,
        "behavior.scaleDown.stabilizationWindowSeconds ≥ 60 (the exercise uses 300)",
        "set behavior.scaleDown.stabilizationWindowSeconds: 300"
    ),
    check!(
        "hpa.scale-down-policy-unbounded",
        "hpa-scale-down",
        Error,
        "scale-down is rate-limited by explicit policies (each Percent policy < 100)",
        "add behavior.scaleDown.policies, e.g. `type: Percent, value: 50, periodSeconds: 60`"
    ),
    check!(
        "hpa.custom-metric-unexposed",
        "hpa-custom",
        Error,
        "each custom metric an HPA uses is exposed by the submission's prometheus-adapter rules",
        "use the metric name the adapter rule's `name.as` produces, or add a rule exposing it"
    ),
    check!(
        "vpa.missing",
        "vpa",
        Error,
        "a VerticalPodAutoscaler (autoscaling.k8s.io/v1) is configured",
        "add a VPA for a workload whose resource needs drift (e.g. the training job)"
    ),
    check!(
        "vpa.update-mode-invalid",
        "vpa",
        Error,
        "updatePolicy.updateMode is one of Off, Initial, Recreate, InPlaceOrRecreate, Auto",
        "use one of the documented update modes (case-sensitive)"
    ),
    check!(
        "vpa.min-exceeds-max",
        "vpa",
        Error,
        "minAllowed ≤ maxAllowed for every resource of every container policy",
        "lower minAllowed or raise maxAllowed; compare quantities in the same unit"
    ),
    check!(
        "vpa.controlled-resources-invalid",
        "vpa",
        Error,
        "controlledResources lists only cpu and memory; controlledValues and mode are valid",
        "VPA controls only cpu and memory: remove other resources such as nvidia.com/gpu"
    ),
    check!(
        "vpa.hpa-conflict",
        "vpa",
        Error,
        "no VPA in Auto/Recreate/Initial mode controls a resource an HPA on the same target scales on",
        "set the VPA to updateMode \"Off\", restrict its controlledResources, or scale the HPA on a custom metric"
    ),
    check!(
        "vpa.duplicate-target",
        "vpa",
        Error,
        "at most one VPA per target workload",
        "keep one VPA per workload; delete the others"
    ),
    check!(
        "keda.missing",
        "keda-scale-to-zero",
        Error,
        "a KEDA ScaledObject or ScaledJob (keda.sh/v1alpha1) is configured",
        "add a ScaledObject with a prometheus (queue) trigger"
    ),
    check!(
        "keda.prometheus-trigger-incomplete",
        "keda-scale-to-zero",
        Error,
        "every prometheus trigger has serverAddress, query and a numeric threshold",
        "set metadata.serverAddress, metadata.query and metadata.threshold (a quoted number)"
    ),
    check!(
        "keda.cron-invalid",
        "keda-cron",
        Error,
        "cron triggers have distinct five-field start/end expressions (no seconds, no @descriptors), an IANA timezone and desiredReplicas ≥ 1",
        "use five-field cron as KEDA parses it (minute hour day month weekday, e.g. `0 9 * * 1-5`), a zone like America/New_York and desiredReplicas ≥ 1"
    ),
    check!(
        "keda.scale-to-zero-missing",
        "keda-scale-to-zero",
        Error,
        "event-driven ScaledObjects can scale to zero (minReplicaCount 0)",
        "set minReplicaCount: 0 on the queue-driven ScaledObject"
    ),
    check!(
        "keda.hpa-conflict",
        "keda-scale-to-zero",
        Error,
        "no hand-written HPA targets a workload a ScaledObject already scales",
        "delete the HPA: KEDA creates and owns the HPA for a ScaledObject"
    ),
    check!(
        "pdb.missing",
        "pdb",
        Error,
        "every serving workload is covered by a PodDisruptionBudget",
        "add a policy/v1 PodDisruptionBudget selecting the serving pods"
    ),
    check!(
        "pdb.malformed",
        "pdb",
        Error,
        "each PDB sets exactly one of minAvailable/maxUnavailable, as a non-negative integer or a percentage",
        "keep only one of minAvailable or maxUnavailable, written as 1 or \"30%\""
    ),
    check!(
        "pdb.blocks-all-evictions",
        "pdb",
        Error,
        "at the workload's minimum replica count the PDB still allows one eviction",
        "lower minAvailable (or raise maxUnavailable) below the HPA's minReplicas"
    ),
    check!(
        "quota.missing",
        "quota-limits",
        Error,
        "the ML namespace has a ResourceQuota and a LimitRange",
        "add the ResourceQuota and LimitRange of Task 1.2"
    ),
    check!(
        "quota.limitrange-default-out-of-range",
        "quota-limits",
        Error,
        "LimitRange default and defaultRequest lie within its min and max (defaultRequest ≤ default)",
        "move the default values inside [min, max]"
    ),
    check!(
        "quota.headroom-exceeded",
        "quota-limits",
        Error,
        "Σ maxReplicas × per-pod requests/limits of the namespace's workloads fits its ResourceQuota, and every container has the requests/limits the quota tracks (after LimitRange defaults)",
        "lower maxReplicas/maxReplicaCount or requests, or raise the quota"
    ),
    check!(
        "gpu.training-not-on-pool",
        "gpu-pool",
        Error,
        "GPU training workloads tolerate the nvidia.com/gpu taint and select the GPU node pool",
        "add a toleration for nvidia.com/gpu and a nodeSelector/required node affinity for the GPU pool"
    ),
    check!(
        "gpu.serving-on-pool",
        "gpu-pool",
        Error,
        "CPU serving workloads neither tolerate the GPU taint nor select the GPU pool",
        "remove the GPU toleration and GPU node selection from the serving workload"
    ),
    check!(
        "metrics-server.verification-missing",
        "metrics-server",
        Error,
        "a script verifies metrics-server (kubectl top, metrics.k8s.io, or waiting for it to be ready)",
        "add a script step such as `kubectl top pods -A` or `kubectl wait ... deployment/metrics-server`"
    ),
    check!(
        "monitoring.rules-missing",
        "monitoring",
        Error,
        "Prometheus rules for autoscaling alerts are part of the submission",
        "add a rule file (groups: ...) raw, in a ConfigMap or in a PrometheusRule"
    ),
    check!(
        "monitoring.rules-invalid",
        "monitoring",
        Error,
        "rule files pass `promtool check rules`",
        "run `promtool check rules <file>` and fix what it reports"
    ),
    check!(
        "monitoring.dashboard-missing",
        "monitoring",
        Error,
        "a Grafana dashboard JSON is part of the submission",
        "add the dashboard JSON (raw or in a ConfigMap)"
    ),
    check!(
        "monitoring.dashboard-invalid",
        "monitoring",
        Error,
        "the dashboard is valid JSON and every panel query parses as PromQL",
        "fix the JSON syntax or the PromQL of the named panel"
    ),
    check!(
        "monitoring.dashboard-coverage",
        "monitoring",
        Error,
        "the dashboard shows HPA current and desired replicas, the HPA metric vs target, and VPA recommendations",
        "add panels for the missing autoscaling metrics (kube-state-metrics names)"
    ),
    check!(
        "scripts.test-suite-missing",
        "load-testing",
        Error,
        "a test script exercises the autoscalers (kubectl against HPA, VPA and/or ScaledObjects)",
        "add test_autoscaling.sh (Task 7.2)"
    ),
    check!(
        "scripts.syntax",
        "load-testing",
        Error,
        "every shell script passes `bash -n`",
        "run `bash -n <script>` and fix the syntax error"
    ),
    check!(
        "scripts.shellcheck",
        "load-testing",
        Error,
        "shellcheck reports no errors",
        "run `shellcheck -S error <script>` and fix what it reports"
    ),
    check!(
        "scripts.load-missing",
        "load-testing",
        Error,
        "the submission generates load (a load script, load-generator Job, hey/k6/wrk, or a request loop)",
        "add a bounded load generation script"
    ),
    check!(
        "scripts.unbounded-load",
        "load-testing",
        Error,
        "every request loop is bounded in count or time",
        "bound the loop: `timeout 120 sh -c '...'`, a counted `for`, or a load generator with --duration"
    ),
    check!(
        "docs.guide-missing",
        "docs",
        Error,
        "a Markdown guide explains the autoscaling set-up",
        "add AUTOSCALING_GUIDE.md"
    ),
    check!(
        "docs.decision-matrix-incomplete",
        "docs",
        Error,
        "a decision matrix (table) covers HPA, VPA, KEDA and the Cluster Autoscaler",
        "add a table with a column or row for each of HPA, VPA, KEDA and Cluster Autoscaler"
    ),
    check!(
        "docs.troubleshooting-missing",
        "docs",
        Error,
        "the guide has a troubleshooting section",
        "add a `## Troubleshooting` section with common failures and fixes"
    ),
    check!(
        "input.parse-error",
        "manifests-valid",
        Error,
        "every manifest parses and matches its kind's schema",
        "fix the syntax or field at the reported position"
    ),
    check!(
        "input.too-large",
        "manifests-valid",
        Error,
        "files are under the size limit",
        "remove generated or vendored content"
    ),
    check!(
        "input.binary",
        "manifests-valid",
        Error,
        "text files contain text",
        "remove binary artifacts from the submission"
    ),
    check!(
        "input.not-utf8",
        "manifests-valid",
        Error,
        "text files are UTF-8",
        "save the file as UTF-8"
    ),
    check!(
        "input.symlink-outside",
        "manifests-valid",
        Error,
        "no symbolic link points outside the submission",
        "commit the file instead of a link"
    ),
    check!(
        "input.duplicate-object",
        "manifests-valid",
        Error,
        "each object (kind, namespace, name) is defined once",
        "remove the duplicate definition"
    ),
    check!(
        "input.alias-bomb",
        "manifests-valid",
        Error,
        "YAML aliases expand to a bounded size",
        "write the values out instead of nesting aliases"
    ),
    check!(
        "input.unknown-kind",
        "manifests-valid",
        Info,
        "every object is of a kind the grader reads",
        "nothing to do if the kind is intended"
    ),
    check!(
        "input.helm-template",
        "manifests-valid",
        Info,
        "Helm chart templates are recognised (not rendered, not graded) instead of failing to parse",
        "commit the rendered manifests as well so that they are graded"
    ),
    check!(
        "input.kustomize-patch",
        "manifests-valid",
        Info,
        "files a kustomization applies as patches are read as patches, not as whole objects",
        "nothing to fix"
    ),
];

/// Looks a check up by ID.
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// What the checks produced: findings, environment problems, and evidence
/// that is worth showing even when a check passes (e.g. quota headroom).
#[derive(Debug, Default)]
pub struct Collector {
    pub findings: Vec<Finding>,
    /// (check id, what is broken in the environment)
    pub environment: Vec<(String, String)>,
    pub evidence: Vec<(String, Evidence)>,
    /// Checks that found something to examine. A check with nothing to look at
    /// (no VPA for the VPA checks) earns no points: it did not pass, the
    /// subject is missing (which its `*.missing` check reports).
    pub examined: std::collections::BTreeSet<String>,
}

/// Checks that judge the whole submission (existence, input problems): they
/// always have a subject, so passing them with nothing found is a real pass.
const ALWAYS_APPLICABLE: &[&str] = &[
    "hpa.cpu-missing",
    "hpa.custom-missing",
    "vpa.missing",
    "keda.missing",
    "quota.missing",
    "metrics-server.verification-missing",
    "monitoring.rules-missing",
    "monitoring.dashboard-missing",
    "scripts.test-suite-missing",
    "scripts.load-missing",
    "docs.guide-missing",
];

impl Collector {
    /// Records a finding with the catalogue's severity and hint.
    pub fn fire(&mut self, check: &str, location: Location, message: impl Into<String>) {
        let (severity, hint) = info(check).map_or((Severity::Error, ""), |c| (c.severity, c.hint));
        self.findings.push(Finding {
            check: check.to_string(),
            severity,
            location,
            message: message.into(),
            hint: hint.to_string(),
            evidence: Vec::new(),
        });
    }

    /// Records a finding with a more specific hint.
    pub fn fire_with_hint(
        &mut self,
        check: &str,
        location: Location,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.fire(check, location, message);
        if let Some(finding) = self.findings.last_mut() {
            finding.hint = hint.into();
        }
    }

    /// Records an information finding (costs no points) with its own hint.
    pub fn note(
        &mut self,
        check: &str,
        location: Location,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.fire_with_hint(check, location, message, hint);
        if let Some(finding) = self.findings.last_mut() {
            finding.severity = Severity::Info;
        }
    }

    /// Marks checks as having had something to examine.
    pub fn examined(&mut self, checks: &[&str]) {
        self.examined.extend(checks.iter().map(|c| c.to_string()));
    }

    pub fn environment(&mut self, check: &str, message: impl Into<String>) {
        self.environment.push((check.to_string(), message.into()));
    }
}

/// Runs every check and returns one verdict per catalogue entry, in catalogue order.
pub fn run(submission: &Submission, tools: &Tools) -> Vec<Verdict> {
    let mut collector = Collector {
        findings: submission.findings.clone(),
        ..Collector::default()
    };
    workloads::check(submission, &mut collector);
    content::check(submission, tools, &mut collector);
    fold(collector)
}

fn fold(collector: Collector) -> Vec<Verdict> {
    let Collector {
        mut findings,
        environment,
        evidence,
        examined,
    } = collector;
    findings.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then_with(|| a.check.cmp(&b.check))
    });
    findings.dedup();
    CATALOGUE
        .iter()
        .map(|check| {
            let own: Vec<Finding> = findings
                .iter()
                .filter(|f| f.check == check.id)
                .cloned()
                .collect();
            let problems: Vec<&(String, String)> = environment
                .iter()
                .filter(|(id, _)| id == check.id)
                .collect();
            let failing = own
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .count();
            let (outcome, message) = if !problems.is_empty() {
                let what: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
                (
                    Outcome::Error,
                    format!("environment error: {}", what.join("; ")),
                )
            } else if failing > 0 {
                (
                    Outcome::Fail,
                    format!("expected: {}; {failing} finding(s)", check.expectation),
                )
            } else if !examined.contains(check.id)
                && !ALWAYS_APPLICABLE.contains(&check.id)
                && (!check.id.starts_with("input.") || check.id == "input.parse-error")
            {
                (
                    Outcome::Fail,
                    format!(
                        "not judged, so not earned: the submission has nothing this check examines ({})",
                        check.expectation
                    ),
                )
            } else {
                (Outcome::Pass, check.expectation.to_string())
            };
            Verdict {
                id: check.id.to_string(),
                outcome,
                message,
                findings: own,
                evidence: evidence
                    .iter()
                    .filter(|(id, _)| id == check.id)
                    .map(|(_, e)| e.clone())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for check in CATALOGUE {
            assert!(seen.insert(check.id), "duplicate {}", check.id);
            assert!(
                check.id.contains('.') && check.id == check.id.to_lowercase(),
                "{}",
                check.id
            );
            assert!(!check.hint.is_empty() && !check.expectation.is_empty());
            assert!(
                crate::criteria::find(check.criterion).is_some(),
                "{} → unknown criterion {}",
                check.id,
                check.criterion
            );
        }
    }

    #[test]
    fn environment_problems_make_an_error_verdict_not_a_fail() {
        let mut collector = Collector::default();
        collector.environment("scripts.shellcheck", "shellcheck is not installed");
        collector.fire("scripts.syntax", Location::line("a.sh", 3), "syntax error");
        let verdicts = fold(collector);
        let by_id = |id: &str| verdicts.iter().find(|v| v.id == id).unwrap();
        assert_eq!(by_id("scripts.shellcheck").outcome, Outcome::Error);
        assert!(
            by_id("scripts.shellcheck")
                .message
                .contains("not installed")
        );
        assert_eq!(by_id("scripts.syntax").outcome, Outcome::Fail);
        assert_eq!(by_id("scripts.syntax").findings[0].location.line, Some(3));
        assert_eq!(by_id("hpa.cpu-missing").outcome, Outcome::Pass);
    }

    #[test]
    fn a_check_with_nothing_to_examine_earns_nothing() {
        let mut collector = Collector::default();
        collector.examined(&["vpa.min-exceeds-max"]);
        let verdicts = fold(collector);
        let by_id = |id: &str| verdicts.iter().find(|v| v.id == id).unwrap();
        assert_eq!(by_id("vpa.min-exceeds-max").outcome, Outcome::Pass);
        assert_eq!(by_id("vpa.update-mode-invalid").outcome, Outcome::Fail);
        assert!(
            by_id("vpa.update-mode-invalid")
                .message
                .contains("nothing this check examines")
        );
        assert!(by_id("vpa.update-mode-invalid").findings.is_empty());
        assert_eq!(by_id("vpa.missing").outcome, Outcome::Pass);
        assert_eq!(by_id("input.binary").outcome, Outcome::Pass);
    }

    #[test]
    fn info_findings_do_not_fail_their_check() {
        let mut collector = Collector::default();
        collector.fire(
            "input.unknown-kind",
            Location::file("x.yaml"),
            "Foo is unknown",
        );
        let verdicts = fold(collector);
        let verdict = verdicts
            .iter()
            .find(|v| v.id == "input.unknown-kind")
            .unwrap();
        assert_eq!(verdict.outcome, Outcome::Pass);
        assert_eq!(verdict.findings.len(), 1);
    }
}

//! The static checks of every criterion, run together: [`run_checks`] gives one
//! verdict per check of every criterion's catalogue, walking [`REGISTRY`].

use super::REGISTRY;
use crate::checks::{CheckInfo, Collector, Input, Tools, fold};
use crate::submission::Submission;
use crate::verdict::Verdict;

/// Every check of every criterion, in registry order.
pub fn all_checks() -> impl Iterator<Item = &'static CheckInfo> {
    REGISTRY.iter().flat_map(|c| c.catalogue().iter())
}

/// Looks a check up by ID.
pub fn check_info(id: &str) -> Option<&'static CheckInfo> {
    all_checks().find(|c| c.id == id)
}

/// Runs the static checks of every criterion and returns one verdict per check,
/// in report order (see `REPORT_ORDER`).
pub fn run_checks(submission: &Submission, tools: &Tools) -> Vec<Verdict> {
    fold(collect(submission, tools), report_order())
}

/// What every criterion's checks record, after the loader's findings. Each
/// criterion runs on its own thread (the external tools dominate the run time:
/// promtool for monitoring, bash and shellcheck for load testing); their records
/// are joined in registry order, so the result does not depend on timing.
fn collect(submission: &Submission, tools: &Tools) -> Collector {
    let input = Input::new(submission, tools);
    let parts: Vec<Collector> = std::thread::scope(|scope| {
        let running: Vec<_> = REGISTRY
            .iter()
            .map(|criterion| {
                let input = &input;
                scope.spawn(move || {
                    let mut part = Collector::default();
                    criterion.check(input, &mut part);
                    part
                })
            })
            .collect();
        running
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut collector = Collector {
        findings: submission.findings.clone(),
        ..Collector::default()
    };
    for part in parts {
        collector.absorb(part);
    }
    collector
}

/// The order reports list check verdicts in: the order of the single check
/// catalogue that preceded the criteria modules, kept so that reports stay the
/// same byte for byte. Checks it does not name (those of criteria added since)
/// follow in registry order.
const REPORT_ORDER: &[&str] = &[
    "api.removed-version",
    "ref.hpa-target-missing",
    "ref.vpa-target-missing",
    "ref.scaledobject-target-missing",
    "ref.pdb-selector-unmatched",
    "ref.service-selector-unmatched",
    "hpa.cpu-missing",
    "hpa.custom-missing",
    "hpa.requests-missing",
    "hpa.min-exceeds-max",
    "hpa.serving-min-replicas",
    "hpa.scale-down-unstable",
    "hpa.scale-down-policy-unbounded",
    "hpa.custom-metric-unexposed",
    "vpa.missing",
    "vpa.update-mode-invalid",
    "vpa.min-exceeds-max",
    "vpa.controlled-resources-invalid",
    "vpa.hpa-conflict",
    "vpa.duplicate-target",
    "keda.missing",
    "keda.prometheus-trigger-incomplete",
    "keda.cron-invalid",
    "keda.scale-to-zero-missing",
    "keda.hpa-conflict",
    "pdb.missing",
    "pdb.malformed",
    "pdb.blocks-all-evictions",
    "quota.missing",
    "quota.limitrange-default-out-of-range",
    "quota.headroom-exceeded",
    "gpu.training-not-on-pool",
    "gpu.serving-on-pool",
    "metrics-server.verification-missing",
    "monitoring.rules-missing",
    "monitoring.rules-invalid",
    "monitoring.dashboard-missing",
    "monitoring.dashboard-invalid",
    "monitoring.dashboard-coverage",
    "scripts.test-suite-missing",
    "scripts.syntax",
    "scripts.shellcheck",
    "scripts.load-missing",
    "scripts.unbounded-load",
    "docs.guide-missing",
    "docs.decision-matrix-incomplete",
    "docs.troubleshooting-missing",
    "input.parse-error",
    "input.too-large",
    "input.binary",
    "input.not-utf8",
    "input.symlink-outside",
    "input.duplicate-object",
    "input.alias-bomb",
    "input.unknown-kind",
    "input.helm-template",
    "input.kustomize-patch",
];

fn report_order() -> Vec<&'static CheckInfo> {
    let mut checks: Vec<&'static CheckInfo> = all_checks().collect();
    checks.sort_by_key(|c| {
        REPORT_ORDER
            .iter()
            .position(|id| *id == c.id)
            .unwrap_or(REPORT_ORDER.len())
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of;
    use crate::criteria::{load_testing, manifests_valid, vpa};
    use crate::verdict::{Location, Outcome};
    use rstest::rstest;
    use std::collections::HashSet;

    fn fold(collector: Collector) -> Vec<Verdict> {
        crate::checks::fold(collector, report_order())
    }

    /// Every criterion's rules over `submission`, without the loader's findings.
    fn check(submission: &Submission) -> Collector {
        let tools = Tools::none();
        let input = Input::new(submission, &tools);
        let mut out = Collector::default();
        for criterion in REGISTRY {
            criterion.check(&input, &mut out);
        }
        out
    }

    #[test]
    fn catalogue_ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for check in all_checks() {
            assert!(seen.insert(check.id), "duplicate {}", check.id);
            assert!(
                check.id.contains('.') && check.id == check.id.to_lowercase(),
                "{}",
                check.id
            );
            assert!(!check.hint.is_empty() && !check.expectation.is_empty());
            assert!(
                crate::criteria::find(check.criterion.as_str()).is_some(),
                "{} → unknown criterion {}",
                check.id,
                check.criterion
            );
        }
    }

    #[test]
    fn each_check_evidences_a_criterion_of_the_module_that_lists_it() {
        for criterion in REGISTRY {
            for check in criterion.catalogue() {
                assert!(
                    criterion.about().iter().any(|c| c.id == check.criterion),
                    "{} evidences {}, which its module does not judge",
                    check.id,
                    check.criterion
                );
            }
        }
    }

    #[test]
    fn the_report_order_names_every_check_once() {
        let mut named = HashSet::new();
        for id in REPORT_ORDER {
            assert!(check_info(id).is_some(), "{id} is not a check");
            assert!(named.insert(*id), "{id} is named twice");
        }
        assert_eq!(report_order().len(), all_checks().count());
    }

    #[test]
    fn environment_problems_make_an_error_verdict_not_a_fail() {
        let mut collector = Collector::default();
        collector.environment(
            &load_testing::checks::SHELLCHECK,
            "shellcheck is not installed",
        );
        collector.fire(
            &load_testing::checks::SYNTAX,
            Location::line("a.sh", 3),
            "syntax error",
        );
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
        collector.examined(&[vpa::checks::MIN_EXCEEDS_MAX]);
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
            &manifests_valid::UNKNOWN_KIND,
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

    #[rstest]
    #[case(
        "minReplicas: 0\n  maxReplicas: 3\n",
        "hpa.min-exceeds-max",
        "HPAScaleToZero"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 4000\n",
        "input.parse-error",
        "0 to 3600"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies: [{type: Pods, value: 0, periodSeconds: 60}]\n",
        "input.parse-error",
        "more than 0"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      policies: [{type: Percent, value: 10, periodSeconds: 3600}]\n",
        "input.parse-error",
        "1 to 1800"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      selectPolicy: max\n",
        "input.parse-error",
        "Max, Min or Disabled"
    )]
    fn hpa_values_the_api_server_rejects_are_reported(
        #[case] spec: &str,
        #[case] check_id: &str,
        #[case] says: &str,
    ) {
        let submission = submission_of(
            "hpa.yaml",
            &format!(
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: h}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: d}}\n  {spec}"
            ),
        );
        let out = check(&submission);
        assert!(
            out.findings
                .iter()
                .any(|f| f.check == check_id && f.message.contains(says)),
            "{spec}: {:?}",
            out.findings
        );
    }

    #[test]
    fn a_service_backed_hpa_scaled_deployment_is_serving_whatever_its_name() {
        let deployment = |name: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {{requests: {{cpu: 100m}}}}}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n---\n"
            )
        };
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: fraud, namespace: ml}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: fraud-detector}\n  minReplicas: 1\n  maxReplicas: 4\n";
        let submission = submission_of(
            "all.yaml",
            &[
                deployment("fraud-detector"),
                deployment("feature-cache"),
                hpa.to_string(),
            ]
            .concat(),
        );
        let out = check(&submission);
        let about = |check_id: &str| -> Vec<String> {
            out.findings
                .iter()
                .filter(|f| f.check == check_id)
                .map(|f| f.message.clone())
                .collect()
        };
        assert_eq!(
            about("hpa.serving-min-replicas").len(),
            1,
            "{:?}",
            out.findings
        );
        let pdb = about("pdb.missing");
        assert!(
            pdb.len() == 1 && pdb[0].contains("fraud-detector"),
            "only the HPA-scaled one is serving: {pdb:?}"
        );
    }
}

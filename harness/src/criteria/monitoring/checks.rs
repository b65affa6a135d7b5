//! Static checks of `monitoring`: Prometheus rules for autoscaling alerts pass
//! promtool; a Grafana dashboard is valid, its panel queries parse as PromQL, and it
//! shows the HPA and VPA metrics; the Prometheus Operator's kinds are not used beside
//! a Prometheus installed without the operator.

use super::ID;
use crate::checks::tools::{self, Tools};
use crate::checks::{CheckInfo, Collector, Input, regex};
use crate::submission::{Object, RuleSource, Submission, TextFile};
use crate::verdict::Location;
use regex::Regex;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::LazyLock;

pub const RULES_MISSING: CheckInfo = CheckInfo::error(
    "monitoring.rules-missing",
    ID,
    "Prometheus rules for autoscaling alerts are part of the submission",
    "add a rule file (groups: ...) raw, in a ConfigMap or in a PrometheusRule",
)
.always_applicable();

pub const RULES_INVALID: CheckInfo = CheckInfo::error(
    "monitoring.rules-invalid",
    ID,
    "rule files pass `promtool check rules`",
    "run `promtool check rules <file>` and fix what it reports",
);

pub const DASHBOARD_MISSING: CheckInfo = CheckInfo::error(
    "monitoring.dashboard-missing",
    ID,
    "a Grafana dashboard JSON is part of the submission",
    "add the dashboard JSON (raw or in a ConfigMap)",
)
.always_applicable();

pub const DASHBOARD_INVALID: CheckInfo = CheckInfo::error(
    "monitoring.dashboard-invalid",
    ID,
    "the dashboard is valid JSON and every panel query parses as PromQL",
    "fix the JSON syntax or the PromQL of the named panel",
);

pub const DASHBOARD_COVERAGE: CheckInfo = CheckInfo::error(
    "monitoring.dashboard-coverage",
    ID,
    "the dashboard shows HPA current and desired replicas, the HPA metric vs target, and VPA recommendations",
    "add panels for the missing autoscaling metrics (kube-state-metrics names)",
);

pub const SERVICEMONITOR_WITHOUT_OPERATOR: CheckInfo = CheckInfo::error(
    "monitoring.servicemonitor-without-operator",
    ID,
    "ServiceMonitors, PodMonitors and PrometheusRules come with the Prometheus Operator that defines and serves them",
    "install kube-prometheus-stack (the operator and its CRDs) instead of the prometheus chart, or drop the operator's objects and use what the prometheus chart reads",
)
.always_applicable();

pub const CATALOGUE: &[CheckInfo] = &[
    RULES_MISSING,
    RULES_INVALID,
    DASHBOARD_MISSING,
    DASHBOARD_INVALID,
    DASHBOARD_COVERAGE,
    SERVICEMONITOR_WITHOUT_OPERATOR,
];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let submission = input.submission;
    if !submission.rule_sources.is_empty() {
        out.examined(&[RULES_INVALID]);
    }
    if !submission.dashboards.is_empty() {
        out.examined(&[DASHBOARD_INVALID, DASHBOARD_COVERAGE]);
    }
    rule_files(submission, input.tools, out);
    dashboards(submission, out);
    operator_objects_have_an_operator(submission, out);
}

/// The plain `prometheus-community/prometheus` chart named as a chart (not
/// `prometheus-adapter`, `prometheus-operator-crds` or any other of the repository).
static PLAIN_PROMETHEUS_CHART: LazyLock<Regex> =
    LazyLock::new(|| regex(r"prometheus-community/prometheus(?:$|[^\w./-])"));

/// What an install of the Prometheus Operator or its CRDs leaves in a submission:
/// kube-prometheus-stack (or kube-prometheus), the prometheus-operator charts and
/// manifests, the CRDs' names and file names.
static OPERATOR_INSTALL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)kube-prometheus|prometheus-operator|monitoring\.coreos\.com_|\w\.monitoring\.coreos\.com",
    )
});

/// Where a line of the submission's texts installs Prometheus with the plain chart,
/// which has no operator and no monitoring.coreos.com CRDs. Commented-out lines of
/// scripts and recipes do not count; docs count whole (their code blocks are how a
/// submission says what it ran).
fn plain_chart_install(submission: &Submission) -> Option<Location> {
    let commented = |line: &str| line.trim_start().starts_with('#');
    let code = submission.scripts.iter().chain(&submission.other_text);
    let in_code = code.flat_map(|file| numbered_lines(file).filter(|(_, l)| !commented(l)));
    let in_docs = submission.docs.iter().flat_map(numbered_lines);
    in_code
        .chain(in_docs)
        .find(|(_, line)| PLAIN_PROMETHEUS_CHART.is_match(line))
        .map(|(location, _)| location)
}

fn numbered_lines(file: &TextFile) -> impl Iterator<Item = (Location, &str)> {
    file.text
        .lines()
        .enumerate()
        .map(|(i, line)| (Location::line(file.path.clone(), i as u32 + 1), line))
}

/// Whether anything in the submission installs the Prometheus Operator or its CRDs
/// (or names a Prometheus that has them): any text, comments included, or any
/// object (a CRD of the group, a label or address naming kube-prometheus-stack).
fn installs_operator(submission: &Submission) -> bool {
    let texts = submission
        .scripts
        .iter()
        .chain(&submission.other_text)
        .chain(&submission.docs);
    let in_texts = texts
        .into_iter()
        .any(|f| OPERATOR_INSTALL.is_match(&f.text));
    in_texts
        || submission.objects.iter().any(|object| {
            (object.kind == "CustomResourceDefinition"
                && object.name.ends_with(".monitoring.coreos.com"))
                || serde_json::to_string(object.value())
                    .is_ok_and(|text| OPERATOR_INSTALL.is_match(&text))
        })
}

/// The Prometheus Operator's kinds (ServiceMonitor, PodMonitor, PrometheusRule and
/// the rest of monitoring.coreos.com) exist only where its CRDs are installed: a
/// submission that installs Prometheus with the plain chart, and no operator, cannot
/// apply them, and nothing would act on them if it could.
fn operator_objects_have_an_operator(submission: &Submission, out: &mut Collector) {
    let operator_objects: Vec<&Object> = submission
        .objects
        .iter()
        .filter(|o| o.api_version.starts_with("monitoring.coreos.com/"))
        .collect();
    if operator_objects.is_empty() || installs_operator(submission) {
        return;
    }
    let Some(install) = plain_chart_install(submission) else {
        return;
    };
    for object in operator_objects {
        out.fire_with_hint(
            &SERVICEMONITOR_WITHOUT_OPERATOR,
            object.location(),
            format!(
                "{} is a Prometheus Operator kind, but {install} installs Prometheus with the prometheus-community/prometheus chart, which brings neither the operator nor its monitoring.coreos.com CRDs, and nothing in the submission installs them: `kubectl apply` fails with `no matches for kind \"{}\" in version \"{}\"`",
                object.describe(),
                object.kind,
                object.api_version
            ),
            without_operator_fix(&object.kind),
        );
    }
}

/// What the plain chart offers instead of an operator kind.
fn without_operator_fix(kind: &str) -> String {
    let instead = match kind {
        "ServiceMonitor" | "PodMonitor" => {
            "let the chart's annotation-driven jobs scrape the pods (prometheus.io/scrape: \"true\", prometheus.io/port and prometheus.io/path on the pod template)"
        }
        "PrometheusRule" => {
            "give the chart the rule groups in its values (serverFiles: alerting_rules.yml or recording_rules.yml)"
        }
        _ => "configure the same through the chart's values (serverFiles, extraScrapeConfigs)",
    };
    format!(
        "{instead} and delete the {kind}; or install kube-prometheus-stack, which brings the operator and its CRDs, instead of the prometheus chart"
    )
}

static LINE_COLUMN: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|\s|:)(\d+):(\d+):"));
static LINE_WORD: LazyLock<Regex> = LazyLock::new(|| regex(r"line (\d+)"));

fn rule_files(submission: &Submission, tools: &Tools, out: &mut Collector) {
    if submission.rule_sources.is_empty() {
        out.fire(
            &RULES_MISSING,
            Location::file(""),
            "no Prometheus rule groups (raw, ConfigMap or PrometheusRule)",
        );
        return;
    }
    let Some(promtool) = &tools.promtool else {
        out.environment(
            &RULES_INVALID,
            "promtool is not installed (Debian package `prometheus`)",
        );
        return;
    };
    let Ok(scratch) = tempfile::tempdir() else {
        out.environment(
            &RULES_INVALID,
            "cannot create a temporary directory for promtool",
        );
        return;
    };
    for (i, source) in submission.rule_sources.iter().enumerate() {
        let path = match &source.raw_file {
            Some(raw) => submission.root.join(raw),
            None => {
                // Embedded groups: hand promtool the same content as a file (JSON is YAML).
                let path = scratch.path().join(format!("rules-{i}.yaml"));
                let text = serde_json::to_string_pretty(&source.content).unwrap_or_default();
                if std::fs::write(&path, text).is_err() {
                    out.environment(
                        &RULES_INVALID,
                        "cannot write a temporary rule file for promtool",
                    );
                    continue;
                }
                path
            }
        };
        let args: [&OsStr; 3] = ["check".as_ref(), "rules".as_ref(), path.as_os_str()];
        match tools::run(promtool, &args, tools.deadline) {
            Err(problem) => out.environment(&RULES_INVALID, problem),
            Ok(output) if output.success => {}
            Ok(output) => {
                let text = std::fs::read_to_string(submission.root.join(&source.location.file))
                    .unwrap_or_default();
                promtool_failure(source, &path, &output, &text, out);
            }
        }
    }
}

/// Reports what promtool said of rule source `source` (checked as file `path`),
/// at the line it names when the source is a file of its own.
/// `text` is the file the source is written in, to find the rule promtool
/// names when it gives no line of its own.
fn promtool_failure(
    source: &RuleSource,
    path: &Path,
    output: &tools::Output,
    text: &str,
    out: &mut Collector,
) {
    let shown = path.display().to_string();
    let said = format!("{}\n{}", output.stdout, output.stderr);
    let lines: Vec<String> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Checking") && *l != "FAILED:")
        .map(|l| l.replace(&shown, &source.location.file))
        .collect();
    let detail = lines.join(" ");
    let line = LINE_COLUMN
        .captures(&detail)
        .or_else(|| LINE_WORD.captures(&detail))
        .and_then(|c| c[1].parse::<u32>().ok());
    let first = source.location.line.unwrap_or(1);
    let location = match (line, source.raw_file.is_some()) {
        (Some(line), true) => Location::line(source.location.file.clone(), line),
        _ => line_of_named_value(text, first, &detail).map_or_else(
            || source.location.clone(),
            |line| Location::line(source.location.file.clone(), line),
        ),
    };
    let detail: String = detail.chars().take(600).collect();
    out.fire(
        &RULES_INVALID,
        location,
        format!("promtool check rules fails for {}: {detail}", source.origin),
    );
}

static QUOTED: LazyLock<Regex> = LazyLock::new(|| regex(r#""([^"]+)""#));
static RULE_NAMED: LazyLock<Regex> = LazyLock::new(|| regex(r#"rule \d+, "([^"]+)""#));
static GROUP_OR_RULE: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"group "[^"]*"|rule \d+, "[^"]*""#));

/// The line (at or after `first`) of the rule field promtool complains about
/// when it names no line: the field whose value it quotes (`not a valid
/// duration string: "5 minutes"`), else the rule it names (`rule 2, "Alert"`).
fn line_of_named_value(text: &str, first: u32, detail: &str) -> Option<u32> {
    let numbered = || {
        text.lines()
            .zip(1u32..)
            .skip(first.saturating_sub(1) as usize)
    };
    let value_of = |line: &str| {
        let (_, value) = line.split_once(": ")?;
        let value = value.split(" #").next().unwrap_or(value).trim();
        Some(value.trim_matches(|c| c == '"' || c == '\'').to_string())
    };
    // The group's and rule's names are quoted too, but name no field value.
    let values = GROUP_OR_RULE.replace_all(detail, "");
    let by_value = QUOTED.captures_iter(&values).find_map(|quoted| {
        numbered()
            .find(|(line, _)| value_of(line).as_deref() == Some(&quoted[1]))
            .map(|(_, n)| n)
    });
    by_value.or_else(|| {
        let name = RULE_NAMED.captures(detail)?;
        numbered()
            .find(|(line, _)| {
                let key = line.trim_start().trim_start_matches("- ");
                (key.starts_with("alert:") || key.starts_with("record:"))
                    && value_of(line).as_deref() == Some(&name[1])
            })
            .map(|(_, n)| n)
    })
}

pub(super) static GRAFANA_RANGE_VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?|\[\s*\$\{?\w+\}?\s*\]")
});
pub(super) static GRAFANA_VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]"));

/// Grafana template variables are not PromQL; substitute plausible values first.
pub(super) fn without_grafana_variables(expr: &str) -> String {
    let ranged = GRAFANA_RANGE_VARIABLE.replace_all(expr, |c: &regex::Captures<'_>| {
        if c[0].starts_with('[') {
            "[5m]".to_string()
        } else {
            "5m".to_string()
        }
    });
    GRAFANA_VARIABLE.replace_all(&ranged, "x").to_string()
}

/// What the seed asks the dashboard to show: each item is a test on the
/// metric names a panel query uses. HPA series must be ones kube-state-metrics
/// v2 exports ([`KSM_HPA_METRICS`]: `kube_hpa_*` went with v2, and
/// `..._status_current_metrics_value` never existed under that prefix); VPA
/// series come only from a CustomResourceState config (since v2.9), whose
/// names the user chooses, so those tests look at name parts.
/// Whether a metric name shows one coverage item.
type Shows = fn(&str) -> bool;

const COVERAGE: &[(&str, Shows)] = &[
    ("HPA current replicas", |m| {
        is_hpa_metric(m) && m.contains("current_replicas")
    }),
    ("HPA desired replicas", |m| {
        is_hpa_metric(m) && m.contains("desired_replicas")
    }),
    ("HPA metric vs target (e.g. CPU utilization)", |m| {
        (is_hpa_metric(m) && m.contains("target_metric"))
            || m == "container_cpu_usage_seconds_total"
    }),
    ("VPA recommendations", |m| {
        (m.contains("vpa") || m.contains("verticalpodautoscaler")) && m.contains("recommendation")
    }),
];

/// The HorizontalPodAutoscaler series of kube-state-metrics v2.20.0, the version the
/// clusters run (its `internal/store/horizontalpodautoscaler.go`).
pub(super) const KSM_HPA_METRICS: &[&str] = &[
    "kube_horizontalpodautoscaler_annotations",
    "kube_horizontalpodautoscaler_created",
    "kube_horizontalpodautoscaler_deletion_timestamp",
    "kube_horizontalpodautoscaler_info",
    "kube_horizontalpodautoscaler_labels",
    "kube_horizontalpodautoscaler_metadata_generation",
    "kube_horizontalpodautoscaler_spec_behavior_scale_down_tolerance",
    "kube_horizontalpodautoscaler_spec_behavior_scale_up_tolerance",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_target_metric",
    "kube_horizontalpodautoscaler_status_condition",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_status_target_metric",
];

fn is_hpa_metric(metric: &str) -> bool {
    KSM_HPA_METRICS.contains(&metric)
}

/// A name that looks like a kube-state-metrics HPA series but is not one it exports.
fn unexported_hpa_metric(metric: &str) -> bool {
    (metric.starts_with("kube_horizontalpodautoscaler_") || metric.starts_with("kube_hpa_"))
        && !is_hpa_metric(metric)
}

static METRIC_NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"[A-Za-z_:][A-Za-z0-9_:]*"));

/// The identifiers of a query (metric names among them), lower-cased.
fn metric_names(expr: &str) -> Vec<String> {
    METRIC_NAME
        .find_iter(expr)
        .map(|m| m.as_str().to_ascii_lowercase())
        .collect()
}

fn dashboards(submission: &Submission, out: &mut Collector) {
    if submission.dashboards.is_empty() {
        out.fire(
            &DASHBOARD_MISSING,
            Location::file(""),
            "no Grafana dashboard JSON (raw or in a ConfigMap)",
        );
        return;
    }
    let mut all_valid = true;
    for dashboard in &submission.dashboards {
        if let Some((message, location)) = &dashboard.invalid {
            all_valid = false;
            out.fire(
                &DASHBOARD_INVALID,
                location.clone(),
                format!("{}: {message}", dashboard.origin),
            );
            continue;
        }
        for query in &dashboard.queries {
            if query.expr.trim().is_empty() {
                continue;
            }
            if let Err(error) =
                promql_parser::parser::parse(&without_grafana_variables(&query.expr))
            {
                let error: String = error
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect();
                out.fire(
                    &DASHBOARD_INVALID,
                    query.location.clone(),
                    format!(
                        "panel \"{}\" query is not valid PromQL ({error}): {}",
                        query.panel, query.expr
                    ),
                );
            }
        }
    }
    if !all_valid {
        // Coverage cannot be judged on a dashboard that does not load.
        return;
    }
    let names: Vec<String> = submission
        .dashboards
        .iter()
        .flat_map(|d| d.queries.iter().flat_map(|q| metric_names(&q.expr)))
        .collect();
    let missing: Vec<&str> = COVERAGE
        .iter()
        .filter(|(_, shows)| !names.iter().any(|n| shows(n)))
        .map(|(what, _)| *what)
        .collect();
    if !missing.is_empty() {
        let mut unexported: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| unexported_hpa_metric(n))
            .collect();
        unexported.sort_unstable();
        unexported.dedup();
        let why = if unexported.is_empty() {
            String::new()
        } else {
            format!(
                " ({} {} not exported by kube-state-metrics v2, so no series answers; its HPA series are kube_horizontalpodautoscaler_status_current_replicas, _status_desired_replicas, _spec_target_metric and _status_target_metric, among others)",
                unexported.join(", "),
                if unexported.len() == 1 { "is" } else { "are" }
            )
        };
        out.fire(
            &DASHBOARD_COVERAGE,
            submission.dashboards[0].location.clone(),
            format!("the dashboard does not show: {}{why}", missing.join("; ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of_files;
    use rstest::rstest;

    const SERVICE_MONITOR: &str = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: api, namespace: ml}\nspec:\n  selector: {matchLabels: {app: api}}\n  endpoints: [{port: http}]\n";
    const SERVICE_MONITOR_FOR_THE_STACK: &str = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: api\n  labels: {release: kube-prometheus-stack}\nspec:\n  selector: {matchLabels: {app: api}}\n  endpoints: [{port: http}]\n";
    const PLAIN_CHART: &str = "#!/bin/bash\nhelm repo add prometheus-community https://prometheus-community.github.io/helm-charts\nhelm install prometheus prometheus-community/prometheus \\\n  --namespace monitoring --create-namespace\nhelm install prometheus-adapter prometheus-community/prometheus-adapter -n monitoring\n";

    /// The operator findings of a submission of `files` (path, text).
    fn operator_findings(files: &[(&str, &str)]) -> Vec<String> {
        let submission = submission_of_files(files);
        let mut out = Collector::default();
        operator_objects_have_an_operator(&submission, &mut out);
        out.findings
            .iter()
            .map(|f| format!("{}: {} | {}", f.location, f.message, f.hint))
            .collect()
    }

    #[test]
    fn a_service_monitor_beside_the_plain_chart_is_found_with_the_install_line() {
        let found = operator_findings(&[("sm.yaml", SERVICE_MONITOR), ("setup.sh", PLAIN_CHART)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("sm.yaml:1:"), "{found:?}");
        assert!(
            found[0].contains(
                "but setup.sh:3 installs Prometheus with the prometheus-community/prometheus chart"
            ) && found[0].contains(
                r#"no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1""#
            ) && found[0].contains("prometheus.io/scrape"),
            "{found:?}"
        );
    }

    #[test]
    fn a_prometheus_rule_is_told_to_move_into_the_charts_values() {
        let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec:\n  groups: [{name: g, rules: [{alert: A, expr: up == 0}]}]\n";
        let found = operator_findings(&[
            ("rules.yaml", rule),
            (
                "README.md",
                "Install:\n\n    helm upgrade --install prometheus prometheus-community/prometheus -n monitoring\n",
            ),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("README.md:3") && found[0].contains("serverFiles"),
            "{found:?}"
        );
    }

    #[rstest]
    #[case::no_install_named(&[("sm.yaml", SERVICE_MONITOR)])]
    #[case::stack_installed(&[
        ("sm.yaml", SERVICE_MONITOR),
        ("setup.sh", "helm install prometheus prometheus-community/prometheus\nhelm install kps prometheus-community/kube-prometheus-stack\n"),
    ])]
    #[case::crds_chart_installed(&[
        ("sm.yaml", SERVICE_MONITOR),
        ("setup.sh", "helm install prometheus prometheus-community/prometheus\nhelm install crds prometheus-community/prometheus-operator-crds\n"),
    ])]
    #[case::crd_manifests_applied(&[
        ("sm.yaml", SERVICE_MONITOR),
        ("setup.sh", "helm install prometheus prometheus-community/prometheus\nkubectl apply -f crds/monitoring.coreos.com_servicemonitors.yaml\n"),
    ])]
    #[case::labelled_for_the_stack(&[
        ("sm.yaml", SERVICE_MONITOR_FOR_THE_STACK),
        ("setup.sh", PLAIN_CHART),
    ])]
    #[case::only_the_adapter_chart(&[
        ("sm.yaml", SERVICE_MONITOR),
        ("setup.sh", "helm install prometheus-adapter prometheus-community/prometheus-adapter\n"),
    ])]
    #[case::commented_out_install(&[
        ("sm.yaml", SERVICE_MONITOR),
        ("setup.sh", "# helm install prometheus prometheus-community/prometheus\n"),
    ])]
    #[case::no_operator_objects(&[
        ("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  selector: {app: api}\n  ports: [{port: 80}]\n"),
        ("setup.sh", PLAIN_CHART),
    ])]
    fn without_clear_evidence_of_the_plain_chart_alone_nothing_is_found(
        #[case] files: &[(&str, &str)],
    ) {
        assert_eq!(operator_findings(files), Vec::<String>::new());
    }

    const RULES: &str = "groups:\n  - name: hpa.rules\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5m\n      - alert: \"B\"\n        expr: up == 1\n        for: 5 minutes   # typo\n";

    #[rstest]
    #[case(r#"x.yaml: not a valid duration string: "5 minutes""#, Some(9))]
    #[case(r#"x.yaml: group "hpa.rules", rule 2, "B": something wrong"#, Some(7))]
    #[case(r#"x.yaml: group "hpa.rules", rule 3, "C": something wrong"#, None)]
    #[case("x.yaml: yaml: unmarshal errors", None)]
    fn a_promtool_error_without_a_line_is_placed_at_the_rule_it_names(
        #[case] detail: &str,
        #[case] line: Option<u32>,
    ) {
        assert_eq!(line_of_named_value(RULES, 1, detail), line, "{detail}");
    }

    fn shown(expr: &str) -> Vec<&'static str> {
        let names = metric_names(expr);
        COVERAGE
            .iter()
            .filter(|(_, shows)| names.iter().any(|n| shows(n)))
            .map(|(what, _)| *what)
            .collect()
    }

    #[rstest]
    #[case(
        "kube_horizontalpodautoscaler_status_current_replicas{namespace=\"$namespace\"}",
        "HPA current replicas"
    )]
    #[case(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "HPA desired replicas"
    )]
    #[case(
        "kube_horizontalpodautoscaler_status_target_metric{metric_name='cpu'}",
        "HPA metric vs target (e.g. CPU utilization)"
    )]
    #[case(
        "kube_verticalpodautoscaler_status_recommendation_containerrecommendations_target",
        "VPA recommendations"
    )]
    #[case(
        "kube_customresource_vpa_containerrecommendations_target{resource=\"cpu\"}",
        "VPA recommendations"
    )]
    #[case(
        "max by (container) (kube_customresource_verticalpodautoscaler_status_recommendation_target)",
        "VPA recommendations"
    )]
    fn dashboard_coverage_follows_kube_state_metrics_naming(
        #[case] expr: &str,
        #[case] what: &str,
    ) {
        assert!(shown(expr).contains(&what), "{expr}: {:?}", shown(expr));
    }

    #[rstest]
    #[case("vpa_recommender_execution_latency_seconds_bucket")]
    #[case("sum(rate(http_requests_total[5m]))")]
    #[case("kube_deployment_status_replicas")]
    // Names kube-state-metrics v2 does not export: no series would answer them.
    #[case("kube_hpa_status_desired_replicas")]
    #[case("kube_horizontalpodautoscaler_status_current_metrics_value{metric_name='cpu'}")]
    fn unrelated_metrics_cover_nothing(#[case] expr: &str) {
        assert!(shown(expr).is_empty(), "{expr}: {:?}", shown(expr));
    }

    #[rstest]
    #[case("rate(x[$__rate_interval])", "rate(x[5m])")]
    #[case(
        "sum(rate(x{ns=\"$namespace\"}[$interval]))",
        "sum(rate(x{ns=\"x\"}[5m]))"
    )]
    #[case("up", "up")]
    fn substitutes_grafana_variables(#[case] expr: &str, #[case] expected: &str) {
        assert_eq!(without_grafana_variables(expr), expected);
        assert!(promql_parser::parser::parse(expected).is_ok());
    }
}

//! Static checks of `monitoring`: Prometheus rules for autoscaling alerts pass
//! promtool; a Grafana dashboard is valid, its panel queries parse as PromQL, and it
//! shows the HPA and VPA metrics.

use super::ID;
use crate::checks::tools::{self, Tools};
use crate::checks::{CheckInfo, Collector, Input, regex};
use crate::submission::{RuleSource, Submission};
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

pub const CATALOGUE: &[CheckInfo] = &[
    RULES_MISSING,
    RULES_INVALID,
    DASHBOARD_MISSING,
    DASHBOARD_INVALID,
    DASHBOARD_COVERAGE,
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
    use rstest::rstest;

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

//! The submission's prometheus-adapter rules as the probe hands them to the cluster's
//! adapter: extracted from wherever the submission keeps them (an adapter ConfigMap's
//! `config.yaml`, Helm values' `rules.custom`: `submission::monitoring` finds them),
//! validated (size caps, known fields), their hard-coded namespaces rewritten to the
//! probe's, and rendered as the adapter would for the probe's pods (the PromQL the
//! probe runs itself for the cross-check).

use crate::submission::{AdapterRule, Submission};
use regex::Regex;
use serde_json::{Map, Value};
use std::time::Duration;

/// At most this many rules go into the cluster's adapter.
pub const MAX_RULES: usize = 32;
/// At most this many bytes per rule (as JSON).
pub const MAX_RULE_BYTES: usize = 8 * 1024;
/// The fields of a discovery rule the adapter reads; anything else is dropped.
const RULE_FIELDS: &[&str] = &[
    "seriesQuery",
    "seriesFilters",
    "resources",
    "name",
    "metricsQuery",
];

/// What the adapter's value of a metric measures, which decides how the probe sizes
/// its load and cross-checks the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MetricKind {
    /// A per-second rate of a counter (`rate(x_total[w])`): proportional to the load.
    Rate,
    /// A latency quantile (`histogram_quantile`): rises when the pods are CPU-bound.
    Latency,
    /// Anything else (a gauge): driven by saturating load, no rate cross-check.
    Other,
}

/// The rule that exposes the HPA's metric, ready for the cluster.
#[derive(Debug, Clone)]
pub struct ExposingRule {
    /// The metric name the adapter serves (`name.as` applied).
    pub metric: String,
    /// The Prometheus series it reads (`<<.Series>>`).
    pub series: String,
    /// The rule as written into the adapter's config (namespaces rewritten).
    pub rule: Value,
    pub kind: MetricKind,
    /// The range of its rate (`[1m]` → 60 s), when it has one.
    pub window: Option<Duration>,
    /// The labels the rule maps to the namespace and pod resources.
    pub namespace_label: String,
    pub pod_label: String,
}

/// The rules for the cluster (every custom rule of the submission, validated and
/// rewritten) and the notes on what was changed.
#[derive(Debug, Clone, Default)]
pub struct ClusterRules {
    pub rules: Vec<Value>,
    pub notes: Vec<String>,
}

impl ClusterRules {
    /// The adapter's `config.yaml`: only the rules (JSON is YAML).
    pub fn config(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({ "rules": self.rules }))
            .unwrap_or_default()
    }
}

/// The submission's custom (not external, not resource) rules, validated and with
/// `namespace="..."` matchers rewritten to `namespace`. Err: why they cannot be used
/// (the submission's fault).
pub fn for_cluster(submission: &Submission, namespace: &str) -> Result<ClusterRules, String> {
    let custom: Vec<&AdapterRule> = submission
        .adapter_rules
        .iter()
        .filter(|r| !r.external && r.raw.get("metricsQuery").is_some())
        .collect();
    if custom.is_empty() {
        return Err("the submission has no prometheus-adapter custom-metrics rules (`rules:` with seriesQuery and metricsQuery)".into());
    }
    if custom.len() > MAX_RULES {
        return Err(format!(
            "the submission has {} prometheus-adapter rules; the probe takes at most {MAX_RULES}",
            custom.len()
        ));
    }
    let mut out = ClusterRules::default();
    for rule in custom {
        let size = serde_json::to_string(&rule.raw).map_or(usize::MAX, |s| s.len());
        if size > MAX_RULE_BYTES {
            return Err(format!(
                "the adapter rule at {} is {size} bytes; the probe takes at most {MAX_RULE_BYTES}",
                rule.location
            ));
        }
        let Some(fields) = rule.raw.as_object() else {
            return Err(format!(
                "the adapter rule at {} is not a mapping",
                rule.location
            ));
        };
        for required in ["seriesQuery", "metricsQuery"] {
            if fields
                .get(required)
                .and_then(Value::as_str)
                .is_none_or(|s| s.trim().is_empty())
            {
                return Err(format!(
                    "the adapter rule at {} has no `{required}` string",
                    rule.location
                ));
            }
        }
        let mut kept = Map::new();
        for (key, value) in fields {
            if RULE_FIELDS.contains(&key.as_str()) {
                kept.insert(key.clone(), value.clone());
            } else {
                out.notes.push(format!(
                    "adapter rule at {}: field `{key}` dropped (not a discovery-rule field)",
                    rule.location
                ));
            }
        }
        for key in ["seriesQuery", "metricsQuery"] {
            if let Some(Value::String(text)) = kept.get_mut(key) {
                let (rewritten, changed) = rewrite_namespaces(text, namespace);
                for from in changed {
                    out.notes.push(format!(
                        "adapter rule at {}: {key} matcher namespace=\"{from}\" rewritten to namespace=\"{namespace}\" (the probe applies every object into its own namespace)",
                        rule.location
                    ));
                }
                *text = rewritten;
            }
        }
        out.rules.push(Value::Object(kept));
    }
    Ok(out)
}

/// `namespace="x"` (x not empty) → `namespace="<namespace>"`; returns the old values.
pub fn rewrite_namespaces(query: &str, namespace: &str) -> (String, Vec<String>) {
    let matcher = Regex::new(r#"(\bnamespace\s*=\s*)"([^"]+)""#).expect("static regex");
    let mut changed = Vec::new();
    let rewritten = matcher.replace_all(query, |c: &regex::Captures<'_>| {
        if &c[2] != namespace {
            changed.push(c[2].to_string());
        }
        format!("{}\"{namespace}\"", &c[1])
    });
    (rewritten.into_owned(), changed)
}

/// The rule of `rules` that exposes `metric` as a Pods metric, and its series.
pub fn exposing(rules: &[Value], metric: &str) -> Option<ExposingRule> {
    rules.iter().find_map(|rule| {
        let series_query = rule.get("seriesQuery")?.as_str()?;
        let metrics_query = rule.get("metricsQuery")?.as_str()?;
        let matches = rule
            .pointer("/name/matches")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(".*");
        let regex = Regex::new(matches).ok()?;
        let default_as = if regex.captures_len() > 1 { "$1" } else { "$0" };
        let name_as = rule
            .pointer("/name/as")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .unwrap_or(default_as);
        let series = series_names(series_query)
            .into_iter()
            .find(|series| regex.is_match(series) && regex.replace(series, name_as) == metric)?;
        let (namespace_label, pod_label) = resource_labels(rule);
        Some(ExposingRule {
            metric: metric.to_string(),
            kind: kind_of(&series, metrics_query),
            window: rate_window(metrics_query),
            series,
            rule: rule.clone(),
            namespace_label,
            pod_label,
        })
    })
}

/// The series names a seriesQuery can discover: its leading metric name or its
/// `__name__="x"`; for a `__name__=~"re"`, the usual suffixes of the metric's stem.
fn series_names(series_query: &str) -> Vec<String> {
    let literal = Regex::new(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)").expect("static regex");
    let name_eq = Regex::new(r#"__name__\s*=\s*["']([^"']*)["']"#).expect("static regex");
    if let Some(c) = literal.captures(series_query) {
        return vec![c[1].to_string()];
    }
    if let Some(c) = name_eq.captures(series_query) {
        return vec![c[1].to_string()];
    }
    Vec::new()
}

/// The labels a rule maps to the namespace and pod resources (`resources.overrides`,
/// or `resources.template: <<.Resource>>`): default `namespace` and `pod`.
fn resource_labels(rule: &Value) -> (String, String) {
    let mut namespace = "namespace".to_string();
    let mut pod = "pod".to_string();
    if let Some(overrides) = rule
        .pointer("/resources/overrides")
        .and_then(Value::as_object)
    {
        for (label, target) in overrides {
            match target.get("resource").and_then(Value::as_str) {
                Some("namespace" | "namespaces") => namespace = label.clone(),
                Some("pod" | "pods") => pod = label.clone(),
                _ => {}
            }
        }
    }
    (namespace, pod)
}

fn kind_of(series: &str, metrics_query: &str) -> MetricKind {
    if metrics_query.contains("histogram_quantile") {
        MetricKind::Latency
    } else if (series.ends_with("_total") || series.ends_with("_count"))
        && ["rate(", "irate(", "increase("]
            .iter()
            .any(|f| metrics_query.contains(f))
    {
        MetricKind::Rate
    } else {
        MetricKind::Other
    }
}

/// The first range of a query (`[1m]`, `[90s]`, `[2m:30s]`).
pub fn rate_window(query: &str) -> Option<Duration> {
    let range = Regex::new(r"\[\s*((?:\d+[smhd])+)\s*(?::[^\]]*)?\]").expect("static regex");
    let text = range.captures(query)?.get(1)?.as_str().to_string();
    let part = Regex::new(r"(\d+)([smhd])").expect("static regex");
    let mut seconds = 0u64;
    for c in part.captures_iter(&text) {
        let n: u64 = c[1].parse().ok()?;
        seconds = seconds.saturating_add(n.saturating_mul(match &c[2] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => 86_400,
        }));
    }
    Some(Duration::from_secs(seconds))
}

/// The metricsQuery as the adapter runs it for `pods` of `namespace`: `<<.Series>>`,
/// `<<.LabelMatchers>>`, `<<.GroupBy>>`, `<<.GroupBySlice>>` filled in. Err: a template
/// action the probe does not render (the adapter may still).
pub fn render(rule: &ExposingRule, namespace: &str, pods: &[String]) -> Result<String, String> {
    let query = rule
        .rule
        .get("metricsQuery")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let action = Regex::new(r"<<\s*\.(\w+)\s*>>").expect("static regex");
    let mut pods: Vec<String> = pods.iter().map(|p| regex_escape(p)).collect();
    pods.sort();
    let matchers = format!(
        "{}=\"{namespace}\",{}=~\"{}\"",
        rule.namespace_label,
        rule.pod_label,
        pods.join("|")
    );
    let mut unknown = None;
    let rendered = action.replace_all(query, |c: &regex::Captures<'_>| match &c[1] {
        "Series" => rule.series.clone(),
        "LabelMatchers" => matchers.clone(),
        "GroupBy" | "GroupBySlice" => rule.pod_label.clone(),
        other => {
            unknown = Some(other.to_string());
            String::new()
        }
    });
    if let Some(other) = unknown {
        return Err(format!(
            "template action <<.{other}>> is not rendered by the probe"
        ));
    }
    if rendered.contains("<<") {
        return Err("template actions other than <<.Field>> are not rendered by the probe".into());
    }
    Ok(rendered.into_owned())
}

/// A pod name inside a PromQL `=~"..."` string: regex metacharacters escaped (a
/// backslash doubled for the string literal), as the adapter's QuoteMeta does.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of;

    const REFERENCE_RULES: &str = r#"rules:
- seriesQuery: 'http_requests_total{namespace="ml-platform",pod!=""}'
  resources:
    overrides:
      namespace: {resource: "namespace"}
      pod: {resource: "pod"}
  name:
    matches: "^http_requests_total$"
    as: "http_requests_per_second"
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>,route="/predict",namespace="ml-platform"}[1m])) by (<<.GroupBy>>)'
  unknownField: 1
- seriesQuery: 'inference_latency_seconds_bucket{namespace!="",pod!=""}'
  resources: {template: "<<.Resource>>"}
  name: {as: "inference_latency_p95"}
  metricsQuery: 'histogram_quantile(0.95, sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (le, <<.GroupBy>>))'
externalRules:
- seriesQuery: 'queue_length'
  metricsQuery: 'sum(queue_length)'
"#;

    #[test]
    fn rules_are_extracted_validated_and_their_namespaces_rewritten() {
        let submission = submission_of("adapter.yaml", REFERENCE_RULES);
        let rules = for_cluster(&submission, "ac-test-1").unwrap();
        assert_eq!(rules.rules.len(), 2, "external rules stay out");
        let first = rules.rules[0].to_string();
        assert!(first.contains(r#"namespace=\"ac-test-1\""#), "{first}");
        assert!(!first.contains("ml-platform"), "{first}");
        assert!(!first.contains("unknownField"), "{first}");
        let notes = rules.notes.join("\n");
        assert!(
            notes.contains("namespace=\"ml-platform\" rewritten to namespace=\"ac-test-1\""),
            "{notes}"
        );
        assert!(notes.contains("`unknownField` dropped"), "{notes}");
        assert!(rules.config().contains("\"rules\""));
    }

    #[test]
    fn invalid_rules_are_refused_with_the_reason() {
        let none = submission_of("adapter.yaml", "rules: []\n");
        assert!(
            for_cluster(&none, "x")
                .unwrap_err()
                .contains("no prometheus-adapter")
        );
        let huge = format!(
            "rules:\n- seriesQuery: 'x_total'\n  metricsQuery: '{}'\n",
            "a".repeat(MAX_RULE_BYTES + 1)
        );
        let huge = submission_of("adapter.yaml", &huge);
        assert!(
            for_cluster(&huge, "x")
                .unwrap_err()
                .contains("at most 8192")
        );
        let empty = submission_of(
            "adapter.yaml",
            "rules:\n- seriesQuery: 'x_total'\n  metricsQuery: ''\n",
        );
        assert!(
            for_cluster(&empty, "x")
                .unwrap_err()
                .contains("no `metricsQuery`")
        );
    }

    #[test]
    fn the_exposing_rule_its_kind_window_and_labels() {
        let submission = submission_of("adapter.yaml", REFERENCE_RULES);
        let rules = for_cluster(&submission, "ns").unwrap();
        let rate = exposing(&rules.rules, "http_requests_per_second").unwrap();
        assert_eq!(rate.series, "http_requests_total");
        assert_eq!(rate.kind, MetricKind::Rate);
        assert_eq!(rate.window, Some(Duration::from_secs(60)));
        let latency = exposing(&rules.rules, "inference_latency_p95").unwrap();
        assert_eq!(latency.kind, MetricKind::Latency);
        assert_eq!(latency.window, Some(Duration::from_secs(120)));
        assert!(exposing(&rules.rules, "requests_per_second").is_none());
    }

    #[test]
    fn the_metrics_query_is_rendered_for_the_probes_pods() {
        let submission = submission_of("adapter.yaml", REFERENCE_RULES);
        let rules = for_cluster(&submission, "ns").unwrap();
        let rate = exposing(&rules.rules, "http_requests_per_second").unwrap();
        let promql = render(&rate, "ns", &["api-b".into(), "api-a".into()]).unwrap();
        let dotted = render(&rate, "ns", &["api.a".into()]).unwrap();
        assert!(dotted.contains(r#"pod=~"api\\.a""#), "{dotted}");
        assert_eq!(
            promql,
            r#"sum(rate(http_requests_total{namespace="ns",pod=~"api-a|api-b",route="/predict",namespace="ns"}[1m])) by (pod)"#
        );
        let mut odd = rate.clone();
        odd.rule["metricsQuery"] = Value::String("sum(<<.Series>>{<<index .Foo 0>>})".into());
        assert!(render(&odd, "ns", &[]).is_err());
    }

    #[test]
    fn windows_parse_in_go_duration_units() {
        assert_eq!(rate_window("rate(x[1m30s])"), Some(Duration::from_secs(90)));
        assert_eq!(
            rate_window("max_over_time(x[5m:30s])"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(rate_window("sum(x)"), None);
    }
}

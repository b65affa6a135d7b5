//! The static checks of `hpa-custom`: an HPA scales on a custom metric that the
//! submission's prometheus-adapter rules expose, and the Services the metrics are
//! scraped through select pods.

use super::ID;
use crate::checks::{CheckInfo, Collector, Index, Input, service_selector};
use crate::submission::{Submission, Typed, selector};
use crate::verdict::Location;
use k8s_openapi::api::autoscaling::v2::MetricSpec;
use regex::Regex;

pub const SERVICE_SELECTOR_UNMATCHED: CheckInfo = CheckInfo::error(
    "ref.service-selector-unmatched",
    ID,
    "every Service selects the pods of some workload",
    "make spec.selector equal to labels on the pod template (spec.template.metadata.labels)",
);

pub const CUSTOM_MISSING: CheckInfo = CheckInfo::error(
    "hpa.custom-missing",
    ID,
    "an HPA scales on a custom (Pods/Object/External) Prometheus metric",
    "add a `type: Pods` metric naming a metric exposed by prometheus-adapter",
)
.always_applicable();

pub const CUSTOM_METRIC_UNEXPOSED: CheckInfo = CheckInfo::error(
    "hpa.custom-metric-unexposed",
    ID,
    "each custom metric an HPA uses is exposed by the submission's prometheus-adapter rules",
    "use the metric name the adapter rule's `name.as` produces, or add a rule exposing it",
);

pub const ADAPTER_RULE_INVALID: CheckInfo = CheckInfo::error(
    "adapter.rule-invalid",
    ID,
    "prometheus-adapter can load every rule (its start-up refuses the whole configuration otherwise)",
    "close every `<<` template action with `>>` and make `name.matches` a valid regular expression",
);

pub const CATALOGUE: &[CheckInfo] = &[
    SERVICE_SELECTOR_UNMATCHED,
    CUSTOM_MISSING,
    CUSTOM_METRIC_UNEXPOSED,
    ADAPTER_RULE_INVALID,
];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    let uses_custom_metric = index.hpas.iter().any(|(_, h)| {
        h.spec
            .metrics
            .iter()
            .flatten()
            .enumerate()
            .any(|(i, m)| custom_metric(m, i).is_some())
    });
    if uses_custom_metric {
        out.examined(&[CUSTOM_METRIC_UNEXPOSED]);
    } else {
        out.fire(
            &CUSTOM_MISSING,
            index
                .hpas
                .first()
                .map_or_else(|| Location::file(""), |(o, _)| o.location()),
            "no HorizontalPodAutoscaler scales on a custom (Pods/Object/External) metric",
        );
    }
    custom_metrics_exposed(index, out);
    services_select_pods(index, out);
    adapter_rules_load(index.submission, out);
}

/// What prometheus-adapter checks when it loads its rules, before serving anything: each
/// `name.matches` compiles, and each template (`metricsQuery`, `resources.template`,
/// written with `<<` `>>` delimiters) has its actions closed. One bad rule stops the
/// adapter, so every metric it would serve is lost, not just that rule's.
fn adapter_rules_load(submission: &Submission, out: &mut Collector) {
    if submission.adapter_rules.is_empty() {
        return;
    }
    out.examined(&[ADAPTER_RULE_INVALID]);
    for rule in &submission.adapter_rules {
        let mut problems = Vec::new();
        if let Some(matches) = rule.name_matches.as_deref()
            && let Err(e) = Regex::new(matches)
        {
            problems.push(format!(
                "name.matches `{matches}` is not a regular expression: {}",
                e.to_string().lines().last().unwrap_or_default().trim()
            ));
        }
        let templates = [
            ("metricsQuery", rule.raw.get("metricsQuery")),
            (
                "resources.template",
                rule.raw.pointer("/resources/template"),
            ),
        ];
        for (field, value) in templates {
            if let Some(template) = value.and_then(|v| v.as_str())
                && let Some(problem) = unclosed_action(template)
            {
                problems.push(format!("{field} `{template}`: {problem}"));
            }
        }
        if !problems.is_empty() {
            out.fire(
                &ADAPTER_RULE_INVALID,
                rule.location.clone(),
                format!(
                    "prometheus-adapter would refuse to start on this rule: {}",
                    problems.join("; ")
                ),
            );
        }
    }
}

/// The first template action (`<<` ... `>>`) left open or empty, as Go's text/template
/// with those delimiters would report it.
fn unclosed_action(template: &str) -> Option<String> {
    let mut rest = template;
    while let Some(start) = rest.find("<<") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(">>") else {
            return Some(format!(
                "the action `{}` is never closed with `>>`",
                rest[start..].chars().take(24).collect::<String>()
            ));
        };
        let action = &after[..end];
        if action.contains("<<") {
            return Some(format!(
                "the action `<<{}` is never closed with `>>` before the next `<<`",
                action.split("<<").next().unwrap_or_default()
            ));
        }
        if action.trim().is_empty() {
            return Some("an empty action `<<>>`".into());
        }
        rest = &after[end + 2..];
    }
    None
}

/// A custom metric of an HPA: (metric name, external?, pointer of the name).
fn custom_metric(metric: &MetricSpec, i: usize) -> Option<(String, bool, String)> {
    if let Some(pods) = &metric.pods {
        return Some((
            pods.metric.name.clone(),
            false,
            format!("/spec/metrics/{i}/pods/metric/name"),
        ));
    }
    if let Some(object) = &metric.object {
        return Some((
            object.metric.name.clone(),
            false,
            format!("/spec/metrics/{i}/object/metric/name"),
        ));
    }
    metric.external.as_ref().map(|e| {
        (
            e.metric.name.clone(),
            true,
            format!("/spec/metrics/{i}/external/metric/name"),
        )
    })
}

fn custom_metrics_exposed(index: &Index<'_>, out: &mut Collector) {
    let exposure = Exposure::new(index.submission);
    for (object, hpa) in &index.hpas {
        for (i, metric) in hpa.spec.metrics.iter().flatten().enumerate() {
            let Some((name, external, pointer)) = custom_metric(metric, i) else {
                continue;
            };
            if let Some(problem) = exposure.problem(&name, external) {
                out.fire(
                    &CUSTOM_METRIC_UNEXPOSED,
                    object.locate(&pointer),
                    format!(
                        "{} scales on {} metric `{name}`, but {problem}",
                        object.describe(),
                        if external { "external" } else { "custom" }
                    ),
                );
            }
        }
    }
}

/// Every Service with a selector sends traffic to the pods of some workload.
fn services_select_pods(index: &Index<'_>, out: &mut Collector) {
    for object in &index.submission.objects {
        let Typed::Service(service) = &object.typed else {
            continue;
        };
        let Some(wanted) = service_selector(service) else {
            continue;
        };
        out.examined(&[SERVICE_SELECTOR_UNMATCHED]);
        let selects = selector::of_labels(wanted);
        let matched = index.workloads.iter().any(|w| {
            w.same_namespace(object.namespace.as_deref())
                && w.pod_template()
                    .and_then(|t| t.labels)
                    .is_some_and(|labels| selector::matches(&selects, labels))
        });
        if matched {
            continue;
        }
        let query = selector::to_query(&selects);
        if let Some(refused) =
            index.refused_workload_selected_by(object.namespace.as_deref(), &selects)
        {
            out.fire_with_hint(
                &SERVICE_SELECTOR_UNMATCHED,
                object.locate("/spec/selector"),
                format!(
                    "{} selects {query}, the labels the selector of {} asks for, but that workload is refused by the API server (its selector does not match its template labels), so no pod carries them",
                    object.describe(),
                    refused.describe()
                ),
                format!(
                    "fix {} first (input.parse-error at {}): this Service's selector is not the cause",
                    refused.describe(),
                    refused.locate("/spec/selector")
                ),
            );
        } else {
            out.fire(
                &SERVICE_SELECTOR_UNMATCHED,
                object.locate("/spec/selector"),
                format!(
                    "{} selects {query} but no pod template carries those labels",
                    object.describe(),
                ),
            );
        }
    }
}

/// What the submission's prometheus-adapter rules expose.
struct Exposure {
    rules: Vec<(bool, SeriesName, Regex, String)>,
    any_config: bool,
}

enum SeriesName {
    Literal(String),
    Pattern(Regex),
    Unknown,
}

impl Exposure {
    fn new(submission: &Submission) -> Self {
        let literal = Regex::new(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)").expect("static regex");
        let name_pattern =
            Regex::new(r#"__name__\s*=~?\s*["']([^"']*)["']"#).expect("static regex");
        let rules = submission
            .adapter_rules
            .iter()
            .filter_map(|rule| {
                let series = if let Some(c) = literal.captures(&rule.series_query) {
                    SeriesName::Literal(c[1].to_string())
                } else if let Some(c) = name_pattern.captures(&rule.series_query) {
                    Regex::new(&format!("^(?:{})$", &c[1]))
                        .map_or(SeriesName::Unknown, SeriesName::Pattern)
                } else {
                    SeriesName::Unknown
                };
                let matches = rule
                    .name_matches
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| ".*".to_string());
                let regex = Regex::new(&matches).ok()?;
                let default_as = if regex.captures_len() > 1 { "$1" } else { "$0" };
                let name_as = rule
                    .name_as
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| default_as.to_string());
                Some((rule.external, series, regex, name_as))
            })
            .collect();
        Exposure {
            rules,
            any_config: !submission.adapter_configs.is_empty(),
        }
    }

    fn exposes(&self, metric: &str, external: bool) -> bool {
        self.rules
            .iter()
            .filter(|(e, ..)| *e == external)
            .any(|(_, series, regex, name_as)| {
                let produces = |series_name: &str| {
                    regex.is_match(series_name)
                        && regex.replace(series_name, name_as.as_str()) == metric
                };
                match series {
                    SeriesName::Literal(name) => produces(name),
                    SeriesName::Pattern(pattern) => {
                        ["", "_total", "_seconds_total", "_bucket", "_count", "_sum"]
                            .iter()
                            .map(|suffix| format!("{metric}{suffix}"))
                            .any(|candidate| pattern.is_match(&candidate) && produces(&candidate))
                    }
                    SeriesName::Unknown => true,
                }
            })
    }

    fn problem(&self, metric: &str, external: bool) -> Option<String> {
        if !self.any_config {
            return Some("the submission has no prometheus-adapter rules exposing it".to_string());
        }
        if self.exposes(metric, external) {
            return None;
        }
        let exposed: Vec<String> = self
            .rules
            .iter()
            .filter(|(e, ..)| *e == external)
            .filter_map(|(_, series, regex, name_as)| match series {
                SeriesName::Literal(name) if regex.is_match(name) => {
                    Some(regex.replace(name, name_as.as_str()).to_string())
                }
                _ => None,
            })
            .collect();
        Some(if exposed.is_empty() {
            "no prometheus-adapter rule exposes it".to_string()
        } else {
            format!(
                "the prometheus-adapter rules expose only {}",
                exposed.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of;

    fn exposure_of(config: &str) -> Exposure {
        let submission = submission_of("adapter.yaml", config);
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        Exposure::new(&submission)
    }

    #[test]
    fn adapter_rules_expose_the_names_their_name_as_produces() {
        let exposure = exposure_of(
            "rules:\n- seriesQuery: 'http_requests_total{pod!=\"\"}'\n  name: {matches: \"^(.*)_total$\", as: \"${1}_per_second\"}\n  metricsQuery: x\n- seriesQuery: 'queue_depth{pod!=\"\"}'\n  metricsQuery: y\n",
        );
        assert!(exposure.exposes("http_requests_per_second", false));
        assert!(!exposure.exposes("http_requests_total", false));
        assert!(exposure.exposes("queue_depth", false));
        assert!(
            !exposure.exposes("queue_depth", true),
            "custom rules do not expose external metrics"
        );
        let problem = exposure.problem("http_request_per_second", false).unwrap();
        assert!(problem.contains("http_requests_per_second"), "{problem}");
    }

    #[test]
    fn adapter_rules_with_name_patterns_and_helm_values_shape() {
        let exposure = exposure_of(
            "rules:\n  default: false\n  custom:\n  - seriesQuery: '{__name__=~\"^inference_.*_total$\",pod!=\"\"}'\n    name: {matches: \"^(.*)_total$\", as: \"${1}\"}\n    metricsQuery: x\n  external:\n  - seriesQuery: 'queue_length'\n    metricsQuery: y\n",
        );
        assert!(exposure.exposes("inference_requests", false));
        assert!(!exposure.exposes("training_requests", false));
        assert!(exposure.exposes("queue_length", true));
    }

    #[test]
    fn without_adapter_rules_every_custom_metric_is_unexposed() {
        let exposure = exposure_of("kind: nothing\n");
        assert!(
            exposure
                .problem("anything", false)
                .unwrap()
                .contains("no prometheus-adapter rules")
        );
    }

    #[test]
    fn template_actions_left_open_are_found() {
        assert_eq!(
            unclosed_action("sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)"),
            None
        );
        assert_eq!(unclosed_action("no template at all"), None);
        let open = unclosed_action("sum(rate(<<.Series>>[1m])) by (<<.GroupBy)").unwrap();
        assert!(open.contains("<<.GroupBy)"), "{open}");
        let nested = unclosed_action("<<.Series{<<.LabelMatchers>>").unwrap();
        assert!(nested.contains("before the next"), "{nested}");
        assert!(unclosed_action("x<<>>").unwrap().contains("empty"));
    }
}

//! Monitoring content that is not a Kubernetes object: Prometheus rule groups,
//! Grafana dashboards and prometheus-adapter rules, found as data files, nested
//! in Helm values, or embedded in ConfigMap values and other operators'
//! resources.

use super::yaml::{
    self, Document, Position, YamlLimits, YamlProblem, YamlProblemKind, escape_pointer,
};
use super::{AdapterRule, Dashboard, Object, PanelQuery, RuleSource, Submission, input_finding};
use crate::verdict::Location;
use serde_json::Value;
use std::sync::Arc;

/// Records the rule groups, dashboard or adapter rules that `value` is; false
/// when it is none of them. `locate` finds a JSON pointer inside `value`;
/// `raw_file` is the file to hand to promtool when the rules are all of it.
pub(super) fn collect(
    submission: &mut Submission,
    value: &Value,
    location: Location,
    origin: &str,
    raw_file: Option<String>,
    locate: impl Fn(&str) -> Position,
) -> bool {
    let file = location.file.clone();
    let at = |pointer: &str| {
        let p = locate(pointer);
        Location::at(file.clone(), p.line, p.column)
    };
    if is_rule_groups(value) {
        submission.rule_sources.push(RuleSource {
            location,
            raw_file,
            content: value.clone(),
            origin: origin.to_string(),
        });
        return true;
    }
    if let Some((dashboard, pointer)) = dashboard_in(value) {
        let dashboard = read_dashboard(dashboard, pointer, location, origin, &at);
        submission.dashboards.push(dashboard);
        return true;
    }
    let adapter_rules = adapter_rules(value, &at);
    if adapter_rules.is_empty() {
        return false;
    }
    submission.adapter_configs.push(location);
    submission.adapter_rules.extend(adapter_rules);
    true
}

/// `{"groups": [...]}` where a group has rules.
fn is_rule_groups(value: &Value) -> bool {
    value
        .get("groups")
        .and_then(Value::as_array)
        .is_some_and(|groups| groups.iter().any(|g| g.get("rules").is_some()))
}

/// The dashboard `value` is, or wraps as the Grafana API takes it
/// (`{"dashboard": {...}}`), with its pointer inside `value`.
fn dashboard_in(value: &Value) -> Option<(&Value, &'static str)> {
    if value.get("panels").is_some_and(Value::is_array)
        || value.get("rows").is_some_and(Value::is_array)
    {
        Some((value, ""))
    } else {
        value
            .get("dashboard")
            .filter(|d| d.get("panels").is_some_and(Value::is_array))
            .map(|d| (d, "/dashboard"))
    }
}

fn read_dashboard(
    dashboard: &Value,
    pointer: &str,
    location: Location,
    origin: &str,
    at: &dyn Fn(&str) -> Location,
) -> Dashboard {
    let title = dashboard
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut queries = Vec::new();
    let mut panel_count = 0;
    collect_panels(dashboard, pointer, at, &mut queries, &mut panel_count);
    Dashboard {
        location,
        title,
        origin: origin.to_string(),
        panel_count,
        queries,
        invalid: None,
    }
}

/// A dashboard whose JSON does not parse, kept so that its check can say so:
/// `location` is where the dashboard is, `error_location` where the error is.
pub(super) fn unparsable_dashboard(
    location: Location,
    origin: String,
    error: &serde_json::Error,
    error_location: Location,
) -> Dashboard {
    Dashboard {
        location,
        title: String::new(),
        origin,
        panel_count: 0,
        queries: Vec::new(),
        invalid: Some((
            format!("dashboard JSON does not parse: {error}"),
            error_location,
        )),
    }
}

/// The prometheus-adapter discovery rules of a configuration (`rules`,
/// `externalRules`, `resourceRules`, or the Helm values' `rules.custom` and
/// `rules.external`).
fn adapter_rules(value: &Value, at: &dyn Fn(&str) -> Location) -> Vec<AdapterRule> {
    let mut adapter_rules = Vec::new();
    for (key, external) in [
        ("rules", false),
        ("externalRules", true),
        ("resourceRules", false),
    ] {
        let Some(rules) = value.get(key) else {
            continue;
        };
        // Helm values shape: rules: {custom: [...], external: [...]}
        let lists: Vec<(&Value, String, bool)> = match rules {
            Value::Array(_) => vec![(rules, format!("/{key}"), external)],
            Value::Object(map) => map
                .iter()
                .filter(|(_, v)| v.is_array())
                .map(|(k, v)| (v, format!("/{key}/{k}"), k == "external"))
                .collect(),
            _ => Vec::new(),
        };
        for (list, pointer, external) in lists {
            for (index, rule) in list.as_array().into_iter().flatten().enumerate() {
                let Some(series_query) = rule.get("seriesQuery").and_then(Value::as_str) else {
                    continue;
                };
                if rule.get("metricsQuery").is_none() && key != "resourceRules" {
                    continue;
                }
                adapter_rules.push(AdapterRule {
                    external,
                    series_query: series_query.to_string(),
                    name_matches: rule
                        .pointer("/name/matches")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    name_as: rule
                        .pointer("/name/as")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    location: at(&format!("{pointer}/{index}")),
                    raw: rule.clone(),
                });
            }
        }
    }
    adapter_rules
}

/// Helm values and similar data files nest monitoring content
/// (`serverFiles.alerting_rules.yml.groups`, `grafana.dashboards.*.json`,
/// `prometheus-adapter.rules`): look `depth` more levels down from `pointer`.
pub(super) fn collect_nested(
    submission: &mut Submission,
    rel: &str,
    document: &Arc<Document>,
    pointer: &str,
    depth: usize,
) {
    let Some(value) = document.value.pointer(pointer) else {
        return;
    };
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (format!("{pointer}/{}", escape_pointer(k)), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{pointer}/{i}"), v))
            .collect(),
        _ => return,
    };
    for (child_pointer, child) in children {
        let position = document.locate(&child_pointer);
        let location = Location::at(rel, position.line, position.column);
        let origin = format!("{rel} at {child_pointer}");
        match child {
            Value::Object(_) => {
                let matched = collect(submission, child, location, &origin, None, |p| {
                    document.locate(&format!("{child_pointer}{p}"))
                });
                if !matched && depth > 0 {
                    collect_nested(submission, rel, document, &child_pointer, depth - 1);
                }
            }
            Value::Array(_) if depth > 0 => {
                collect_nested(submission, rel, document, &child_pointer, depth - 1)
            }
            Value::String(text)
                if text.trim_start().starts_with('{') && text.contains("\"panels\"") =>
            {
                match serde_json::from_str::<Value>(text) {
                    Ok(embedded) => {
                        let line = position.line;
                        collect(submission, &embedded, location, &origin, None, |_| {
                            Position { line, column: 1 }
                        });
                    }
                    Err(error) => {
                        let error_location = Location::at(
                            rel,
                            position.line + error.line() as u32,
                            error.column() as u32,
                        );
                        let dashboard =
                            unparsable_dashboard(location, origin, &error, error_location);
                        submission.dashboards.push(dashboard);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A ConfigMap value holding a dashboard, rule file or adapter config.
pub(super) fn collect_embedded(
    submission: &mut Submission,
    limits: YamlLimits,
    object: &Object,
    key: &str,
    text: &str,
) {
    let key_location = object.locate(&format!("/data/{}", escape_pointer(key)));
    let origin = format!("{} key {key}", object.describe());
    let looks_structured = key.ends_with(".json")
        || key.ends_with(".yaml")
        || key.ends_with(".yml")
        || key.ends_with(".rules")
        || text.trim_start().starts_with('{');
    if !looks_structured {
        return;
    }
    let loaded = yaml::load(text, limits);
    // Block scalars start on the line after the key.
    let base_line = key_location.line.unwrap_or(1);
    let embedded = Embedded {
        object,
        text,
        key_location,
        origin,
        base_line,
    };
    if let Some(problem) = loaded.problems.iter().find(|p| p.fatal) {
        collect_unreadable_yaml(submission, embedded, problem);
        return;
    }
    for document in &loaded.documents {
        let start = embedded.at(document.start);
        let locate = |pointer: &str| {
            let position = document.locate(pointer);
            Position {
                line: base_line + position.line,
                column: position.column,
            }
        };
        collect(
            submission,
            &document.value,
            start,
            &embedded.origin,
            None,
            locate,
        );
    }
}

/// A file embedded in a ConfigMap value, and where it sits.
struct Embedded<'a> {
    object: &'a Object,
    text: &'a str,
    /// Where the value's key is written.
    key_location: Location,
    /// What wraps it, for messages ("ConfigMap ml/dashboards key autoscaling.json").
    origin: String,
    /// The line of the key: the value's lines count from there.
    base_line: u32,
}

impl Embedded<'_> {
    /// Where a position inside the value is in the object's file.
    fn at(&self, position: Position) -> Location {
        Location::at(
            self.object.file.clone(),
            self.base_line + position.line,
            position.column,
        )
    }
}

/// An embedded file that YAML cannot read may still be JSON (YAML refuses the
/// tabs that JSON allows); otherwise its problem is reported where it is.
fn collect_unreadable_yaml(submission: &mut Submission, embedded: Embedded, problem: &YamlProblem) {
    match serde_json::from_str::<Value>(embedded.text) {
        Ok(value) => {
            let base_line = embedded.base_line;
            let locate = |_: &str| Position {
                line: base_line,
                column: 1,
            };
            let origin = &embedded.origin;
            collect(
                submission,
                &value,
                embedded.key_location,
                origin,
                None,
                locate,
            );
        }
        Err(error) => {
            let error_location = embedded.at(Position {
                line: error.line() as u32,
                column: error.column() as u32,
            });
            if embedded.text.contains("\"panels\"") {
                let dashboard = unparsable_dashboard(
                    embedded.key_location,
                    embedded.origin,
                    &error,
                    error_location,
                );
                submission.dashboards.push(dashboard);
            } else {
                let check = if problem.kind == YamlProblemKind::AliasBomb {
                    "input.alias-bomb"
                } else {
                    "input.parse-error"
                };
                submission.findings.push(input_finding(
                    check,
                    embedded.at(problem.position),
                    format!("{}: {}", embedded.origin, problem.message),
                    "fix the embedded file's syntax",
                ));
            }
        }
    }
}

fn collect_panels(
    container: &Value,
    pointer: &str,
    at: &dyn Fn(&str) -> Location,
    queries: &mut Vec<PanelQuery>,
    panel_count: &mut usize,
) {
    for list_key in ["panels", "rows"] {
        let Some(panels) = container.get(list_key).and_then(Value::as_array) else {
            continue;
        };
        for (index, panel) in panels.iter().enumerate() {
            let panel_pointer = format!("{pointer}/{list_key}/{index}");
            if list_key == "panels" {
                *panel_count += 1;
            }
            let title = panel
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("(untitled)")
                .to_string();
            for (target_index, target) in panel
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(expr) = target.get("expr").and_then(Value::as_str) {
                    queries.push(PanelQuery {
                        panel: title.clone(),
                        expr: expr.to_string(),
                        location: at(&format!("{panel_pointer}/targets/{target_index}/expr")),
                    });
                }
            }
            // Row panels nest their panels.
            collect_panels(panel, &panel_pointer, at, queries, panel_count);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, load};
    use crate::verdict::Severity;

    #[test]
    fn other_operators_resources_are_searched_for_dashboards() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gd.yaml",
            "apiVersion: grafana.integreatly.org/v1beta1\nkind: GrafanaDashboard\nmetadata: {name: d}\nspec:\n  json: |\n    {\"panels\": [{\"targets\": [{\"expr\": \"up\"}]}]}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1, "{:?}", submission.findings);
        assert_eq!(submission.findings[0].check, "input.unknown-kind");
        assert_eq!(submission.findings[0].severity, Severity::Info);
        assert_eq!(submission.dashboards.len(), 1);
    }

    #[test]
    fn helm_values_nesting_rules_and_dashboards_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "values.yaml",
            "serverFiles:\n  alerting_rules.yml:\n    groups:\n    - name: g\n      rules:\n      - alert: A\n        expr: up == 0\ngrafana:\n  dashboards:\n    default:\n      autoscaling:\n        json: |\n          {\"panels\": [{\"targets\": [{\"expr\": \"up\"}]}]}\nworkflow:\n  jobs: [build]\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.rule_sources.len(), 1);
        assert_eq!(submission.rule_sources[0].location.line, Some(2));
        assert!(submission.rule_sources[0].raw_file.is_none());
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].expr, "up");
    }

    #[test]
    fn embedded_dashboards_rules_and_adapter_config_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  dashboard.json: |\n    {\"panels\": [{\"targets\": [{\"expr\": \"rate(x[5m])\"}]}]}\n  config.yaml: |\n    rules:\n    - seriesQuery: 'http_requests_total{pod!=\"\"}'\n      name: {matches: \"^(.*)_total$\", as: \"${1}_per_second\"}\n      metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].location.line, Some(6));
        assert_eq!(submission.adapter_rules.len(), 1);
        assert_eq!(submission.adapter_rules[0].location.line, Some(9));
    }
}

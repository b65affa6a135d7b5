//! Checks over non-manifest content: metrics-server verification, monitoring
//! (promtool, PromQL, dashboard coverage), scripts (bash -n, shellcheck, load),
//! and docs (guide, decision matrix, troubleshooting).

use super::Collector;
use super::tools::{self, Tools};
use crate::submission::{Submission, TextFile};
use crate::verdict::Location;
use regex::Regex;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::LazyLock;

pub(super) fn check(submission: &Submission, tools: &Tools, out: &mut Collector) {
    // The external tools dominate the run time: run promtool and the script
    // checkers side by side.
    let (rules, scripts) = std::thread::scope(|scope| {
        let rules = scope.spawn(|| {
            let mut part = Collector::default();
            rule_files(submission, tools, &mut part);
            part
        });
        let mut scripts = Collector::default();
        script_files(submission, tools, &mut scripts);
        (rules.join().unwrap_or_default(), scripts)
    });
    for part in [rules, scripts] {
        out.findings.extend(part.findings);
        out.environment.extend(part.environment);
        out.evidence.extend(part.evidence);
    }
    if !submission.rule_sources.is_empty() {
        out.examined(&["monitoring.rules-invalid"]);
    }
    if !submission.dashboards.is_empty() {
        out.examined(&[
            "monitoring.dashboard-invalid",
            "monitoring.dashboard-coverage",
        ]);
    }
    if !submission.scripts.is_empty() {
        out.examined(&[
            "scripts.syntax",
            "scripts.shellcheck",
            "scripts.unbounded-load",
        ]);
    }
    metrics_server(submission, out);
    dashboards(submission, out);
    load(submission, out);
    docs(submission, out);
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

static METRICS_SERVER_VERIFY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"kubectl\s+top\s|metrics\.k8s\.io|kubectl\s+wait\b[^\n]*metrics-server|kubectl\s+rollout\s+status\b[^\n]*metrics-server",
    )
});

fn metrics_server(submission: &Submission, out: &mut Collector) {
    let verified = submission
        .script_texts()
        .any(|(_, text)| METRICS_SERVER_VERIFY.is_match(&text));
    if !verified {
        let location = submission
            .scripts
            .first()
            .map_or_else(|| Location::file(""), |s| Location::file(s.path.clone()));
        out.fire(
            "metrics-server.verification-missing",
            location,
            "no script verifies metrics-server (kubectl top, the metrics.k8s.io API, or waiting for its rollout)",
        );
    }
}

static LINE_COLUMN: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:^|\s|:)(\d+):(\d+):"));
static LINE_WORD: LazyLock<Regex> = LazyLock::new(|| regex(r"line (\d+)"));

fn rule_files(submission: &Submission, tools: &Tools, out: &mut Collector) {
    if submission.rule_sources.is_empty() {
        out.fire(
            "monitoring.rules-missing",
            Location::file(""),
            "no Prometheus rule groups (raw, ConfigMap or PrometheusRule)",
        );
        return;
    }
    let Some(promtool) = &tools.promtool else {
        out.environment(
            "monitoring.rules-invalid",
            "promtool is not installed (Debian package `prometheus`)",
        );
        return;
    };
    let Ok(scratch) = tempfile::tempdir() else {
        out.environment(
            "monitoring.rules-invalid",
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
                        "monitoring.rules-invalid",
                        "cannot write a temporary rule file for promtool",
                    );
                    continue;
                }
                path
            }
        };
        let args: [&OsStr; 3] = ["check".as_ref(), "rules".as_ref(), path.as_os_str()];
        match tools::run(promtool, &args, tools.deadline) {
            Err(problem) => out.environment("monitoring.rules-invalid", problem),
            Ok(output) if output.success => {}
            Ok(output) => {
                let shown = path.display().to_string();
                let text = format!("{}\n{}", output.stdout, output.stderr);
                let lines: Vec<String> = text
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
                let location = match (line, source.raw_file.is_some()) {
                    (Some(line), true) => Location::line(source.location.file.clone(), line),
                    (Some(_), false) | (None, _) => source.location.clone(),
                };
                let detail: String = detail.chars().take(600).collect();
                out.fire(
                    "monitoring.rules-invalid",
                    location,
                    format!("promtool check rules fails for {}: {detail}", source.origin),
                );
            }
        }
    }
}

static GRAFANA_RANGE_VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?|\[\s*\$\{?\w+\}?\s*\]")
});
static GRAFANA_VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]"));

/// Grafana template variables are not PromQL; substitute plausible values first.
fn without_grafana_variables(expr: &str) -> String {
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
/// metric names a panel query uses. kube-state-metrics has renamed these over
/// the years (`kube_hpa_*` before v2, VPA metrics only through a
/// CustomResourceState config since v2.9, whose names the user chooses), so
/// the tests look at name parts rather than one exact name.
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
        (is_hpa_metric(m) && (m.contains("target_metric") || m.contains("current_metrics")))
            || m == "container_cpu_usage_seconds_total"
    }),
    ("VPA recommendations", |m| {
        (m.contains("vpa") || m.contains("verticalpodautoscaler")) && m.contains("recommendation")
    }),
];

fn is_hpa_metric(metric: &str) -> bool {
    metric.starts_with("kube_horizontalpodautoscaler_") || metric.starts_with("kube_hpa_")
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
            "monitoring.dashboard-missing",
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
                "monitoring.dashboard-invalid",
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
                    "monitoring.dashboard-invalid",
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
        out.fire(
            "monitoring.dashboard-coverage",
            submission.dashboards[0].location.clone(),
            format!("the dashboard does not show: {}", missing.join("; ")),
        );
    }
}

static SYNTAX_LINE: LazyLock<Regex> = LazyLock::new(|| regex(r"line (\d+):"));

fn script_files(submission: &Submission, tools: &Tools, out: &mut Collector) {
    let is_test_suite = |script: &TextFile| {
        let text = script.text.to_lowercase();
        let topics = [
            text.contains("hpa") || text.contains("horizontalpodautoscaler"),
            text.contains("vpa") || text.contains("verticalpodautoscaler"),
            text.contains("scaledobject") || text.contains("keda"),
        ];
        // A suite exercises all three autoscalers; a load script that glances
        // at `kubectl get hpa,scaledobject` is not one.
        text.contains("kubectl") && topics.iter().all(|t| *t)
    };
    if !submission.scripts.iter().any(is_test_suite) {
        out.fire(
            "scripts.test-suite-missing",
            Location::file(""),
            "no shell script runs kubectl against the autoscalers (HPA, VPA, ScaledObjects)",
        );
    }
    if submission.scripts.is_empty() {
        return;
    }
    let Some(bash) = &tools.bash else {
        out.environment("scripts.syntax", "bash is not installed");
        out.environment(
            "scripts.shellcheck",
            "bash is not installed, so scripts were not checked",
        );
        return;
    };
    if tools.shellcheck.is_none() {
        out.environment(
            "scripts.shellcheck",
            "shellcheck is not installed (Debian package `shellcheck`)",
        );
    }
    let results: Vec<Collector> = std::thread::scope(|scope| {
        let handles: Vec<_> = submission
            .scripts
            .iter()
            .map(|script| scope.spawn(move || check_script(&submission.root, script, bash, tools)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for part in results {
        out.findings.extend(part.findings);
        out.environment.extend(part.environment);
    }
}

fn check_script(root: &Path, script: &TextFile, bash: &Path, tools: &Tools) -> Collector {
    let mut out = Collector::default();
    let path = root.join(&script.path);
    let shown = path.display().to_string();
    match tools::run(bash, &["-n".as_ref(), path.as_os_str()], tools.deadline) {
        Err(problem) => {
            out.environment("scripts.syntax", problem);
            return out;
        }
        Ok(output) if !output.success => {
            let detail = output.stderr.trim().replace(&shown, &script.path);
            let line = SYNTAX_LINE
                .captures(&detail)
                .and_then(|c| c[1].parse::<u32>().ok());
            let location = line.map_or_else(
                || Location::file(script.path.clone()),
                |l| Location::line(script.path.clone(), l),
            );
            let detail: String = detail
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(400)
                .collect();
            out.fire(
                "scripts.syntax",
                location,
                format!("bash -n fails: {detail}"),
            );
            // shellcheck would repeat the parse error as its own finding.
            return out;
        }
        Ok(_) => {}
    }
    let Some(shellcheck) = &tools.shellcheck else {
        return out;
    };
    let has_shebang = script.text.starts_with("#!");
    let mut args: Vec<&OsStr> = vec![
        "-f".as_ref(),
        "json1".as_ref(),
        "-S".as_ref(),
        "error".as_ref(),
    ];
    if !has_shebang {
        args.extend([OsStr::new("-s"), OsStr::new("bash")]);
    }
    args.push(path.as_os_str());
    match tools::run(shellcheck, &args, tools.deadline) {
        Err(problem) => out.environment("scripts.shellcheck", problem),
        Ok(output) => {
            let Ok(report) = serde_json::from_str::<serde_json::Value>(&output.stdout) else {
                if !output.success {
                    out.environment(
                        "scripts.shellcheck",
                        format!("shellcheck failed: {}", output.stderr.trim()),
                    );
                }
                return out;
            };
            for comment in report
                .get("comments")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
            {
                if comment.get("level").and_then(|l| l.as_str()) != Some("error") {
                    continue;
                }
                let line = comment.get("line").and_then(|l| l.as_u64()).unwrap_or(1) as u32;
                let column = comment.get("column").and_then(|l| l.as_u64()).unwrap_or(1) as u32;
                let code = comment.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
                let message = comment
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                out.fire_with_hint(
                    "scripts.shellcheck",
                    Location::at(script.path.clone(), line, column),
                    format!("SC{code}: {message}"),
                    format!("see https://www.shellcheck.net/wiki/SC{code}"),
                );
            }
        }
    }
    out
}

static LOAD_TOOL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(hey|wrk|k6|vegeta|locust|oha|siege|fortio|loadgen|load-gen|load-generator|load_generator|loadtest|load-test)\b|\bab\s+-[nc]\b",
    )
});
static REQUEST_TOOL: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(curl|wget|hey|http|nc|ab)\b"));
static INFINITE_LOOP: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\bwhile\s+(?:true|:|\[\s*1\s*\]|\[\[\s*1\s*\]\]|\(\(\s*1\s*\)\))\s*;?\s*do\b|\buntil\s+false\s*;?\s*do\b|\bfor\s*\(\(\s*;\s*;\s*\)\)\s*;?\s*do\b",
    )
});
static DO_DONE: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(do|done)\b"));
static LOOP_EXIT: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(break|exit|return)\b"));
static TIMEOUT_PREFIX: LazyLock<Regex> = LazyLock::new(|| regex(r"\btimeout\s+(-\S+\s+)*\d"));

/// The body of the loop whose header ends at `start`, up to its matching `done`.
fn loop_body(text: &str, start: usize) -> &str {
    let mut depth = 1;
    for token in DO_DONE.find_iter(&text[start..]) {
        if token.as_str() == "do" {
            depth += 1;
        } else {
            depth -= 1;
            if depth == 0 {
                return &text[start..start + token.start()];
            }
        }
    }
    &text[start..]
}

fn unbounded_request_loops(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for header in INFINITE_LOOP.find_iter(text) {
        let body = loop_body(text, header.end());
        if !REQUEST_TOOL.is_match(body) || LOOP_EXIT.is_match(body) {
            continue;
        }
        let line_start = text[..header.start()].rfind('\n').map_or(0, |i| i + 1);
        if TIMEOUT_PREFIX.is_match(&text[line_start..header.start()]) {
            continue;
        }
        lines.push(text[..header.start()].matches('\n').count() + 1);
    }
    lines
}

fn load(submission: &Submission, out: &mut Collector) {
    // Containers of Jobs and pods with activeDeadlineSeconds: Kubernetes ends
    // them, so a `while true` request loop inside is bounded in time.
    let deadline_bounded: Vec<Location> = submission
        .objects
        .iter()
        .filter(|o| o.run_deadline_seconds().is_some_and(|s| s > 0))
        .filter_map(|o| o.pod_template().map(|t| (o, t)))
        .flat_map(|(object, template)| {
            let count = template.spec.containers.len()
                + template.spec.init_containers.as_ref().map_or(0, Vec::len);
            (0..count).map(move |index| {
                object.locate(&format!("{}/containers/{index}", template.pointer))
            })
        })
        .collect();
    let mut generates_load = false;
    for (location, text) in submission.script_texts() {
        if LOAD_TOOL.is_match(&text) || (REQUEST_TOOL.is_match(&text) && DO_DONE.is_match(&text)) {
            generates_load = true;
        }
        let from_file = location.line.is_none();
        if deadline_bounded.contains(&location) {
            continue;
        }
        for line in unbounded_request_loops(&text) {
            let at = if from_file {
                Location::line(location.file.clone(), line as u32)
            } else {
                location.clone()
            };
            out.fire(
                "scripts.unbounded-load",
                at,
                "a request loop runs forever: nothing bounds it in count or time",
            );
        }
    }
    let images = submission
        .objects
        .iter()
        .filter_map(|o| o.pod_template())
        .any(|t| {
            t.spec
                .containers
                .iter()
                .any(|c| c.image.as_deref().is_some_and(|i| LOAD_TOOL.is_match(i)))
        });
    let other = submission
        .other_text
        .iter()
        .any(|f| LOAD_TOOL.is_match(&f.text));
    if !(generates_load || images || other) {
        out.fire(
            "scripts.load-missing",
            Location::file(""),
            "nothing in the submission generates load",
        );
    }
}

struct Table {
    file: String,
    line: usize,
    covered: Vec<&'static str>,
}

const AUTOSCALERS: &[(&str, &[&str])] = &[
    (
        "HPA",
        &[
            "hpa",
            "horizontal pod autoscaler",
            "horizontalpodautoscaler",
        ],
    ),
    (
        "VPA",
        &["vpa", "vertical pod autoscaler", "verticalpodautoscaler"],
    ),
    ("KEDA", &["keda"]),
    (
        "Cluster Autoscaler",
        &[
            "cluster autoscaler",
            "cluster-autoscaler",
            "clusterautoscaler",
            "karpenter",
        ],
    ),
];

fn tables(doc: &TextFile) -> Vec<Table> {
    let lines: Vec<&str> = doc.text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with('|') {
            let start = i;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                i += 1;
            }
            let is_table = i - start >= 2 && is_delimiter_row(lines[start + 1]);
            if is_table {
                let text = lines[start..i].join("\n").to_lowercase();
                // "CA" as a column or row name is the usual abbreviation.
                let abbreviated_ca = lines[start..i].iter().any(|row| {
                    row.split('|').any(|cell| {
                        cell.trim()
                            .trim_matches(['*', '_', '`'])
                            .eq_ignore_ascii_case("ca")
                    })
                });
                let covered = AUTOSCALERS
                    .iter()
                    .filter(|(name, words)| {
                        words.iter().any(|w| text.contains(w))
                            || (*name == "Cluster Autoscaler" && abbreviated_ca)
                    })
                    .map(|(name, _)| *name)
                    .collect();
                found.push(Table {
                    file: doc.path.clone(),
                    line: start + 1,
                    covered,
                });
            }
        } else {
            i += 1;
        }
    }
    found
}

/// A GFM table's delimiter row: cells of hyphens, optionally colon-aligned.
fn is_delimiter_row(line: &str) -> bool {
    let cells: Vec<&str> = line
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    !cells.is_empty()
        && cells.iter().all(|cell| {
            let dashes = cell.trim_start_matches(':').trim_end_matches(':');
            !dashes.is_empty() && dashes.chars().all(|c| c == '-')
        })
}

/// A Markdown heading that opens a troubleshooting section, by whatever name.
fn is_troubleshooting_heading(line: &str) -> bool {
    let lower = line.to_lowercase();
    line.trim_start().starts_with('#')
        && [
            "troubleshoot",
            "debugging",
            "common issues",
            "common problems",
            "common errors",
            "common failures",
            "known issues",
            "when things go wrong",
            "diagnos",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

fn is_markdown(doc: &TextFile) -> bool {
    let lower = doc.path.to_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

fn docs(submission: &Submission, out: &mut Collector) {
    let markdown: Vec<&TextFile> = submission.docs.iter().filter(|d| is_markdown(d)).collect();
    let mentions = |doc: &TextFile| doc.text.to_lowercase().matches("autoscal").count();
    // A guide (by content, not by name): about autoscaling, and either headed as
    // a guide/decision/troubleshooting text or holding a table that compares at
    // least three autoscalers. A README listing files is not one.
    let is_guide = |doc: &TextFile| {
        let headed = doc.text.lines().any(|l| {
            let lower = l.to_lowercase();
            l.trim_start().starts_with('#')
                && ["guide", "decision", "troubleshoot", "when to use"]
                    .iter()
                    .any(|w| lower.contains(w))
        });
        mentions(doc) > 0 && (headed || tables(doc).iter().any(|t| t.covered.len() >= 3))
    };
    let guides: Vec<&TextFile> = markdown.iter().copied().filter(|d| is_guide(d)).collect();
    if guides.is_empty() {
        out.fire(
            "docs.guide-missing",
            Location::file(""),
            "no Markdown guide explaining the autoscalers (a decision matrix, or a guide or troubleshooting section)",
        );
        return;
    }
    out.examined(&[
        "docs.decision-matrix-incomplete",
        "docs.troubleshooting-missing",
    ]);
    let all_tables: Vec<Table> = markdown.iter().flat_map(|d| tables(d)).collect();
    let best = all_tables
        .iter()
        .max_by_key(|t| (t.covered.len(), std::cmp::Reverse(t.line)));
    let main_guide = best
        .filter(|t| t.covered.len() >= 2)
        .map(|t| t.file.clone())
        .unwrap_or_else(|| {
            guides
                .iter()
                .max_by_key(|d| mentions(d))
                .map(|d| d.path.clone())
                .unwrap_or_default()
        });
    match best {
        Some(table) if table.covered.len() == AUTOSCALERS.len() => {}
        Some(table) if table.covered.len() >= 2 => {
            let missing: Vec<&str> = AUTOSCALERS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| !table.covered.contains(name))
                .collect();
            out.fire(
                "docs.decision-matrix-incomplete",
                Location::line(table.file.clone(), table.line as u32),
                format!("the decision matrix does not cover {}", missing.join(", ")),
            );
        }
        _ => out.fire(
            "docs.decision-matrix-incomplete",
            Location::file(main_guide.clone()),
            "no decision matrix (a Markdown table comparing HPA, VPA, KEDA and Cluster Autoscaler)",
        ),
    }
    let has_troubleshooting = markdown
        .iter()
        .any(|d| d.text.lines().any(is_troubleshooting_heading));
    if !has_troubleshooting {
        out.fire(
            "docs.troubleshooting-missing",
            Location::file(main_guide),
            "no troubleshooting section (a heading such as \"Troubleshooting\", \"Debugging\" or \"Common issues\")",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn load_findings(manifest: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("load.yaml"), manifest).unwrap();
        let submission =
            crate::submission::load(dir.path(), &crate::submission::LoadOptions::default())
                .unwrap();
        let mut out = Collector::default();
        load(&submission, &mut out);
        out.findings.iter().map(|f| f.check.clone()).collect()
    }

    const LOOP: &str = r#"["/bin/sh", "-c", "while true; do wget -q -O- http://svc; done"]"#;

    #[rstest]
    #[case(
        "batch/v1",
        "Job",
        "  activeDeadlineSeconds: 180\n  template:\n    spec:\n      restartPolicy: Never\n",
        false
    )]
    #[case(
        "batch/v1",
        "Job",
        "  template:\n    spec:\n      activeDeadlineSeconds: 180\n      restartPolicy: Never\n",
        false
    )]
    #[case(
        "batch/v1",
        "Job",
        "  template:\n    spec:\n      restartPolicy: Never\n",
        true
    )]
    #[case(
        "apps/v1",
        "Deployment",
        "  selector: {matchLabels: {app: l}}\n  template:\n    metadata: {labels: {app: l}}\n    spec:\n      activeDeadlineSeconds: 180\n",
        true
    )]
    fn a_job_deadline_bounds_a_request_loop(
        #[case] api_version: &str,
        #[case] kind: &str,
        #[case] spec: &str,
        #[case] unbounded: bool,
    ) {
        let manifest = format!(
            "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: load}}\nspec:\n{spec}      containers:\n        - name: l\n          image: busybox:1.36\n          command: {LOOP}\n"
        );
        let findings = load_findings(&manifest);
        assert_eq!(
            findings.iter().any(|c| c == "scripts.unbounded-load"),
            unbounded,
            "{manifest}\n{findings:?}"
        );
    }

    #[rstest]
    #[case("## Troubleshooting", true)]
    #[case("### 6. Debugging autoscaling", true)]
    #[case("## Common issues and fixes", true)]
    #[case("## Known Issues", true)]
    #[case("## Anti-Patterns to Avoid", false)]
    #[case("Troubleshooting is hard", false)]
    fn troubleshooting_sections_go_by_several_names(#[case] line: &str, #[case] is: bool) {
        assert_eq!(is_troubleshooting_heading(line), is, "{line}");
    }

    #[rstest]
    #[case(
        "| Workload | HPA | VPA | KEDA | CA |\n|---|---|---|---|---|\n| api | yes | off | no | yes |",
        4
    )]
    #[case(
        "| | HPA | VPA | KEDA | **CA** |\n|-|-|-|-|-|\n| x | y | y | y | y |",
        4
    )]
    #[case(
        "| Tool | Use |\n|---|---|\n| HPA | load |\n| VPA | size |\n| KEDA | events |\n| Karpenter | nodes |",
        4
    )]
    #[case(
        "| Workload | HPA | VPA | KEDA |\n|---|---|---|---|\n| api | yes | cache | no |",
        3
    )]
    fn decision_matrices_may_abbreviate(#[case] table: &str, #[case] covered: usize) {
        let doc = TextFile {
            path: "guide.md".into(),
            text: table.into(),
        };
        assert_eq!(tables(&doc)[0].covered.len(), covered, "{table}");
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
    #[case("kube_hpa_status_desired_replicas", "HPA desired replicas")]
    #[case(
        "kube_horizontalpodautoscaler_status_current_metrics_value{metric_name='cpu'}",
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
    fn unrelated_metrics_cover_nothing(#[case] expr: &str) {
        assert!(shown(expr).is_empty(), "{expr}: {:?}", shown(expr));
    }

    #[rstest]
    #[case("while true; do wget -q -O- http://svc; done", 1)]
    #[case(
        "kubectl run x -- /bin/sh -c \"while true; do wget -q http://a; done\"",
        1
    )]
    #[case("timeout 60 sh -c 'while true; do curl -s http://a; done'", 0)]
    #[case("while true; do curl -s http://a || break; done", 0)]
    #[case("for i in $(seq 1 100); do curl -s http://a; done", 0)]
    #[case("while true; do echo tick; sleep 5; done", 0)]
    #[case("x\nwhile :; do\n  curl http://a\ndone\n", 1)]
    fn finds_unbounded_request_loops(#[case] text: &str, #[case] count: usize) {
        assert_eq!(unbounded_request_loops(text).len(), count, "{text}");
    }

    #[test]
    fn reports_the_line_of_the_loop() {
        assert_eq!(
            unbounded_request_loops("a\nb\nwhile true; do curl x; done\n"),
            vec![3]
        );
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

    #[test]
    fn decision_matrix_tables_are_found_with_their_line() {
        let doc = TextFile {
            path: "G.md".into(),
            text: "# G\n\n| Workload | HPA | VPA | KEDA |\n|---|---|---|---|\n| api | yes | no | no |\n".into(),
        };
        let found = tables(&doc);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].covered, vec!["HPA", "VPA", "KEDA"]);
    }
}

//! Static checks of `load-testing`: a test script exercises the autoscalers, every
//! shell script parses (`bash -n`) and passes shellcheck, and the submission generates
//! load in bounded loops.

use super::ID;
use crate::checks::tools::{self, Tools};
use crate::checks::{CheckInfo, Collector, Input, regex};
use crate::submission::{Submission, TextFile};
use crate::verdict::Location;
use regex::Regex;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::LazyLock;

pub const TEST_SUITE_MISSING: CheckInfo = CheckInfo::error(
    "scripts.test-suite-missing",
    ID,
    "a test script exercises all three autoscalers (kubectl against HPA, VPA and ScaledObjects)",
    "add test_autoscaling.sh (Task 7.2), checking HPAs, VPAs and ScaledObjects with kubectl",
)
.always_applicable();

pub const SYNTAX: CheckInfo = CheckInfo::error(
    "scripts.syntax",
    ID,
    "every shell script passes `bash -n`",
    "run `bash -n <script>` and fix the syntax error",
);

pub const SHELLCHECK: CheckInfo = CheckInfo::error(
    "scripts.shellcheck",
    ID,
    "shellcheck reports no errors",
    "run `shellcheck -S error <script>` and fix what it reports",
);

pub const LOAD_MISSING: CheckInfo = CheckInfo::error(
    "scripts.load-missing",
    ID,
    "the submission generates load (a load script, load-generator Job, hey/k6/wrk, or a request loop)",
    "add a bounded load generation script",
)
.always_applicable();

pub const UNBOUNDED_LOAD: CheckInfo = CheckInfo::error(
    "scripts.unbounded-load",
    ID,
    "every request loop is bounded in count or time",
    "bound the loop: `timeout 120 sh -c '...'`, a counted `for`, or a load generator with --duration",
);

pub const CATALOGUE: &[CheckInfo] = &[
    TEST_SUITE_MISSING,
    SYNTAX,
    SHELLCHECK,
    LOAD_MISSING,
    UNBOUNDED_LOAD,
];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let submission = input.submission;
    if !submission.scripts.is_empty() {
        out.examined(&[SYNTAX, SHELLCHECK, UNBOUNDED_LOAD]);
    }
    script_files(submission, input.tools, out);
    load(submission, out);
}

static SYNTAX_LINE: LazyLock<Regex> = LazyLock::new(|| regex(r"line (\d+):"));

/// The autoscalers a script runs kubectl against (HPA, VPA, ScaledObject), in
/// that order; empty when it runs no kubectl.
pub(super) fn autoscalers_exercised(script: &TextFile) -> Vec<&'static str> {
    let text = script.text.to_lowercase();
    if !text.contains("kubectl") {
        return Vec::new();
    }
    [
        ("HPA", ["hpa", "horizontalpodautoscaler"]),
        ("VPA", ["vpa", "verticalpodautoscaler"]),
        ("ScaledObject", ["scaledobject", "keda"]),
    ]
    .into_iter()
    .filter(|(_, words)| words.iter().any(|w| text.contains(w)))
    .map(|(name, _)| name)
    .collect()
}

/// A suite exercises all three autoscalers; a load script that glances at
/// `kubectl get hpa` is not one. Says what the closest script does cover.
fn test_suite(submission: &Submission, out: &mut Collector) {
    let best = submission
        .scripts
        .iter()
        .map(|s| (s, autoscalers_exercised(s)))
        .max_by_key(|(_, covered)| covered.len());
    let (location, message) = match best {
        Some((script, covered)) if covered.len() == 3 => {
            scales_by_hand(submission, script, out);
            return;
        }
        None => (
            Location::file(""),
            "the submission has no shell script".to_string(),
        ),
        Some((_, covered)) if covered.is_empty() => (
            Location::file(""),
            "no shell script runs kubectl against an HPA, a VPA or a ScaledObject".to_string(),
        ),
        Some((script, covered)) => {
            let missing: Vec<&str> = ["HPA", "VPA", "ScaledObject"]
                .into_iter()
                .filter(|a| !covered.contains(a))
                .collect();
            (
                Location::file(script.path.clone()),
                format!(
                    "no shell script runs kubectl against all three autoscalers: {} covers {} but not {}",
                    script.path,
                    covered.join(" and "),
                    missing.join(" or ")
                ),
            )
        }
    };
    out.fire(&TEST_SUITE_MISSING, location, message);
}

/// A suite whose only way to change the replicas is `kubectl scale` tests no
/// autoscaler: the HPA (or KEDA's) sets the count back at its next sync. It counts
/// as a suite when it generates load itself or runs a script of the submission that does.
fn scales_by_hand(submission: &Submission, suite: &TextFile, out: &mut Collector) {
    let Some(line) = command_lines_numbered(&suite.text)
        .find(|(_, l)| KUBECTL_SCALE.is_match(l))
        .map(|(n, _)| n)
    else {
        return;
    };
    let runs_load = generates_load(&suite.text)
        || submission.scripts.iter().any(|other| {
            other.path != suite.path
                && generates_load(&other.text)
                && other
                    .path
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| suite.text.contains(name))
        });
    if runs_load {
        return;
    }
    out.fire_with_hint(
        &TEST_SUITE_MISSING,
        Location::line(suite.path.clone(), line as u32),
        format!(
            "{} changes the replicas only with `kubectl scale` and generates no load: the HPA or KEDA sets the count back at its next sync, so no autoscaler is exercised",
            suite.path
        ),
        "generate load against the Service (a load pod, hey, a curl loop bounded in time) and watch the autoscalers react, instead of scaling by hand",
    );
}

/// Whether a script generates load: a load tool, or a request tool in a loop.
pub(super) fn generates_load(text: &str) -> bool {
    LOAD_TOOL.is_match(text) || (REQUEST_TOOL.is_match(text) && DO_DONE.is_match(text))
}

/// [`command_lines`] with their 1-based line numbers.
fn command_lines_numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_start()))
        .filter(|(_, line)| {
            !line.starts_with('#') && !line.starts_with("echo") && !line.starts_with("printf")
        })
}

fn script_files(submission: &Submission, tools: &Tools, out: &mut Collector) {
    test_suite(submission, out);
    if submission.scripts.is_empty() {
        return;
    }
    let Some(bash) = &tools.bash else {
        out.environment(&SYNTAX, "bash is not installed");
        out.environment(
            &SHELLCHECK,
            "bash is not installed, so scripts were not checked",
        );
        return;
    };
    if tools.shellcheck.is_none() {
        out.environment(
            &SHELLCHECK,
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
            .zip(&submission.scripts)
            .map(|(handle, script)| {
                handle
                    .join()
                    .unwrap_or_else(|panic| grader_failed_on(script, panic.as_ref()))
            })
            .collect()
    });
    for part in results {
        out.absorb(part);
    }
}

/// A check of `script` that panicked is the grader's failure, not the student's: both
/// script checks are environment errors naming the file (not a silent pass).
fn grader_failed_on(script: &TextFile, panic: &(dyn std::any::Any + Send)) -> Collector {
    let reason = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let message = format!(
        "the grader failed while checking {}: {reason} (a bug in the grader; please report it)",
        script.path
    );
    let mut out = Collector::default();
    out.environment(&SYNTAX, message.clone());
    out.environment(&SHELLCHECK, message);
    out
}

fn check_script(root: &Path, script: &TextFile, bash: &Path, tools: &Tools) -> Collector {
    let mut out = Collector::default();
    let path = root.join(&script.path);
    let shown = path.display().to_string();
    match tools::run(bash, &["-n".as_ref(), path.as_os_str()], tools.deadline) {
        Err(problem) => {
            out.environment(&SYNTAX, problem);
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
            out.fire(&SYNTAX, location, format!("bash -n fails: {detail}"));
            // shellcheck would repeat the parse error as its own finding.
            return out;
        }
        Ok(_) => {}
    }
    if let Some(shellcheck) = &tools.shellcheck {
        run_shellcheck(script, &path, shellcheck, tools, &mut out);
    }
    out
}

/// Runs shellcheck on `script` (at `path`) and reports its errors.
fn run_shellcheck(
    script: &TextFile,
    path: &Path,
    shellcheck: &Path,
    tools: &Tools,
    out: &mut Collector,
) {
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
    let output = match tools::run_shellcheck(shellcheck, &args, tools) {
        Ok(output) => output,
        Err(problem) => {
            out.environment(&SHELLCHECK, problem);
            return;
        }
    };
    let Ok(report) = serde_json::from_str::<serde_json::Value>(&output.stdout) else {
        if !output.success {
            out.environment(
                &SHELLCHECK,
                format!("shellcheck failed: {}", output.stderr.trim()),
            );
        }
        return;
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
            &SHELLCHECK,
            Location::at(script.path.clone(), line, column),
            format!("SC{code}: {message}"),
            format!("see https://www.shellcheck.net/wiki/SC{code}"),
        );
    }
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

static KUBECTL_RUN: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"\bkubectl\s+run\s+["']?([A-Za-z0-9][A-Za-z0-9.$_{}-]*)"#));
static KILL: LazyLock<Regex> = LazyLock::new(|| regex(r"\bkill\b"));
static KUBECTL_DELETE: LazyLock<Regex> = LazyLock::new(|| regex(r"\bkubectl\s+delete\b"));
static KUBECTL_SCALE: LazyLock<Regex> = LazyLock::new(|| regex(r"\bkubectl\s+(-\S+\s+)*scale\b"));

/// The lines of a script that run commands (not comments, not text it prints).
fn command_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim_start).filter(|line| {
        !line.starts_with('#') && !line.starts_with("echo") && !line.starts_with("printf")
    })
}

/// Whether the script stops the request loop at `header`..`end` (past its
/// `done`) itself: a loop in a pod it runs (`kubectl run NAME … while true`)
/// that it deletes afterwards or in a trap; a loop it puts in the background
/// (`done &`) that it kills afterwards or in a trap.
fn stopped_by_script(text: &str, header: usize, end: usize) -> bool {
    // The whole command the loop is part of, continuation lines included.
    let mut command_start = text[..header].rfind('\n').map_or(0, |i| i + 1);
    while command_start > 0
        && text[..command_start - 1]
            .trim_end_matches(' ')
            .ends_with('\\')
    {
        command_start = text[..command_start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    let rest_of_line = text[end..].split('\n').next().unwrap_or("");
    let backgrounded = rest_of_line.replace("&&", "").contains('&');
    let traps = command_lines(text).filter(|l| l.starts_with("trap "));
    let later = command_lines(&text[end..]);
    match KUBECTL_RUN.captures(&text[command_start..header]) {
        Some(pod) => {
            let name = regex(&format!(
                r"(?:^|[\s/]){}(?:$|[\s;&|])",
                regex::escape(&pod[1])
            ));
            let deletes = |line: &&str| KUBECTL_DELETE.is_match(line) && name.is_match(line);
            traps.chain(later).any(|l| deletes(&l))
        }
        None => backgrounded && traps.chain(later).any(|l| KILL.is_match(l)),
    }
}

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
        let end = (header.end() + body.len() + "done".len()).min(text.len());
        if stopped_by_script(text, header.start(), end) {
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
    let mut scripts_load = false;
    for (location, text) in submission.script_texts() {
        if generates_load(&text) {
            scripts_load = true;
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
                &UNBOUNDED_LOAD,
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
    if !(scripts_load || images || other) {
        out.fire(
            &LOAD_MISSING,
            Location::file(""),
            "nothing in the submission generates load",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn a_script_check_that_panics_is_an_environment_error_naming_the_file() {
        let script = TextFile {
            path: "scripts/load.sh".into(),
            text: String::new(),
        };
        let panic = std::thread::spawn(|| panic!("index out of bounds"))
            .join()
            .unwrap_err();
        let out = grader_failed_on(&script, panic.as_ref());
        let ids: Vec<&str> = out.environment.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [SYNTAX.id, SHELLCHECK.id]);
        let message = &out.environment[0].1;
        assert!(message.contains("scripts/load.sh"), "{message}");
        assert!(message.contains("index out of bounds"), "{message}");
    }

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

    fn suite_findings(scripts: &[(&str, &str)]) -> Vec<(String, Option<u32>)> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in scripts {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let submission =
            crate::submission::load(dir.path(), &crate::submission::LoadOptions::default())
                .unwrap();
        let mut out = Collector::default();
        test_suite(&submission, &mut out);
        out.findings
            .iter()
            .map(|f| (f.message.clone(), f.location.line))
            .collect()
    }

    const CHECKS: &str = "kubectl get hpa\nkubectl get vpa\nkubectl get scaledobject\n";

    #[rstest]
    #[case::only_kubectl_scale(&[("test.sh", "#!/bin/bash\nkubectl get hpa\nkubectl scale deployment api --replicas=8\nkubectl get vpa\nkubectl get scaledobject\n")], Some(3))]
    #[case::scale_beside_load(&[("test.sh", "#!/bin/bash\nkubectl scale deployment api --replicas=2\nhey -z 60s http://api\nkubectl get hpa vpa scaledobject\n")], None)]
    #[case::scale_and_a_load_script_it_runs(&[("test.sh", "#!/bin/bash\n./load.sh\nkubectl -n x scale deployment api --replicas=2\nkubectl get hpa,vpa,scaledobject\n"), ("load.sh", "#!/bin/bash\nfor i in $(seq 100); do curl -s http://api; done\n")], None)]
    #[case::no_scale(&[("test.sh", CHECKS)], None)]
    fn a_suite_that_only_scales_by_hand_exercises_no_autoscaler(
        #[case] scripts: &[(&str, &str)],
        #[case] line: Option<u32>,
    ) {
        let findings = suite_findings(scripts);
        match line {
            Some(line) => {
                assert_eq!(findings.len(), 1, "{findings:?}");
                assert!(
                    findings[0].0.contains("only with `kubectl scale`"),
                    "{findings:?}"
                );
                assert_eq!(findings[0].1, Some(line));
            }
            None => assert!(findings.is_empty(), "{findings:?}"),
        }
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
    // A pod running the loop that the script deletes after the load period.
    #[case(
        "kubectl run load --image=busybox -- /bin/sh -c \"while true; do wget -q http://a; done\"\nsleep 60\nkubectl delete pod load --wait=false\n",
        0
    )]
    // … or in an EXIT trap set before it.
    #[case(
        "trap 'kubectl delete pod/load --ignore-not-found' EXIT\nkubectl run load \\\n  --image=busybox -- sh -c 'while true; do wget -q http://a; done'\nsleep 60\n",
        0
    )]
    // Deleting another pod, or only saying how to delete it, stops nothing.
    #[case(
        "kubectl run load -- sh -c 'while true; do wget -q http://a; done'\nkubectl delete pod load-2\necho \"stop: kubectl delete pod load\"\n",
        1
    )]
    // A background loop killed after a sleep, or in a trap.
    #[case(
        "while true; do curl -s http://a; done &\nPID=$!\nsleep 60\nkill $PID\n",
        0
    )]
    #[case(
        "trap 'kill $(jobs -p)' EXIT\nwhile true; do curl -s http://a; done &\nsleep 60\n",
        0
    )]
    // A foreground loop never reaches the kill after it.
    #[case("while true; do curl -s http://a; done\nkill $PID\n", 1)]
    fn finds_unbounded_request_loops(#[case] text: &str, #[case] count: usize) {
        assert_eq!(unbounded_request_loops(text).len(), count, "{text}");
    }

    #[rstest]
    #[case(
        "#!/bin/bash\nkubectl get hpa -n ml\n",
        "test.sh covers HPA but not VPA or ScaledObject"
    )]
    #[case(
        "#!/bin/bash\necho hello\n",
        "no shell script runs kubectl against an HPA, a VPA or a ScaledObject"
    )]
    fn a_missing_test_suite_is_described_by_what_the_scripts_do(
        #[case] script: &str,
        #[case] message: &str,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.sh"), script).unwrap();
        let submission =
            crate::submission::load(dir.path(), &crate::submission::LoadOptions::default())
                .unwrap();
        let mut out = Collector::default();
        test_suite(&submission, &mut out);
        assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
        assert!(
            out.findings[0].message.ends_with(message),
            "{}",
            out.findings[0].message
        );
    }

    #[test]
    fn reports_the_line_of_the_loop() {
        assert_eq!(
            unbounded_request_loops("a\nb\nwhile true; do curl x; done\n"),
            vec![3]
        );
    }
}

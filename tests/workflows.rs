//! The GitHub side, tested without GitHub: actionlint (pinned, built from its Go module
//! by `ci/actionlint/build.sh`) on every workflow and on the documented example caller;
//! the scripts the workflows' steps call (`ci/grade-submission.sh`, `ci/class-matrix.sh`,
//! `ci/suite-time.sh`) run here on fixtures, with what they write checked.
//! What stays unrun is GitHub itself: the runners, `workflow_call`, the matrix and the
//! artifact actions.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(script: &str) -> Command {
    let mut command = Command::new(support::repo().join(script));
    command.current_dir(support::repo());
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().expect("the script starts");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn workflow_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files.push(support::repo().join("docs/classroom-caller.yml"));
    files
}

#[test]
fn actionlint_passes_on_every_workflow_and_the_example_caller() {
    let (built, path, stderr) = run(&mut sh("ci/actionlint/build.sh"));
    assert!(
        built,
        "building actionlint failed (make ci-bins):\n{stderr}"
    );
    let files = workflow_files();
    assert!(files.len() >= 4, "{files:?}");
    let mut actionlint = Command::new(path.trim());
    actionlint
        .current_dir(support::repo())
        .arg("-no-color")
        .args(&files);
    let (clean, stdout, stderr) = run(&mut actionlint);
    assert!(clean, "actionlint found problems:\n{stdout}{stderr}");
}

#[test]
fn the_class_matrix_takes_owner_name_entries_only() {
    let (ok, stdout, _) = run(sh("ci/class-matrix.sh").arg("org/alice org/bob,\norg/carol.x"));
    assert!(ok);
    assert_eq!(
        stdout,
        "matrix=[\"org/alice\",\"org/bob\",\"org/carol.x\"]\n"
    );
    for bad in ["org/a\"b", "$(id)/x", "a/b/c", "*", "", "x"] {
        let (ok, stdout, _) = run(sh("ci/class-matrix.sh").arg(bad));
        assert!(!ok && stdout.is_empty(), "{bad:?} was accepted: {stdout}");
    }
}

#[test]
fn suite_time_reads_wall_and_longest_test_from_nextest_junit() {
    let junit = support::repo().join("tests/data/e2e-junit.xml");
    let (ok, stdout, stderr) = run(sh("ci/suite-time.sh").arg(&junit));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "e2e: wall 758 s, longest test 536 s (live_grading_of_the_reference_earns_the_live_points): 1.41x (goal <= 1.25x)\n"
    );
    let (ok, _, stderr) = run(sh("ci/suite-time.sh").arg("/nonexistent/junit.xml"));
    assert!(!ok && stderr.contains("no JUnit report"), "{stderr}");
}

/// `(level, properties, message)` of a workflow command line.
fn parse_command(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("::")?;
    let (head, message) = rest.split_once("::")?;
    let (level, properties) = head.split_once(' ').unwrap_or((head, ""));
    Some((level, properties, message))
}

#[test]
fn the_grading_script_over_three_fixture_submissions_writes_everything() {
    support::require_tools();
    let scratch = tempfile::tempdir().unwrap();
    let class = scratch.path().join("class");
    let (ok, _, stderr) = run(sh("ci/class-fixture.sh").args([
        class.to_str().unwrap(),
        "1",
        "reference",
        "scripts-shellcheck-error",
        "hpa-cpu-missing",
    ]));
    assert!(ok, "{stderr}");
    let out = scratch.path().join("out");
    let summary_file = scratch.path().join("step-summary.md");
    let outputs_file = scratch.path().join("outputs");
    let submissions: Vec<PathBuf> = ["reference", "scripts-shellcheck-error", "hpa-cpu-missing"]
        .iter()
        .map(|n| class.join(n))
        .collect();
    let (ok, stdout, stderr) = run(sh("ci/grade-submission.sh")
        .args(&submissions)
        .env("GRADER", env!("CARGO_BIN_EXE_autoscale-conformance"))
        .env("OFFLINE", "1")
        .env("GRADE_OUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_OUTPUT", &outputs_file)
        .env("PLOT_TIMELINES", support::repo().join("fixtures/timelines")));
    assert!(ok, "{stdout}\n{stderr}");
    // The folder also holds a probe's custom-metric record: skipped, said, not fatal.
    assert!(
        stderr.contains("skipped") && stderr.contains("hpa-custom-custom-metric.json"),
        "{stderr}"
    );

    // Annotations: every line of the step's output is a well-formed workflow command.
    let commands: Vec<(&str, &str, &str)> = stdout.lines().filter_map(parse_command).collect();
    assert_eq!(commands.len(), stdout.lines().count(), "{stdout}");
    for (level, properties, message) in &commands {
        assert!(["error", "warning", "notice"].contains(level), "{level}");
        assert!(!message.contains('\n') && !properties.contains("::"));
        for property in properties.split(',').filter(|p| !p.is_empty()) {
            let (key, _) = property.split_once('=').expect("key=value");
            assert!(
                ["file", "line", "col", "title"].contains(&key),
                "{property}"
            );
        }
    }
    let errors: Vec<&(&str, &str, &str)> = commands.iter().filter(|c| c.0 == "error").collect();
    assert!(
        errors.iter().any(|(_, p, m)| p.starts_with("file=scripts/")
            && p.contains(",line=")
            && m.contains("SC")),
        "no shellcheck annotation on the script's line:\n{stdout}"
    );
    assert!(
        errors
            .iter()
            .any(|(_, p, _)| p.contains("title=hpa.cpu-missing")),
        "no hpa.cpu-missing annotation:\n{stdout}"
    );
    // Paths are relative to the submission's root, never the runner's.
    assert!(
        !stdout.contains(scratch.path().to_str().unwrap()),
        "{stdout}"
    );

    // The step summary: the class table, each submission's report, one chart per
    // timeline's scale target (one each in the two fixture timelines).
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        summary.starts_with("## Class: 3 submission(s), 3 graded"),
        "{summary}"
    );
    assert_eq!(
        summary.matches("## Autoscaling exercise: ").count(),
        3,
        "{summary}"
    );
    assert_eq!(
        summary.matches("```mermaid\nxychart-beta\n").count(),
        2,
        "{summary}"
    );
    let class_rows = summary
        .lines()
        .skip_while(|l| !l.starts_with("| Student"))
        .take_while(|l| l.starts_with('|'))
        .count();
    assert_eq!(class_rows, 2 + 3, "{summary}");

    // The SVGs: one per chart, whole documents.
    let plots: Vec<PathBuf> = std::fs::read_dir(out.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(plots.len(), 2, "{plots:?}");
    for plot in &plots {
        let svg = std::fs::read_to_string(plot).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            plot.display()
        );
        assert!(svg.contains("<polyline"), "{}: no line", plot.display());
    }

    // The class table in CSV and JSON, and each submission's report folder.
    let csv = std::fs::read_to_string(out.join("class.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.starts_with("student,submission,status,earned,total,"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("class.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let score = |name: &str| {
        rows.iter().find(|r| r["student"] == name).unwrap()["earned"]
            .as_f64()
            .unwrap()
    };
    assert!(score("reference") > score("hpa-cpu-missing"));
    assert!(score("reference") > score("scripts-shellcheck-error"));
    for name in ["reference", "scripts-shellcheck-error", "hpa-cpu-missing"] {
        for file in [
            "report.json",
            "report.txt",
            "junit.xml",
            "summary.md",
            "classroom.json",
            "annotations.txt",
        ] {
            assert!(out.join(name).join(file).is_file(), "{name}/{file} missing");
        }
    }

    // The outputs: score, name and the report between a delimiter line and its end.
    let outputs = std::fs::read_to_string(&outputs_file).unwrap();
    assert!(
        outputs.contains(&format!("score={}\n", json["mean"])),
        "{outputs}"
    );
    assert!(outputs.contains("name=class\n"), "{outputs}");
    let delimiter = outputs
        .lines()
        .find_map(|l| l.strip_prefix("report<<"))
        .expect("a multi-line report output");
    assert!(delimiter.len() > 20);
    assert_eq!(outputs.matches(delimiter).count(), 2, "{outputs}");
}

#[test]
fn the_grading_script_on_one_submission_sets_its_score() {
    support::require_tools();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    let outputs_file = scratch.path().join("outputs");
    let (ok, stdout, stderr) = run(sh("ci/grade-submission.sh")
        .arg(support::reference())
        .env("GRADER", env!("CARGO_BIN_EXE_autoscale-conformance"))
        .env("OFFLINE", "1")
        .env("GRADE_OUT", &out)
        .env("GITHUB_STEP_SUMMARY", scratch.path().join("summary.md"))
        .env("GITHUB_OUTPUT", &outputs_file));
    assert!(ok, "{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let outputs = std::fs::read_to_string(&outputs_file).unwrap();
    assert!(
        outputs.starts_with(&format!(
            "score={}\nname=reference\nreport<<",
            report["score"]["earned"]
        )),
        "{outputs}"
    );
    // The reference loses no point: no error annotation.
    assert!(
        !stdout.lines().any(|l| l.starts_with("::error")),
        "{stdout}"
    );
    assert!(Path::new(&out.join("summary.md")).is_file());
}

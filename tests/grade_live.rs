//! The grading path, live: `grade` on a whole submission runs every probe of the
//! suite with the submission's own windows (the reference's 300 s scale-down
//! stabilization included) and folds the verdicts into the rubric. This is the main
//! job's run against `fixtures/submissions/reference`; its report (every format) and
//! timelines are written to `<target>/grade/<submission>/`.

mod support;

use harness::checks::Tools;
use harness::grade::{GradeOptions, LiveOptions};
use harness::report::{ItemResult, Report};
use harness::verdict::Outcome;
use std::path::{Path, PathBuf};

fn out_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo().join("target"));
    target.join("grade").join(name)
}

/// Grades `dir` live and writes the report where the main job's users look for it.
async fn grade_live(dir: &Path, name: &str, only: &[&str]) -> Report {
    let out = out_dir(name);
    // This run's report and timelines only: an earlier run's would be mistaken for them.
    let _ = std::fs::remove_dir_all(&out);
    let options = GradeOptions {
        tools: Tools::discover(),
        live: Some(LiveOptions {
            timelines: out.join("timelines"),
            only: only
                .iter()
                .map(|c| harness::grade::live_criterion(c).unwrap())
                .collect(),
        }),
        deadline: harness::grade::DEFAULT_DEADLINE,
    };
    // Boxed: the whole grading future is large for a test thread's stack.
    let report = Box::pin(harness::grade::grade(dir, &options))
        .await
        .unwrap_or_else(|e| panic!("grading {}: {e}", dir.display()));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.txt"), report.to_text()).unwrap();
    std::fs::write(out.join("report.json"), report.to_json().unwrap()).unwrap();
    std::fs::write(out.join("summary.md"), report.to_markdown()).unwrap();
    std::fs::write(out.join("junit.xml"), report.to_junit().unwrap()).unwrap();
    eprintln!("{}", report.to_text());
    eprintln!("report written to {}", out.display());
    report
}

fn live_item<'a>(report: &'a Report, criterion: &str) -> &'a ItemResult {
    report
        .lines
        .iter()
        .flat_map(|l| &l.items)
        .find(|i| i.kind == "live" && i.id == criterion)
        .unwrap_or_else(|| panic!("no live item {criterion} in the report"))
}

#[tokio::test]
async fn live_grade_reference_earns_every_point_the_suite_can_judge() {
    let report = grade_live(&support::reference(), "reference", &[]).await;
    assert_eq!(report.mode, "live");
    for criterion in harness::grade::probed() {
        let criterion = criterion.as_str();
        let item = live_item(&report, criterion);
        assert_eq!(item.outcome, Outcome::Pass, "{criterion}: {}", item.message);
        assert!(
            item.evidence
                .iter()
                .any(|e| matches!(e, harness::verdict::Evidence::TimelineFile { .. }))
                || !matches!(criterion, "hpa-cpu" | "hpa-scale-down"),
            "{criterion}: no timeline file in the evidence"
        );
    }
    // What is not probed says so; nothing is lost and nothing is an environment error.
    for item in report.lines.iter().flat_map(|l| &l.items) {
        if item.kind == "live" && !harness::grade::probed().any(|c| c.as_str() == item.id) {
            assert_eq!(item.outcome, Outcome::NotRun, "{}", item.id);
            assert!(item.message.contains("no live probe"), "{}", item.message);
        }
    }
    if support::tools_present() {
        assert_eq!(report.score.lost, 0.0, "{}", report.to_text());
    }
    assert_eq!(report.score.environment_errors, 0.0, "{}", report.to_text());
    assert!(
        (report.score.earned + report.score.not_run + report.score.lost - report.score.total).abs()
            < 1e-9
    );
}

/// A sidecar without resources in a namespace whose quota requires them (its LimitRange
/// gives no CPU defaults): the quota refuses every pod of the target, so the HPA never
/// computes a utilization and both HPA criteria are lost, with the quota's own refusal
/// (naming the sidecar) as evidence; the criteria that do not depend on it still pass.
/// Only those criteria's probes run (`grade --only`): the others are the reference's,
/// already graded in full above, and would add a quarter of an hour.
#[tokio::test]
async fn live_grade_broken_sidecar_without_requests_loses_the_hpa_points_with_evidence() {
    let variant = support::repo().join("fixtures/submissions/broken/hpa-requests-missing-sidecar");
    let workdir = tempfile::tempdir().unwrap();
    let submission = workdir.path().join("submission");
    support::materialise_overlay(&variant, &[], &submission);
    let judged = ["hpa-cpu", "hpa-scale-down", "metrics-server", "gpu-pool"];
    let report = grade_live(&submission, "broken-hpa-requests-missing-sidecar", &judged).await;
    for criterion in ["hpa-cpu", "hpa-scale-down"] {
        let item = live_item(&report, criterion);
        assert_eq!(item.outcome, Outcome::Fail, "{criterion}: {}", item.message);
        assert!(item.earned == 0.0);
    }
    let hpa = live_item(&report, "hpa-cpu");
    assert!(
        hpa.message.contains("must specify")
            && hpa.message.contains("log-shipper")
            && hpa.message.contains("ml-platform-quota"),
        "the message gives the quota's own refusal of the sidecar: {}",
        hpa.message
    );
    let text = report.to_text();
    assert!(
        text.contains(&format!("-{} hpa-cpu [fail]", hpa.points)),
        "the report shows the lost live points:\n{text}"
    );
    for criterion in ["metrics-server", "gpu-pool"] {
        let item = live_item(&report, criterion);
        assert_eq!(item.outcome, Outcome::Pass, "{criterion}: {}", item.message);
    }
    let skipped = live_item(&report, "hpa-custom");
    assert_eq!(skipped.outcome, Outcome::NotRun, "{}", skipped.message);
    assert!(
        skipped.message.contains("not selected"),
        "{}",
        skipped.message
    );
}

/// Interrupted (SIGTERM, as a cancelled CI job is stopped), live grading stops its
/// probes, deletes every namespace it made, and exits with 143 without a report.
#[tokio::test]
async fn live_grade_interrupted_by_sigterm_leaves_no_namespace_behind() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, ListParams};
    use std::time::{Duration, Instant};

    let cluster = harness::cluster::Cluster::connect()
        .await
        .unwrap_or_else(|e| panic!("environment error (verdict: error, not fail): {e}"));
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let out = tempfile::tempdir().unwrap();
    let mut grader = tokio::process::Command::new(env!("CARGO_BIN_EXE_autoscale-conformance"))
        .args(["grade", "--quiet", "--out"])
        .arg(out.path())
        .arg(support::reference())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Its namespaces are `ac-grade-<criterion>-<pid in hex>...`.
    let pid = grader.id().unwrap();
    let marker = format!("-{pid:x}");
    let suite = format!("{}=true", harness::cluster::SUITE_LABEL);
    // Ours that are not being deleted.
    let ours = || async {
        namespaces
            .list(&ListParams::default().labels(&suite))
            .await
            .map(|list| {
                list.items
                    .into_iter()
                    .filter(|n| n.metadata.deletion_timestamp.is_none())
                    .filter_map(|n| n.metadata.name)
                    .filter(|n| n.starts_with("ac-grade-") && n.contains(&marker))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let started = Instant::now();
    let made = loop {
        let found = ours().await;
        if !found.is_empty() {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the grader made no namespace within 120 s"
        );
        assert!(
            grader.try_wait().unwrap().is_none(),
            "the grader ended before making a namespace"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let the probes get going (objects applied, pods starting) before the signal.
    tokio::time::sleep(Duration::from_secs(5)).await;
    nix_kill(pid, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(300), grader.wait())
        .await
        .expect("the grader did not exit within 300 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        !out.path().join("report.json").exists(),
        "an interrupted grading wrote a report"
    );
    let left = ours().await;
    assert!(
        left.is_empty(),
        "made {made:?}; not deleted when the grader exited: {left:?}"
    );
}

/// Sends SIGNAL to `pid` with the system's `kill` (no signal crate for one call).
fn nix_kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}: {status:?}");
}

//! Criterion `load-testing`, live: the submission's own test script runs inside the
//! cluster (a Job under a ServiceAccount granted its namespace only, never on the
//! host), and an autoscaler, not `kubectl scale`, raises the replicas while it runs
//! because of the load it generates. Each broken fixture fails for its own reason.

mod live;

use harness::cluster::TestNamespace;
use harness::cluster::script_job::{self, ScriptEnd, ScriptJob};
use harness::criteria::load_testing::LoadTesting;
use harness::verdict::Outcome;
use live::{
    assert_broken_fixture_verdict, assert_timeline_saved, load_fixture, namespace, print_values,
    run_probe_once, show,
};
use rstest::rstest;
use std::time::{Duration, Instant};

fn print_run(verdict: &harness::verdict::Verdict) {
    show(verdict);
    print_values(verdict, "load-testing", |_| true);
}

#[rstest]
#[tokio::test]
async fn live_load_testing_fast_fixture_script_makes_the_hpa_scale_up(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture("load_testing/fast");
    let verdict = run_probe_once(&LoadTesting::GRADING, &mut namespace, &submission).await;
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    print_run(&verdict);
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    assert!(
        verdict.message.contains("by the autoscaler"),
        "{}",
        verdict.message
    );
    let timeline = assert_timeline_saved(&verdict);
    assert!(timeline.marker("script-start").is_some() && timeline.marker("script-end").is_some());
}

#[rstest]
#[tokio::test]
async fn live_load_testing_broken_script_that_scales_by_hand_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &LoadTesting::GRADING,
        namespace,
        "load_testing/broken-scales-by-hand",
        print_run,
    )
    .await;
}

#[rstest]
#[tokio::test]
async fn live_load_testing_broken_load_that_misses_the_service_fails(
    #[future(awt)] namespace: TestNamespace,
) {
    assert_broken_fixture_verdict(
        &LoadTesting::GRADING,
        namespace,
        "load_testing/broken-load-misses-service",
        print_run,
    )
    .await;
}

/// The grader's bound is ten minutes; this test holds the script to one, which it
/// outlives all the same.
#[rstest]
#[tokio::test]
async fn live_load_testing_broken_script_that_hangs_is_stopped_at_its_bound(
    #[future(awt)] namespace: TestNamespace,
) {
    let short = LoadTesting {
        bound: Duration::from_secs(60),
    };
    assert_broken_fixture_verdict(
        &short,
        namespace,
        "load_testing/broken-hangs-past-its-bound",
        print_run,
    )
    .await;
}

/// What a student script can do with its ServiceAccount: everything in its namespace,
/// nothing outside it (no other namespace, not even the runner's own, nothing
/// cluster-scoped), as the API server itself enforces. The script checks each and exits
/// 0 only if all hold.
#[rstest]
#[tokio::test]
async fn live_load_testing_script_runner_cannot_read_or_write_outside_its_namespace(
    #[future(awt)] namespace: TestNamespace,
) {
    const SCRIPT: &str = r#"#!/usr/bin/env bash
set -u
bad=0
refused() { if "$@" >/dev/null 2>&1; then echo "ALLOWED: $*"; bad=1; else echo "refused: $*"; fi; }
allowed() { if "$@" >/dev/null 2>&1; then echo "allowed: $*"; else echo "REFUSED: $*"; bad=1; fi; }
allowed kubectl create configmap inside
allowed kubectl get configmap inside -o name
allowed kubectl get pods
refused kubectl get pods -n kube-system
refused kubectl get configmaps -n default
refused kubectl create configmap outside -n default
refused kubectl get nodes
refused kubectl get namespaces
refused kubectl create namespace escaped
refused kubectl create clusterrolebinding escaped --clusterrole=cluster-admin --serviceaccount="$NAMESPACE:autoscale-conformance-sandbox-script"
refused kubectl create rolebinding escaped --clusterrole=admin --serviceaccount="$NAMESPACE:autoscale-conformance-sandbox-script"
refused kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes
refused kubectl get pods -n "$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
echo "user: $(id -u), host root: $(test -w / && echo writable || echo read-only)"
exit "$bad"
"#;
    let job = ScriptJob {
        entry: "scripts/sandbox.sh".into(),
        files: vec![("scripts/sandbox.sh".into(), SCRIPT.into())],
        env: Vec::new(),
        bound: Duration::from_secs(120),
    };
    let runner = namespace
        .load_namespace()
        .await
        .expect("the runner's namespace");
    let run = script_job::run(&namespace, &runner, &job, Duration::from_secs(120), || {})
        .await
        .expect("the script runs");
    eprintln!("{}", run.output);
    assert_eq!(run.end, ScriptEnd::Exited(0), "{}", run.output);
    for line in [
        "allowed: kubectl create configmap inside",
        "refused: kubectl get pods -n kube-system",
        "refused: kubectl create configmap outside -n default",
        "refused: kubectl get nodes",
        "refused: kubectl create clusterrolebinding escaped",
        "user: 65532",
    ] {
        assert!(
            run.output.contains(line),
            "expected {line:?} in:\n{}",
            run.output
        );
    }
}

//! Faults of the environment in the middle of a live grade: the verdict is still right,
//! or "error" naming the fault, never a "fail" blamed on the submission. Each test breaks
//! a component every other test needs, so they run in their own nextest profile,
//! `e2e-alone`, after the live suite (`ci/steps.sh e2e`), one at a time, on the
//! Docker-free local cluster (the controller-manager and the API server are its host
//! processes). Each puts back what it broke, even when it fails.

mod support;

use harness::checks::Tools;
use harness::cluster::{Cluster, SUITE_LABEL};
use harness::grade::{DEFAULT_DEADLINE, GradeOptions, LiveOptions};
use harness::report::{ItemResult, Report};
use harness::verdict::Outcome;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the local cluster keeps its components' process IDs (`ci/localcluster/cluster.sh`).
const PIDS: &str = "/run/autoscale-conformance/pids";

async fn cluster() -> Cluster {
    Cluster::connect()
        .await
        .unwrap_or_else(|e| panic!("environment error (verdict: error, not fail): {e}"))
}

/// Grades the reference live, only `criterion`'s probe, and calls `fault` once the
/// probe's namespace exists; returns the criterion's report item.
async fn grade_with_fault<F: std::future::Future<Output = ()>>(
    cluster: &Cluster,
    criterion: &str,
    fault: impl FnOnce() -> F,
) -> ItemResult {
    let out = tempfile::tempdir().unwrap();
    let options = GradeOptions {
        tools: Tools::discover(),
        live: Some(LiveOptions {
            timelines: out.path().join("timelines"),
            only: vec![harness::grade::live_criterion(criterion).unwrap()],
        }),
        deadline: DEFAULT_DEADLINE,
    };
    let reference = support::reference();
    let grading = tokio::spawn(async move {
        Box::pin(harness::grade::grade(&reference, &options))
            .await
            .map_err(|e| e.to_string())
    });
    wait_for_probe_namespace(cluster, criterion).await;
    fault().await;
    let report: Report = tokio::time::timeout(Duration::from_secs(900), grading)
        .await
        .expect("the grade did not end within 15 minutes of the fault")
        .unwrap()
        .unwrap_or_else(|e| panic!("grading the reference: {e}"));
    eprintln!("{}", report.to_text());
    report
        .lines
        .into_iter()
        .flat_map(|l| l.items)
        .find(|i| i.kind == "live" && i.id == criterion)
        .unwrap_or_else(|| panic!("no live item {criterion} in the report"))
}

/// Waits until this process's grade has made `ac-grade-<criterion>-<pid>…`.
async fn wait_for_probe_namespace(cluster: &Cluster, criterion: &str) {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let prefix = format!("ac-grade-{criterion}-{:x}", std::process::id());
    let started = Instant::now();
    loop {
        let listed = namespaces
            .list(&ListParams::default().labels(&format!("{SUITE_LABEL}=true")))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        if listed
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .any(|n| n.starts_with(&prefix))
        {
            // Objects applied, pods starting: the probe is under way.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the grade made no namespace {prefix}… within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The item is not a "fail": it passed, or it is an "error" whose message names `fault`.
fn assert_not_blamed_on_the_submission(item: &ItemResult, fault: &[&str]) {
    match item.outcome {
        Outcome::Pass => {}
        Outcome::Error => assert!(
            fault.iter().any(|f| item.message.contains(f)),
            "an error that does not name the fault ({fault:?}): {}",
            item.message
        ),
        other => panic!(
            "{other:?}: the fault was blamed on the submission: {}",
            item.message
        ),
    }
}

/// A local-cluster component's process group, from its pid file.
fn component(name: &str) -> i32 {
    let path = PathBuf::from(PIDS).join(format!("{name}.pid"));
    let pid = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this fault test needs the Docker-free local cluster (ci/cluster up)",
            path.display()
        )
    });
    pid.trim().parse().unwrap()
}

/// Sends `signal` to a process group.
fn signal_group(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pid}"))
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} -- -{pid}: {status:?}");
}

/// Resumes a stopped component when dropped: the cluster is whole again even if the
/// test fails.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", "--", &format!("-{}", self.0)])
            .status();
    }
}

/// metrics-server's replicas, put back when dropped.
struct MetricsServerReplicas {
    config: kube::Config,
    replicas: i32,
}

impl MetricsServerReplicas {
    async fn scale(deployments: &Api<Deployment>, replicas: i32) {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        deployments
            .patch(
                "metrics-server",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
}

impl Drop for MetricsServerReplicas {
    fn drop(&mut self) {
        // Its own runtime on its own thread: Drop may run inside or outside one.
        let (config, replicas) = (self.config.clone(), self.replicas);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let client = kube::Client::try_from(config).unwrap();
                    let deployments: Api<Deployment> = Api::namespaced(client, "kube-system");
                    MetricsServerReplicas::scale(&deployments, replicas).await;
                    let _ = harness::cluster::wait::wait_for(
                        &deployments,
                        "metrics-server",
                        "metrics-server Available again",
                        Duration::from_secs(120),
                        |d: Option<&Deployment>| {
                            d.is_some_and(harness::cluster::wait::deployment_available)
                        },
                        |d| format!("{:?}", d.and_then(|d| d.status.clone())),
                    )
                    .await;
                    // The aggregator notices the endpoints a little later: the next test's
                    // preflight needs the APIService itself Available.
                    let client = deployments.into_client();
                    let _ = harness::cluster::poll_until(
                        Duration::from_secs(120),
                        Duration::from_secs(2),
                        || async {
                            harness::cluster::wait::apiservice_available(
                                &client,
                                "v1beta1.metrics.k8s.io",
                            )
                            .await
                            .then_some(())
                        },
                    )
                    .await;
                });
        })
        .join();
    }
}

/// metrics-server scaled to zero while the metrics-server probe waits for a fresh pod's
/// metrics: the metrics API's APIService goes unavailable, and the probe's failure to
/// see metrics is the environment's; not probed again while it lasts.
#[tokio::test]
async fn live_fault_metrics_api_gone_mid_probe_is_an_error_not_a_fail() {
    let cluster = cluster().await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "kube-system");
    let replicas = deployments
        .get("metrics-server")
        .await
        .unwrap()
        .spec
        .replicas
        .unwrap_or(1);
    let _restore = MetricsServerReplicas {
        config: cluster.config.clone(),
        replicas,
    };
    let item = grade_with_fault(&cluster, "metrics-server", || async {
        MetricsServerReplicas::scale(&deployments, 0).await;
    })
    .await;
    assert_not_blamed_on_the_submission(&item, &["metrics.k8s.io", "metrics-server"]);
    // The metrics API stays gone until the test ends: the grade does not probe again
    // into an outage that lasts, it says so.
    if item.outcome == Outcome::Error {
        let notes = harness::report::evidence_lines(&item.evidence).join("\n");
        assert!(
            notes.contains("not probed again: the environment was still down"),
            "probed again into a lasting outage, or did not say why not:\n{notes}"
        );
    }
}

/// kube-controller-manager stopped (SIGSTOP) before the GPU pool's probe applies its
/// Deployments: no ReplicaSet makes their pods, so the probe cannot pass, and its failure
/// is the environment's. (Stopped once the probe is under way, the pods already exist
/// and the probe passes: that says nothing.)
#[tokio::test]
async fn live_fault_controller_manager_stopped_is_an_error_not_a_fail() {
    let cluster = cluster().await;
    let pid = component("kube-controller-manager");
    let _resume = Resume(pid);
    signal_group(pid, "STOP");
    let item = grade_with_fault(&cluster, "gpu-pool", || async {}).await;
    assert_eq!(item.outcome, Outcome::Error, "{}", item.message);
    assert_not_blamed_on_the_submission(&item, &["kube-controller-manager"]);
}

/// The API server stopped for 20 s in the middle of the metrics-server probe, then
/// resumed: the probe's watches reconnect, and the verdict is the submission's (a pass)
/// or an error naming the API server.
#[tokio::test]
async fn live_fault_api_server_paused_mid_probe_is_survived_or_named() {
    let cluster = cluster().await;
    let pid = component("kube-apiserver");
    let resume = Resume(pid);
    let item = grade_with_fault(&cluster, "metrics-server", || async move {
        signal_group(pid, "STOP");
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(resume);
    })
    .await;
    assert_not_blamed_on_the_submission(&item, &["the API server"]);
}

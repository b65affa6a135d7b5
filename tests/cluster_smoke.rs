//! Live smoke test of a cluster (issue 3): the node is Ready, the inference server
//! answers through its Service by DNS name from another pod, metrics-server serves
//! its PodMetrics, and the GPU pool takes only the pods that tolerate and select it.

mod live;

use futures::StreamExt;
use harness::cluster::{GPU_POOL_LABEL, TestNamespace, deployment_available, wait_for};
use harness::load::{LoadJob, LoadSpec, describe_pod};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use live::namespace;
use rstest::rstest;
use serde_json::json;
use std::time::{Duration, Instant};

const SERVER: &str = "smoke-inference";

fn inference_objects() -> Vec<serde_json::Value> {
    vec![
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": SERVER, "labels": {"app": SERVER}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": SERVER}},
                "template": {
                    "metadata": {"labels": {"app": SERVER}},
                    "spec": {"containers": [{
                        "name": "server",
                        "image": harness::cluster::INFERENCE_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "CPU_MS", "value": "5"}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2}
                    }]}
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVER},
            "spec": {"selector": {"app": SERVER}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }),
    ]
}

#[rstest]
#[tokio::test]
async fn live_smoke_inference_server_answers_by_dns_and_has_pod_metrics(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let started = Instant::now();
    assert!(
        !namespace.cluster.facts.real_nodes.is_empty(),
        "no Ready node"
    );
    namespace
        .apply(&inference_objects())
        .await
        .expect("apply inference server");
    let deployments: Api<Deployment> = namespace.api();
    wait_for(
        &deployments,
        SERVER,
        "the inference server to become Available",
        Duration::from_secs(120),
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                deployment_available(d)
                    && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    .expect("inference server Available");
    let available_after = started.elapsed();

    // The Service answers once its EndpointSlice lists the ready pod (kube-proxy programs
    // the rules from it); before that a connection is refused.
    let slices: Api<EndpointSlice> = namespace.api();
    let selector = format!("kubernetes.io/service-name={SERVER}");
    let endpoint_ready = async {
        let mut stream = std::pin::pin!(
            watcher(slices, watcher::Config::default().labels(&selector))
                .default_backoff()
                .applied_objects()
        );
        while let Some(item) = stream.next().await {
            if let Ok(slice) = item
                && slice
                    .endpoints
                    .iter()
                    .flatten()
                    .any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), endpoint_ready)
        .await
        .expect("a ready endpoint for the Service within 60 s");
    // From another pod, through the Service's DNS name: a short, bounded load run.
    let spec = LoadSpec {
        url: LoadSpec::service_url(SERVER, &namespace.name, 80, "/predict"),
        rate_rps: 5.0,
        duration: Duration::from_secs(5),
        concurrency: 4,
    };
    let load = LoadJob::start(&namespace, "smoke-load", spec)
        .await
        .expect("start loadgen");
    let summary = load.finish().await.expect("loadgen summary");
    eprintln!("loadgen summary: {summary:?}");
    assert!(
        summary.sent >= 10,
        "expected the loadgen to send about 25 requests, sent {}",
        summary.sent
    );
    // kube-proxy programs the Service's rules asynchronously after the endpoint is
    // ready; with the whole suite running on two cores the first request can still
    // meet no rule (connection refused). Any other error, or more than one in ten, fails.
    let only_connect_errors = summary.errors.keys().all(|kind| kind == "connect");
    assert!(
        only_connect_errors && summary.ok * 10 >= summary.sent * 9,
        "expected (nearly) every request to answer 2xx through the Service; ok {} of {}, errors: {:?}",
        summary.ok,
        summary.sent,
        summary.errors
    );

    // PodMetrics for the fresh pod within 60 s of it being Available.
    let pods: Api<Pod> = namespace.api();
    let pod = pods
        .list(&kube::api::ListParams::default().labels(&format!("app={SERVER}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .next()
        .expect("an inference pod");
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let metrics_resource = namespace.cluster.metrics_api("PodMetrics", "pods");
    let pod_metrics: Api<DynamicObject> =
        Api::namespaced_with(namespace.client(), &namespace.name, &metrics_resource);
    let metrics =
        harness::probe::poll_until(Duration::from_secs(60), Duration::from_secs(2), || async {
            pod_metrics.get_opt(&pod_name).await.ok().flatten()
        })
        .await;
    let metrics_after = started.elapsed();
    let metrics = metrics.unwrap_or_else(|| panic!("no PodMetrics for {pod_name} within 60 s"));
    eprintln!(
        "available after {:.1}s, PodMetrics after {:.1}s: {}",
        available_after.as_secs_f64(),
        metrics_after.as_secs_f64(),
        metrics
            .data
            .get("containers")
            .map(|c| c.to_string())
            .unwrap_or_default()
    );
}

fn probe_pod(name: &str, tolerate: bool, select_pool: bool) -> serde_json::Value {
    let mut spec = json!({
        "containers": [{
            "name": "main",
            "image": harness::cluster::INFERENCE_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
        }],
        "terminationGracePeriodSeconds": 1
    });
    if tolerate {
        spec["tolerations"] = json!([{"key": harness::cluster::GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]);
    }
    if select_pool {
        spec["nodeSelector"] = json!({GPU_POOL_LABEL.0: GPU_POOL_LABEL.1});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[rstest]
#[tokio::test]
async fn live_smoke_gpu_pool_takes_only_pods_that_tolerate_and_select_it(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    assert!(
        !namespace.cluster.facts.gpu_nodes.is_empty(),
        "no Ready node labelled {}={}",
        GPU_POOL_LABEL.0,
        GPU_POOL_LABEL.1
    );
    namespace
        .apply(&[
            probe_pod("gpu-bound", true, true),
            probe_pod("plain", false, false),
            probe_pod("no-toleration", false, true),
        ])
        .await
        .expect("apply probe pods");
    let pods: Api<Pod> = namespace.api();
    let nodes: Api<Node> = Api::all(namespace.client());
    let bound = |pod: Option<&Pod>| {
        pod.and_then(|p| p.spec.as_ref())
            .is_some_and(|s| s.node_name.is_some())
    };
    let budget = Duration::from_secs(60);
    let gpu_bound = wait_for(
        &pods,
        "gpu-bound",
        "the tolerating pod to be bound",
        budget,
        bound,
        describe_pod,
    )
    .await
    .expect("bound");
    let plain = wait_for(
        &pods,
        "plain",
        "the plain pod to be bound",
        budget,
        bound,
        describe_pod,
    )
    .await
    .expect("bound");
    let node_of = |pod: Option<Pod>| {
        pod.and_then(|p| p.spec)
            .and_then(|s| s.node_name)
            .unwrap_or_default()
    };
    let in_pool = |node: Node| {
        node.metadata
            .labels
            .unwrap_or_default()
            .get(GPU_POOL_LABEL.0)
            .map(String::as_str)
            == Some(GPU_POOL_LABEL.1)
    };
    let gpu_node = node_of(gpu_bound);
    assert!(
        in_pool(nodes.get(&gpu_node).await.expect("node")),
        "the tolerating, selecting pod went to {gpu_node}, not the GPU pool"
    );
    let plain_node = node_of(plain);
    assert!(
        !in_pool(nodes.get(&plain_node).await.expect("node")),
        "a pod without toleration landed on GPU node {plain_node}"
    );
    // Selecting the pool without tolerating its taint: unschedulable, never bound.
    let unschedulable = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    };
    let pending = wait_for(
        &pods,
        "no-toleration",
        "the scheduler to refuse the pod",
        budget,
        unschedulable,
        describe_pod,
    )
    .await
    .expect("Unschedulable");
    assert!(
        pending
            .and_then(|p| p.spec)
            .and_then(|s| s.node_name)
            .is_none()
    );
    eprintln!(
        "GPU-pool pod on {gpu_node}, plain pod on {plain_node}, pod without toleration Unschedulable"
    );
}

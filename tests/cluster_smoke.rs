//! Live smoke test of a cluster (issue 3): the node is Ready, the inference server
//! answers through its Service by DNS name from another pod, metrics-server serves
//! its PodMetrics, and the GPU pool takes only the pods that tolerate and select it.
//! Each test records a timeline of its namespace (saved as JSON, also on failure).
//! The monitoring stack (issue 10): Prometheus scrapes its annotation jobs and
//! kube-state-metrics, and prometheus-adapter serves the custom metrics API.

mod live;

use futures::StreamExt;
use harness::cluster::load_generator::{LoadGenerator, LoadSpec, LoadSummary};
use harness::cluster::{
    GPU_POOL_LABEL, TestNamespace, deployment_available, describe_pod, wait_for,
};
use harness::observe::{Placement, Recorder, default_timelines_dir, placement, placement_in};
use harness::timeline::{Observation, Timeline};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use live::{cluster, namespace};
use rstest::rstest;
use serde_json::json;
use std::time::Duration;

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

/// How many timeline lines a failure message shows.
const EXCERPT_LINES: usize = 12;

/// Ends a smoke test: the timeline is saved whatever happened; a failure names what
/// was expected and seen, and points at the saved timeline and its excerpt.
fn conclude(outcome: Result<String, String>, timeline: &Timeline) {
    let path = timeline
        .saved_to
        .clone()
        .unwrap_or_else(|| "<timeline not saved>".into());
    match outcome {
        Ok(summary) => {
            eprintln!("{summary}\ntimeline: {path}");
            assert!(
                std::path::Path::new(&path).is_file(),
                "expected the timeline saved as JSON; no file at {path}"
            );
        }
        Err(message) => {
            let excerpt: Vec<String> = timeline
                .excerpt(|o| match o {
                    Observation::Marker { .. } | Observation::Pod { .. } => true,
                    Observation::Event { type_, .. } => type_ == "Warning",
                    _ => false,
                })
                .iter()
                .map(|p| format!("  t={:.1} s {}", p.seconds, p.what))
                .collect();
            // The last lines lead to the failure; the file has the rest.
            let shown = excerpt.len().saturating_sub(EXCERPT_LINES);
            panic!(
                "{message}\ntimeline: {path}\nexcerpt ({shown} earlier lines in the file):\n{}",
                excerpt[shown..].join("\n")
            );
        }
    }
}

#[rstest]
#[tokio::test]
async fn live_cluster_smoke_inference_server_answers_by_dns_and_has_pod_metrics(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let recorder = Recorder::start(
        &namespace,
        &format!("cluster-smoke-{}", namespace.name),
        &default_timelines_dir(),
    );
    let outcome = inference_server_answers(&mut namespace, &recorder).await;
    let timeline = recorder.finish();
    conclude(outcome, &timeline);
}

async fn inference_server_answers(
    namespace: &mut TestNamespace,
    recorder: &Recorder,
) -> Result<String, String> {
    if namespace.cluster.facts.real_nodes.is_empty() {
        return Err("expected a Ready node; the cluster has none".into());
    }
    let available_after = server_available(namespace, recorder).await?;
    endpoint_ready(namespace, recorder).await?;
    let summary = load_through_the_service(namespace, recorder).await?;
    let metrics = pod_metrics_after_the_load(namespace, recorder).await?;
    Ok(format!(
        "available at t={available_after:.1} s, {} ok of {} requests through the Service; {metrics}",
        summary.ok, summary.sent,
    ))
}

/// Applies the inference server and waits for it Available; returns when (t).
async fn server_available(
    namespace: &mut TestNamespace,
    recorder: &Recorder,
) -> Result<f64, String> {
    namespace
        .apply(&inference_objects())
        .await
        .map_err(|e| format!("expected the inference server applied; {e}"))?;
    recorder.mark("server-applied");
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
    .map_err(|e| format!("expected the inference server Available within 120 s; {e}"))?;
    Ok(recorder.mark("server-available"))
}

/// The Service answers once its EndpointSlice lists the ready pod (kube-proxy programs
/// the rules from it); before that a connection is refused.
async fn endpoint_ready(namespace: &TestNamespace, recorder: &Recorder) -> Result<(), String> {
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
        .map_err(|_| {
            "expected a ready endpoint for the Service within 60 s; none came".to_string()
        })?;
    recorder.mark("endpoint-ready");
    Ok(())
}

/// From another pod, through the Service's DNS name: a short, bounded load run that
/// (nearly) every request of answers 2xx.
async fn load_through_the_service(
    namespace: &TestNamespace,
    recorder: &Recorder,
) -> Result<LoadSummary, String> {
    let spec = LoadSpec {
        url: LoadSpec::service_url(SERVER, &namespace.name, 80, "/predict"),
        rate_rps: 5.0,
        duration: Duration::from_secs(5),
        concurrency: 4,
    };
    let load = LoadGenerator::start(namespace, "smoke-load", spec)
        .await
        .map_err(|e| format!("expected the load generator to start; {e}"))?;
    recorder.mark("load-start");
    let summary = load
        .finish()
        .await
        .map_err(|e| format!("expected the load generator's summary; {e}"))?;
    recorder.mark(&format!(
        "load-done: {} ok of {} sent, errors {:?}",
        summary.ok, summary.sent, summary.errors
    ));
    if summary.sent < 10 {
        return Err(format!(
            "expected the loadgen to send about 25 requests, sent {}",
            summary.sent
        ));
    }
    // kube-proxy programs the Service's rules asynchronously after the endpoint is
    // ready; with the whole suite running on two cores the first request can still
    // meet no rule (connection refused). Any other error, or more than one in ten, fails.
    let only_connect_errors = summary.errors.keys().all(|kind| kind == "connect");
    if !(only_connect_errors && summary.ok * 10 >= summary.sent * 9) {
        return Err(format!(
            "expected (nearly) every request to answer 2xx through the Service; ok {} of {}, errors: {:?}",
            summary.ok, summary.sent, summary.errors
        ));
    }
    Ok(summary)
}

/// metrics-server serves the pod's PodMetrics within 60 s of being asked after the
/// load (the smoke test's own, looser bound: the `metrics-server` criterion times them
/// from the pod's Running). The timeline says how long after Running they came.
async fn pod_metrics_after_the_load(
    namespace: &TestNamespace,
    recorder: &Recorder,
) -> Result<String, String> {
    let pods: Api<Pod> = namespace.api();
    let pod_name = pods
        .list(&kube::api::ListParams::default().labels(&format!("app={SERVER}")))
        .await
        .map_err(|e| format!("expected to list the inference pods; {e}"))?
        .items
        .into_iter()
        .next()
        .and_then(|p| p.metadata.name)
        .ok_or_else(|| "expected an inference pod; none is listed".to_string())?;
    let metrics_resource = namespace.cluster.metrics_api("PodMetrics", "pods");
    let pod_metrics: Api<DynamicObject> =
        Api::namespaced_with(namespace.client(), &namespace.name, &metrics_resource);
    let asked = recorder.mark("pod-metrics-asked");
    let metrics =
        harness::cluster::poll_until(Duration::from_secs(60), Duration::from_secs(2), || async {
            pod_metrics.get_opt(&pod_name).await.ok().flatten()
        })
        .await;
    let timeline = recorder.snapshot();
    let running = timeline
        .pod_states(&pod_name)
        .iter()
        .find(|s| s.phase == "Running")
        .map(|s| format!("Running at t={:.1} s", s.t))
        .unwrap_or_else(|| "never recorded Running".into());
    let Some(metrics) = metrics else {
        let gave_up = recorder.mark("pod-metrics-gave-up");
        return Err(format!(
            "expected PodMetrics for {pod_name} within 60 s of asking (t={asked:.1} s); none by t={gave_up:.1} s ({running})"
        ));
    };
    let seen = recorder.mark("pod-metrics-seen");
    Ok(format!(
        "PodMetrics of {pod_name} at t={seen:.1} s ({running}, asked at t={asked:.1} s); usage {}",
        metrics
            .data
            .get("containers")
            .map(|c| c.to_string())
            .unwrap_or_default()
    ))
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
async fn live_cluster_smoke_gpu_pool_takes_only_pods_that_tolerate_and_select_it(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let recorder = Recorder::start(
        &namespace,
        &format!("cluster-smoke-{}", namespace.name),
        &default_timelines_dir(),
    );
    let outcome = gpu_pool_takes_only_its_pods(&mut namespace, &recorder).await;
    let timeline = recorder.finish();
    conclude(outcome, &timeline);
}

async fn gpu_pool_takes_only_its_pods(
    namespace: &mut TestNamespace,
    recorder: &Recorder,
) -> Result<String, String> {
    if namespace.cluster.facts.gpu_nodes.is_empty() {
        return Err(format!(
            "expected a Ready node labelled {}={}; there is none",
            GPU_POOL_LABEL.0, GPU_POOL_LABEL.1
        ));
    }
    namespace
        .apply(&[
            probe_pod("gpu-bound", true, true),
            probe_pod("plain", false, false),
            probe_pod("no-toleration", false, true),
        ])
        .await
        .map_err(|e| format!("expected the probe pods applied; {e}"))?;
    recorder.mark("probe-pods-applied");
    bound_where_they_belong(namespace, recorder).await?;
    selecting_without_toleration_is_refused(namespace, recorder).await?;
    placements_recorded(namespace, recorder).await
}

/// The tolerating, selecting pod is bound on the GPU pool; the plain pod off it.
async fn bound_where_they_belong(
    namespace: &TestNamespace,
    recorder: &Recorder,
) -> Result<(), String> {
    let pods: Api<Pod> = namespace.api();
    let nodes: Api<Node> = Api::all(namespace.client());
    let bound = |pod: Option<&Pod>| {
        pod.and_then(|p| p.spec.as_ref())
            .is_some_and(|s| s.node_name.is_some())
    };
    let budget = Duration::from_secs(60);
    let node_of = |pod: Option<Pod>| {
        pod.and_then(|p| p.spec)
            .and_then(|s| s.node_name)
            .unwrap_or_default()
    };
    let gpu_node = wait_for(
        &pods,
        "gpu-bound",
        "the tolerating pod to be bound",
        budget,
        bound,
        describe_pod,
    )
    .await
    .map(node_of)
    .map_err(|e| format!("expected the tolerating, selecting pod bound within 60 s; {e}"))?;
    recorder.mark(&format!("gpu-pod-scheduled: gpu-bound on {gpu_node}"));
    let plain_node = wait_for(
        &pods,
        "plain",
        "the plain pod to be bound",
        budget,
        bound,
        describe_pod,
    )
    .await
    .map(node_of)
    .map_err(|e| format!("expected the plain pod bound within 60 s; {e}"))?;
    recorder.mark(&format!("plain-pod-scheduled: plain on {plain_node}"));
    let in_pool = |node: Node| {
        node.metadata
            .labels
            .unwrap_or_default()
            .get(GPU_POOL_LABEL.0)
            .map(String::as_str)
            == Some(GPU_POOL_LABEL.1)
    };
    let node = |name: String| {
        let nodes = nodes.clone();
        async move {
            nodes
                .get(&name)
                .await
                .map_err(|e| format!("expected to read node {name}; {e}"))
        }
    };
    if !in_pool(node(gpu_node.clone()).await?) {
        return Err(format!(
            "expected the tolerating, selecting pod on the GPU pool; it went to {gpu_node}"
        ));
    }
    if in_pool(node(plain_node.clone()).await?) {
        return Err(format!(
            "expected a pod without toleration off the GPU pool; it landed on GPU node {plain_node}"
        ));
    }
    Ok(())
}

/// Selecting the pool without tolerating its taint: unschedulable, never bound.
async fn selecting_without_toleration_is_refused(
    namespace: &TestNamespace,
    recorder: &Recorder,
) -> Result<(), String> {
    let pods: Api<Pod> = namespace.api();
    let budget = Duration::from_secs(60);
    let unschedulable = |pod: Option<&Pod>| {
        pod.is_some_and(|p| matches!(placement(p), Placement::Unschedulable(_)))
    };
    wait_for(
        &pods,
        "no-toleration",
        "the scheduler to refuse the pod",
        budget,
        unschedulable,
        describe_pod,
    )
    .await
    .map_err(|e| format!("expected the pod without toleration Unschedulable within 60 s; {e}"))?;
    recorder.mark("no-toleration-unschedulable");
    Ok(())
}

/// Judges the placements again from what the recorder's pod watch saw.
async fn placements_recorded(
    namespace: &TestNamespace,
    recorder: &Recorder,
) -> Result<String, String> {
    let _ = recorder
        .caught_up(namespace.cluster.intervals.observation_slack, |t| {
            ["gpu-bound", "plain", "no-toleration"]
                .iter()
                .all(|p| !matches!(placement_in(t, p), None | Some((_, Placement::Waiting))))
        })
        .await;
    let timeline = recorder.snapshot();
    let seen = |pod: &str| match placement_in(&timeline, pod) {
        Some((t, Placement::Bound(node))) => format!("{pod} bound to {node} at t={t:.1} s"),
        Some((t, Placement::Unschedulable(m))) => {
            format!("{pod} Pending, Unschedulable since t={t:.1} s: {m}")
        }
        Some((t, Placement::Waiting)) => format!("{pod} Pending since t={t:.1} s"),
        None => format!("{pod} never recorded"),
    };
    match placement_in(&timeline, "no-toleration") {
        Some((_, Placement::Unschedulable(_))) => {}
        _ => {
            return Err(format!(
                "expected the timeline to show no-toleration Unschedulable; it shows {}",
                seen("no-toleration")
            ));
        }
    }
    Ok(format!(
        "{}; {}; {}",
        seen("gpu-bound"),
        seen("plain"),
        seen("no-toleration")
    ))
}

// ------------------------------------------------------------------ the monitoring stack

/// Prometheus's HTTP API through the API server's service proxy (the chart's Service).
const PROMETHEUS_API: &str =
    "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1";

async fn get_raw(client: &kube::Client, path: &str) -> Result<String, String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| format!("GET {path}: {e}"))?;
    client
        .request_text(request)
        .await
        .map_err(|e| format!("GET {path}: {e}"))
}

/// An instant query's result vector (an empty one when the query matches nothing).
async fn prometheus_query(
    client: &kube::Client,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = get_raw(client, &format!("{PROMETHEUS_API}/query?query={encoded}")).await?;
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("query {query}: {e}: {body}"))?;
    if value["status"] != "success" {
        return Err(format!("query {query}: {body}"));
    }
    Ok(value["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[rstest]
#[tokio::test]
async fn live_cluster_smoke_monitoring_stack_scrapes_annotated_targets_and_serves_custom_metrics(
    #[future(awt)] cluster: harness::cluster::Cluster,
) {
    let client = cluster.client.clone();
    // Scrapes happen every 15 s: a stack brought up moments ago gets a minute.
    let outcome =
        harness::cluster::poll_until(Duration::from_secs(90), Duration::from_secs(5), || {
            let client = client.clone();
            async move { monitoring_stack_serves(&client).await.ok() }
        })
        .await;
    match outcome {
        Some(summary) => eprintln!("{summary}"),
        // One last attempt, for its error message.
        None => panic!(
            "the monitoring stack is not serving: {}",
            monitoring_stack_serves(&client).await.unwrap_err()
        ),
    }
}

async fn monitoring_stack_serves(client: &kube::Client) -> Result<String, String> {
    let mut summary = Vec::new();
    // The chart's annotation jobs and kube-state-metrics (scraped through its annotated
    // Service by kubernetes-service-endpoints), each with a target up.
    for (what, query) in [
        ("kubernetes-pods", r#"up{job="kubernetes-pods"} == 1"#),
        (
            "kubernetes-service-endpoints",
            r#"up{job="kubernetes-service-endpoints"} == 1"#,
        ),
        (
            "kube-state-metrics",
            r#"up{job="kubernetes-service-endpoints",service="kube-state-metrics",namespace="monitoring"} == 1"#,
        ),
    ] {
        let up = prometheus_query(client, query).await?;
        if up.is_empty() {
            let all = prometheus_query(client, "up").await?;
            return Err(format!(
                "expected a target up for {what} ({query}); Prometheus's up series: {}",
                serde_json::Value::Array(all)
            ));
        }
        summary.push(format!("{what}: {} target(s) up", up.len()));
    }
    // kube-state-metrics' own series.
    let series = prometheus_query(
        client,
        r#"count({__name__=~"kube_deployment_.+|kube_horizontalpodautoscaler_.+"})"#,
    )
    .await?;
    let count = series
        .first()
        .and_then(|s| s["value"][1].as_str())
        .unwrap_or("0")
        .to_string();
    if count == "0" {
        return Err("expected kube_deployment_* or kube_horizontalpodautoscaler_* series from kube-state-metrics; none".into());
    }
    summary.push(format!(
        "kube-state-metrics: {count} kube_deployment_/kube_horizontalpodautoscaler_ series"
    ));
    // The custom metrics API (prometheus-adapter) answers its discovery.
    let discovery = get_raw(client, "/apis/custom.metrics.k8s.io/v1beta1").await?;
    let value: serde_json::Value = serde_json::from_str(&discovery)
        .map_err(|e| format!("/apis/custom.metrics.k8s.io/v1beta1: {e}: {discovery}"))?;
    if value["groupVersion"] != "custom.metrics.k8s.io/v1beta1" {
        return Err(format!(
            "expected the custom.metrics.k8s.io/v1beta1 discovery document; got {discovery}"
        ));
    }
    let resources = value["resources"].as_array().map_or(0, Vec::len);
    summary.push(format!(
        "custom.metrics.k8s.io/v1beta1: {resources} resource(s)"
    ));
    Ok(summary.join("\n"))
}

/// The cluster's CPU ledger (harness::cluster::capacity), as every probe uses it: a
/// demand larger than the cluster runs alone (so this test runs alone too, in the
/// `e2e-alone` profile, not among the probes of `e2e`), anything queued behind it waits (and gives
/// up at its own deadline with a message naming who holds what), and a release lets the
/// next one in.
#[rstest]
#[tokio::test]
async fn live_alone_cpu_ledger_queues_what_does_not_fit_and_releases(
    #[future(awt)] namespace: TestNamespace,
) {
    use harness::criteria::demand::CpuDemand;
    use tokio::time::Instant;
    let cluster = &namespace.cluster;
    let everything = cluster
        .reserve_cpu(
            CpuDemand::millis(u32::MAX),
            &namespace.name,
            "smoke: all of it",
            Instant::now() + Duration::from_secs(45 * 60),
        )
        .await
        .expect("the ledger is writable")
        .expect("a demand is reserved");
    eprintln!(
        "held {} after {:.0}s in the queue",
        everything.granted,
        everything.waited.as_secs_f64()
    );
    assert!(
        everything.granted.as_millis() < 64_000,
        "capped at what the cluster could give: {}",
        everything.granted
    );
    let blocked = cluster
        .reserve_cpu(
            CpuDemand::millis(1),
            &format!("{}-second", namespace.name),
            "smoke: a millicore",
            Instant::now() + Duration::from_secs(12),
        )
        .await;
    let message = match blocked {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a millicore was granted while everything was held"),
    };
    assert!(
        message.contains("smoke: all of it holds"),
        "the timeout names the holder: {message}"
    );
    everything.release().await;
    let next = cluster
        .reserve_cpu(
            CpuDemand::millis(1),
            &format!("{}-third", namespace.name),
            "smoke: a millicore after the release",
            Instant::now() + Duration::from_secs(45 * 60),
        )
        .await
        .expect("the ledger is writable")
        .expect("a demand is reserved");
    next.release().await;
}

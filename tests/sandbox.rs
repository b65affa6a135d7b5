//! The grader's sandbox, live: a hostile submission (`fixtures/sandbox/hostile`) tries
//! each escape the apply path closes and is refused with its reasons, leaving nothing
//! behind; the identity a submission is applied as cannot leave its namespace; a
//! PriorityClass is the suite's, never the cluster's default, and removed at cleanup;
//! a namespace in use is never swept as a killed run's, however long its probe queues.
//! What the sandbox lets through still meets the API server's own validation first, as a
//! dry run of every object (`fixtures/sandbox/refused`).
//! Offline too: the fixture's own `.shellcheckrc` cannot switch shellcheck off.

mod live;

use harness::cluster::{ApplyError, TestNamespace};
use harness::criteria::quota_limits::QuotaLimits;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, PostParams};
use live::{assert_expected_verdict, fixture_dir, load_fixture, namespace, run_probe_once};
use rstest::rstest;
use serde_json::{Value, json};

const HOSTILE: &str = "sandbox/hostile";
const REFUSED: &str = "sandbox/refused";

#[derive(serde::Deserialize)]
struct ExpectedRefusals {
    refused: Vec<(String, String)>,
}

fn expected_refusals() -> Vec<(String, String)> {
    let path = fixture_dir(HOSTILE).join("expected.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let expected: ExpectedRefusals =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    expected.refused
}

fn hostile_objects() -> Vec<Value> {
    load_fixture(HOSTILE)
        .objects
        .iter()
        .map(|o| o.value().clone())
        .collect()
}

#[test]
fn the_hostile_fixtures_shellcheckrc_cannot_hide_a_shellcheck_error() {
    let tools = harness::checks::Tools::discover();
    assert!(
        tools.shellcheck.is_some(),
        "shellcheck on PATH (ci/tools.sh installs it)"
    );
    let report = harness::grade::grade_offline(&fixture_dir(HOSTILE), &tools).expect("graded");
    let verdict = report
        .verdicts
        .iter()
        .find(|v| v.id == "scripts.shellcheck")
        .expect("a scripts.shellcheck verdict");
    assert_eq!(
        verdict.outcome,
        harness::verdict::Outcome::Fail,
        "{}",
        verdict.message
    );
    assert!(
        verdict
            .findings
            .iter()
            .any(|f| f.message.starts_with("SC2045")
                && f.location.to_string() == "scripts/generate_load.sh:3:10"),
        "{:?}",
        verdict.findings
    );
}

#[rstest]
#[tokio::test]
async fn live_sandbox_refuses_every_escape_of_the_hostile_fixture_and_applies_nothing(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let error = namespace
        .apply(&hostile_objects())
        .await
        .expect_err("the hostile submission must be refused");
    let ApplyError::Refused { refusals } = &error else {
        panic!("expected the sandbox's refusal, got: {error}");
    };
    let refused: Vec<(String, String)> = refusals
        .iter()
        .map(|r| (r.object.clone(), r.reason.clone()))
        .collect();
    for (object, reason_contains) in expected_refusals() {
        assert!(
            refused
                .iter()
                .any(|(o, r)| *o == object && r.contains(&reason_contains)),
            "expected {object} refused for {reason_contains:?}; refused: {refused:#?}"
        );
    }
    assert_eq!(
        refused.len(),
        expected_refusals().len(),
        "only the expected objects are refused (the LimitRange is fine): {refused:#?}"
    );
    // Nothing was applied: not the fine LimitRange, no Service, no cluster-wide binding;
    // the sandbox quota is the sandbox's.
    let client = namespace.client();
    let limit_ranges: Api<k8s_openapi::api::core::v1::LimitRange> = namespace.api();
    assert!(
        limit_ranges
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let services: Api<Service> = namespace.api();
    assert!(
        services
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    assert!(
        bindings
            .get_opt("hostile-take-over")
            .await
            .unwrap()
            .is_none()
    );
    let quotas: Api<ResourceQuota> = namespace.api();
    let sandbox = quotas
        .get("autoscale-conformance-sandbox-quota")
        .await
        .expect("the sandbox quota");
    let hard = sandbox.spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard.get("pods").map(|q| q.0.as_str()), Some("40"));
    let managers: Vec<String> = sandbox
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(
        managers,
        ["autoscale-conformance-sandbox"],
        "the sandbox quota's spec is applied by the sandbox's field manager only"
    );
}

#[rstest]
#[tokio::test]
async fn live_sandbox_every_object_the_api_server_refuses_is_named_and_nothing_is_applied(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let objects: Vec<Value> = load_fixture(REFUSED)
        .objects
        .iter()
        .map(|o| o.value().clone())
        .collect();
    let error = namespace
        .apply(&objects)
        .await
        .expect_err("the API server refuses three of the fixture's objects");
    let ApplyError::Rejected { rejections } = &error else {
        panic!("expected the API server's refusals, got: {error}");
    };
    let refused: Vec<(&str, String)> = rejections
        .iter()
        .map(|r| (r.object.as_str(), r.api_message()))
        .collect();
    // Each in the API server's (or its webhook's) own words; the Pod whose ServiceAccount
    // the same apply creates is not among them.
    let expected = [
        (
            "Deployment mismatched",
            "`selector` does not match template `labels`",
        ),
        (
            "VerticalPodAutoscaler sometimes",
            "Unsupported value: \"Sometimes\"",
        ),
        ("ScaledObject twins", "\"same\" is defined multiple times"),
    ];
    assert_eq!(
        refused.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        expected.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        "{refused:#?}"
    );
    for ((object, message), (_, words)) in refused.iter().zip(expected) {
        assert!(message.contains(words), "{object}: {message}");
    }
    // Nothing was applied, not even the objects the API server accepts.
    let config_maps: Api<ConfigMap> = namespace.api();
    assert!(config_maps.get_opt("fine").await.unwrap().is_none());
    let accounts: Api<ServiceAccount> = namespace.api();
    assert!(accounts.get_opt("runner").await.unwrap().is_none());
    let pods: Api<Pod> = namespace.api();
    assert!(pods.get_opt("uses-runner").await.unwrap().is_none());
}

#[rstest]
#[tokio::test]
async fn live_sandbox_hostile_quota_under_the_sandbox_name_fails_quota_limits(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let submission = load_fixture(HOSTILE);
    let verdict = run_probe_once(&QuotaLimits, &mut namespace, &submission).await;
    assert_expected_verdict(&verdict, HOSTILE);
}

#[rstest]
#[tokio::test]
async fn live_sandbox_applier_cannot_create_cluster_scoped_objects_or_leave_its_namespace(
    #[future(awt)] namespace: TestNamespace,
) {
    let applier = namespace.applier_client();
    let config_map = config_map("sandbox-probe");
    // Granted: its own namespace.
    Api::<ConfigMap>::namespaced(applier.clone(), &namespace.name)
        .create(&PostParams::default(), &config_map)
        .await
        .expect("the applier may create a ConfigMap in its own namespace");
    // Forbidden: another namespace, and anything cluster-scoped.
    let elsewhere = Api::<ConfigMap>::namespaced(applier.clone(), "default")
        .create(&PostParams::default(), &config_map)
        .await;
    assert_forbidden(elsewhere.map(|_| ()), "a ConfigMap in namespace default");
    let priority: PriorityClass = serde_json::from_value(json!({
        "metadata": {"name": format!("{}-escape", namespace.name)},
        "value": 1_000_000, "globalDefault": true
    }))
    .unwrap();
    let cluster_scoped = Api::<PriorityClass>::all(applier.clone())
        .create(&PostParams::default(), &priority)
        .await;
    assert_forbidden(cluster_scoped.map(|_| ()), "a PriorityClass");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{}-escape", namespace.name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace.name}]
    }))
    .unwrap();
    let escalation = Api::<ClusterRoleBinding>::all(applier)
        .create(&PostParams::default(), &binding)
        .await;
    assert_forbidden(escalation.map(|_| ()), "a ClusterRoleBinding");
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn assert_forbidden(result: Result<(), kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("expected 403 Forbidden creating {what} as the applier, got {other:?}"),
    }
}

#[rstest]
#[tokio::test]
async fn live_sandbox_priority_class_is_mapped_never_the_default_and_removed_at_cleanup(
    #[future(awt)] namespace: TestNamespace,
) {
    let mut namespace = namespace;
    let objects = vec![
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
               "metadata": {"name": "hostile-default"}, "value": 123456, "globalDefault": true}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "uses-it", "namespace": "kube-system"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "uses-it"}},
                 "template": {"metadata": {"labels": {"app": "uses-it"}},
                   "spec": {"priorityClassName": "hostile-default", "containers": [
                     {"name": "c", "image": "localhost/autoscale-conformance/inference-server:0.1.0"}]}}}}),
    ];
    let applied = namespace.apply(&objects).await.expect("applied");
    let renamed = format!("{}-hostile-default", namespace.name);
    assert!(
        applied
            .notes
            .iter()
            .any(|n| n.contains(&renamed) && n.contains("globalDefault: false")),
        "{:?}",
        applied.notes
    );
    let classes: Api<PriorityClass> = Api::all(namespace.client());
    let class = classes
        .get(&renamed)
        .await
        .expect("the mapped PriorityClass");
    assert_eq!(class.value, Some(123456));
    assert_ne!(
        class.global_default,
        Some(true),
        "the mapped PriorityClass must not be the cluster's default"
    );
    assert!(classes.get_opt("hostile-default").await.unwrap().is_none());
    let deployments: Api<Deployment> = namespace.api();
    let deployment = deployments
        .get("uses-it")
        .await
        .expect("in the test namespace");
    let pod_spec = deployment.spec.template.spec.expect("a pod spec");
    assert_eq!(
        pod_spec.priority_class_name.as_deref(),
        Some(renamed.as_str())
    );
    let stuck = namespace.cleanup().await;
    assert!(stuck.is_empty(), "{stuck:?}");
    assert!(
        classes.get_opt(&renamed).await.unwrap().is_none(),
        "the mapped PriorityClass outlived its test"
    );
}

/// A probe may wait in the CPU ledger for longer than a namespace's lease: its owner
/// renews it, so another test's sweep leaves it (and the applier's grant in it) alone,
/// while a namespace whose owner stopped renewing it is swept.
#[rstest]
#[tokio::test]
async fn live_sandbox_a_renewed_namespace_outlives_its_lease_and_a_lapsed_one_is_swept(
    #[future(awt)] namespace: TestNamespace,
) {
    use harness::cluster::{EXPIRES_ANNOTATION, SUITE_LABEL};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Patch, PatchParams};
    let namespaces = Api::<Namespace>::all(namespace.client());
    let lapsed = "2026-01-01T00:00:00+00:00";
    let lapsed_at = json!({"metadata": {"annotations": {EXPIRES_ANNOTATION: lapsed}}});
    // An earlier run's namespace, killed before it could delete it: its lease lapsed.
    let orphan = harness::cluster::unique_namespace_name("sandbox-orphan");
    let orphan_namespace: Namespace = serde_json::from_value(json!({"metadata": {
        "name": orphan,
        "labels": {SUITE_LABEL: "true"},
        "annotations": {EXPIRES_ANNOTATION: lapsed},
    }}))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &orphan_namespace)
        .await
        .expect("creating the orphan namespace");
    // This test's own namespace, its lease lapsed too, then renewed by its owner.
    namespaces
        .patch(
            &namespace.name,
            &PatchParams::default(),
            &Patch::Merge(&lapsed_at),
        )
        .await
        .expect("lapsing the test namespace's lease");
    namespace.renew_lease().await.expect("renewing the lease");
    // Another test starts: its namespace sweeps the lapsed ones.
    let other = namespace
        .cluster
        .namespace("sandbox-sweeper")
        .await
        .expect("another test's namespace");
    let orphan_now = namespaces
        .get_opt(&orphan)
        .await
        .expect("reading the orphan");
    assert!(
        orphan_now.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "the orphan namespace {orphan}, its lease lapsed, was not swept"
    );
    let own = namespaces.get(&namespace.name).await.expect("reading it");
    assert!(
        own.metadata.deletion_timestamp.is_none(),
        "the renewed namespace {} was swept",
        namespace.name
    );
    Api::<ConfigMap>::namespaced(namespace.applier_client(), &namespace.name)
        .create(&PostParams::default(), &config_map("after-the-sweep"))
        .await
        .expect("the applier keeps its grant in the renewed namespace");
    assert_eq!(namespace.deleted_under_its_owner().await, None);
    // Deleted by someone else, its probe's verdict is the environment's error.
    namespaces
        .delete(&other.name, &Default::default())
        .await
        .expect("deleting the other test's namespace under it");
    assert!(
        other.deleted_under_its_owner().await.is_some(),
        "a namespace deleted under its owner went unnoticed"
    );
}

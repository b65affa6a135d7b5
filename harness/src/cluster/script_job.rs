//! A submission's own script, run inside the cluster and never on the host: a Job in a
//! namespace of the runner's own beside the test namespace (so that the submission's
//! LimitRanges and quotas govern the pods the script starts, not the runner), under a
//! ServiceAccount that a Role grants the test namespace only (the applier's kinds, and
//! what test scripts read: pod logs, scale subresources, the metrics APIs); it has no
//! right in its own namespace. The submission's files are mounted read-only from a
//! ConfigMap and copied to a writable work directory; kubectl finds a kubeconfig of the
//! ServiceAccount whose default namespace is the test namespace. The grader bounds the
//! run itself: at the bound it keeps the output and deletes the Job (the Job's own
//! deadline is a backstop should the grader die).

use super::error::EnvironmentError;
use super::identity::applier_rules;
use super::wait::{describe_pod, wait_for};
use super::{FIELD_MANAGER, RESERVED_NAME_PREFIX, SANDBOX_FIELD_MANAGER, SCRIPT_RUNNER_IMAGE};
use super::{PROBE_NAMESPACE_LABEL, TestNamespace};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Everything the runner may mount: scripts and the manifests they apply are small;
/// a ConfigMap holds at most 1 MiB.
pub const FILES_BUDGET_BYTES: usize = 900 * 1024;

/// The output kept of a run: its last lines, at most this many bytes.
const OUTPUT_BYTES: i64 = 32 * 1024;

/// The ServiceAccount, Role and RoleBinding of the script runner, the Job, and the
/// ConfigMap of files, in every namespace a script runs in.
pub fn runner_name() -> String {
    format!("{RESERVED_NAME_PREFIX}-script")
}

/// The runner's Role: the applier's (every allowlisted kind in this namespace), and
/// what test scripts read or do besides: pods' logs, exec and port-forward (to pods
/// of this namespace), the scale subresources (so that `kubectl scale` is judged by
/// the timeline, not refused), events, endpoints, and the metrics APIs' namespaced
/// resources (`kubectl top pods`, `kubectl get --raw .../custom.metrics...`).
pub fn runner_rules() -> Vec<Value> {
    let read = json!(["get", "list", "watch"]);
    let mut rules = applier_rules();
    rules.extend([
        json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["get", "create"]}),
        json!({"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": read}),
        json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read}),
        json!({"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read}),
        json!({"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
               "verbs": ["get", "update", "patch"]}),
        json!({"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}),
        json!({"apiGroups": ["custom.metrics.k8s.io", "external.metrics.k8s.io"], "resources": ["*"],
               "verbs": ["get", "list"]}),
    ]);
    rules
}

/// The runner's ServiceAccount (in `runner`, its own namespace), and the Role and
/// RoleBinding that grant it `target`, each with the namespace it goes to.
pub fn runner_objects(target: &str, runner: &str) -> Vec<(String, ApiResource, Value)> {
    let name = runner_name();
    let resource = |group: &str, version: &str, kind: &str| {
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
    };
    let rbac = "rbac.authorization.k8s.io";
    let in_target = json!({ "name": name, "namespace": target });
    vec![
        (
            runner.to_string(),
            resource("", "v1", "ServiceAccount"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": runner}}),
        ),
        (
            target.to_string(),
            resource(rbac, "v1", "Role"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": in_target, "rules": runner_rules()}),
        ),
        (
            target.to_string(),
            resource(rbac, "v1", "RoleBinding"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": in_target,
                   "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": runner}]}),
        ),
    ]
}

/// One script to run.
#[derive(Debug, Clone)]
pub struct ScriptJob {
    /// The script, relative to the submission's root (`scripts/test_autoscaling.sh`).
    pub entry: String,
    /// The files the work directory holds: (relative path, text), at most
    /// [`FILES_BUDGET_BYTES`] together (see [`ScriptJob::files_within_budget`]).
    pub files: Vec<(String, String)>,
    /// Environment variables besides `NAMESPACE` (the test namespace) and `KUBECONFIG`.
    pub env: Vec<(String, String)>,
    /// The longest the script may run, from its start.
    pub bound: Duration,
}

impl ScriptJob {
    /// Keeps the files that fit the ConfigMap, the entry first, then in order; returns
    /// the paths left out.
    pub fn files_within_budget(&mut self) -> Vec<String> {
        let entry = self.entry.clone();
        self.files.sort_by_key(|(path, _)| *path != entry);
        let mut used = 0;
        let mut left_out = Vec::new();
        self.files.retain(|(path, text)| {
            let size = path.len() + text.len();
            if used + size > FILES_BUDGET_BYTES {
                left_out.push(path.clone());
                false
            } else {
                used += size;
                true
            }
        });
        left_out
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEnd {
    /// The script exited by itself, with this code.
    Exited(i32),
    /// The script was still running at the bound, and was stopped.
    OutOfTime,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    pub end: ScriptEnd,
    /// From the container's start to its end (or to the bound).
    pub ran_for: Duration,
    /// The last lines of its output (stdout and stderr), at most 32 KiB.
    pub output: String,
}

/// The container's command: a kubeconfig of the ServiceAccount with the test namespace
/// as default (scripts that read `kubectl config` find one), the files copied to a
/// writable `/work` (without the ConfigMap volume's own `..data` links), then the
/// script with bash, as `bash script.sh` would run it.
const PREAMBLE: &str = r#"set -eu
cat >/tmp/kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters:
- name: grading
  cluster:
    server: https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
users:
- name: script
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
contexts:
- name: grading
  context:
    cluster: grading
    user: script
    namespace: ${NAMESPACE}
current-context: grading
EOF
cp -RL /submission/. /work/
rm -rf /work/..?*
cd /work
set +eu
exec /bin/bash "$0"
"#;

/// The ConfigMap of the files and the volume items that lay them out as in the
/// submission (a ConfigMap key cannot hold `/`). Scripts are executable.
fn files_config_map(job: &ScriptJob) -> (Value, Vec<Value>) {
    let mut data = serde_json::Map::new();
    let mut items = Vec::new();
    for (i, (path, text)) in job.files.iter().enumerate() {
        let key = format!("f{i}");
        let executable = path.ends_with(".sh") || text.starts_with("#!");
        data.insert(key.clone(), Value::String(text.clone()));
        items.push(
            json!({"key": key, "path": path, "mode": if executable { 0o755 } else { 0o644 }}),
        );
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": runner_name()},
        "data": data,
    });
    (config_map, items)
}

/// The Job, as the suite creates it in the runner's namespace; `namespace` is the test
/// namespace, the script's default, which its pod counts for in the CPU ledger.
fn job_object(job: &ScriptJob, namespace: &str, items: Vec<Value>, backstop: Duration) -> Value {
    let mut env = vec![
        json!({"name": "NAMESPACE", "value": namespace}),
        json!({"name": "KUBECONFIG", "value": "/tmp/kubeconfig"}),
    ];
    env.extend(
        job.env
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": runner_name(), "labels": {"app.kubernetes.io/name": "script-runner"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": backstop.as_secs(),
            "template": {
                "metadata": {"labels": {
                    "app.kubernetes.io/name": "script-runner",
                    PROBE_NAMESPACE_LABEL: namespace,
                }},
                "spec": {
                    "serviceAccountName": runner_name(),
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "script",
                        "image": SCRIPT_RUNNER_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/bin/bash", "-c", PREAMBLE, job.entry],
                        "workingDir": "/work",
                        "env": env,
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "submission", "mountPath": "/submission", "readOnly": true}],
                    }],
                    "volumes": [{"name": "submission", "configMap": {"name": runner_name(), "items": items}}],
                }
            }
        }
    })
}

/// Runs `job` against `target` (the script's namespace) from `runner` (a namespace of
/// its own, see [`TestNamespace::load_namespace`]) to its end or its bound. `started` is
/// called once the script's container runs (the probe marks its timeline). The wait for
/// the pod to start is `start_budget`; an image that is not in the cluster is the
/// environment's error.
pub async fn run(
    target: &TestNamespace,
    runner: &TestNamespace,
    job: &ScriptJob,
    start_budget: Duration,
    started: impl FnOnce(),
) -> Result<ScriptRun, EnvironmentError> {
    let client = runner.client();
    let ns = target.name.as_str();
    for (namespace, resource, object) in runner_objects(ns, &runner.name) {
        Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource)
            .patch(
                &runner_name(),
                &PatchParams::apply(SANDBOX_FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(EnvironmentError::api(format!(
                "creating the script runner's {} in {namespace}",
                resource.kind
            )))?;
    }
    let (config_map, items) = files_config_map(job);
    let config_maps: Api<ConfigMap> = runner.api();
    config_maps
        .patch(
            &runner_name(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config_map),
        )
        .await
        .map_err(EnvironmentError::api(format!(
            "creating the ConfigMap of the submission's files in {}",
            runner.name
        )))?;
    let backstop = start_budget + job.bound + Duration::from_secs(60);
    let object: Job =
        serde_json::from_value(job_object(job, ns, items, backstop)).map_err(|e| {
            EnvironmentError::NotReady {
                what: "script Job".into(),
                detail: e.to_string(),
            }
        })?;
    let jobs: Api<Job> = runner.api();
    jobs.create(
        &PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &object,
    )
    .await
    .map_err(EnvironmentError::api(format!(
        "creating the script Job in {}",
        runner.name
    )))?;

    let pods: Api<Pod> = runner.api();
    let pod = script_pod(&pods, start_budget).await?;
    let running = wait_for(
        &pods,
        &pod,
        "the test script's pod to start",
        start_budget,
        |p: Option<&Pod>| phase(p).is_some_and(|phase| phase != "Pending"),
        describe_pod,
    )
    .await;
    if let Err(e) = running {
        return Err(EnvironmentError::NotReady {
            what: format!("the script runner ({SCRIPT_RUNNER_IMAGE})"),
            detail: format!("{e}; is the image imported into the cluster (make cluster-up)?"),
        });
    }
    started();
    let began = Instant::now();
    let ended = wait_for(
        &pods,
        &pod,
        "the test script to end",
        job.bound,
        |p: Option<&Pod>| matches!(phase(p), Some("Succeeded" | "Failed")),
        describe_pod,
    )
    .await;
    let ran_for = began.elapsed();
    let output = output_of(&pods, &pod).await;
    let end = match ended {
        Ok(finished) => exit_code(finished.as_ref())
            .map(ScriptEnd::Exited)
            .unwrap_or(ScriptEnd::Exited(-1)),
        Err(EnvironmentError::Timeout { .. }) => {
            // Stop it now: the bound is the grader's, not the Job's backstop.
            let _ = jobs
                .delete(&runner_name(), &DeleteParams::background().grace_period(0))
                .await;
            ScriptEnd::OutOfTime
        }
        Err(e) => return Err(e),
    };
    Ok(ScriptRun {
        end,
        ran_for,
        output,
    })
}

/// The Job's pod, once the Job controller has made it.
async fn script_pod(pods: &Api<Pod>, budget: Duration) -> Result<String, EnvironmentError> {
    let selector = format!("job-name={}", runner_name());
    let found = super::wait::poll_until(budget, Duration::from_millis(500), || async {
        pods.list(&ListParams::default().labels(&selector))
            .await
            .ok()
            .and_then(|list| list.items.into_iter().next())
            .and_then(|p| p.metadata.name)
    })
    .await;
    found.ok_or_else(|| EnvironmentError::Timeout {
        what: "the script Job to create its pod".into(),
        budget,
        last_seen: "no pod".into(),
    })
}

fn phase(pod: Option<&Pod>) -> Option<&str> {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.as_deref())
}

fn exit_code(pod: Option<&Pod>) -> Option<i32> {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|statuses| statuses.first())
        .and_then(|status| status.state.as_ref())
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| terminated.exit_code)
}

/// The script's last output, or a line saying why there is none.
async fn output_of(pods: &Api<Pod>, pod: &str) -> String {
    let params = LogParams {
        limit_bytes: Some(OUTPUT_BYTES),
        tail_lines: Some(400),
        ..LogParams::default()
    };
    match pods.logs(pod, &params).await {
        Ok(text) => text,
        Err(e) => format!("(its output could not be read: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_is_granted_its_namespace_only_and_the_reads_scripts_need() {
        let rules = runner_rules();
        let granted = |group: &str, resource: &str, verb: &str| {
            rules.iter().any(|r| {
                r["apiGroups"]
                    .as_array()
                    .is_some_and(|g| g.iter().any(|g| g == group))
                    && r["resources"]
                        .as_array()
                        .is_some_and(|rs| rs.iter().any(|x| x == resource || x == "*"))
                    && r["verbs"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|v| v == verb))
            })
        };
        for (group, resource, verb) in [
            ("apps", "deployments", "patch"),
            ("apps", "deployments/scale", "update"),
            ("", "pods", "create"),
            ("", "pods/log", "get"),
            ("batch", "jobs", "create"),
            ("autoscaling", "horizontalpodautoscalers", "get"),
            ("metrics.k8s.io", "pods", "list"),
        ] {
            assert!(
                granted(group, resource, verb),
                "{verb} {group}/{resource} not granted"
            );
        }
        for (group, resource, verb) in [
            ("", "nodes", "get"),
            ("", "namespaces", "get"),
            ("rbac.authorization.k8s.io", "rolebindings", "create"),
            ("metrics.k8s.io", "nodes", "list"),
            ("", "pods/eviction", "create"),
        ] {
            assert!(
                !granted(group, resource, verb),
                "{verb} {group}/{resource} granted"
            );
        }
        assert!(rules.iter().all(|r| {
            r["verbs"].as_array().is_some_and(|v| {
                !v.iter()
                    .any(|v| v == "*" || v == "escalate" || v == "bind" || v == "impersonate")
            })
        }));
        let objects = runner_objects("ac-t-1", "ac-t-1-load");
        let (account_namespace, _, account) = &objects[0];
        assert_eq!(
            (account_namespace.as_str(), &account["kind"]),
            ("ac-t-1-load", &json!("ServiceAccount"))
        );
        let (binding_namespace, _, binding) = &objects[2];
        assert_eq!(binding_namespace, "ac-t-1");
        assert_eq!(binding["metadata"]["namespace"], "ac-t-1");
        assert_eq!(binding["subjects"][0]["namespace"], "ac-t-1-load");
        assert_eq!(binding["roleRef"]["kind"], "Role");
    }

    #[test]
    fn files_keep_their_paths_and_scripts_are_executable() {
        let job = ScriptJob {
            entry: "scripts/test.sh".into(),
            files: vec![
                ("scripts/test.sh".into(), "#!/bin/bash\necho hi\n".into()),
                (
                    "manifests/hpa.yaml".into(),
                    "kind: HorizontalPodAutoscaler\n".into(),
                ),
            ],
            env: vec![],
            bound: Duration::from_secs(60),
        };
        let (config_map, items) = files_config_map(&job);
        assert_eq!(config_map["data"]["f0"], "#!/bin/bash\necho hi\n");
        assert_eq!(items[0]["path"], "scripts/test.sh");
        assert_eq!(items[0]["mode"], 0o755);
        assert_eq!(items[1]["path"], "manifests/hpa.yaml");
        assert_eq!(items[1]["mode"], 0o644);
        let object = job_object(&job, "ac-t-1", items, Duration::from_secs(200));
        let container = &object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["command"][3], "scripts/test.sh");
        assert_eq!(container["env"][0]["value"], "ac-t-1");
        assert_eq!(object["spec"]["activeDeadlineSeconds"], 200);
        assert_eq!(
            object["spec"]["template"]["spec"]["serviceAccountName"],
            runner_name()
        );
        let _: Job = serde_json::from_value(object).expect("a valid Job");
    }

    #[test]
    fn files_beyond_the_budget_are_left_out_but_never_the_entry() {
        let big = "x".repeat(FILES_BUDGET_BYTES / 2);
        let mut job = ScriptJob {
            entry: "test.sh".into(),
            files: vec![
                ("a.yaml".into(), big.clone()),
                ("b.yaml".into(), big.clone()),
                ("test.sh".into(), "echo".into()),
            ],
            env: vec![],
            bound: Duration::from_secs(60),
        };
        let left_out = job.files_within_budget();
        assert_eq!(left_out, ["b.yaml"]);
        assert_eq!(job.files[0].0, "test.sh");
    }
}

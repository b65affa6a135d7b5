//! Live probe of `load-testing`: apply the autoscalers the submission's test script
//! names (with their targets and Services), let them settle, run the script inside the
//! cluster ([`crate::cluster::script_job`]) with the submission's namespace rewritten
//! to the probe's, count the requests the targets' servers see meanwhile, and judge
//! the run against the recorded timeline.

use super::checks::{autoscalers_exercised, generates_load};
use super::judge::{self, Observed, SCRIPT_END, SCRIPT_START};
use crate::cluster::script_job::{self, ScriptJob};
use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::hpa_cpu::probe::objects_for;
use crate::criteria::hpa_cpu::scaling::ScalingSpec;
use crate::criteria::{ProbeContext, Stop, verdict_of_run};
use crate::observe::Recorder;
use crate::submission::{Object, Submission, TextFile, Typed};
use crate::verdict::{Evidence, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Namespaces a script may name that are not the submission's own: never rewritten.
const SHARED_NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "monitoring",
    "keda",
];

/// The script runner's pod, and the pods a script typically starts to generate load
/// (a busybox or load-generator pod or Job of 100m): reserved beside the targets.
const SCRIPT_PODS: CpuDemand = CpuDemand::millis(100 + 200);

/// How often the targets' request counters are read while the script runs.
const COUNTER_EVERY: Duration = Duration::from_secs(5);

/// What the probe runs: the script, and the autoscalers it exercises.
struct Plan<'a> {
    script: &'a TextFile,
    /// The script and the submission's scripts it calls: where autoscalers are named.
    reached: Vec<&'a TextFile>,
    /// (HPA, its target, its objects)
    autoscalers: Vec<(&'a Object, String, Vec<Value>)>,
}

impl<'a> Plan<'a> {
    fn pick(submission: &'a Submission) -> Result<Plan<'a>, String> {
        let script = test_script(submission).ok_or_else(|| {
            "expected a test script that runs kubectl against the autoscalers and generates load (Task 7.2, test_autoscaling.sh); the submission has none".to_string()
        })?;
        let reached = scripts_reached(submission, script);
        let hpas: Vec<&Object> = submission
            .objects
            .iter()
            .filter(|o| matches!(o.typed, Typed::HorizontalPodAutoscaler(_)))
            .collect();
        let named: Vec<&Object> = hpas
            .iter()
            .copied()
            .filter(|hpa| {
                let target = hpa_target(hpa).unwrap_or_default();
                reached
                    .iter()
                    .any(|s| mentions(&s.text, &hpa.name) || mentions(&s.text, &target))
            })
            .collect();
        // A script that names none (`kubectl get hpa -A`) exercises the CPU HPA, if any.
        let chosen = if named.is_empty() {
            hpas.iter()
                .copied()
                .filter(|hpa| is_cpu_hpa(hpa))
                .take(1)
                .collect()
        } else {
            named
        };
        if chosen.is_empty() {
            return Err(format!(
                "{} runs against no HPA of the submission: expected an HPA for it to exercise",
                script.path
            ));
        }
        let autoscalers = chosen
            .into_iter()
            .map(|hpa| objects_for(submission, hpa).map(|(objects, target)| (hpa, target, objects)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Plan {
            script,
            reached,
            autoscalers,
        })
    }

    /// The objects to apply, each once.
    fn objects(&self) -> Vec<Value> {
        let mut seen = BTreeSet::new();
        self.autoscalers
            .iter()
            .flat_map(|(_, _, objects)| objects.iter())
            .filter(|o| {
                seen.insert((
                    o.get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ))
            })
            .cloned()
            .collect()
    }

    fn targets(&self) -> Vec<(String, String)> {
        self.autoscalers
            .iter()
            .map(|(hpa, target, _)| (hpa.name.clone(), target.clone()))
            .collect()
    }
}

/// The test suite: the script exercising the most autoscalers, preferring one that
/// generates load (itself or through a script it calls), then one named like a test.
fn test_script(submission: &Submission) -> Option<&TextFile> {
    submission
        .scripts
        .iter()
        .filter(|s| !autoscalers_exercised(s).is_empty())
        .max_by_key(|s| {
            let loads = scripts_reached(submission, s)
                .iter()
                .any(|r| generates_load(&r.text));
            let named = s
                .path
                .rsplit('/')
                .next()
                .is_some_and(|n| n.contains("test"));
            (autoscalers_exercised(s).len(), loads, named)
        })
}

/// `script` and the submission's scripts it calls by file name.
fn scripts_reached<'a>(submission: &'a Submission, script: &'a TextFile) -> Vec<&'a TextFile> {
    let mut reached = vec![script];
    reached.extend(submission.scripts.iter().filter(|other| {
        other.path != script.path
            && other
                .path
                .rsplit('/')
                .next()
                .is_some_and(|name| script.text.contains(name))
    }));
    reached
}

fn hpa_target(hpa: &Object) -> Option<String> {
    match &hpa.typed {
        Typed::HorizontalPodAutoscaler(h) => Some(h.spec.scale_target_ref.name.clone()),
        _ => None,
    }
}

fn is_cpu_hpa(hpa: &Object) -> bool {
    matches!(&hpa.typed, Typed::HorizontalPodAutoscaler(h)
        if ScalingSpec::from_hpa(h).cpu_target_utilization.is_some())
}

/// Whether `text` names `name` as a whole word of a Kubernetes name (not as a part of
/// a longer one: `api` is not in `api-hpa`).
fn mentions(text: &str, name: &str) -> bool {
    !name.is_empty() && word_spans(text, name).next().is_some()
}

/// Where `name` occurs in `text` between characters that cannot continue a name.
fn word_spans<'t>(text: &'t str, name: &'t str) -> impl Iterator<Item = usize> + 't {
    // A `-` joins two names only between name characters: `x-ml` does, `:-ml` does not.
    let name_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(name).filter_map(move |(at, _)| {
        let mut before = text[..at].chars().rev();
        let mut after = text[at + name.len()..].chars();
        let joined_before = match before.next() {
            Some('-') => name_char(before.next()),
            c => name_char(c),
        };
        let joined_after = match after.next() {
            Some('-') => name_char(after.next()),
            c => name_char(c),
        };
        (!joined_before && !joined_after).then_some(at)
    })
}

/// `text` with every whole-word `from` namespace replaced by `to`.
pub fn rewrite_namespaces(text: &str, from: &[String], to: &str) -> String {
    let mut text = text.to_string();
    for namespace in from {
        let spans: Vec<usize> = word_spans(&text, namespace).collect();
        for at in spans.into_iter().rev() {
            text.replace_range(at..at + namespace.len(), to);
        }
    }
    text
}

/// The submission's own namespaces (its objects' namespaces, but not the cluster's
/// shared ones), which a script names and which become the probe's.
fn own_namespaces(submission: &Submission) -> Vec<String> {
    let namespaces: BTreeSet<String> = submission
        .objects
        .iter()
        .filter_map(|o| o.namespace.clone())
        .chain(
            submission
                .objects
                .iter()
                .filter(|o| o.kind == "Namespace")
                .map(|o| o.name.clone()),
        )
        .filter(|n| !SHARED_NAMESPACES.contains(&n.as_str()))
        .collect();
    namespaces.into_iter().collect()
}

/// The files the script's work directory holds: the scripts, other text files and the
/// manifests the submission's objects were read from, with the namespace rewritten.
fn files(submission: &Submission, from: &[String], to: &str) -> Vec<(String, String)> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for file in submission.scripts.iter().chain(&submission.other_text) {
        files.insert(file.path.clone(), file.text.clone());
    }
    let root = submission.root.canonicalize().ok();
    for object in &submission.objects {
        let path = &object.location().file;
        if files.contains_key(path) {
            continue;
        }
        // Read again from where the loader read it; never outside the submission.
        let full = submission.root.join(path);
        let inside = full
            .canonicalize()
            .ok()
            .zip(root.as_ref())
            .is_some_and(|(full, root)| full.starts_with(root));
        if let (true, Ok(text)) = (inside, std::fs::read_to_string(&full)) {
            files.insert(path.clone(), text);
        }
    }
    files
        .into_iter()
        .map(|(path, text)| (path, rewrite_namespaces(&text, from, to)))
        .collect()
}

/// The targets at their HPAs' maxReplicas, the runner and the load pods it starts.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    let Ok(plan) = Plan::pick(submission) else {
        return CpuDemand::NONE;
    };
    plan.autoscalers
        .iter()
        .map(|(hpa, target, _)| {
            let max = match &hpa.typed {
                Typed::HorizontalPodAutoscaler(h) => i64::from(h.spec.max_replicas),
                _ => 1,
            };
            demand::target_pods(submission, target, max)
        })
        .sum::<CpuDemand>()
        + SCRIPT_PODS
}

pub async fn run(
    namespace: &mut TestNamespace,
    context: &ProbeContext<'_>,
    bound: Duration,
) -> Vec<Verdict> {
    let plan = match Plan::pick(context.submission) {
        Ok(plan) => plan,
        Err(message) => {
            return vec![Verdict::new(
                super::ID.0,
                crate::verdict::Outcome::Fail,
                message,
                Vec::new(),
            )];
        }
    };
    let name = namespace.name.clone();
    let recorder = Recorder::start(namespace, &name, context.timelines);
    let mut notes = Vec::new();
    let targets = plan.targets();
    // Deleting the runner's namespace waits for it: only after the recording.
    let mut runner_namespace = None;
    let ran = drive(
        namespace,
        context.submission,
        &plan,
        bound,
        &recorder,
        &mut notes,
        &mut runner_namespace,
    )
    .await;
    let mut timeline = recorder.finish();
    let saved = timeline.saved_to.take();
    let judged = ran.map(|(run, requests)| {
        judge::judge(
            &Observed {
                script: &plan.script.path,
                run: &run,
                bound,
                targets: &targets,
                requests,
            },
            &timeline,
        )
    });
    timeline.saved_to = saved;
    drop(runner_namespace);
    vec![verdict_of_run(judged, &notes, &timeline, None, |stop| {
        let mut evidence: Vec<Evidence> = Evidence::notes(&notes).into_iter().collect();
        evidence.extend(timeline.stop_evidence());
        Verdict::new(super::ID.0, stop.outcome, stop.message, evidence)
    })]
}

/// Applies the autoscalers and their targets, waits for them to settle, runs the script
/// while counting requests; returns the run and the count.
async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    plan: &Plan<'_>,
    bound: Duration,
    recorder: &Recorder,
    notes: &mut Vec<String>,
    runner_namespace: &mut Option<TestNamespace>,
) -> Result<(script_job::ScriptRun, Option<u64>), Stop> {
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&plan.objects()))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes.iter().cloned());
    settle(namespace, plan, notes).await?;
    recorder.mark("settled");

    let from = own_namespaces(submission);
    let mut job = ScriptJob {
        entry: plan.script.path.clone(),
        files: files(submission, &from, &namespace.name),
        env: Vec::new(),
        bound,
    };
    let left_out = job.files_within_budget();
    if !left_out.is_empty() {
        notes.push(format!(
            "left out of the script's work directory (over {} KiB together): {}",
            script_job::FILES_BUDGET_BYTES / 1024,
            left_out.join(", ")
        ));
    }
    if !from.is_empty() {
        notes.push(format!(
            "ran {} in namespace {} (the submission's {} rewritten to it in its files)",
            plan.script.path,
            namespace.name,
            from.join(", ")
        ));
    }
    let called: Vec<&str> = plan.reached[1..].iter().map(|s| s.path.as_str()).collect();
    if !called.is_empty() {
        notes.push(format!("it calls {}", called.join(", ")));
    }

    // The runner's own namespace: the submission's LimitRanges and quotas are for the
    // pods its script starts, not for the runner.
    let runner = namespace
        .load_namespace()
        .await
        .map_err(|e| Stop::error(format!("no namespace for the script runner: {e}")))?;
    let runner = runner_namespace.insert(runner);
    let counter = RequestCounter::new(namespace, plan);
    let sampling = counter.clone().sample_until_stopped(namespace.client());
    let start_budget = namespace.cluster.intervals.pod_ready * 4;
    let run = script_job::run(namespace, runner, &job, start_budget, || {
        recorder.mark(SCRIPT_START);
    });
    let run = run.await;
    recorder.mark(SCRIPT_END);
    counter.stop();
    let _ = sampling.await;
    let run = run.map_err(|e| Stop::error(format!("could not run the test script: {e}")))?;
    Ok((run, counter.total()))
}

/// The targets Available and their HPAs computing a metric (or given up on: the judge
/// then sees no scale-up, and the HPA's conditions are in the timeline).
async fn settle(
    namespace: &TestNamespace,
    plan: &Plan<'_>,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    let intervals = namespace.cluster.intervals;
    let deployments: Api<Deployment> = namespace.api();
    let hpas: Api<HorizontalPodAutoscaler> = namespace.api();
    let budget = intervals.first_pod_metrics() + intervals.metric_lag() + Duration::from_secs(30);
    for (hpa, target, _) in &plan.autoscalers {
        wait_for(
            &deployments,
            target,
            "the autoscaler's target to be Available",
            intervals.pod_ready * 4,
            |d: Option<&Deployment>| d.is_some_and(deployment_available),
            |d| {
                format!(
                    "{:?}",
                    d.and_then(|d| d.status.as_ref())
                        .and_then(|s| s.conditions.as_ref())
                )
            },
        )
        .await
        .map_err(|e| {
            Stop::fail(format!(
                "the target {target} of {} never became Available: {e}",
                hpa.name
            ))
        })?;
        let computed = wait_for(
            &hpas,
            &hpa.name,
            "the HPA to compute its metrics",
            budget,
            |h: Option<&HorizontalPodAutoscaler>| {
                h.and_then(|h| h.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "ScalingActive" && c.status == "True")
                    })
            },
            |_| String::new(),
        )
        .await;
        if computed.is_err() {
            notes.push(format!(
                "the HPA {} computed no metric within {}s before the script started",
                hpa.name,
                budget.as_secs()
            ));
        }
    }
    Ok(())
}

/// The requests the targets' pods serve, read from their own counters
/// (`http_requests_total` of the inference server) through the API server's pod proxy:
/// each pod's highest count seen, summed; probes of the server itself left out.
#[derive(Clone)]
struct RequestCounter {
    namespace: String,
    /// (label selector, container port) of each target.
    targets: Vec<(String, i32)>,
    seen: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Whether any pod answered with the counter.
    exposed: Arc<Mutex<bool>>,
    stop: Arc<tokio::sync::Notify>,
}

impl RequestCounter {
    fn new(namespace: &TestNamespace, plan: &Plan<'_>) -> RequestCounter {
        let targets = plan
            .autoscalers
            .iter()
            .filter_map(|(_, target, objects)| {
                let object = objects.iter().find(|o| {
                    o.pointer("/metadata/name").and_then(Value::as_str) == Some(target.as_str())
                        && o.get("kind").and_then(Value::as_str) != Some("Service")
                })?;
                let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
                let selector: Vec<String> = labels
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                    .collect();
                let port = object
                    .pointer("/spec/template/spec/containers/0/ports/0/containerPort")
                    .and_then(Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok())?;
                Some((selector.join(","), port))
            })
            .collect();
        RequestCounter {
            namespace: namespace.name.clone(),
            targets,
            seen: Arc::default(),
            exposed: Arc::default(),
            stop: Arc::default(),
        }
    }

    async fn sample_until_stopped(self, client: Client) {
        loop {
            self.sample(&client).await;
            tokio::select! {
                () = self.stop.notified() => break,
                () = tokio::time::sleep(COUNTER_EVERY) => {}
            }
        }
        // The last counts, as the script left them.
        self.sample(&client).await;
    }

    fn stop(&self) {
        self.stop.notify_one();
    }

    async fn sample(&self, client: &Client) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        for (selector, port) in &self.targets {
            let Ok(list) = pods.list(&ListParams::default().labels(selector)).await else {
                continue;
            };
            for pod in list.items {
                let Some(name) = pod.metadata.name else {
                    continue;
                };
                let path = format!(
                    "/api/v1/namespaces/{}/pods/{name}:{port}/proxy/metrics",
                    self.namespace
                );
                let Ok(request) = http::Request::get(&path).body(Vec::new()) else {
                    continue;
                };
                let answer =
                    tokio::time::timeout(Duration::from_secs(3), client.request_text(request))
                        .await;
                let Ok(Ok(text)) = answer else { continue };
                if let Some(count) = served_requests(&text) {
                    *self.exposed.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                    let entry = seen.entry(name).or_default();
                    *entry = (*entry).max(count);
                }
            }
        }
    }

    fn total(&self) -> Option<u64> {
        let exposed = *self.exposed.lock().unwrap_or_else(|p| p.into_inner());
        exposed.then(|| {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .sum()
        })
    }
}

/// The requests a server's `http_requests_total` counts, but its own health and
/// metrics routes; `None` when the text has no such counter.
pub fn served_requests(metrics: &str) -> Option<u64> {
    let mut found = false;
    let mut total = 0.0;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("http_requests_total") else {
            continue;
        };
        found = true;
        let own = ["/metrics", "/healthz", "/readyz", "/livez"]
            .iter()
            .any(|route| rest.contains(&format!("route=\"{route}\"")));
        if own {
            continue;
        }
        if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            total += value;
        }
    }
    found.then_some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_rewritten_as_whole_names_only() {
        let from = ["ml-platform".to_string()];
        let text = "NAMESPACE=\"${NAMESPACE:-ml-platform}\"\nurl=http://api.ml-platform.svc.cluster.local/x\nkubectl -n ml-platform get hpa ml-platform-hpa\n";
        let rewritten = rewrite_namespaces(text, &from, "ac-t-1");
        assert_eq!(
            rewritten,
            "NAMESPACE=\"${NAMESPACE:-ac-t-1}\"\nurl=http://api.ac-t-1.svc.cluster.local/x\nkubectl -n ac-t-1 get hpa ml-platform-hpa\n"
        );
    }

    #[test]
    fn a_name_is_mentioned_only_as_a_whole_word() {
        assert!(mentions(
            "kubectl get hpa fraud-detector-hpa -n x",
            "fraud-detector-hpa"
        ));
        assert!(!mentions(
            "kubectl get hpa fraud-detector-hpa",
            "fraud-detector"
        ));
        assert!(mentions("deployment/fraud-detector;", "fraud-detector"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn served_requests_leave_out_the_servers_own_routes() {
        let text = "# HELP http_requests_total x\n# TYPE http_requests_total counter\nhttp_requests_total{route=\"/predict\",code=\"200\"} 120\nhttp_requests_total{route=\"/healthz\",code=\"200\"} 30\nhttp_requests_total{route=\"unmatched\",code=\"404\"} 5\n";
        assert_eq!(served_requests(text), Some(125));
        assert_eq!(served_requests("process_cpu_seconds_total 1\n"), None);
    }

    #[test]
    fn the_reference_runs_its_test_suite_against_the_cpu_hpa() {
        let submission = crate::submission::load_fixture("submissions/reference");
        let plan = Plan::pick(&submission).expect("a plan");
        assert_eq!(plan.script.path, "scripts/test_autoscaling.sh");
        let targets = plan.targets();
        assert_eq!(
            targets,
            [(
                "fraud-detector-hpa".to_string(),
                "fraud-detector-api".to_string()
            )]
        );
        assert!(cpu_demand(&submission) > SCRIPT_PODS);
        assert_eq!(own_namespaces(&submission), ["ml-platform", "ml-training"]);
    }
}

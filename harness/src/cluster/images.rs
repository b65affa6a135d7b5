//! Images the cluster can run. The seed's placeholder images become the calibrated
//! inference workload; images no node holds (the cluster never pulls) become the
//! workload or an idle pause container; references are compared as the kubelet
//! reports them ([`normalize_image`]).

use super::INFERENCE_IMAGE;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The seed's placeholder images: they neither burn CPU per request nor export metrics.
const PLACEHOLDER_IMAGES: &[&str] = &[
    "hashicorp/http-echo",
    "http-echo",
    "nginx",
    "busybox",
    "python",
];

fn is_placeholder(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    // Drop the tag (a ':' after the last '/') and a default-registry prefix.
    let repository = match without_digest.rfind(':') {
        Some(colon) if colon > without_digest.rfind('/').map_or(0, |slash| slash) => {
            &without_digest[..colon]
        }
        _ => without_digest,
    };
    let repository = repository
        .trim_start_matches("docker.io/")
        .trim_start_matches("library/");
    PLACEHOLDER_IMAGES.contains(&repository)
}

/// Replaces placeholder images in a pod spec by the inference workload, keeping the
/// container's resources, labels, ports and HTTP/TCP probes. What cannot work in a
/// shell-less image goes (command/args, exec hooks and exec probes, placeholder init
/// containers), and the server listens on the container's first declared port.
/// Returns one note per change.
pub fn substitute_placeholders(pod_spec: &mut Value) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(init) = pod_spec
        .get_mut("initContainers")
        .and_then(Value::as_array_mut)
    {
        let before = init.len();
        init.retain(|c| {
            !c.get("image")
                .and_then(Value::as_str)
                .is_some_and(is_placeholder)
        });
        if init.len() != before {
            notes.push(format!(
                "dropped {} placeholder init container(s)",
                before - init.len()
            ));
        }
    }
    let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) else {
        return notes;
    };
    for container in containers {
        let Some((name, image)) = name_and_image(container) else {
            continue;
        };
        if image.starts_with("localhost/autoscale-conformance/") {
            container["imagePullPolicy"] = json!("IfNotPresent");
            continue;
        }
        if !is_placeholder(&image) {
            continue;
        }
        notes.extend(into_inference_server(container, &name, &image));
    }
    notes
}

/// A container's name (or "?") and image, if it names one.
fn name_and_image(container: &Value) -> Option<(String, String)> {
    let image = container.get("image").and_then(Value::as_str)?.to_string();
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    Some((name, image))
}

/// Turns one container into the inference workload, keeping its resources, ports and
/// HTTP/TCP probes; what cannot work in a shell-less image goes. Returns the note.
fn into_inference_server(container: &mut Value, name: &str, image: &str) -> Option<String> {
    let map = container.as_object_mut()?;
    map.insert("image".into(), json!(INFERENCE_IMAGE));
    map.insert("imagePullPolicy".into(), json!("IfNotPresent"));
    let mut dropped = Vec::new();
    for field in ["command", "args"] {
        if map.remove(field).is_some() {
            dropped.push(field.to_string());
        }
    }
    if map
        .get("lifecycle")
        .is_some_and(|l| l.to_string().contains("\"exec\""))
    {
        map.remove("lifecycle");
        dropped.push("exec lifecycle hooks".into());
    }
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if map.get(probe).is_some_and(|p| p.get("exec").is_some()) {
            map.remove(probe);
            dropped.push(format!("exec {probe}"));
        }
    }
    let port = map
        .get("ports")
        .and_then(|p| p.get(0))
        .and_then(|p| p.get("containerPort"))
        .and_then(Value::as_i64);
    if let Some(port) = port.filter(|p| *p != 8080) {
        let env = map.entry("env").or_insert_with(|| json!([]));
        if let Some(env) = env.as_array_mut()
            && !env
                .iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some("LISTEN"))
        {
            env.push(json!({"name": "LISTEN", "value": format!("0.0.0.0:{port}")}));
        }
    }
    let mut note = format!("container {name}: image {image} replaced by {INFERENCE_IMAGE}");
    if !dropped.is_empty() {
        note.push_str(&format!(" (dropped {})", dropped.join(", ")));
    }
    Some(note)
}

/// Images the cluster cannot run (not on any real node: it never pulls) are replaced
/// so that the submission's pods still start with the resources it declared: the
/// first container becomes the inference workload (as a placeholder would), every
/// other one an idle pause container, and unavailable init containers go. Without
/// this, a sidecar such as a log shipper would keep the whole pod Pending here, where
/// a real cluster would pull it. Returns one note per change.
pub fn substitute_unavailable(pod_spec: &mut Value, available: &BTreeSet<String>) -> Vec<String> {
    let mut notes = Vec::new();
    let runnable = |image: &str| available.contains(&normalize_image(image));
    if let Some(init) = pod_spec
        .get_mut("initContainers")
        .and_then(Value::as_array_mut)
    {
        init.retain(|c| {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let keep = runnable(image);
            if !keep {
                notes.push(format!(
                    "init container image {image} is not in this cluster: dropped"
                ));
            }
            keep
        });
    }
    let pause = available
        .iter()
        .find(|i| i.starts_with("registry.k8s.io/pause:"))
        .cloned();
    let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) else {
        return notes;
    };
    for (index, container) in containers.iter_mut().enumerate() {
        let Some((name, image)) = name_and_image(container) else {
            continue;
        };
        if runnable(&image) {
            continue;
        }
        match (&pause, index) {
            (Some(pause), 1..) => {
                let Some(map) = container.as_object_mut() else {
                    continue;
                };
                map.insert("image".into(), json!(pause));
                map.insert("imagePullPolicy".into(), json!("IfNotPresent"));
                for field in [
                    "command",
                    "args",
                    "lifecycle",
                    "readinessProbe",
                    "livenessProbe",
                    "startupProbe",
                    "ports",
                ] {
                    map.remove(field);
                }
                notes.push(format!(
                    "container {name}: image {image} is not in this cluster (no pulls); replaced by the idle {pause}, resources kept"
                ));
            }
            _ => notes.extend(
                into_inference_server(container, &name, &image)
                    .map(|note| format!("{note} (the image is not in this cluster: no pulls)")),
            ),
        }
    }
    notes
}

/// The reference a kubelet reports for `image`: registry, repository and tag in full
/// (`nginx` is `docker.io/library/nginx:latest`); a digest is kept as given.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(digest) => format!("{full}@{digest}"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("hashicorp/http-echo:latest", true)]
    #[case("nginx:alpine", true)]
    #[case("docker.io/library/busybox:1.36", true)]
    #[case("python:3.9-slim", true)]
    #[case("busybox", true)]
    #[case("registry.example.com:5000/nginx-custom:1", false)]
    #[case("localhost/autoscale-conformance/inference-server:0.1.0", false)]
    #[case("ghcr.io/acme/model-server:2", false)]
    fn recognises_the_seed_placeholders(#[case] image: &str, #[case] placeholder: bool) {
        assert_eq!(is_placeholder(image), placeholder, "{image}");
    }

    #[test]
    fn our_own_images_are_kept_and_never_pulled() {
        let mut pod = json!({"containers": [{"name": "a", "image": INFERENCE_IMAGE, "imagePullPolicy": "Always", "args": ["x"]}]});
        assert!(substitute_placeholders(&mut pod).is_empty());
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][0]["args"][0], "x");
    }

    #[rstest]
    #[case("nginx", "docker.io/library/nginx:latest")]
    #[case("nginx:1.27", "docker.io/library/nginx:1.27")]
    #[case("fluent/fluent-bit:3.2", "docker.io/fluent/fluent-bit:3.2")]
    #[case(
        "cr.fluentbit.io/fluent/fluent-bit:3.2",
        "cr.fluentbit.io/fluent/fluent-bit:3.2"
    )]
    #[case("localhost:5000/app", "localhost:5000/app:latest")]
    #[case(
        "localhost/autoscale-conformance/loadgen:0.1.0",
        "localhost/autoscale-conformance/loadgen:0.1.0"
    )]
    #[case("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc")]
    fn images_are_normalized_as_the_kubelet_reports_them(#[case] image: &str, #[case] full: &str) {
        assert_eq!(normalize_image(image), full);
    }

    #[test]
    fn unavailable_images_become_the_workload_or_an_idle_sidecar_keeping_resources() {
        let available: BTreeSet<String> = [
            INFERENCE_IMAGE.to_string(),
            "registry.k8s.io/pause:3.10.2".to_string(),
        ]
        .into_iter()
        .collect();
        let mut pod_spec = json!({
            "initContainers": [{"name": "fetch-model", "image": "curlimages/curl:8"}],
            "containers": [
                {"name": "api", "image": "registry.example.com/team/fraud:2",
                 "ports": [{"containerPort": 9000}],
                 "resources": {"requests": {"cpu": "200m"}}},
                {"name": "log-shipper", "image": "cr.fluentbit.io/fluent/fluent-bit:3.2",
                 "args": ["-i", "dummy"], "readinessProbe": {"httpGet": {"port": 2020}}},
                {"name": "ok", "image": INFERENCE_IMAGE}
            ]
        });
        let notes = substitute_unavailable(&mut pod_spec, &available);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert_eq!(pod_spec["initContainers"], json!([]));
        let containers = &pod_spec["containers"];
        assert_eq!(containers[0]["image"], INFERENCE_IMAGE);
        assert_eq!(containers[0]["resources"]["requests"]["cpu"], "200m");
        assert_eq!(containers[0]["env"][0]["value"], "0.0.0.0:9000");
        assert_eq!(containers[1]["image"], "registry.k8s.io/pause:3.10.2");
        assert!(containers[1].get("args").is_none());
        assert!(containers[1].get("readinessProbe").is_none());
        assert!(
            containers[1].get("resources").is_none(),
            "no resources were declared, none are invented"
        );
        assert_eq!(containers[2]["image"], INFERENCE_IMAGE);
        assert!(notes[2].contains("fluent-bit") && notes[2].contains("resources kept"));
    }
}

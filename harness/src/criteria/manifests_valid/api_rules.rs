//! The API server's own validation of the built-in kinds students write, offline: the
//! rules that `kubectl apply` would meet after the schema (names and labels, containers,
//! ports, requests against limits, restart policies, Service ports, HPA metric targets),
//! each reported at its field in the API server's words (`pkg/apis/*/validation` of the
//! pinned Kubernetes). Fields whose type is wrong are the loader's; rules other checks
//! own (HPA replica bounds and behavior, PDB budgets, selectors against templates) are
//! theirs.

use super::PARSE_ERROR;
use crate::checks::{Collector, pointer_escape};
use crate::submission::Object;
use crate::submission::quantity::{parse_quantity, quantity_text};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One refusal: the field, and the API server's `field: detail` text.
struct Refusal {
    pointer: String,
    detail: String,
    /// Where in the file, when more precise than the field (the key of a map the API
    /// server names as a whole).
    at: Option<String>,
}

/// Reports every field of `object` that the API server's validation refuses.
pub(super) fn check(object: &Object, out: &mut Collector) {
    let value = object.value();
    let mut refusals = Vec::new();
    metadata(&object.kind, value, &mut refusals);
    match object.kind.as_str() {
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            non_negative(value, "/spec/replicas", &mut refusals);
        }
        "Service" => service(value, &mut refusals),
        "HorizontalPodAutoscaler" if object.api_version == "autoscaling/v2" => {
            hpa(value, &mut refusals);
        }
        "ResourceQuota" => quota(value, &mut refusals),
        "LimitRange" => limit_range(value, &mut refusals),
        "ScaledObject" | "ScaledJob" if object.api_version.starts_with("keda.sh/") => {
            keda(&object.kind, value, &mut refusals);
        }
        _ => {}
    }
    if let Some((template, restart)) = pod_template(&object.kind) {
        if let Some(labels) = value.pointer(&format!("{template}/metadata/labels")) {
            labels_valid(
                labels,
                &format!("{template}/metadata/labels"),
                &mut refusals,
            );
        }
        let spec = format!("{template}/spec");
        if template.is_empty() || value.pointer(&spec).is_some() {
            pod_spec(value, &spec, restart, &mut refusals);
        }
    }
    if let Some(labels) = value.pointer("/spec/selector/matchLabels") {
        labels_valid(labels, "/spec/selector/matchLabels", &mut refusals);
    }
    for refusal in refusals {
        out.fire_with_hint(
            &PARSE_ERROR,
            object.locate(refusal.at.as_deref().unwrap_or(&refusal.pointer)),
            format!(
                "{} is refused by the API server: {}: {}",
                object.describe(),
                field_path(&refusal.pointer),
                refusal.detail
            ),
            "fix the field as the API server's message says (`kubectl apply --dry-run=server` shows the same)",
        );
    }
}

/// The pod template of a built-in kind (its pointer, "" for a Pod itself) and the restart
/// policies its controller accepts.
fn pod_template(kind: &str) -> Option<(&'static str, RestartPolicies)> {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            Some(("/spec/template", RestartPolicies::Always))
        }
        "Job" => Some(("/spec/template", RestartPolicies::JobLike)),
        "CronJob" => Some(("/spec/jobTemplate/spec/template", RestartPolicies::JobLike)),
        "Pod" => Some(("", RestartPolicies::Any)),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum RestartPolicies {
    /// The workload controllers keep pods running: only `Always`.
    Always,
    /// Jobs run to completion: `OnFailure` or `Never`, and it must be written.
    JobLike,
    Any,
}

/// The name rule of each built-in kind (`ValidateObjectMeta` with the kind's name
/// function); custom resources only need a path segment, which YAML hardly breaks.
fn name_rule(kind: &str) -> Option<fn(&str) -> Vec<String>> {
    match kind {
        "Service" => Some(dns1035_label),
        "Namespace" => Some(dns1123_label),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "CronJob"
        | "Pod"
        | "ConfigMap"
        | "Secret"
        | "ServiceAccount"
        | "HorizontalPodAutoscaler"
        | "PodDisruptionBudget"
        | "ResourceQuota"
        | "LimitRange"
        | "PriorityClass" => Some(dns1123_subdomain),
        _ => None,
    }
}

fn metadata(kind: &str, value: &Value, out: &mut Vec<Refusal>) {
    let Some(rule) = name_rule(kind) else {
        return;
    };
    match value.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => {
            for detail in rule(name) {
                out.push(invalid("/metadata/name", name, &detail));
            }
            // A CronJob's name is a prefix of its Jobs' names, plus 11 characters.
            if kind == "CronJob" && name.len() > 52 {
                out.push(invalid(
                    "/metadata/name",
                    name,
                    "must be no more than 52 characters",
                ));
            }
        }
        _ if value.pointer("/metadata/generateName").is_none() => out.push(Refusal {
            pointer: "/metadata/name".into(),
            detail: "Required value: name or generateName is required".into(),
            at: None,
        }),
        _ => {}
    }
    if let Some(labels) = value.pointer("/metadata/labels") {
        labels_valid(labels, "/metadata/labels", out);
    }
}

/// Label keys are qualified names, values at most 63 characters of a restricted set.
fn labels_valid(labels: &Value, pointer: &str, out: &mut Vec<Refusal>) {
    let Some(labels) = labels.as_object() else {
        return;
    };
    // The API server names the map; the student looks for the label's line.
    for (key, value) in labels {
        let at = Some(format!("{pointer}/{}", pointer_escape(key)));
        for detail in qualified_name(key) {
            out.push(Refusal {
                at: at.clone(),
                ..invalid(pointer, key, &detail)
            });
        }
        if let Some(text) = value.as_str() {
            for detail in label_value(text) {
                out.push(Refusal {
                    at: at.clone(),
                    ..invalid(pointer, text, &detail)
                });
            }
        }
    }
}

fn pod_spec(value: &Value, spec: &str, restart: RestartPolicies, out: &mut Vec<Refusal>) {
    let containers = value
        .pointer(&format!("{spec}/containers"))
        .and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        out.push(required(&format!("{spec}/containers"), ""));
    }
    let mut names = BTreeSet::new();
    for list in ["initContainers", "containers"] {
        let items = value
            .pointer(&format!("{spec}/{list}"))
            .and_then(Value::as_array);
        for (i, container) in items.into_iter().flatten().enumerate() {
            let at = format!("{spec}/{list}/{i}");
            container_valid(container, &at, &mut names, out);
        }
    }
    let policy = value
        .pointer(&format!("{spec}/restartPolicy"))
        .and_then(Value::as_str);
    let at = format!("{spec}/restartPolicy");
    match (restart, policy) {
        (RestartPolicies::Always, Some(policy)) if policy != "Always" => {
            out.push(unsupported(&at, policy, &["Always"]));
        }
        (RestartPolicies::JobLike, None | Some("Always")) => {
            out.push(required(&at, "valid values: \"OnFailure\", \"Never\""));
        }
        (RestartPolicies::JobLike, Some(policy)) if !matches!(policy, "OnFailure" | "Never") => {
            out.push(unsupported(&at, policy, &["OnFailure", "Never"]));
        }
        (RestartPolicies::Any, Some(policy))
            if !matches!(policy, "Always" | "OnFailure" | "Never") =>
        {
            out.push(unsupported(&at, policy, &["Always", "Never", "OnFailure"]));
        }
        _ => {}
    }
}

fn container_valid(
    container: &Value,
    at: &str,
    names: &mut BTreeSet<String>,
    out: &mut Vec<Refusal>,
) {
    match container.get("name").and_then(Value::as_str) {
        None | Some("") => out.push(required(&format!("{at}/name"), "")),
        Some(name) => {
            unique_name(name, &format!("{at}/name"), dns1123_label, names, out);
        }
    }
    if container
        .get("image")
        .and_then(Value::as_str)
        .is_none_or(|image| image.trim().is_empty())
    {
        out.push(required(&format!("{at}/image"), ""));
    }
    let mut port_names = BTreeSet::new();
    let ports = container.get("ports").and_then(Value::as_array);
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let at = format!("{at}/ports/{i}");
        if let Some(name) = port.get("name").and_then(Value::as_str) {
            unique_name(name, &format!("{at}/name"), port_name, &mut port_names, out);
        }
        match port.get("containerPort").and_then(Value::as_i64) {
            None | Some(0) => out.push(required(&format!("{at}/containerPort"), "")),
            Some(number) => port_number(number, &format!("{at}/containerPort"), out),
        }
        protocol(port, &at, out);
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        for handler in ["httpGet", "tcpSocket"] {
            let pointer = format!("/{probe}/{handler}/port");
            let at = format!("{at}{pointer}");
            match container.pointer(&pointer) {
                Some(Value::String(name)) => {
                    for detail in port_name(name) {
                        out.push(invalid(&at, name, &detail));
                    }
                }
                Some(Value::Number(number)) => {
                    if let Some(number) = number.as_i64() {
                        port_number(number, &at, out);
                    }
                }
                _ => {}
            }
        }
    }
    resources(container, at, out);
}

/// `validateResourceRequirements`: no negative quantity, requests at most the limits,
/// and the resources that cannot be overcommitted (GPUs, hugepages) with limits equal to
/// their requests.
fn resources(container: &Value, at: &str, out: &mut Vec<Refusal>) {
    let map = |kind: &str| {
        container
            .pointer(&format!("/resources/{kind}"))
            .and_then(Value::as_object)
    };
    let quantity = |entries: Option<&Map<String, Value>>, name: &str| {
        entries
            .and_then(|e| e.get(name))
            .and_then(quantity_text)
            .and_then(|text| parse_quantity(&text).ok().map(|q| (text, q)))
    };
    let (requests, limits) = (map("requests"), map("limits"));
    for (kind, entries) in [("limits", limits), ("requests", requests)] {
        for name in entries.into_iter().flat_map(Map::keys) {
            if let Some((text, q)) = quantity(entries, name)
                && q < 0.0
            {
                let pointer = format!("{at}/resources/{kind}/{}", pointer_escape(name));
                out.push(invalid(
                    &pointer,
                    &text,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    for name in requests.into_iter().flat_map(Map::keys) {
        let Some((asked, request)) = quantity(requests, name) else {
            continue;
        };
        let pointer = format!("{at}/resources/requests");
        let overcommit = matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage");
        let refusal = match quantity(limits, name) {
            Some((limit_text, limit)) if !overcommit && request != limit => Some(invalid(
                &pointer,
                &asked,
                &format!("must be equal to {name} limit of {limit_text}"),
            )),
            Some((limit_text, limit)) if request > limit => Some(invalid(
                &pointer,
                &asked,
                &format!("must be less than or equal to {name} limit of {limit_text}"),
            )),
            None if !overcommit && map("limits").is_none_or(|l| !l.contains_key(name)) => {
                Some(required(
                    &format!("{at}/resources/limits"),
                    "Limit must be set for non overcommitable resources",
                ))
            }
            _ => None,
        };
        // The API server names the whole map; the student looks for the resource's line.
        out.extend(refusal.map(|r| Refusal {
            at: Some(format!("{pointer}/{}", pointer_escape(name))),
            ..r
        }));
    }
}

fn service(value: &Value, out: &mut Vec<Refusal>) {
    let kind = value
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let headless = value.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    let ports = value.pointer("/spec/ports").and_then(Value::as_array);
    if kind != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
        out.push(required("/spec/ports", ""));
    }
    let ports = ports.map_or(&[][..], Vec::as_slice);
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("/spec/ports/{i}");
        match port.get("name").and_then(Value::as_str) {
            None | Some("") if ports.len() > 1 => out.push(required(&format!("{at}/name"), "")),
            Some(name) if !name.is_empty() => {
                unique_name(name, &format!("{at}/name"), dns1123_label, &mut names, out);
            }
            _ => {}
        }
        match port.get("port").and_then(Value::as_i64) {
            None | Some(0) => out.push(required(&format!("{at}/port"), "")),
            Some(number) => port_number(number, &format!("{at}/port"), out),
        }
        match port.get("targetPort") {
            Some(Value::Number(number)) => {
                if let Some(number) = number.as_i64() {
                    port_number(number, &format!("{at}/targetPort"), out);
                }
            }
            Some(Value::String(name)) => {
                for detail in port_name(name) {
                    out.push(invalid(&format!("{at}/targetPort"), name, &detail));
                }
            }
            _ => {}
        }
        protocol(port, &at, out);
    }
}

/// `ValidateHorizontalPodAutoscaler`'s metric specs (replica bounds and behavior are
/// other rules'): the source the type names, and a target of the right shape.
fn hpa(value: &Value, out: &mut Vec<Refusal>) {
    for field in ["kind", "name"] {
        let pointer = format!("/spec/scaleTargetRef/{field}");
        if is_blank(value, &pointer) {
            out.push(required(&pointer, ""));
        }
    }
    let metrics = value.pointer("/spec/metrics").and_then(Value::as_array);
    for (i, metric) in metrics.into_iter().flatten().enumerate() {
        let at = format!("/spec/metrics/{i}");
        let Some(kind) = metric.get("type").and_then(Value::as_str) else {
            out.push(required(
                &format!("{at}/type"),
                "must specify a metric source type",
            ));
            continue;
        };
        let source_field = match kind {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            other => {
                out.push(unsupported(
                    &format!("{at}/type"),
                    other,
                    &[
                        "ContainerResource",
                        "External",
                        "Object",
                        "Pods",
                        "Resource",
                    ],
                ));
                continue;
            }
        };
        let Some(source) = metric.get(source_field) else {
            out.push(required(
                &format!("{at}/{source_field}"),
                "must populate information for the given metric source",
            ));
            continue;
        };
        let at = format!("{at}/{source_field}");
        metric_source(kind, source, &at, out);
    }
}

fn metric_source(kind: &str, source: &Value, at: &str, out: &mut Vec<Refusal>) {
    let Some(target) = source.get("target") else {
        out.push(required(
            &format!("{at}/target/type"),
            "must specify a metric target type",
        ));
        return;
    };
    let has = |field: &str| target.get(field).is_some_and(|v| !v.is_null());
    let target_at = format!("{at}/target");
    match target.get("type").and_then(Value::as_str) {
        None => out.push(required(
            &format!("{target_at}/type"),
            "must specify a metric target type",
        )),
        Some("Utilization" | "Value" | "AverageValue") => {}
        Some(other) => out.push(invalid(
            &format!("{target_at}/type"),
            other,
            "must be either Utilization, Value, or AverageValue",
        )),
    }
    for field in ["value", "averageValue"] {
        if let Some(text) = target.get(field).and_then(quantity_text)
            && parse_quantity(&text).is_ok_and(|q| q <= 0.0)
        {
            out.push(invalid(
                &format!("{target_at}/{field}"),
                &text,
                "must be positive",
            ));
        }
    }
    if let Some(utilization) = target.get("averageUtilization").and_then(Value::as_i64)
        && utilization < 1
    {
        out.push(invalid(
            &format!("{target_at}/averageUtilization"),
            &utilization.to_string(),
            "must be greater than 0",
        ));
    }
    match kind {
        "Resource" | "ContainerResource" => {
            if is_blank(source, "/name") {
                out.push(required(
                    &format!("{at}/name"),
                    "must specify a resource name",
                ));
            }
            if kind == "ContainerResource" && is_blank(source, "/container") {
                out.push(required(
                    &format!("{at}/container"),
                    "must specify a container",
                ));
            }
            if !has("averageUtilization") && !has("averageValue") {
                out.push(required(
                    &format!("{target_at}/averageUtilization"),
                    "must set either a target raw value or a target utilization",
                ));
            }
            if has("averageUtilization") && has("averageValue") {
                out.push(forbidden(
                    &format!("{target_at}/averageValue"),
                    "may not set both a target raw value and a target utilization",
                ));
            }
        }
        "Pods" if !has("averageValue") => out.push(required(
            &format!("{target_at}/averageValue"),
            "must specify a positive target averageValue",
        )),
        "Object" if !has("value") && !has("averageValue") => out.push(required(
            &format!("{target_at}/averageValue"),
            "must set either a target value or averageValue",
        )),
        "External" => {
            if !has("value") && !has("averageValue") {
                out.push(required(
                    &format!("{target_at}/averageValue"),
                    "must set either a target value for metric or a per-pod target",
                ));
            }
            if has("value") && has("averageValue") {
                out.push(forbidden(
                    &format!("{target_at}/value"),
                    "may not set both a target value for metric and a per-pod target",
                ));
            }
        }
        _ => {}
    }
    if matches!(kind, "Pods" | "Object" | "External") && is_blank(source, "/metric/name") {
        out.push(required(
            &format!("{at}/metric/name"),
            "must specify a metric name",
        ));
    }
}

/// No text, or empty text, at `pointer`: what the API server calls a missing value.
fn is_blank(value: &Value, pointer: &str) -> bool {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// A name in its format (`rule`), and not one `seen` before in the same list.
fn unique_name(
    name: &str,
    pointer: &str,
    rule: fn(&str) -> Vec<String>,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<Refusal>,
) {
    let details = rule(name);
    for detail in &details {
        out.push(invalid(pointer, name, detail));
    }
    if details.is_empty() && !seen.insert(name.to_string()) {
        out.push(Refusal {
            pointer: pointer.to_string(),
            detail: format!("Duplicate value: {name:?}"),
            at: None,
        });
    }
}

/// `ValidateResourceQuotaSpec`: a name without a domain is one the quota system tracks.
fn quota(value: &Value, out: &mut Vec<Refusal>) {
    let hard = value.pointer("/spec/hard").and_then(Value::as_object);
    for (name, quantity) in hard.into_iter().flatten() {
        let pointer = format!("/spec/hard/{}", pointer_escape(name));
        let standard = matches!(
            name.as_str(),
            "cpu"
                | "memory"
                | "ephemeral-storage"
                | "requests.cpu"
                | "requests.memory"
                | "requests.storage"
                | "requests.ephemeral-storage"
                | "limits.cpu"
                | "limits.memory"
                | "limits.ephemeral-storage"
                | "pods"
                | "resourcequotas"
                | "services"
                | "replicationcontrollers"
                | "secrets"
                | "persistentvolumeclaims"
                | "configmaps"
                | "services.nodeports"
                | "services.loadbalancers"
        ) || name.starts_with("hugepages-")
            || name.starts_with("requests.hugepages-");
        if name.contains('/') {
            for detail in qualified_name(name) {
                out.push(invalid(&pointer, name, &detail));
            }
        } else if !standard {
            out.push(invalid(
                &pointer,
                name,
                "must be a standard resource for quota",
            ));
        }
        if let Some(text) = quantity_text(quantity)
            && parse_quantity(&text).is_ok_and(|q| q < 0.0)
        {
            out.push(invalid(
                &pointer,
                &text,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// `validateLimitRangeTypeName`: Container, Pod, PersistentVolumeClaim, or a qualified type.
fn limit_range(value: &Value, out: &mut Vec<Refusal>) {
    let limits = value.pointer("/spec/limits").and_then(Value::as_array);
    for (i, limit) in limits.into_iter().flatten().enumerate() {
        let pointer = format!("/spec/limits/{i}/type");
        match limit.get("type").and_then(Value::as_str) {
            None | Some("") => out.push(required(&pointer, "")),
            Some("Container" | "Pod" | "PersistentVolumeClaim") => {}
            Some(kind) if kind.contains('/') && qualified_name(kind).is_empty() => {}
            Some(kind) => out.push(invalid(
                &pointer,
                kind,
                "must be a standard limit type or fully qualified",
            )),
        }
    }
}

/// KEDA's admission webhook (`ValidateTriggers`, `CheckReplicaCountBoundsAreValid`) and
/// its CRD's CEL rule on replica bounds.
fn keda(kind: &str, value: &Value, out: &mut Vec<Refusal>) {
    let webhook = |pointer: String, detail: String| Refusal {
        pointer,
        detail: format!("KEDA's admission webhook: {detail}"),
        at: None,
    };
    let triggers = value.pointer("/spec/triggers").and_then(Value::as_array);
    if triggers.is_none_or(Vec::is_empty) {
        out.push(webhook(
            "/spec/triggers".into(),
            "no triggers defined in the ScaledObject/ScaledJob".into(),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, trigger) in triggers.into_iter().flatten().enumerate() {
        let kind = trigger.get("type").and_then(Value::as_str).unwrap_or("");
        if trigger.get("useCachedMetrics") == Some(&Value::Bool(true))
            && matches!(kind, "cpu" | "memory" | "cron")
        {
            out.push(webhook(
                format!("/spec/triggers/{i}/useCachedMetrics"),
                format!("property \"useCachedMetrics\" is not supported for {kind:?} scaler"),
            ));
        }
        if let Some(name) = trigger.get("name").and_then(Value::as_str)
            && !name.is_empty()
            && !names.insert(name)
        {
            out.push(webhook(
                format!("/spec/triggers/{i}/name"),
                format!("triggerName {name:?} is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"),
            ));
        }
    }
    if kind == "ScaledObject" {
        let min = value
            .pointer("/spec/minReplicaCount")
            .and_then(Value::as_i64);
        let max = value
            .pointer("/spec/maxReplicaCount")
            .and_then(Value::as_i64)
            .unwrap_or(100);
        if let Some(min) = min
            && min > max
        {
            // The CRD's CEL rule is on `spec`; the student looks for the count.
            out.push(Refusal {
                pointer: "/spec".into(),
                detail:
                    "Invalid value: minReplicaCount must be less than or equal to maxReplicaCount"
                        .into(),
                at: Some("/spec/minReplicaCount".into()),
            });
        }
    }
}

fn non_negative(value: &Value, pointer: &str, out: &mut Vec<Refusal>) {
    if let Some(number) = value.pointer(pointer).and_then(Value::as_i64)
        && number < 0
    {
        out.push(invalid(
            pointer,
            &number.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

fn port_number(number: i64, pointer: &str, out: &mut Vec<Refusal>) {
    if !(1..=65535).contains(&number) {
        out.push(invalid(
            pointer,
            &number.to_string(),
            "must be between 1 and 65535, inclusive",
        ));
    }
}

fn protocol(port: &Value, at: &str, out: &mut Vec<Refusal>) {
    if let Some(protocol) = port.get("protocol").and_then(Value::as_str)
        && !matches!(protocol, "TCP" | "UDP" | "SCTP")
    {
        out.push(unsupported(
            &format!("{at}/protocol"),
            protocol,
            &["SCTP", "TCP", "UDP"],
        ));
    }
}

fn invalid(pointer: &str, value: &str, detail: &str) -> Refusal {
    Refusal {
        pointer: pointer.to_string(),
        detail: format!("Invalid value: {value:?}: {detail}"),
        at: None,
    }
}

fn required(pointer: &str, detail: &str) -> Refusal {
    Refusal {
        pointer: pointer.to_string(),
        detail: if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        },
        at: None,
    }
}

fn forbidden(pointer: &str, detail: &str) -> Refusal {
    Refusal {
        pointer: pointer.to_string(),
        detail: format!("Forbidden: {detail}"),
        at: None,
    }
}

fn unsupported(pointer: &str, value: &str, supported: &[&str]) -> Refusal {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Refusal {
        pointer: pointer.to_string(),
        detail: format!(
            "Unsupported value: {value:?}: supported values: {}",
            supported.join(", ")
        ),
        at: None,
    }
}

/// A JSON pointer as the API server names the field: `spec.containers[0].image`, map keys
/// with dots or slashes in brackets (`limits[nvidia.com/gpu]`).
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        if key.parse::<usize>().is_ok() || key.contains(['.', '/']) {
            path.push_str(&format!("[{key}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key);
        }
    }
    path
}

// The name and label formats of k8s.io/apimachinery/pkg/util/validation, with its messages.

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_dns1123_label(text: &str) -> bool {
    text.starts_with(is_alnum_lower)
        && text.ends_with(is_alnum_lower)
        && text.chars().all(|c| is_alnum_lower(c) || c == '-')
}

/// The API server's errors for a name of at most `max` characters that must be `valid`.
fn name_errors(name: &str, max: usize, valid: bool, format: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > max {
        errors.push(format!("must be no more than {max} characters"));
    }
    if !valid {
        errors.push(format.to_string());
    }
    errors
}

fn dns1123_label(name: &str) -> Vec<String> {
    name_errors(
        name,
        63,
        is_dns1123_label(name),
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    )
}

fn dns1123_subdomain(name: &str) -> Vec<String> {
    name_errors(
        name,
        253,
        name.split('.').all(is_dns1123_label),
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    )
}

fn dns1035_label(name: &str) -> Vec<String> {
    name_errors(
        name,
        63,
        is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    )
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_text(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn qualified_name(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push("prefix part must be non-empty".to_string());
        } else {
            errors.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errors.push("name part must be no more than 63 characters".to_string());
        }
        if !is_label_text(name) {
            errors.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string());
        }
    }
    errors
}

fn label_value(text: &str) -> Vec<String> {
    name_errors(
        text,
        63,
        text.is_empty() || is_label_text(text),
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    )
}

/// IANA_SVC_NAME, as `IsValidPortName` checks it.
fn port_name(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > 15 {
        errors.push("must be no more than 15 characters".to_string());
    }
    if !name.chars().all(|c| is_alnum_lower(c) || c == '-') {
        errors.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        errors.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errors.push("must not begin or end with a hyphen".to_string());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of;

    fn refusals(yaml: &str) -> Vec<(Option<u32>, String)> {
        let submission = submission_of("m.yaml", yaml);
        let mut out = Collector::default();
        for object in &submission.objects {
            check(object, &mut out);
        }
        out.findings
            .iter()
            .map(|f| (f.location.line, f.message.clone()))
            .collect()
    }

    #[test]
    fn a_valid_deployment_service_and_hpa_pass() {
        let found = refusals(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, labels: {app.kubernetes.io/name: api}}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n      - name: api\n        image: nginx\n        ports: [{name: http, containerPort: 8080}]\n        resources: {requests: {cpu: 100m, nvidia.com/gpu: 1}, limits: {cpu: 1, nvidia.com/gpu: 1}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  selector: {app: api}\n  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9090, targetPort: 9090}]\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: api}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}\n  minReplicas: 2\n  maxReplicas: 5\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}\n  - type: Pods\n    pods: {metric: {name: rps}, target: {type: AverageValue, averageValue: \"10\"}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: train}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: t, image: busybox}]\n",
        );
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn what_the_api_server_refuses_is_reported_at_its_field() {
        let found = refusals(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: FraudAPI, labels: {team: ml platform}}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: API_Server\n        ports: [{name: http-metrics-port-long, containerPort: 8080}]\n        resources: {requests: {cpu: \"2\", nvidia.com/gpu: 1}, limits: {cpu: 500m}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: 1svc}\nspec:\n  ports: [{port: 80, targetPort: this-name-is-way-too-long}, {port: 70000}]\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: FraudAPI}\n  maxReplicas: 5\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization}}\n  - type: Pods\n    pods: {metric: {name: rps}, target: {type: AverageValue}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: train}\nspec:\n  template:\n    spec:\n      containers: [{name: t, image: busybox}]\n",
        );
        let text = found
            .iter()
            .map(|(line, message)| format!("{}: {message}", line.unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("\n");
        for (line, expected) in [
            (
                3,
                "metadata.name: Invalid value: \"FraudAPI\": a lowercase RFC 1123 subdomain",
            ),
            (
                3,
                "metadata.labels: Invalid value: \"ml platform\": a valid label",
            ),
            (
                5,
                "spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0",
            ),
            (
                10,
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ),
            (
                12,
                "spec.template.spec.containers[0].name: Invalid value: \"API_Server\": a lowercase RFC 1123 label",
            ),
            (12, "spec.template.spec.containers[0].image: Required value"),
            (
                13,
                "spec.template.spec.containers[0].ports[0].name: Invalid value: \"http-metrics-port-long\": must be no more than 15 characters",
            ),
            (
                14,
                "spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 500m",
            ),
            (
                14,
                "spec.template.spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            ),
            (
                18,
                "metadata.name: Invalid value: \"1svc\": a DNS-1035 label",
            ),
            (20, "spec.ports[0].name: Required value"),
            (
                20,
                "spec.ports[0].targetPort: Invalid value: \"this-name-is-way-too-long\": must be no more than 15 characters",
            ),
            (
                20,
                "spec.ports[1].port: Invalid value: \"70000\": must be between 1 and 65535, inclusive",
            ),
            (
                30,
                "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
            ),
            (
                32,
                "spec.metrics[1].pods.target.averageValue: Required value: must specify a positive target averageValue",
            ),
            (
                39,
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ),
        ] {
            assert!(
                found.iter().any(|(l, m)| m.contains(expected)
                    && m.contains("is refused by the API server")
                    && *l == Some(line)),
                "expected line {line}: {expected}\nfound:\n{text}"
            );
        }
    }

    #[test]
    fn quota_names_limit_types_and_keda_triggers_as_the_cluster_checks_them() {
        let found = refusals(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard:\n    requests.cpu: \"4\"\n    requests.gpu: \"2\"\n    requests.nvidia.com/gpu: \"2\"\n    count/deployments.apps: \"5\"\n---\napiVersion: v1\nkind: LimitRange\nmetadata: {name: l}\nspec:\n  limits:\n  - type: Container\n  - type: container\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec:\n  scaleTargetRef: {name: d}\n  minReplicaCount: 5\n  maxReplicaCount: 3\n  triggers:\n  - {type: cron, name: t, useCachedMetrics: true, metadata: {}}\n  - {type: prometheus, name: t, metadata: {}}\n",
        );
        let messages: Vec<String> = found
            .iter()
            .map(|(line, m)| format!("{}: {m}", line.unwrap_or(0)))
            .collect();
        for expected in [
            "7: ResourceQuota q is refused by the API server: spec.hard[requests.gpu]: Invalid value: \"requests.gpu\": must be a standard resource for quota",
            "17: LimitRange l is refused by the API server: spec.limits[1].type: Invalid value: \"container\": must be a standard limit type or fully qualified",
            "24: ScaledObject s is refused by the API server: spec: Invalid value: minReplicaCount must be less than or equal to maxReplicaCount",
            "27: ScaledObject s is refused by the API server: spec.triggers[0].useCachedMetrics: KEDA's admission webhook: property \"useCachedMetrics\" is not supported for \"cron\" scaler",
            "28: ScaledObject s is refused by the API server: spec.triggers[1].name: KEDA's admission webhook: triggerName \"t\" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique",
        ] {
            assert!(
                messages.iter().any(|m| m == expected),
                "expected {expected}\nfound {messages:#?}"
            );
        }
        assert_eq!(messages.len(), 5, "{messages:#?}");
    }

    #[test]
    fn field_paths_read_as_the_api_servers() {
        assert_eq!(
            field_path("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu"),
            "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]"
        );
        assert_eq!(field_path("/metadata/name"), "metadata.name");
    }

    /// JSON built from the field names the rules read, so that the generated objects
    /// reach every rule; values of every type, including the wrong ones.
    fn any_field_tree() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let keys = prop::sample::select(vec![
            "spec",
            "template",
            "metadata",
            "labels",
            "name",
            "containers",
            "initContainers",
            "image",
            "ports",
            "containerPort",
            "protocol",
            "resources",
            "requests",
            "limits",
            "cpu",
            "nvidia.com/gpu",
            "restartPolicy",
            "replicas",
            "selector",
            "matchLabels",
            "metrics",
            "type",
            "resource",
            "pods",
            "target",
            "averageValue",
            "averageUtilization",
            "value",
            "targetPort",
            "port",
            "readinessProbe",
            "httpGet",
            "jobTemplate",
            "scaleTargetRef",
            "kind",
            "metric",
            "external",
            "object",
            "hard",
            "requests.gpu",
            "triggers",
            "useCachedMetrics",
            "minReplicaCount",
            "maxReplicaCount",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 ./_-]{0,70}".prop_map(Value::String),
            prop::sample::select(vec![
                "-1",
                "1e400",
                "500m",
                "0",
                "1Ei",
                "Utilization",
                "Never"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn no_object_makes_the_rules_panic(
            kind in proptest::sample::select(vec![
                "Deployment", "Service", "HorizontalPodAutoscaler", "Job", "CronJob", "Pod",
                "ResourceQuota", "LimitRange", "ScaledObject",
            ]),
            name in "[a-zA-Z0-9._-]{0,70}",
            labels in any_field_tree(),
            spec in any_field_tree(),
        ) {
            let object = serde_json::json!({
                "apiVersion": match kind {
                    "HorizontalPodAutoscaler" => "autoscaling/v2",
                    "ScaledObject" => "keda.sh/v1alpha1",
                    _ => "v1",
                },
                "kind": kind,
                "metadata": {"name": name, "labels": labels},
                "spec": spec,
            });
            let submission = submission_of("m.yaml", &object.to_string());
            proptest::prop_assert_eq!(submission.objects.len(), 1);
            let mut out = Collector::default();
            for object in &submission.objects {
                check(object, &mut out);
            }
        }
    }
}

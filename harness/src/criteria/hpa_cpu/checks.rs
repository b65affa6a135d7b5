//! Static checks of `hpa-cpu` and `hpa-scale-down`: an HPA scales a workload on
//! CPU utilization, within sane replica bounds, with requests to compute
//! utilization from, and scales down slowly.

use super::{SCALE_DOWN, SCALE_UP};
use crate::checks::{
    CheckInfo, Collector, Defaults, Index, Input, namespace_defaults, resource_metrics,
};
use crate::submission::Object;
use crate::submission::quantity::format_quantity;
use crate::verdict::Location;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

pub const TARGET_MISSING: CheckInfo = CheckInfo::error(
    "ref.hpa-target-missing",
    SCALE_UP,
    "every HPA's scaleTargetRef names a workload in the submission, and each ContainerResource metric a container of its pod template",
    "make scaleTargetRef kind/name match the Deployment's metadata.name (not its app label)",
);

pub const CPU_MISSING: CheckInfo = CheckInfo::error(
    "hpa.cpu-missing",
    SCALE_UP,
    "an autoscaling/v2 HPA scales a workload on CPU utilization",
    "add an HPA with a `type: Resource` metric on `cpu` (target type Utilization)",
)
.always_applicable();

pub const REQUESTS_MISSING: CheckInfo = CheckInfo::error(
    "hpa.requests-missing",
    SCALE_UP,
    "every container of an HPA target requests the resource its utilization metric is computed from (in its manifest, or by a LimitRange default of its namespace)",
    "set resources.requests for that resource on every container, sidecars included, or give the namespace a LimitRange defaultRequest for it",
);

pub const MIN_EXCEEDS_MAX: CheckInfo = CheckInfo::error(
    "hpa.min-exceeds-max",
    SCALE_UP,
    "1 ≤ minReplicas ≤ maxReplicas",
    "swap or fix minReplicas/maxReplicas",
);

pub const SERVING_MIN_REPLICAS: CheckInfo = CheckInfo::error(
    "hpa.serving-min-replicas",
    SCALE_UP,
    "HPAs of serving workloads keep minReplicas ≥ 2",
    "set minReplicas: 2 (or more) so one eviction or crash does not take the API down",
);

pub const SCALE_DOWN_UNSTABLE: CheckInfo = CheckInfo::error(
    "hpa.scale-down-unstable",
    SCALE_DOWN,
    "behavior.scaleDown.stabilizationWindowSeconds ≥ 60 (the exercise uses 300)",
    "set behavior.scaleDown.stabilizationWindowSeconds: 300",
);

pub const SCALE_DOWN_POLICY_UNBOUNDED: CheckInfo = CheckInfo::error(
    "hpa.scale-down-policy-unbounded",
    SCALE_DOWN,
    "scale-down is rate-limited by explicit policies (each Percent policy < 100)",
    "add behavior.scaleDown.policies, e.g. `type: Percent, value: 50, periodSeconds: 60`",
);

pub const CATALOGUE: &[CheckInfo] = &[
    TARGET_MISSING,
    CPU_MISSING,
    REQUESTS_MISSING,
    MIN_EXCEEDS_MAX,
    SERVING_MIN_REPLICAS,
    SCALE_DOWN_UNSTABLE,
    SCALE_DOWN_POLICY_UNBOUNDED,
];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    if !index.hpas.is_empty() {
        out.examined(&[
            TARGET_MISSING,
            REQUESTS_MISSING,
            MIN_EXCEEDS_MAX,
            SERVING_MIN_REPLICAS,
            SCALE_DOWN_UNSTABLE,
            SCALE_DOWN_POLICY_UNBOUNDED,
        ]);
    }
    cpu_metric_present(index, out);
    for (object, hpa) in &index.hpas {
        target_exists(index, object, hpa, out);
        replica_bounds(object, hpa, out);
        scale_down_window(object, hpa, out);
        scale_down_rate(object, hpa, out);
        let Some(target) = index.hpa_target(object, hpa) else {
            continue;
        };
        serving_min_replicas(index, object, hpa, target, out);
        metric_containers_exist(object, hpa, target, out);
        utilization_requests(index, object, hpa, target, out);
    }
}

fn target_exists(
    index: &Index<'_>,
    object: &Object,
    hpa: &HorizontalPodAutoscaler,
    out: &mut Collector,
) {
    if index.hpa_target(object, hpa).is_some() {
        return;
    }
    let target = &hpa.spec.scale_target_ref;
    out.fire(
        &TARGET_MISSING,
        object.locate("/spec/scaleTargetRef/name"),
        if target.name.is_empty() {
            format!(
                "{} has no scaleTargetRef name, so it scales nothing",
                object.describe()
            )
        } else {
            format!(
                "{} targets {} {}, which is not in the submission",
                object.describe(),
                target.kind,
                target.name
            )
        },
    );
}

/// A ContainerResource metric is computed from one named container of the
/// target's pods; if no container has that name the HPA can never compute it
/// (FailedGetContainerResourceMetric) and never scales on it.
fn metric_containers_exist(
    object: &Object,
    hpa: &HorizontalPodAutoscaler,
    target: &Object,
    out: &mut Collector,
) {
    let Some(template) = target.pod_template() else {
        return;
    };
    let existing = running_container_names(template.spec);
    for (i, metric) in hpa.spec.metrics.iter().flatten().enumerate() {
        let Some(resource) = &metric.container_resource else {
            continue;
        };
        if existing.iter().any(|name| name == &resource.container) {
            continue;
        }
        let names: Vec<String> = existing.iter().map(|n| format!("`{n}`")).collect();
        out.fire_with_hint(
            &TARGET_MISSING,
            object.locate(&format!("/spec/metrics/{i}/containerResource/container")),
            format!(
                "{} scales on the {} of container `{}`, but the pod template of {} has no container of that name, so the HPA can never compute the metric (FailedGetContainerResourceMetric)",
                object.describe(),
                resource.name,
                resource.container,
                target.describe()
            ),
            format!(
                "name one of the containers {} has: {}",
                target.describe(),
                if names.is_empty() { "(none)".to_string() } else { names.join(", ") }
            ),
        );
    }
}

/// The containers that run beside each other in a pod (and so have metrics):
/// the app containers and the native sidecars (init containers that restart always).
fn running_container_names(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<String> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .map(|c| c.name.clone())
        .collect()
}

fn cpu_metric_present(index: &Index<'_>, out: &mut Collector) {
    let on_cpu = index
        .hpas
        .iter()
        .any(|(_, h)| resource_metrics(h).iter().any(|m| m.name == "cpu"));
    if !on_cpu {
        out.fire(
            &CPU_MISSING,
            index
                .hpas
                .first()
                .map_or_else(|| Location::file(""), |(o, _)| o.location()),
            "no HorizontalPodAutoscaler scales on CPU utilization",
        );
    }
}

fn replica_bounds(object: &Object, hpa: &HorizontalPodAutoscaler, out: &mut Collector) {
    let spec = &hpa.spec;
    let min = spec.min_replicas.unwrap_or(1);
    if min > spec.max_replicas || spec.max_replicas < 1 {
        out.fire(
            &MIN_EXCEEDS_MAX,
            object.locate(if spec.min_replicas.is_some() {
                "/spec/minReplicas"
            } else {
                "/spec/maxReplicas"
            }),
            format!(
                "{} has minReplicas {min} and maxReplicas {}",
                object.describe(),
                spec.max_replicas
            ),
        );
    } else if min < 1 {
        out.fire_with_hint(
            &MIN_EXCEEDS_MAX,
            object.locate("/spec/minReplicas"),
            format!(
                "{} has minReplicas {min}; the API server rejects it unless the alpha HPAScaleToZero feature gate is on",
                object.describe()
            ),
            "keep minReplicas ≥ 1 on an HPA; scale to zero with a KEDA ScaledObject (minReplicaCount 0)",
        );
    }
}

fn scale_down_window(object: &Object, hpa: &HorizontalPodAutoscaler, out: &mut Collector) {
    let scale_down = hpa
        .spec
        .behavior
        .as_ref()
        .and_then(|b| b.scale_down.as_ref());
    if let Some(window) = scale_down.and_then(|s| s.stabilization_window_seconds)
        && window < 60
    {
        out.fire(
            &SCALE_DOWN_UNSTABLE,
            object.locate("/spec/behavior/scaleDown/stabilizationWindowSeconds"),
            format!("{} scales down after a {window} s stabilization window (at least 60 s, the exercise uses 300 s)", object.describe()),
        );
    }
}

fn scale_down_rate(object: &Object, hpa: &HorizontalPodAutoscaler, out: &mut Collector) {
    let scale_down = hpa
        .spec
        .behavior
        .as_ref()
        .and_then(|b| b.scale_down.as_ref());
    let select = scale_down
        .and_then(|s| s.select_policy.as_deref())
        .unwrap_or("Max");
    let policies = scale_down
        .and_then(|s| s.policies.as_ref())
        .filter(|p| !p.is_empty());
    let unbounded = match (select, policies) {
        ("Disabled", _) => None,
        (_, None) => Some("has no scaleDown policies, so the default (remove 100 % of surplus pods every 15 s) applies".to_string()),
        ("Min", Some(policies)) => {
            let bounded = policies.iter().any(|p| p.type_ != "Percent" || p.value < 100);
            (!bounded).then(|| "only has Percent scaleDown policies of 100 % or more".to_string())
        }
        (_, Some(policies)) => policies
            .iter()
            .find(|p| p.type_ == "Percent" && p.value >= 100)
            .map(|p| format!("has a scaleDown policy allowing {} % per {} s, which with selectPolicy {select} removes every surplus pod at once", p.value, p.period_seconds)),
    };
    let Some(why) = unbounded else {
        return;
    };
    let pointer = if policies.is_some() {
        "/spec/behavior/scaleDown/policies"
    } else {
        "/spec/behavior"
    };
    if object.api_version == "autoscaling/v1" {
        out.fire_with_hint(
            &SCALE_DOWN_POLICY_UNBOUNDED,
            object.locate(pointer),
            format!("{} {why}", object.describe()),
            "autoscaling/v1 has no behavior field: write the HPA as autoscaling/v2 and add behavior.scaleDown.policies, e.g. `type: Percent, value: 50, periodSeconds: 60`",
        );
    } else {
        out.fire(
            &SCALE_DOWN_POLICY_UNBOUNDED,
            object.locate(pointer),
            format!("{} {why}", object.describe()),
        );
    }
}

fn serving_min_replicas(
    index: &Index<'_>,
    object: &Object,
    hpa: &HorizontalPodAutoscaler,
    target: &Object,
    out: &mut Collector,
) {
    let min = hpa.spec.min_replicas.unwrap_or(1);
    if index.is_serving(target) && min < 2 {
        out.fire(
            &SERVING_MIN_REPLICAS,
            object.locate("/spec/minReplicas"),
            format!(
                "{} lets serving workload {} scale down to {min} replica(s)",
                object.describe(),
                target.describe()
            ),
        );
    }
}

/// Utilization is usage over request: every container the metric covers needs
/// a request for its resource, written or defaulted by a LimitRange.
fn utilization_requests(
    index: &Index<'_>,
    object: &Object,
    hpa: &HorizontalPodAutoscaler,
    target: &Object,
    out: &mut Collector,
) {
    let Some(template) = target.pod_template() else {
        return;
    };
    for metric in resource_metrics(hpa) {
        if metric.target_type != "Utilization" {
            continue;
        }
        let resource = &metric.name;
        let defaults = namespace_defaults(index.submission, target.namespace.as_deref());
        for (c, container) in template.spec.containers.iter().enumerate() {
            if metric
                .container
                .as_ref()
                .is_some_and(|n| n != &container.name)
            {
                continue;
            }
            let location = target.locate(&format!("{}/containers/{c}", template.pointer));
            match request_source(container, resource, &defaults) {
                RequestSource::Manifest => {}
                RequestSource::LimitRange(range, value) => out.note(
                    &REQUESTS_MISSING,
                    location,
                    format!(
                        "container `{}` of {} writes no {resource} request; {range} sets {} at admission, so {} can compute {resource} utilization",
                        container.name,
                        target.describe(),
                        format_quantity(resource, value),
                        object.describe()
                    ),
                    "nothing to fix; writing the request in the manifest keeps it visible if the LimitRange changes",
                ),
                RequestSource::Missing => out.fire(
                    &REQUESTS_MISSING,
                    location,
                    format!(
                        "{} scales {} on {resource} utilization, but container `{}` sets no {resource} request and no LimitRange in its namespace defaults one",
                        object.describe(),
                        target.describe(),
                        container.name
                    ),
                ),
            }
        }
    }
}

/// Where a container's request for a resource comes from, if anywhere.
enum RequestSource {
    /// Written in the manifest (`requests`, or a `limits` entry the API server copies).
    Manifest,
    /// Filled in at admission by a LimitRange: (its description, the value).
    LimitRange(String, f64),
    Missing,
}

fn request_source(container: &Container, resource: &str, defaults: &Defaults) -> RequestSource {
    let resources = container.resources.as_ref();
    let written =
        |list: Option<&BTreeMap<String, Quantity>>| list.is_some_and(|l| l.contains_key(resource));
    if written(resources.and_then(|r| r.requests.as_ref()))
        || written(resources.and_then(|r| r.limits.as_ref()))
    {
        return RequestSource::Manifest;
    }
    match (
        defaults.request.get(resource),
        defaults.request_source.get(resource),
    ) {
        (Some(value), Some(source)) => RequestSource::LimitRange(source.clone(), *value),
        _ => RequestSource::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::limit_range_submission;
    use rstest::rstest;

    #[rstest]
    #[case(r#"{}"#, "min: {cpu: 100m}", "limitrange")]
    #[case(r#"{}"#, "min: {memory: 128Mi}", "missing")]
    #[case(r#"{"limits": {"cpu": "300m"}}"#, "min: {memory: 128Mi}", "manifest")]
    #[case(
        r#"{"requests": {"memory": "64Mi"}}"#,
        "defaultRequest: {cpu: 50m}",
        "limitrange"
    )]
    #[case(r#"{"requests": {"cpu": "10m"}}"#, "min: {memory: 128Mi}", "manifest")]
    fn a_request_comes_from_the_manifest_or_a_limit_range(
        #[case] resources: &str,
        #[case] item: &str,
        #[case] source: &str,
    ) {
        let submission = limit_range_submission(&format!("      {item}\n"));
        let defaults = namespace_defaults(&submission, Some("ml"));
        let container: Container =
            serde_json::from_str(&format!(r#"{{"name": "c", "resources": {resources}}}"#)).unwrap();
        let found = match request_source(&container, "cpu", &defaults) {
            RequestSource::Manifest => "manifest",
            RequestSource::LimitRange(range, _) => {
                assert_eq!(range, "LimitRange ml/lr");
                "limitrange"
            }
            RequestSource::Missing => "missing",
        };
        assert_eq!(found, source, "{resources} with {item}");
    }
}

//! Static checks of `vpa`: a VPA targets a workload of the submission, once, with
//! valid update modes, container policies and bounds, and does not fight an HPA over
//! the same resource.

use super::ID;
use crate::checks::{
    CheckInfo, Collector, Index, Input, identity, pointer_escape, resource_metrics,
};
use crate::submission::Object;
use crate::submission::crds::{VerticalPodAutoscaler, VpaContainerPolicy};
use crate::submission::quantity::parse_quantity;
use crate::verdict::Location;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use std::collections::{BTreeMap, BTreeSet};

pub const TARGET_MISSING: CheckInfo = CheckInfo::error(
    "ref.vpa-target-missing",
    ID,
    "every VPA's targetRef names a workload in the submission, and each container policy a container of its pod template",
    "make targetRef kind/name match the workload's metadata.name",
);

pub const MISSING: CheckInfo = CheckInfo::error(
    "vpa.missing",
    ID,
    "a VerticalPodAutoscaler (autoscaling.k8s.io/v1) is configured",
    "add a VPA for a workload whose resource needs drift (e.g. the training job)",
)
.always_applicable();

pub const UPDATE_MODE_INVALID: CheckInfo = CheckInfo::error(
    "vpa.update-mode-invalid",
    ID,
    "updatePolicy.updateMode is one of Off, Initial, Recreate, InPlaceOrRecreate, Auto",
    "use one of the documented update modes (case-sensitive)",
);

pub const MIN_EXCEEDS_MAX: CheckInfo = CheckInfo::error(
    "vpa.min-exceeds-max",
    ID,
    "minAllowed ≤ maxAllowed for every resource of every container policy",
    "lower minAllowed or raise maxAllowed; compare quantities in the same unit",
);

pub const CONTROLLED_RESOURCES_INVALID: CheckInfo = CheckInfo::error(
    "vpa.controlled-resources-invalid",
    ID,
    "controlledResources lists only cpu and memory; controlledValues and mode are valid",
    "VPA controls only cpu and memory: remove other resources such as nvidia.com/gpu",
);

pub const HPA_CONFLICT: CheckInfo = CheckInfo::error(
    "vpa.hpa-conflict",
    ID,
    "no VPA in Auto/Recreate/Initial mode controls a resource an HPA on the same target scales on",
    "set the VPA to updateMode \"Off\", restrict its controlledResources, or scale the HPA on a custom metric",
);

pub const DUPLICATE_TARGET: CheckInfo = CheckInfo::error(
    "vpa.duplicate-target",
    ID,
    "at most one VPA per target workload",
    "keep one VPA per workload; delete the others",
);

pub const CATALOGUE: &[CheckInfo] = &[
    TARGET_MISSING,
    MISSING,
    UPDATE_MODE_INVALID,
    MIN_EXCEEDS_MAX,
    CONTROLLED_RESOURCES_INVALID,
    HPA_CONFLICT,
    DUPLICATE_TARGET,
];

pub(crate) const VPA_MODES: &[&str] = &["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    if index.vpas.is_empty() {
        out.fire(
            &MISSING,
            Location::file(""),
            "no VerticalPodAutoscaler in the submission",
        );
    } else {
        out.examined(&[
            TARGET_MISSING,
            UPDATE_MODE_INVALID,
            MIN_EXCEEDS_MAX,
            CONTROLLED_RESOURCES_INVALID,
            HPA_CONFLICT,
            DUPLICATE_TARGET,
        ]);
    }
    let mut by_target: BTreeMap<(String, String, Option<String>), &Object> = BTreeMap::new();
    for (object, vpa) in &index.vpas {
        target_exists(index, object, vpa, out);
        update_mode_valid(object, vpa, out);
        for (i, policy) in container_policies(vpa).iter().enumerate() {
            bounds_ordered(object, i, policy, out);
            controls_valid(object, i, policy, out);
        }
        let Some(target) = index.vpa_target(object, vpa) else {
            continue;
        };
        first_on_target(&mut by_target, object, target, out);
        policy_containers_exist(object, vpa, target, out);
        no_hpa_conflict(index, object, vpa, target, out);
    }
}

/// The first VPA of each target (in `by_target`) is its one; later ones are duplicates.
fn first_on_target<'a>(
    by_target: &mut BTreeMap<(String, String, Option<String>), &'a Object>,
    object: &'a Object,
    target: &Object,
    out: &mut Collector,
) {
    if let Some(first) = by_target.get(&identity(target)) {
        out.fire(
            &DUPLICATE_TARGET,
            object.locate("/spec/targetRef"),
            format!(
                "{} and {} (at {}) both target {}",
                object.describe(),
                first.describe(),
                first.location(),
                target.describe()
            ),
        );
    } else {
        by_target.insert(identity(target), object);
    }
}

/// A container policy applies to the container it names; naming none of the
/// target's containers, the VPA silently ignores it (its bounds and modes never apply).
fn policy_containers_exist(
    object: &Object,
    vpa: &VerticalPodAutoscaler,
    target: &Object,
    out: &mut Collector,
) {
    let Some(template) = target.pod_template() else {
        return;
    };
    let existing: Vec<&str> = template
        .spec
        .containers
        .iter()
        .chain(template.spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    for (i, policy) in container_policies(vpa).iter().enumerate() {
        let Some(name) = policy.container_name.as_deref() else {
            continue;
        };
        if name == "*" || existing.contains(&name) {
            continue;
        }
        let names: Vec<String> = existing.iter().map(|n| format!("`{n}`")).collect();
        out.fire_with_hint(
            &TARGET_MISSING,
            object.locate(&format!("/spec/resourcePolicy/containerPolicies/{i}/containerName")),
            format!(
                "{} has a container policy for `{name}`, but the pod template of {} has no container of that name, so the VPA ignores the policy (its bounds and mode never apply)",
                object.describe(),
                target.describe()
            ),
            format!(
                "name one of the containers {} has ({}), or `*` for all of them",
                target.describe(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        );
    }
}

pub(crate) fn container_policies(vpa: &VerticalPodAutoscaler) -> &[VpaContainerPolicy] {
    vpa.spec
        .resource_policy
        .as_ref()
        .map(|p| p.container_policies.as_slice())
        .unwrap_or_default()
}

pub(crate) fn update_mode(vpa: &VerticalPodAutoscaler) -> Option<String> {
    vpa.spec
        .update_policy
        .as_ref()
        .and_then(|p| p.update_mode.clone())
}

fn target_exists(
    index: &Index<'_>,
    object: &Object,
    vpa: &VerticalPodAutoscaler,
    out: &mut Collector,
) {
    if index.vpa_target(object, vpa).is_some() {
        return;
    }
    let (kind, name) = vpa
        .spec
        .target_ref
        .as_ref()
        .map_or(("(none)".to_string(), String::new()), |t| {
            (t.kind.clone().unwrap_or_default(), t.name.clone())
        });
    out.fire(
        &TARGET_MISSING,
        object.locate("/spec/targetRef/name"),
        if name.is_empty() {
            format!(
                "{} has no targetRef name, so it recommends for nothing",
                object.describe()
            )
        } else {
            format!(
                "{} targets {kind} {name}, which is not in the submission",
                object.describe()
            )
        },
    );
}

fn update_mode_valid(object: &Object, vpa: &VerticalPodAutoscaler, out: &mut Collector) {
    if let Some(mode) = update_mode(vpa)
        && !VPA_MODES.contains(&mode.as_str())
    {
        out.fire(
            &UPDATE_MODE_INVALID,
            object.locate("/spec/updatePolicy/updateMode"),
            format!(
                "{} has updateMode \"{mode}\"; valid modes are {}",
                object.describe(),
                VPA_MODES.join(", ")
            ),
        );
    }
}

/// minAllowed ≤ maxAllowed, resource by resource, for container policy `i`.
fn bounds_ordered(object: &Object, i: usize, policy: &VpaContainerPolicy, out: &mut Collector) {
    let (Some(min), Some(max)) = (&policy.min_allowed, &policy.max_allowed) else {
        return;
    };
    let container = policy.container_name.as_deref().unwrap_or("*");
    let base = format!("/spec/resourcePolicy/containerPolicies/{i}");
    for (resource, low) in min {
        let Some(high) = max.get(resource) else {
            continue;
        };
        match (parse_quantity(&low.0), parse_quantity(&high.0)) {
            (Ok(l), Ok(h)) if l > h => out.fire(
                &MIN_EXCEEDS_MAX,
                object.locate(&format!("{base}/minAllowed/{}", pointer_escape(resource))),
                format!(
                    "{} container {container}: minAllowed {resource} {} is above maxAllowed {}",
                    object.describe(),
                    low.0,
                    high.0
                ),
            ),
            // Unparsable quantities are input.parse-error (see manifests_valid).
            _ => {}
        }
    }
}

/// Container policy `i` controls only cpu and memory, with valid values and mode.
fn controls_valid(object: &Object, i: usize, policy: &VpaContainerPolicy, out: &mut Collector) {
    let container = policy.container_name.as_deref().unwrap_or("*");
    let base = format!("/spec/resourcePolicy/containerPolicies/{i}");
    for (j, resource) in policy.controlled_resources.iter().flatten().enumerate() {
        if resource != "cpu" && resource != "memory" {
            out.fire(
                &CONTROLLED_RESOURCES_INVALID,
                object.locate(&format!("{base}/controlledResources/{j}")),
                format!("{} container {container} lists `{resource}` in controlledResources; VPA controls only cpu and memory", object.describe()),
            );
        }
    }
    if let Some(values) = &policy.controlled_values
        && values != "RequestsAndLimits"
        && values != "RequestsOnly"
    {
        out.fire(
            &CONTROLLED_RESOURCES_INVALID,
            object.locate(&format!("{base}/controlledValues")),
            format!("{} container {container} has controlledValues \"{values}\" (RequestsAndLimits or RequestsOnly)", object.describe()),
        );
    }
    if let Some(container_mode) = &policy.mode
        && container_mode != "Auto"
        && container_mode != "Off"
    {
        out.fire(
            &CONTROLLED_RESOURCES_INVALID,
            object.locate(&format!("{base}/mode")),
            format!(
                "{} container {container} has mode \"{container_mode}\" (Auto or Off)",
                object.describe()
            ),
        );
    }
}

/// A VPA that applies its recommendations must not change the requests an HPA
/// on the same workload computes utilization from.
fn no_hpa_conflict(
    index: &Index<'_>,
    object: &Object,
    vpa: &VerticalPodAutoscaler,
    target: &Object,
    out: &mut Collector,
) {
    for (hpa_object, hpa) in index.hpas_on(target) {
        let Some((effective_mode, shared)) = hpa_conflict(vpa, hpa) else {
            continue;
        };
        let shared = shared.iter().cloned().collect::<Vec<_>>().join("/");
        out.fire(
            &HPA_CONFLICT,
            object.locate("/spec/updatePolicy/updateMode"),
            format!(
                "{} ({effective_mode}) changes {shared} requests of {} while {} scales it on {shared} utilization: the two fight",
                object.describe(),
                target.describe(),
                hpa_object.describe(),
            ),
        );
    }
}

/// Whether a VPA and an HPA on the same workload fight: the VPA applies its
/// recommendations (any valid mode but Off) to resources the HPA scales on. Returns the
/// VPA's effective mode and those resources. Shared with the live probe, which records
/// what the two do.
pub(crate) fn hpa_conflict(
    vpa: &VerticalPodAutoscaler,
    hpa: &HorizontalPodAutoscaler,
) -> Option<(String, BTreeSet<String>)> {
    let effective_mode = update_mode(vpa).unwrap_or_else(|| "Auto".to_string());
    if effective_mode == "Off" || !VPA_MODES.contains(&effective_mode.as_str()) {
        return None;
    }
    let controlled = controlled_resources(vpa);
    let shared: BTreeSet<String> = resource_metrics(hpa)
        .into_iter()
        .map(|m| m.name)
        .filter(|name| controlled.contains(name))
        .collect();
    (!shared.is_empty()).then_some((effective_mode, shared))
}

/// The resources a VPA changes: cpu and memory unless its active container
/// policies name others.
pub(crate) fn controlled_resources(vpa: &VerticalPodAutoscaler) -> BTreeSet<String> {
    let policies = container_policies(vpa);
    let active: Vec<_> = policies
        .iter()
        .filter(|p| p.mode.as_deref() != Some("Off"))
        .collect();
    let defaults = || {
        ["cpu".to_string(), "memory".to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>()
    };
    if policies.is_empty()
        || active
            .iter()
            .any(|p| p.container_name.as_deref() == Some("*"))
            && active.iter().all(|p| p.controlled_resources.is_none())
    {
        return defaults();
    }
    if active.is_empty() {
        // Every named container is Off; others still get the defaults.
        return defaults();
    }
    let mut resources = BTreeSet::new();
    for policy in active {
        match &policy.controlled_resources {
            Some(list) => resources.extend(list.iter().cloned()),
            None => resources.extend(defaults()),
        }
    }
    resources
}

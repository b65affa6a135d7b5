//! Static checks of `gpu-pool`: GPU training workloads tolerate the GPU taint
//! and select the GPU node pool; CPU serving workloads stay off it.

use super::ID;
use crate::checks::{CheckInfo, Collector, Index, Input, is_training};
use crate::submission::{Object, PodTemplate};
use k8s_openapi::api::core::v1::PodSpec;

pub const TRAINING_NOT_ON_POOL: CheckInfo = CheckInfo::error(
    "gpu.training-not-on-pool",
    ID,
    "GPU training workloads tolerate the nvidia.com/gpu taint and select the GPU node pool",
    "add a toleration for nvidia.com/gpu and a nodeSelector/required node affinity for the GPU pool",
);

pub const SERVING_ON_POOL: CheckInfo = CheckInfo::error(
    "gpu.serving-on-pool",
    ID,
    "CPU serving workloads neither tolerate the GPU taint nor select the GPU pool",
    "remove the GPU toleration and GPU node selection from the serving workload",
);

pub const CATALOGUE: &[CheckInfo] = &[TRAINING_NOT_ON_POOL, SERVING_ON_POOL];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    if index
        .workloads
        .iter()
        .any(|w| is_training(w) || w.pod_template().is_some_and(|t| requests_gpu(t.spec)))
    {
        out.examined(&[TRAINING_NOT_ON_POOL]);
    }
    if index.workloads.iter().any(|w| index.is_serving(w)) {
        out.examined(&[SERVING_ON_POOL]);
    }
    for workload in &index.workloads {
        let Some(template) = workload.pod_template() else {
            continue;
        };
        training_on_pool(workload, &template, out);
        serving_off_pool(index, workload, &template, out);
    }
}

fn training_on_pool(workload: &Object, template: &PodTemplate<'_>, out: &mut Collector) {
    let spec = template.spec;
    let (tolerates, selects) = (tolerates_gpu(spec), selects_gpu_pool(spec));
    let gpu_training = requests_gpu(spec) || (is_training(workload) && (tolerates || selects));
    if !gpu_training || (tolerates && selects) {
        return;
    }
    let mut missing = Vec::new();
    if !tolerates {
        missing.push("does not tolerate the nvidia.com/gpu taint");
    }
    if !selects {
        missing.push("does not select the GPU pool (nodeSelector or required node affinity)");
    }
    let pointer = if tolerates {
        "/affinity"
    } else {
        "/tolerations"
    };
    out.fire(
        &TRAINING_NOT_ON_POOL,
        workload.locate(&format!("{}{pointer}", template.pointer)),
        format!(
            "GPU training workload {} {}",
            workload.describe(),
            missing.join(" and ")
        ),
    );
}

fn serving_off_pool(
    index: &Index<'_>,
    workload: &Object,
    template: &PodTemplate<'_>,
    out: &mut Collector,
) {
    let spec = template.spec;
    let (tolerates, selects) = (tolerates_gpu(spec), selects_gpu_pool(spec));
    if !index.is_serving(workload)
        || requests_gpu(spec)
        || is_training(workload)
        || !(tolerates || selects)
    {
        return;
    }
    let pointer = if selects {
        "/nodeSelector"
    } else {
        "/tolerations"
    };
    let location = workload.locate(&format!("{}{pointer}", template.pointer));
    let location = if location.line.is_some() {
        location
    } else {
        workload.locate(template.pointer)
    };
    out.fire(
        &SERVING_ON_POOL,
        location,
        format!(
            "serving workload {} requests no GPU but is placed on the GPU pool",
            workload.describe()
        ),
    );
}

fn is_gpu_resource(name: &str) -> bool {
    name.ends_with("/gpu") || name.contains("nvidia.com/")
}

fn requests_gpu(spec: &PodSpec) -> bool {
    spec.containers.iter().any(|c| {
        c.resources.as_ref().is_some_and(|r| {
            r.requests
                .iter()
                .chain(r.limits.iter())
                .flatten()
                .any(|(name, _)| is_gpu_resource(name))
        })
    })
}

fn tolerates_gpu(spec: &PodSpec) -> bool {
    spec.tolerations.iter().flatten().any(|t| {
        let key = t.key.as_deref().unwrap_or("");
        let exists = t.operator.as_deref() == Some("Exists");
        (key.is_empty() && exists) || key == "nvidia.com/gpu" || key.contains("gpu")
    })
}

fn mentions_gpu(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("gpu") || lower.contains("accelerator")
}

fn selects_gpu_pool(spec: &PodSpec) -> bool {
    let by_selector = spec
        .node_selector
        .iter()
        .flatten()
        .any(|(k, v)| mentions_gpu(k) || mentions_gpu(v));
    let by_affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|required| {
            required.node_selector_terms.iter().any(|term| {
                term.match_expressions.iter().flatten().any(|e| {
                    matches!(e.operator.as_str(), "In" | "Exists")
                        && (mentions_gpu(&e.key)
                            || e.values.iter().flatten().any(|v| mentions_gpu(v)))
                })
            })
        });
    by_selector || by_affinity
}

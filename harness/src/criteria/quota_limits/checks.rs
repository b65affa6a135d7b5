//! Static checks of `quota-limits`: the ML namespace has a ResourceQuota and a
//! LimitRange, the LimitRange's defaults lie within its bounds, and the quota
//! admits every workload's pods at full scale.

use super::ID;
use crate::checks::{
    CheckInfo, Collector, Defaults, Index, Input, namespace_defaults, pod_resources, pointer_escape,
};
use crate::submission::quantity::{format_quantity, parse_quantity};
use crate::submission::{Object, PodTemplate, Typed};
use crate::verdict::{Evidence, Location};
use k8s_openapi::api::core::v1::{Container, LimitRangeItem, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, BTreeSet};

pub const MISSING: CheckInfo = CheckInfo::error(
    "quota.missing",
    ID,
    "the ML namespace has a ResourceQuota and a LimitRange",
    "add the ResourceQuota and LimitRange of Task 1.2",
)
.always_applicable();

pub const LIMITRANGE_DEFAULT_OUT_OF_RANGE: CheckInfo = CheckInfo::error(
    "quota.limitrange-default-out-of-range",
    ID,
    "LimitRange default and defaultRequest lie within its min and max (defaultRequest ≤ default)",
    "move the default values inside [min, max]",
);

pub const HEADROOM_EXCEEDED: CheckInfo = CheckInfo::error(
    "quota.headroom-exceeded",
    ID,
    "Σ maxReplicas × per-pod requests/limits of the namespace's workloads fits its ResourceQuota, and every container has the requests/limits the quota tracks (after LimitRange defaults)",
    "lower maxReplicas/maxReplicaCount or requests, or raise the quota",
);

pub const CATALOGUE: &[CheckInfo] = &[MISSING, LIMITRANGE_DEFAULT_OUT_OF_RANGE, HEADROOM_EXCEEDED];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    let quotas = index.objects_where(|t| matches!(t, Typed::ResourceQuota(_)));
    let ranges = index.objects_where(|t| matches!(t, Typed::LimitRange(_)));
    if quotas.is_empty() {
        out.fire(
            &MISSING,
            Location::file(""),
            "no ResourceQuota in the submission",
        );
    } else {
        out.examined(&[HEADROOM_EXCEEDED]);
    }
    if ranges.is_empty() {
        out.fire(
            &MISSING,
            Location::file(""),
            "no LimitRange in the submission",
        );
    } else {
        out.examined(&[LIMITRANGE_DEFAULT_OUT_OF_RANGE]);
    }
    for object in &ranges {
        let Typed::LimitRange(range) = &object.typed else {
            continue;
        };
        for (i, item) in range.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            limit_range_defaults_in_range(object, i, item, out);
        }
    }
    for object in &quotas {
        let Typed::ResourceQuota(quota) = &object.typed else {
            continue;
        };
        if let Some(hard) = quota.spec.as_ref().and_then(|s| s.hard.as_ref()) {
            quota_headroom(index, object, hard, out);
        }
    }
}

/// Item `i` of a LimitRange: default and defaultRequest within [min, max], and
/// defaultRequest ≤ default.
fn limit_range_defaults_in_range(
    object: &Object,
    i: usize,
    item: &LimitRangeItem,
    out: &mut Collector,
) {
    let value = |map: &Option<BTreeMap<String, Quantity>>, r: &str| {
        map.as_ref()
            .and_then(|m| m.get(r))
            .and_then(|q| parse_quantity(&q.0).ok())
    };
    let mut resources: BTreeSet<&String> = BTreeSet::new();
    resources.extend(item.default.iter().flatten().map(|(k, _)| k));
    resources.extend(item.default_request.iter().flatten().map(|(k, _)| k));
    for resource in resources {
        let (min, max) = (value(&item.min, resource), value(&item.max, resource));
        for (field, v) in [
            ("default", value(&item.default, resource)),
            ("defaultRequest", value(&item.default_request, resource)),
        ] {
            let Some(v) = v else { continue };
            let pointer = format!("/spec/limits/{i}/{field}/{}", pointer_escape(resource));
            if let Some(min) = min.filter(|m| v < *m) {
                out.fire(
                    &LIMITRANGE_DEFAULT_OUT_OF_RANGE,
                    object.locate(&pointer),
                    format!(
                        "{} {field} {resource} {} is below its min {}",
                        object.describe(),
                        format_quantity(resource, v),
                        format_quantity(resource, min)
                    ),
                );
            }
            if let Some(max) = max.filter(|m| v > *m) {
                out.fire(
                    &LIMITRANGE_DEFAULT_OUT_OF_RANGE,
                    object.locate(&pointer),
                    format!(
                        "{} {field} {resource} {} is above its max {}",
                        object.describe(),
                        format_quantity(resource, v),
                        format_quantity(resource, max)
                    ),
                );
            }
        }
        if let (Some(request), Some(limit)) = (
            value(&item.default_request, resource),
            value(&item.default, resource),
        ) && request > limit
        {
            out.fire(
                &LIMITRANGE_DEFAULT_OUT_OF_RANGE,
                object.locate(&format!(
                    "/spec/limits/{i}/defaultRequest/{}",
                    pointer_escape(resource)
                )),
                format!(
                    "{} defaultRequest {resource} is above default (limit) {resource}",
                    object.describe()
                ),
            );
        }
    }
}

/// What a namespace's workloads need at full scale.
#[derive(Default)]
struct Usage {
    /// Quota key (`pods`, `requests.cpu`, `limits.memory`, …) -> amount.
    used: BTreeMap<String, f64>,
    /// "who × replicas", for the evidence.
    contributions: Vec<String>,
}

impl Usage {
    fn add_pods(&mut self, who: String, count: i64, spec: &PodSpec, defaults: &Defaults) {
        if count <= 0 {
            return;
        }
        let (requests, limits) = pod_resources(spec, defaults);
        *self.used.entry("pods".into()).or_insert(0.0) += count as f64;
        for (name, v) in requests {
            *self.used.entry(format!("requests.{name}")).or_insert(0.0) += v * count as f64;
        }
        for (name, v) in limits {
            *self.used.entry(format!("limits.{name}")).or_insert(0.0) += v * count as f64;
        }
        self.contributions.push(format!("{who} × {count}"));
    }
}

/// Every workload of the namespace at its maximum replica count, and every
/// ScaledJob at its maximum job count.
fn full_scale_usage(index: &Index<'_>, namespace: Option<&str>, defaults: &Defaults) -> Usage {
    let mut usage = Usage::default();
    for workload in &index.workloads {
        if !workload.same_namespace(namespace) {
            continue;
        }
        let Some(PodTemplate { spec, .. }) = workload.pod_template() else {
            continue;
        };
        usage.add_pods(
            workload.describe(),
            index.max_replicas(workload),
            spec,
            defaults,
        );
    }
    for (scaled_job, job) in &index.scaled_jobs {
        if !scaled_job.same_namespace(namespace) {
            continue;
        }
        let template = job
            .spec
            .job_target_ref
            .as_ref()
            .and_then(|j| j.get("template"))
            .and_then(|t| serde_json::from_value::<PodTemplateSpec>(t.clone()).ok());
        if let Some(spec) = template.and_then(|t| t.spec) {
            usage.add_pods(
                scaled_job.describe(),
                i64::from(job.spec.max_replica_count.unwrap_or(100)),
                &spec,
                defaults,
            );
        }
    }
    usage
}

/// The namespace's workloads at full scale fit the quota; the headroom of each
/// tracked resource is recorded as evidence either way.
fn quota_headroom(
    index: &Index<'_>,
    object: &Object,
    hard: &BTreeMap<String, Quantity>,
    out: &mut Collector,
) {
    let defaults = namespace_defaults(index.submission, object.namespace.as_deref());
    let usage = full_scale_usage(index, object.namespace.as_deref(), &defaults);
    let mut headroom = Vec::new();
    for (key, limit) in hard {
        let Ok(limit_value) = parse_quantity(&limit.0) else {
            continue;
        };
        let used_key = match key.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => format!("requests.{key}"),
            other => other.to_string(),
        };
        if !(used_key == "pods"
            || used_key.starts_with("requests.")
            || used_key.starts_with("limits."))
        {
            continue;
        }
        let needed = usage.used.get(&used_key).copied().unwrap_or(0.0);
        let resource = used_key
            .trim_start_matches("requests.")
            .trim_start_matches("limits.");
        headroom.push((
            format!("{} {key}", object.describe()),
            format!(
                "{} of {} at full scale (headroom {})",
                format_quantity(resource, needed),
                format_quantity(resource, limit_value),
                format_quantity(resource, limit_value - needed)
            ),
        ));
        if needed > limit_value * (1.0 + 1e-9) {
            out.fire(
                &HEADROOM_EXCEEDED,
                object.locate(&format!("/spec/hard/{}", pointer_escape(key))),
                format!(
                    "at full scale the workloads of {} need {key} {} but {} allows {} (short by {})",
                    object.namespace.as_deref().unwrap_or("the namespace"),
                    format_quantity(resource, needed),
                    object.describe(),
                    format_quantity(resource, limit_value),
                    format_quantity(resource, needed - limit_value)
                ),
            );
        }
    }
    quota_admission(index, object, hard, &defaults, out);
    headroom.push((
        format!("{} counts", object.describe()),
        usage.contributions.join(", "),
    ));
    out.evidence(&HEADROOM_EXCEEDED, Evidence::Values { values: headroom });
}

/// ResourceQuota admission: when a quota tracks cpu or memory requests or
/// limits, the API server rejects a pod any of whose containers has no value
/// for it after defaulting (its own request or limit, then the LimitRange).
fn quota_admission(
    index: &Index<'_>,
    quota: &Object,
    hard: &BTreeMap<String, Quantity>,
    defaults: &Defaults,
    out: &mut Collector,
) {
    let tracked: Vec<(&str, &str, bool)> = hard
        .keys()
        .filter_map(|key| match key.as_str() {
            "cpu" | "requests.cpu" => Some((key.as_str(), "cpu", false)),
            "memory" | "requests.memory" => Some((key.as_str(), "memory", false)),
            "limits.cpu" => Some((key.as_str(), "cpu", true)),
            "limits.memory" => Some((key.as_str(), "memory", true)),
            _ => None,
        })
        .collect();
    for workload in &index.workloads {
        if !workload.same_namespace(quota.namespace.as_deref()) {
            continue;
        }
        let Some(template) = workload.pod_template() else {
            continue;
        };
        let containers = template
            .spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{}/containers/{i}", template.pointer), c))
            .chain(
                template
                    .spec
                    .init_containers
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, c)| (format!("{}/initContainers/{i}", template.pointer), c)),
            );
        for (pointer, container) in containers {
            let missing = untracked_by(container, &tracked, defaults);
            if !missing.is_empty() {
                out.fire_with_hint(
                    &HEADROOM_EXCEEDED,
                    workload.locate(&pointer),
                    format!(
                        "{} tracks {}, so the API server rejects the pods of {}: container `{}` sets no value for {} and no LimitRange default fills one in",
                        quota.describe(),
                        missing.join(", "),
                        workload.describe(),
                        container.name,
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                    "set the container's resources.requests and resources.limits, or give the namespace a LimitRange with defaults for them",
                );
            }
        }
    }
}

/// The quota keys of `tracked` (key, resource, is a limit) a container has no
/// value for, written or defaulted.
fn untracked_by<'k>(
    container: &Container,
    tracked: &[(&'k str, &str, bool)],
    defaults: &Defaults,
) -> Vec<&'k str> {
    let resources = container.resources.as_ref();
    let has = |list: Option<&BTreeMap<String, Quantity>>, resource: &str| {
        list.is_some_and(|l| l.contains_key(resource))
    };
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    tracked
        .iter()
        .filter(|(_, resource, is_limit)| {
            let written = if *is_limit {
                has(limits, resource)
            } else {
                has(requests, resource) || has(limits, resource)
            };
            let defaulted = if *is_limit {
                defaults.limit.contains_key(*resource)
            } else {
                defaults.request.contains_key(*resource)
            };
            !written && !defaulted
        })
        .map(|(key, ..)| *key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Tools;
    use crate::checks::test_support::submission_of;
    use rstest::rstest;

    /// Quota tracks requests.cpu and limits.memory; the LimitRange (if any) defaults memory.
    #[rstest]
    #[case("{}", true, &[])]
    #[case("{}", false, &["limits.memory", "requests.cpu"])]
    #[case("{limits: {cpu: 100m}}", true, &[])]
    // the LimitRange's min cpu becomes the default cpu request
    #[case("{requests: {memory: 64Mi}}", true, &[])]
    #[case("{requests: {memory: 64Mi}}", false, &["limits.memory", "requests.cpu"])]
    #[case("{limits: {memory: 1Gi}}", false, &["requests.cpu"])]
    #[case("{requests: {cpu: 100m}, limits: {memory: 1Gi}}", false, &[])]
    fn a_quota_rejects_pods_with_nothing_for_what_it_tracks(
        #[case] resources: &str,
        #[case] with_limit_range: bool,
        #[case] rejected_for: &[&str],
    ) {
        let limit_range = if with_limit_range {
            "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr, namespace: ml}\nspec:\n  limits:\n    - type: Container\n      default: {memory: 512Mi}\n      min: {cpu: 50m}\n---\n"
        } else {
            ""
        };
        let submission = submission_of(
            "all.yaml",
            &format!(
                "{limit_range}apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: q, namespace: ml}}\nspec:\n  hard: {{requests.cpu: \"20\", limits.memory: 40Gi, pods: \"50\"}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: d}}}}\n  template:\n    metadata: {{labels: {{app: d}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {resources}}}]\n"
            ),
        );
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        let rejections: Vec<&String> = out
            .findings
            .iter()
            .filter(|f| f.check == "quota.headroom-exceeded")
            .map(|f| &f.message)
            .collect();
        if rejected_for.is_empty() {
            assert!(rejections.is_empty(), "{resources}: {rejections:?}");
        } else {
            assert_eq!(rejections.len(), 1, "{resources}: {rejections:?}");
            assert!(
                rejections[0].contains(&format!("tracks {}, so", rejected_for.join(", "))),
                "{resources}: {rejections:?}"
            );
        }
    }
}

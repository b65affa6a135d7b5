//! What LimitRanger fills into the containers of a namespace at admission: the
//! requests and limits both the HPA checks (where a utilization metric's request
//! comes from) and the quota checks (what pods need at full scale) count on.

use crate::submission::quantity::parse_quantity;
use crate::submission::{Submission, Typed};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// What LimitRanger fills into a container of a namespace at admission.
#[derive(Default)]
pub struct Defaults {
    pub request: BTreeMap<String, f64>,
    pub limit: BTreeMap<String, f64>,
    /// Resource -> the LimitRange that provides its default request.
    pub request_source: BTreeMap<String, String>,
}

/// The effective container defaults of a namespace's LimitRanges, after the
/// API server's LimitRangeItem defaulting (SetDefaults_LimitRangeItem): a
/// missing `default` is `max`; a missing `defaultRequest` is `default`, else `min`.
pub fn namespace_defaults(submission: &Submission, namespace: Option<&str>) -> Defaults {
    let mut defaults = Defaults::default();
    let parsed = |list: Option<&BTreeMap<String, Quantity>>| {
        list.into_iter()
            .flatten()
            .filter_map(|(name, q)| parse_quantity(&q.0).ok().map(|v| (name.clone(), v)))
            .collect::<BTreeMap<String, f64>>()
    };
    for object in &submission.objects {
        let Typed::LimitRange(range) = &object.typed else {
            continue;
        };
        if !object.same_namespace(namespace) {
            continue;
        }
        for item in range
            .spec
            .iter()
            .flat_map(|s| s.limits.iter())
            .filter(|i| i.type_ == "Container")
        {
            let mut limit = parsed(item.default.as_ref());
            for (name, v) in parsed(item.max.as_ref()) {
                limit.entry(name).or_insert(v);
            }
            let mut request = parsed(item.default_request.as_ref());
            for (name, v) in limit
                .iter()
                .map(|(n, v)| (n.clone(), *v))
                .chain(parsed(item.min.as_ref()))
            {
                request.entry(name).or_insert(v);
            }
            for (name, v) in limit {
                defaults.limit.entry(name).or_insert(v);
            }
            for (name, v) in request {
                if !defaults.request.contains_key(&name) {
                    defaults
                        .request_source
                        .insert(name.clone(), object.describe());
                    defaults.request.insert(name, v);
                }
            }
        }
    }
    defaults
}

/// Per-pod requests and limits as the API server and LimitRanger leave them.
pub fn pod_resources(
    spec: &PodSpec,
    defaults: &Defaults,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for container in &spec.containers {
        let (r, l) = container_resources(container, defaults);
        for (k, v) in r {
            *requests.entry(k).or_insert(0.0) += v;
        }
        for (k, v) in l {
            *limits.entry(k).or_insert(0.0) += v;
        }
    }
    for container in spec.init_containers.iter().flatten() {
        let (r, l) = container_resources(container, defaults);
        for (k, v) in r {
            let entry = requests.entry(k).or_insert(0.0);
            *entry = entry.max(v);
        }
        for (k, v) in l {
            let entry = limits.entry(k).or_insert(0.0);
            *entry = entry.max(v);
        }
    }
    (requests, limits)
}

/// A container's (requests, limits) after API defaulting and LimitRanger.
pub fn container_resources(
    container: &Container,
    defaults: &Defaults,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let parsed = |list: Option<&BTreeMap<String, Quantity>>| {
        let mut values: BTreeMap<String, f64> = BTreeMap::new();
        for (name, q) in list.into_iter().flatten() {
            if let Ok(v) = parse_quantity(&q.0) {
                values.insert(name.clone(), v);
            }
        }
        values
    };
    let resources = container.resources.as_ref();
    let mut limits = parsed(resources.and_then(|r| r.limits.as_ref()));
    let mut requests = parsed(resources.and_then(|r| r.requests.as_ref()));
    // API defaulting first: a limit without a request becomes the request.
    for (name, v) in &limits {
        requests.entry(name.clone()).or_insert(*v);
    }
    // Then LimitRanger fills what is still missing, per resource.
    for (name, v) in &defaults.limit {
        limits.entry(name.clone()).or_insert(*v);
    }
    for (name, v) in &defaults.request {
        requests.entry(name.clone()).or_insert(*v);
    }
    (requests, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::limit_range_submission;
    use rstest::rstest;

    /// SetDefaults_LimitRangeItem: default <- max; defaultRequest <- default, else min.
    #[rstest]
    #[case(
        "      defaultRequest: {cpu: 200m}\n      default: {cpu: 500m}\n",
        Some(0.2),
        Some(0.5)
    )]
    #[case("      default: {cpu: 500m}\n", Some(0.5), Some(0.5))]
    #[case("      max: {cpu: \"2\"}\n", Some(2.0), Some(2.0))]
    #[case("      min: {cpu: 100m}\n", Some(0.1), None)]
    #[case("      min: {memory: 128Mi}\n      max: {memory: 1Gi}\n", None, None)]
    fn limit_range_defaults_follow_the_api_server(
        #[case] item: &str,
        #[case] request: Option<f64>,
        #[case] limit: Option<f64>,
    ) {
        let submission = limit_range_submission(item);
        let defaults = namespace_defaults(&submission, Some("ml"));
        assert_eq!(defaults.request.get("cpu").copied(), request, "{item}");
        assert_eq!(defaults.limit.get("cpu").copied(), limit, "{item}");
        let other_namespace = namespace_defaults(&submission, Some("elsewhere"));
        assert!(other_namespace.request.is_empty());
    }
}

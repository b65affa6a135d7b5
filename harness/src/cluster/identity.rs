//! The identity a submission's objects are applied as: a ServiceAccount of the test
//! namespace, impersonated, whose RoleBinding grants the allowlisted kinds in that
//! namespace only. The API server then enforces what [`policy`](super::policy) decides:
//! a cluster-scoped object or another namespace is forbidden to it, whatever the
//! grader's own checks miss. The suite's own objects, nodes and cleanup stay admin.

use super::error::EnvironmentError;
use super::policy::ALLOWED_KINDS;
use super::wait::poll_until;
use super::{RESERVED_NAME_PREFIX, SANDBOX_FIELD_MANAGER};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::time::Duration;

/// The ServiceAccount, Role and RoleBinding of the applier, in every test namespace.
pub fn applier_name() -> String {
    format!("{RESERVED_NAME_PREFIX}-applier")
}

/// The user name the API server knows the applier of `namespace` by.
pub fn applier_user(namespace: &str) -> String {
    format!("system:serviceaccount:{namespace}:{}", applier_name())
}

/// The Role's rules: every allowlisted kind of [`ALLOWED_KINDS`], in its group, with
/// the verbs server-side apply and the probes' reads need. Nothing cluster-scoped can be
/// granted by a Role, and a Role binds in its own namespace only.
pub fn applier_rules() -> Vec<Value> {
    ALLOWED_KINDS
        .iter()
        .map(|(group, kinds)| {
            // Every allowlisted kind's resource is its lowercased plural in `s`.
            let resources: Vec<String> = kinds
                .iter()
                .map(|kind| format!("{}s", kind.to_lowercase()))
                .collect();
            json!({
                "apiGroups": [group],
                "resources": resources,
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            })
        })
        .collect()
}

/// The applier's ServiceAccount, Role and RoleBinding for `namespace`.
pub fn applier_objects(namespace: &str) -> Vec<(ApiResource, Value)> {
    let name = applier_name();
    let metadata = json!({ "name": name, "namespace": namespace });
    let resource = |group: &str, version: &str, kind: &str| {
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
    };
    let rbac = "rbac.authorization.k8s.io";
    vec![
        (
            resource("", "v1", "ServiceAccount"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
                   "automountServiceAccountToken": false}),
        ),
        (
            resource(rbac, "v1", "Role"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": metadata, "rules": applier_rules()}),
        ),
        (
            resource(rbac, "v1", "RoleBinding"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": metadata,
                   "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}),
        ),
    ]
}

/// Creates the applier of `namespace` (as admin) and returns a client that acts as it,
/// once the API server's authorizer has seen the grant (bounded by `budget`).
pub async fn grant_applier(
    admin: &Client,
    config: &Config,
    namespace: &str,
    budget: Duration,
) -> Result<Client, EnvironmentError> {
    for (resource, object) in applier_objects(namespace) {
        let name = applier_name();
        Api::<DynamicObject>::namespaced_with(admin.clone(), namespace, &resource)
            .patch(
                &name,
                &PatchParams::apply(SANDBOX_FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(EnvironmentError::api(format!(
                "creating the sandbox's {} {name} in {namespace}",
                resource.kind
            )))?;
    }
    let mut config = config.clone();
    config.auth_info.impersonate = Some(applier_user(namespace));
    config.auth_info.impersonate_groups = None;
    let applier = Client::try_from(config).map_err(EnvironmentError::api(format!(
        "building a client that impersonates {}",
        applier_user(namespace)
    )))?;
    // RBAC is served from the authorizer's cache, which cannot be watched: ask until the
    // grant is in it.
    let probe: Api<ConfigMap> = Api::namespaced(applier.clone(), namespace);
    let last_error = std::sync::Mutex::new(String::from("-"));
    let granted = poll_until(budget, Duration::from_millis(200), || async {
        match probe.list(&ListParams::default().limit(1)).await {
            Ok(_) => Some(()),
            Err(e) => {
                *last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
                None
            }
        }
    })
    .await;
    match granted {
        Some(()) => Ok(applier),
        None => Err(EnvironmentError::Timeout {
            what: format!(
                "the API server to grant {} in {namespace}",
                applier_user(namespace)
            ),
            budget,
            last_seen: last_error.into_inner().unwrap_or_else(|p| p.into_inner()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applier_is_granted_the_allowlist_in_its_namespace_only() {
        let rules = applier_rules();
        let granted = |group: &str, resource: &str| {
            rules.iter().any(|r| {
                r["apiGroups"][0] == group
                    && r["resources"]
                        .as_array()
                        .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
        };
        for (group, resource) in [
            ("apps", "deployments"),
            ("", "resourcequotas"),
            ("", "limitranges"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("policy", "poddisruptionbudgets"),
            ("keda.sh", "scaledobjects"),
            ("monitoring.coreos.com", "prometheusrules"),
        ] {
            assert!(granted(group, resource), "{group}/{resource} not granted");
        }
        for (group, resource) in [
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("", "namespaces"),
            ("scheduling.k8s.io", "priorityclasses"),
            ("networking.k8s.io", "networkpolicies"),
        ] {
            assert!(!granted(group, resource), "{group}/{resource} granted");
        }
        assert!(rules.iter().all(|r| {
            r["verbs"]
                .as_array()
                .is_some_and(|v| !v.iter().any(|v| v == "*" || v == "escalate" || v == "bind"))
        }));
        let objects = applier_objects("ac-t-1");
        let binding = &objects[2].1;
        assert_eq!(binding["kind"], "RoleBinding");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["namespace"], "ac-t-1");
        assert_eq!(
            applier_user("ac-t-1"),
            "system:serviceaccount:ac-t-1:autoscale-conformance-sandbox-applier"
        );
    }
}

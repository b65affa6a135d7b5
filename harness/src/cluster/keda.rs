//! KEDA in the cluster (namespace `keda`, `ci/addons/keda/`): whether it serves, and what
//! it says of one ScaledObject (its Ready/Active conditions, `lastActiveTime`, the HPA it
//! made), sampled by the KEDA probes into a [`KedaRecording`] beside their timeline.

use super::wait::apiservice_available;
use chrono::{DateTime, Utc};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// KEDA's metrics server registers this one; the HPAs KEDA makes read it.
pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
pub const KEDA_NAMESPACE: &str = "keda";

/// The resource of `keda.sh/v1alpha1` ScaledObjects.
pub fn scaled_objects() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

/// Why KEDA cannot judge anything here, or `Ok` when it serves: its CRD is served and
/// its metrics API is Available.
pub async fn installed(client: &Client) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &scaled_objects());
    if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
        return Err(format!(
            "KEDA is not installed: the cluster does not serve keda.sh/v1alpha1 ScaledObjects ({e})"
        ));
    }
    if !apiservice_available(client, EXTERNAL_METRICS_APISERVICE).await {
        return Err(format!(
            "KEDA's metrics server is not serving: APIService {EXTERNAL_METRICS_APISERVICE} is not Available (namespace {KEDA_NAMESPACE})"
        ));
    }
    Ok(())
}

/// One status condition as KEDA wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A ScaledObject's status at one moment (seconds on the probe's timeline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaledObjectState {
    pub t: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Condition>,
    /// `status.lastActiveTime` on the timeline's clock (seconds since its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<f64>,
    /// `status.hpaName`: the HPA KEDA made for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
}

impl ScaledObjectState {
    /// Reads it from the object's JSON; `started_at` is the timeline's `t = 0`.
    pub fn from_object(t: f64, object: &Value, started_at: DateTime<Utc>) -> ScaledObjectState {
        let condition = |kind: &str| {
            object
                .pointer("/status/conditions")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
                .map(|c| {
                    let text = |key: &str| {
                        c.get(key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    Condition {
                        status: text("status"),
                        reason: text("reason"),
                        message: text("message"),
                    }
                })
        };
        let last_active = object
            .pointer("/status/lastActiveTime")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|at| (at.with_timezone(&Utc) - started_at).as_seconds_f64());
        ScaledObjectState {
            t,
            ready: condition("Ready"),
            active: condition("Active"),
            last_active,
            hpa: object
                .pointer("/status/hpaName")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    /// `Ready=False` with KEDA's reason and message, when it says so.
    pub fn not_ready(&self) -> Option<String> {
        let ready = self.ready.as_ref()?;
        (ready.status == "False").then(|| format!("{}: {}", ready.reason, ready.message))
    }
}

/// One evaluation of the trigger's query, as the probe saw it through Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySample {
    pub t: f64,
    /// The first series' value (KEDA reads only one); `None`: an empty result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// How many series it returned (KEDA refuses more than one).
    pub series: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the KEDA probes sampled beside the timeline: the ScaledObject's status and the
/// trigger's query (scale-to-zero only). Saved as `<name>-keda.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KedaRecording {
    pub scaled_object: String,
    /// The query as the probe ran it (namespaces rewritten to the test's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<QuerySample>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<ScaledObjectState>,
}

impl KedaRecording {
    /// The latest `lastActiveTime` KEDA reported.
    pub fn last_active(&self) -> Option<f64> {
        self.states
            .iter()
            .filter_map(|s| s.last_active)
            .max_by(f64::total_cmp)
    }

    /// KEDA's last `Ready=False` reason, if it ever said so.
    pub fn not_ready(&self) -> Option<String> {
        self.states
            .iter()
            .rev()
            .find_map(ScaledObjectState::not_ready)
    }

    /// Writes it beside the timeline; the path, for the verdict's evidence.
    pub fn save(&self, dir: &std::path::Path, name: &str) -> Option<String> {
        let path = dir.join(format!("{name}-keda.json"));
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&path, serde_json::to_string_pretty(self).ok()?).ok()?;
        Some(path.display().to_string())
    }
}

/// The ScaledObject `name` in `namespace` now, as JSON (`None`: not there).
pub async fn scaled_object(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &scaled_objects());
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|o| serde_json::to_value(o).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_is_read_on_the_timelines_clock() {
        let started = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let object = json!({"status": {
            "hpaName": "keda-hpa-x",
            "lastActiveTime": "2026-01-01T00:01:30Z",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed", "message": "bad"},
                {"type": "Active", "status": "True"}
            ]
        }});
        let state = ScaledObjectState::from_object(95.0, &object, started);
        assert_eq!(state.last_active, Some(90.0));
        assert_eq!(state.hpa.as_deref(), Some("keda-hpa-x"));
        assert_eq!(
            state.not_ready().as_deref(),
            Some("ScaledObjectCheckFailed: bad")
        );
        assert_eq!(state.active.unwrap().status, "True");
        let empty = ScaledObjectState::from_object(1.0, &json!({}), started);
        assert_eq!(empty.not_ready(), None);
        assert_eq!(empty.last_active, None);
    }
}

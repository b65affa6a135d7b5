//! The cluster's Prometheus, as the exercise installs it: Service `prometheus-server`
//! in namespace `monitoring`, port 80 (`ci/addons` brings it up the same on both
//! paths). The grader asks it through the API server's service proxy, so it needs no
//! port-forward and no route into the pod network.
//!
//! Two kinds of failure are kept apart, because a verdict depends on which: Prometheus
//! unreachable or answering garbage is the environment's ([`EnvironmentError`], an
//! "error" verdict); Prometheus refusing a query (bad PromQL, a query that times out)
//! is the query's author's, which may be the submission ([`PrometheusError::Rejected`]).

use super::error::EnvironmentError;
use kube::Client;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const PROMETHEUS_NAMESPACE: &str = "monitoring";
pub const PROMETHEUS_SERVICE: &str = "prometheus-server";
pub const PROMETHEUS_PORT: u16 = 80;

/// One call may take this long: Prometheus's own query timeout is 2 minutes, far
/// past what a probe can wait on one answer.
const CALL_BUDGET: Duration = Duration::from_secs(20);
/// Every query carries this server-side timeout, so Prometheus gives up first.
const QUERY_TIMEOUT: &str = "15s";
/// A student's selector may match the whole cluster: keep answers bounded.
const SERIES_LIMIT: &str = "1000";
/// How often [`Prometheus::wait_for_rule_groups`] asks again.
const RULES_POLL: Duration = Duration::from_secs(5);

/// Why an answer did not come.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// Prometheus is not there, or did not answer like Prometheus.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// Prometheus answered, and refused the request: the query's fault.
    #[error("Prometheus refused `{query}`: {error_type}: {error}")]
    Rejected {
        query: String,
        error_type: String,
        error: String,
    },
}

/// One element of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    /// Seconds since the epoch, as Prometheus stamped the value.
    pub timestamp: f64,
    /// NaN and ±Inf are kept as Prometheus reports them ("NaN", "+Inf").
    pub value: f64,
}

/// A scrape target, as `/api/v1/targets` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub scrape_pool: String,
    #[serde(default)]
    pub scrape_url: String,
    /// "up", "down" or "unknown".
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

/// A rule group, as `/api/v1/rules` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup {
    pub name: String,
    /// The rule file: with the operator, `<namespace>-<PrometheusRule>-<uid>.yaml`.
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub interval: f64,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// An alerting or recording rule, with its health as Prometheus last evaluated it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub name: String,
    pub query: String,
    /// "ok", "err" or "unknown" (not evaluated yet).
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: Option<String>,
    /// "alerting" or "recording".
    #[serde(rename = "type")]
    pub kind: String,
    /// Alerting rules only: "inactive", "pending" or "firing".
    #[serde(default)]
    pub state: Option<String>,
    /// Alerting rules only: the `for` duration in seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub last_evaluation: Option<String>,
}

/// The cluster's Prometheus.
#[derive(Clone)]
pub struct Prometheus {
    client: Client,
    proxy: String,
}

impl Prometheus {
    /// The Prometheus at `monitoring/prometheus-server:80`.
    pub fn new(client: Client) -> Prometheus {
        Prometheus::at(
            client,
            PROMETHEUS_NAMESPACE,
            PROMETHEUS_SERVICE,
            PROMETHEUS_PORT,
        )
    }

    pub fn at(client: Client, namespace: &str, service: &str, port: u16) -> Prometheus {
        Prometheus {
            client,
            proxy: format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"),
        }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        format!("Prometheus (service proxy {})", self.proxy)
    }

    /// Ready to answer queries (`/-/ready`).
    pub async fn ready(&self) -> Result<(), EnvironmentError> {
        self.get_text("/-/ready", &[]).await.map(|_| ())
    }

    /// An instant query now. A scalar answer comes back as one sample without labels.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, PrometheusError> {
        let data = self
            .api(
                "/api/v1/query",
                promql,
                &[("query", promql), ("timeout", QUERY_TIMEOUT)],
            )
            .await?;
        parse_instant(&data).map_err(|detail| self.garbage("/api/v1/query", detail).into())
    }

    /// The label sets of the series that `selector` (a series selector such as
    /// `http_requests_total{namespace="x"}`) matches now, at most 1000.
    pub async fn series(
        &self,
        selector: &str,
    ) -> Result<Vec<BTreeMap<String, String>>, PrometheusError> {
        let data = self
            .api(
                "/api/v1/series",
                selector,
                &[("match[]", selector), ("limit", SERIES_LIMIT)],
            )
            .await?;
        serde_json::from_value(data)
            .map_err(|e| self.garbage("/api/v1/series", e.to_string()).into())
    }

    /// Every rule group Prometheus has loaded, with each rule's health and state.
    pub async fn rules(&self) -> Result<Vec<RuleGroup>, PrometheusError> {
        #[derive(Deserialize)]
        struct Groups {
            groups: Vec<RuleGroup>,
        }
        let data = self.api("/api/v1/rules", "", &[]).await?;
        serde_json::from_value::<Groups>(data)
            .map(|g| g.groups)
            .map_err(|e| self.garbage("/api/v1/rules", e.to_string()).into())
    }

    /// Waits (bounded) until Prometheus has loaded at least `expected` rule groups from
    /// rule files whose path contains `file_part` (the operator names them
    /// `<namespace>-<PrometheusRule>-<uid>.yaml`), polling `/api/v1/rules` every 5 s.
    /// Returns those groups: all of them, or what was loaded when `budget` ran out.
    pub async fn wait_for_rule_groups(
        &self,
        file_part: &str,
        expected: usize,
        budget: Duration,
    ) -> Result<Vec<RuleGroup>, PrometheusError> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let groups: Vec<RuleGroup> = self
                .rules()
                .await?
                .into_iter()
                .filter(|g| g.file.contains(file_part))
                .collect();
            let now = tokio::time::Instant::now();
            if groups.len() >= expected || now >= deadline {
                return Ok(groups);
            }
            tokio::time::sleep(RULES_POLL.min(deadline - now)).await;
        }
    }

    /// The active scrape targets.
    pub async fn targets(&self) -> Result<Vec<Target>, PrometheusError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Targets {
            active_targets: Vec<Target>,
        }
        let data = self
            .api("/api/v1/targets", "", &[("state", "active")])
            .await?;
        serde_json::from_value::<Targets>(data)
            .map(|t| t.active_targets)
            .map_err(|e| self.garbage("/api/v1/targets", e.to_string()).into())
    }

    /// Calls an API endpoint and returns its `data`, telling a refusal from a failure.
    async fn api(
        &self,
        path: &str,
        query: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, PrometheusError> {
        let body = self.get_text(path, params).await;
        // Prometheus answers a refused query with 400/422 and a JSON body that says why;
        // kube reports a non-2xx proxy answer as an API error carrying that body.
        let text = match body {
            Ok(text) => text,
            Err(EnvironmentError::Api {
                source: kube::Error::Api(status),
                ..
            }) if matches!(status.code, 400 | 422 | 503) => {
                if let Some(refusal) = refusal(query, &status.message) {
                    return Err(refusal);
                }
                return Err(self.garbage(path, status.message.clone()).into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(refusal) = refusal(query, &text) {
            return Err(refusal);
        }
        let mut envelope: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.garbage(path, format!("not JSON: {e}")))?;
        Ok(envelope
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_default())
    }

    async fn get_text(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<String, EnvironmentError> {
        let mut uri = format!("{}{path}", self.proxy);
        if !params.is_empty() {
            uri.push('?');
            uri.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            );
        }
        let request =
            http::Request::get(&uri)
                .body(Vec::new())
                .map_err(|e| EnvironmentError::NotReady {
                    what: self.describe(),
                    detail: e.to_string(),
                })?;
        match tokio::time::timeout(CALL_BUDGET, self.client.request_text(request)).await {
            Ok(result) => result.map_err(EnvironmentError::api(format!(
                "GET {path} from {}",
                self.describe()
            ))),
            Err(_) => Err(EnvironmentError::Timeout {
                what: format!("{} to answer GET {path}", self.describe()),
                budget: CALL_BUDGET,
                last_seen: "no answer".into(),
            }),
        }
    }

    fn garbage(&self, path: &str, detail: String) -> EnvironmentError {
        EnvironmentError::NotReady {
            what: format!("{} answering {path}", self.describe()),
            detail,
        }
    }
}

/// A Prometheus error envelope (`"status":"error"`) as a refusal of `query`.
fn refusal(query: &str, body: &str) -> Option<PrometheusError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        status: String,
        #[serde(default)]
        error_type: String,
        #[serde(default)]
        error: String,
    }
    let envelope: Envelope = serde_json::from_str(body).ok()?;
    (envelope.status == "error").then(|| PrometheusError::Rejected {
        query: query.to_string(),
        error_type: envelope.error_type,
        error: envelope.error,
    })
}

/// The `data` of an instant query: a vector, a scalar or a string.
fn parse_instant(data: &serde_json::Value) -> Result<Vec<Sample>, String> {
    let result_type = data
        .get("resultType")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    let result = data.get("result").ok_or("no `result` in the answer")?;
    match result_type {
        "vector" => result
            .as_array()
            .ok_or("a vector that is not a list")?
            .iter()
            .map(|element| {
                let labels = element
                    .get("metric")
                    .cloned()
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(|e| format!("labels: {e}"))?
                    .unwrap_or_default();
                let (timestamp, value) = parse_point(element.get("value"))?;
                Ok(Sample {
                    labels,
                    timestamp,
                    value,
                })
            })
            .collect(),
        "scalar" => {
            let (timestamp, value) = parse_point(Some(result))?;
            Ok(vec![Sample {
                labels: BTreeMap::new(),
                timestamp,
                value,
            }])
        }
        other => Err(format!("an instant query answered a `{other}`")),
    }
}

/// `[<seconds>, "<value>"]`.
fn parse_point(point: Option<&serde_json::Value>) -> Result<(f64, f64), String> {
    let pair = point
        .and_then(|p| p.as_array())
        .ok_or("a value that is not [time, value]")?;
    let timestamp = pair
        .first()
        .and_then(|t| t.as_f64())
        .ok_or("a value without a time")?;
    let value = pair
        .get(1)
        .and_then(|v| v.as_str())
        .and_then(|v| match v {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            v => v.parse().ok(),
        })
        .ok_or("a value that is not a number")?;
    Ok((timestamp, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vector_answer_becomes_labelled_samples() {
        let data = json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "pod": "a"}, "value": [1700000000.5, "1"]},
            {"metric": {"pod": "b"}, "value": [1700000000.5, "NaN"]},
        ]});
        let samples = parse_instant(&data).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["pod"], "a");
        assert_eq!(samples[0].value, 1.0);
        assert!(samples[1].value.is_nan());
    }

    #[test]
    fn a_scalar_answer_is_one_sample_without_labels() {
        let samples =
            parse_instant(&json!({"resultType": "scalar", "result": [1.0, "+Inf"]})).unwrap();
        assert_eq!(samples.len(), 1);
        assert!(samples[0].labels.is_empty());
        assert_eq!(samples[0].value, f64::INFINITY);
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for data in [
            json!({}),
            json!({"resultType": "matrix", "result": []}),
            json!({"resultType": "vector", "result": [{"value": [1, 2]}]}),
            json!({"resultType": "vector", "result": [{"metric": {"a": 1}, "value": [1, "1"]}]}),
            json!({"resultType": "vector", "result": {}}),
        ] {
            assert!(parse_instant(&data).is_err(), "{data}");
        }
    }

    #[test]
    fn an_error_envelope_is_the_query_s_fault() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        match refusal("up{", body) {
            Some(PrometheusError::Rejected {
                query,
                error_type,
                error,
            }) => {
                assert_eq!(query, "up{");
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("parse error"));
            }
            other => panic!("{other:?}"),
        }
        assert!(refusal("up", r#"{"status":"success","data":{}}"#).is_none());
        assert!(refusal("up", "<html>").is_none());
    }

    #[test]
    fn rules_and_targets_deserialize_from_prometheus_answers() {
        let groups: Vec<RuleGroup> = serde_json::from_value(json!([{
            "name": "autoscaling", "file": "/etc/prometheus/rules/ns-alerts-uid.yaml", "interval": 15,
            "rules": [{"name": "HighLatency", "query": "x > 1", "health": "ok", "type": "alerting",
                        "state": "pending", "duration": 60, "lastError": ""}]
        }]))
        .unwrap();
        assert_eq!(groups[0].rules[0].state.as_deref(), Some("pending"));
        let target: Target = serde_json::from_value(json!({
            "labels": {"job": "kubernetes-pods"}, "scrapePool": "kubernetes-pods",
            "scrapeUrl": "http://10.0.0.1:8080/metrics", "health": "up", "lastError": ""
        }))
        .unwrap();
        assert_eq!(target.health, "up");
    }
}

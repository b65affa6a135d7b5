//! Cluster access, the live side's entry. Each module uses only those listed before it:
//! - [`error`]: [`EnvironmentError`], an environment unfit to judge ("error", never "fail");
//! - [`intervals`]: the cluster's timing, which waits and budgets derive from;
//! - [`wait`]: bounded waits, and the predicates they wait for;
//! - [`images`]: the images a submission's pods get, so that they can run here;
//! - [`client`]: connecting, and the preflight that tells a broken environment from a
//!   failing student;
//! - [`policy`]: what a submission may apply (allowlist, reserved names, Services);
//! - [`identity`]: the namespaced identity a submission's objects are applied as;
//! - [`apply`]: server-side apply of a submission's objects, rewritten for a test namespace;
//! - [`namespace`]: a namespace per test, always cleaned up;
//! - [`capacity`]: the real nodes' CPU, reserved by each probe in a ledger on the cluster,
//!   shared by every process that runs probes on it;
//! - [`nodes`]: a test's own simulated nodes, for probes that disrupt a node;
//! - [`load_generator`]: the in-cluster load generator Job;
//! - [`script_job`]: a submission's own script, run as a Job in its namespace under a
//!   ServiceAccount granted that namespace only (never on the host);
//! - [`autoscaler`]: the cluster's one Cluster Autoscaler (kwok provider, simulated node
//!   groups): configured, turned on and off by the probe that holds its lock;
//! - [`lock`]: cluster-wide Lease locks on the singletons probes reconfigure or fill (the
//!   custom-metrics adapter, the GPU pool);
//! - [`prometheus`]: the cluster's Prometheus (`monitoring/prometheus-server`), through
//!   the API server's service proxy.
//! - [`custom_metrics`]: `custom.metrics.k8s.io` (prometheus-adapter): reading it, and
//!   reconfiguring the adapter under a cluster-wide Lease lock.
//! - [`keda`]: KEDA serving, and a ScaledObject's status as the KEDA probes record it.
//! - [`health`]: outages of the environment while probes run (the metrics APIs, the API
//!   server, kube-controller-manager), so that a probe's failure during one is not
//!   blamed on the submission.
//!
//! The names all of them share (field manager, images, labels) are defined here, and
//! the items most callers need are re-exported: `crate::cluster::{Cluster, TestNamespace,
//! wait_for, ...}`.

pub mod apply;
pub mod autoscaler;
pub mod capacity;
pub mod client;
pub mod custom_metrics;
pub mod error;
pub mod health;
pub mod identity;
pub mod images;
pub mod intervals;
pub mod keda;
pub mod load_generator;
pub mod lock;
pub mod namespace;
pub mod nodes;
pub mod policy;
pub mod prometheus;
pub mod script_job;
pub mod wait;

pub use apply::{Applied, ApplyError, ApplyPlan, Rejection, plan_apply};
pub use client::{Cluster, ClusterFacts};
pub use error::EnvironmentError;
pub use images::{normalize_image, substitute_placeholders, substitute_unavailable};
pub use intervals::ClusterIntervals;
pub use namespace::{TestNamespace, sandbox_quota, unique_namespace_name};
pub use policy::{ALLOWED_KINDS, Refusal};
pub use prometheus::{Prometheus, PrometheusError};
pub use wait::{deployment_available, describe_pod, node_ready, poll_until, wait_for, within};

/// The suite's own writes carry this field manager.
pub const FIELD_MANAGER: &str = "autoscale-conformance";
/// A submission's objects are applied under this one: never the sandbox's or the suite's,
/// so a submission's apply cannot take over their fields.
pub const SUBMISSION_FIELD_MANAGER: &str = "autoscale-conformance-submission";
/// The sandbox's objects (its quota) carry this field manager and a reserved name.
pub const SANDBOX_FIELD_MANAGER: &str = "autoscale-conformance-sandbox";
/// Names starting with this are the sandbox's: a submission's object that takes one is
/// refused at apply.
pub const RESERVED_NAME_PREFIX: &str = "autoscale-conformance-sandbox";
/// The calibrated inference workload that replaces the seed's placeholder images.
pub const INFERENCE_IMAGE: &str = "localhost/autoscale-conformance/inference-server:0.1.0";
pub const LOADGEN_IMAGE: &str = "localhost/autoscale-conformance/loadgen:0.1.0";
/// bash, busybox, kubectl and hey: what a submission's test script runs with.
pub const SCRIPT_RUNNER_IMAGE: &str = "localhost/autoscale-conformance/script-runner:0.1.0";
/// Label on the suite's pods that work for a probe from another namespace (its load
/// generator): the probe's namespace, so that the CPU ledger counts them as its.
pub const PROBE_NAMESPACE_LABEL: &str = "autoscale-conformance/probe-namespace";
/// Label on every namespace this suite creates (used by the sweeper).
pub const SUITE_LABEL: &str = "autoscale-conformance/suite";
/// Annotation: RFC 3339 time after which a leftover test namespace may be swept.
pub const EXPIRES_ANNOTATION: &str = "autoscale-conformance/expires-at";
/// Nodes simulated by kwok carry this label; they run no pods and report no metrics.
pub const KWOK_LABEL: (&str, &str) = ("type", "kwok");
/// The GPU pool, as the exercise and `ci/` label it.
pub const GPU_POOL_LABEL: (&str, &str) = ("node-pool", "gpu");
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

//! Why the environment cannot judge: an [`EnvironmentError`] becomes a verdict of
//! "error", never "fail", so a broken cluster costs no student points.

use std::time::Duration;

/// The environment is not fit to judge anyone: a verdict of "error", never "fail".
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error(
        "no cluster configured ({0}); bring one up (`ci/cluster up`) and export KUBECONFIG=$(ci/cluster kubeconfig)"
    )]
    NoConfig(String),
    #[error("cluster at {server} is unreachable: {detail}; is it up? (`ci/cluster status`)")]
    Unreachable { server: String, detail: String },
    #[error("environment not ready: {what}: {detail}")]
    NotReady { what: String, detail: String },
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("timed out after {:.0}s waiting for {what}; last seen: {last_seen}", budget.as_secs_f64())]
    Timeout {
        what: String,
        budget: Duration,
        last_seen: String,
    },
}

impl EnvironmentError {
    pub fn api(context: impl Into<String>) -> impl FnOnce(kube::Error) -> EnvironmentError {
        let context = context.into();
        move |source| EnvironmentError::Api { context, source }
    }
}

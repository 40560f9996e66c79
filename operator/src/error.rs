//! The operator's error type, with a low-cardinality label per variant for the error metric.

/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed (network, RBAC, conflict, validation by the API server).
    #[error("kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// The rendered collector config could not be serialised to YAML (a bug: our values are plain data).
    #[error("rendering the collector config failed: {0}")]
    Render(#[from] serde_yaml::Error),
    /// A resource could not be (de)serialised to JSON.
    #[error("serialising a resource failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The object has no namespace although both CRDs are namespaced (only a hand-built object can do that).
    #[error("object {0} has no namespace")]
    MissingNamespace(String),
    /// Adding or removing the finalizer, or the cleanup behind it, failed.
    #[error("finalizer error: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Leadership of the Lease was lost while running.
    #[error("lost leadership of lease {0}")]
    LeaseLost(String),
    /// The metrics/health HTTP server failed.
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
}

impl Error {
    /// Label value for `telemetry_operator_reconcile_errors_total{reason=...}`.
    pub fn metric_label(&self) -> String {
        match self {
            Self::Kube(kube::Error::Api(s)) => format!("api_{}", s.reason.to_lowercase()),
            Self::Kube(_) => "kube".into(),
            Self::Render(_) => "render".into(),
            Self::Json(_) => "json".into(),
            Self::MissingNamespace(_) => "missing_namespace".into(),
            Self::Finalizer(e) => match e.as_ref() {
                // Report what actually failed inside the finalizer wrapper (e.g. api_forbidden).
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.metric_label(),
                kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(s))
                | kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(s)) => {
                    format!("finalizer_api_{}", s.reason.to_lowercase())
                }
                _ => "finalizer".into(),
            },
            Self::LeaseLost(_) => "lease_lost".into(),
            Self::Http(_) => "http".into(),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_see_through_the_finalizer_wrapper() {
        let inner = Error::MissingNamespace("x".into());
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(inner)));
        assert_eq!(wrapped.metric_label(), "missing_namespace");
        assert_eq!(Error::LeaseLost("l".into()).metric_label(), "lease_lost");
    }
}

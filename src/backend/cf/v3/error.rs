//! How a v3 push ends badly once the server has the request: the package,
//! the build or the instances failed, or one of them took too long.

use thiserror::Error;

use crate::backend::DeployError;

#[derive(Debug, Error)]
pub enum PushError {
    /// The package job failed; `reason` is the package's `data.error`.
    #[error("package {guid} failed to process: {reason}")]
    PackageFailed { guid: String, reason: String },
    /// CC expired the package (more than five newer ones) before it was used.
    #[error("package {guid} expired before it could be staged; deploy again")]
    PackageExpired { guid: String },
    /// The build failed; `reason` is the build's `error`.
    #[error("staging failed: {reason}")]
    StagingFailed { reason: String },
    /// Every instance of a process is CRASHED, as `cf push` reports it.
    #[error("all instances crashed (process {process_type}); see `cf logs --recent`")]
    AllInstancesCrashed { process_type: String },
    /// A wait outlived its bound.
    /// The `apply_manifest` job failed: the Cloud Controller's words.
    #[error("the manifest was refused: {reason}")]
    ManifestFailed { reason: String },
    /// A rolling deployment ended other than DEPLOYED.
    #[error("deployment {guid} ended {reason}; the app keeps running its previous droplet")]
    DeploymentFailed { guid: String, reason: String },
    #[error("{what} was still {state} after {after}; the server may yet finish it")]
    TimedOut {
        what: String,
        state: String,
        after: String,
    },
    /// A body that does not have the fields the v3 API documents.
    #[error("{what} answer: {detail}")]
    Unreadable { what: String, detail: String },
}

impl From<PushError> for DeployError {
    fn from(err: PushError) -> DeployError {
        match err {
            PushError::Unreadable { .. } => DeployError::Protocol(err.to_string()),
            _ => DeployError::JobFailed(err.to_string()),
        }
    }
}

/// Parses a v3 answer into `T`, naming the request when it does not fit.
pub fn read<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &serde_json::Value,
) -> Result<T, DeployError> {
    serde_json::from_value(body.clone()).map_err(|err| {
        PushError::Unreadable {
            what: what.to_string(),
            detail: err.to_string(),
        }
        .into()
    })
}

//! STUB: the flux client. Replaced by the flux backend work.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Backend, BackendKind, DeployError, DeployOutcome, IgnoreProfile, PreviousDeploy, Report};
use crate::config::Env;
use crate::deploy::snapshot::Snapshot;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluxConfig {
    pub url: Option<String>,
}

impl FluxConfig {
    pub fn apply_env(&mut self, env: &Env) {
        if let Some(url) = env.get("PUSHFS_FLUX_URL") {
            self.url = Some(url.clone());
        }
    }
}

pub struct FluxClient {
    config: FluxConfig,
}

impl FluxClient {
    pub fn new(config: &FluxConfig) -> Self {
        FluxClient { config: config.clone() }
    }
}

#[async_trait]
impl Backend for FluxClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Flux
    }

    fn spec_files(&self) -> &'static [&'static str] {
        &["spec.json"]
    }

    fn ignore_profile(&self) -> IgnoreProfile {
        IgnoreProfile::default()
    }

    async fn deploy(
        &self,
        _snapshot: &Snapshot,
        _previous: &PreviousDeploy,
        _report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let _ = &self.config;
        Err(DeployError::NotConfigured { backend: "flux", missing: "not implemented yet".into() })
    }
}

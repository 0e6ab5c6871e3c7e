//! STUB: the cf client. Replaced by the cf backend work.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Backend, BackendKind, DeployError, DeployOutcome, IgnoreProfile, PreviousDeploy, Report};
use crate::config::Env;
use crate::deploy::snapshot::Snapshot;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfConfig {
    pub url: Option<String>,
}

impl CfConfig {
    pub fn apply_env(&mut self, env: &Env) {
        if let Some(url) = env.get("PUSHFS_CF_URL") {
            self.url = Some(url.clone());
        }
    }
}

pub struct CfClient {
    config: CfConfig,
}

impl CfClient {
    pub fn new(config: &CfConfig) -> Self {
        CfClient { config: config.clone() }
    }
}

#[async_trait]
impl Backend for CfClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Cf
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
        Err(DeployError::NotConfigured { backend: "cf", missing: "not implemented yet".into() })
    }
}

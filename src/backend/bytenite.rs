//! STUB: the bytenite client. Replaced by the bytenite backend work.

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    Backend, BackendKind, DeployError, DeployOutcome, IgnoreProfile, PreviousDeploy, Report,
};
use crate::config::Env;
use crate::deploy::snapshot::Snapshot;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteniteConfig {
    pub url: Option<String>,
}

impl ByteniteConfig {
    pub fn apply_env(&mut self, env: &Env) {
        if let Some(url) = env.get("PUSHFS_BYTENITE_URL") {
            self.url = Some(url.clone());
        }
    }
}

pub struct ByteniteClient {
    config: ByteniteConfig,
}

impl ByteniteClient {
    pub fn new(config: &ByteniteConfig) -> Self {
        ByteniteClient {
            config: config.clone(),
        }
    }
}

#[async_trait]
impl Backend for ByteniteClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Bytenite
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
        Err(DeployError::NotConfigured {
            backend: "bytenite",
            missing: "not implemented yet".into(),
        })
    }
}

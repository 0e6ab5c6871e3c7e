//! STUB: the cf emulator. Replaced by the cf backend work.

use std::sync::Arc;

use axum::Router;

use super::EmulatedApi;
use crate::config::Config;

#[derive(Default)]
pub struct CfEmulator {}

impl CfEmulator {
    pub fn new() -> Self {
        CfEmulator {}
    }
}

impl EmulatedApi for CfEmulator {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.cf.url = Some(base_url.to_string());
    }
}

//! STUB: the flux emulator. Replaced by the flux backend work.

use std::sync::Arc;

use axum::Router;

use super::EmulatedApi;
use crate::config::Config;

#[derive(Default)]
pub struct FluxEmulator {}

impl FluxEmulator {
    pub fn new() -> Self {
        FluxEmulator {}
    }
}

impl EmulatedApi for FluxEmulator {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.flux.url = Some(base_url.to_string());
    }
}

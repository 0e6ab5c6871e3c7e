//! STUB: the bytenite emulator. Replaced by the bytenite backend work.

use std::sync::Arc;

use axum::Router;

use super::EmulatedApi;
use crate::config::Config;

#[derive(Default)]
pub struct ByteniteEmulator {}

impl ByteniteEmulator {
    pub fn new() -> Self {
        ByteniteEmulator {}
    }
}

impl EmulatedApi for ByteniteEmulator {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.bytenite.url = Some(base_url.to_string());
    }
}

//! What tests read back of an app beyond its bits: its processes, sidecars,
//! service bindings, the actions it received, and log-cache lines.

use std::collections::BTreeMap;

/// One process of an app (`web` or another type from the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessView {
    pub guid: String,
    /// `web`, `worker`, ...
    pub process_type: String,
    pub command: Option<String>,
    pub instances: u32,
    pub memory_in_mb: u64,
    pub disk_in_mb: u64,
    /// -1 is unlimited.
    pub log_rate_limit_in_bytes_per_second: i64,
    /// `port`, `process` or `http`.
    pub health_check_type: String,
    pub health_check_http_endpoint: Option<String>,
    /// The manifest's `timeout`.
    pub health_check_timeout: Option<u64>,
    pub health_check_invocation_timeout: Option<u64>,
    pub health_check_interval: Option<u64>,
    pub readiness_health_check_type: String,
    pub readiness_health_check_http_endpoint: Option<String>,
    pub readiness_health_check_invocation_timeout: Option<u64>,
    pub readiness_health_check_interval: Option<u64>,
}

impl ProcessView {
    /// A new process with the Cloud Controller's defaults (1024 MB memory
    /// and disk, unlimited logs; `web` checks its port, others the process).
    pub fn new(process_type: &str, instances: u32) -> ProcessView {
        ProcessView {
            guid: uuid::Uuid::new_v4().to_string(),
            process_type: process_type.into(),
            command: None,
            instances,
            memory_in_mb: 1024,
            disk_in_mb: 1024,
            log_rate_limit_in_bytes_per_second: -1,
            health_check_type: if process_type == "web" {
                "port"
            } else {
                "process"
            }
            .into(),
            health_check_http_endpoint: None,
            health_check_timeout: None,
            health_check_invocation_timeout: None,
            health_check_interval: None,
            readiness_health_check_type: "process".into(),
            readiness_health_check_http_endpoint: None,
            readiness_health_check_invocation_timeout: None,
            readiness_health_check_interval: None,
        }
    }
}

/// A sidecar from the manifest's `sidecars`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarView {
    pub name: String,
    pub process_types: Vec<String>,
    pub command: String,
    pub memory_in_mb: Option<u64>,
}

/// A binding of a service instance to an app (from the manifest's `services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBindingView {
    /// The service instance's name.
    pub name: String,
    pub binding_name: Option<String>,
    pub parameters: Option<serde_json::Value>,
}

/// The actions an app received over the API, and its deployments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionCounts {
    /// `POST /v3/apps/:guid/actions/start`.
    pub starts: u32,
    /// `POST /v3/apps/:guid/actions/restart`.
    pub restarts: u32,
    /// `POST /v3/apps/:guid/actions/stop`.
    pub stops: u32,
    /// `POST /v3/deployments` for this app.
    pub deployments: u32,
}

/// One log-cache envelope of type LOG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp_ns: i64,
    /// The app guid.
    pub source_id: String,
    /// `STG` for staging output.
    pub source_type: String,
    /// `OUT` or `ERR`.
    pub stream: String,
    pub text: String,
}

/// Metadata as stored: labels or annotations.
pub type Metadata = BTreeMap<String, String>;

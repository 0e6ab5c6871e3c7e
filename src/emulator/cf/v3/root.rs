//! `GET /` and `GET /v3` (anonymous): the root documents. `cloud_controller_v2`
//! is left out, not nulled, when v2 is switched off.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::super::CfEmulator;

fn me(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(super) async fn global_root(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    if !emu.state.lock().settings.serve_root {
        return Err(StatusCode::NOT_FOUND);
    }
    let me = me(&headers);
    let log_cache = if emu.state.lock().settings.log_cache {
        json!({ "href": me })
    } else {
        Value::Null
    };
    let mut links = json!({
        "self": {"href": me},
        "cloud_controller_v3": {"href": format!("{me}/v3"), "meta": {"version": "3.228.0"}},
        "network_policy_v0": {"href": format!("{me}/networking/v0/external")},
        "network_policy_v1": {"href": format!("{me}/networking/v1/external")},
        "login": {"href": me},
        "uaa": {"href": me},
        "credhub": null,
        "routing": null,
        "logging": null,
        "log_cache": log_cache,
        "log_stream": null,
        "app_ssh": {"href": "127.0.0.1:2222", "meta": {"host_key_fingerprint": "", "oauth_client": "ssh-proxy"}},
    });
    if emu.state.lock().settings.v2_enabled {
        links["cloud_controller_v2"] =
            json!({"href": format!("{me}/v2"), "meta": {"version": "2.293.0"}});
    }
    Ok(Json(json!({ "links": links })))
}

pub(super) async fn v3_root(headers: HeaderMap) -> Json<Value> {
    let me = me(&headers);
    let mut links = serde_json::Map::new();
    links.insert("self".into(), json!({"href": format!("{me}/v3")}));
    for name in [
        "apps",
        "builds",
        "deployments",
        "droplets",
        "info",
        "packages",
        "processes",
        "resource_matches",
        "spaces",
    ] {
        links.insert(name.into(), json!({"href": format!("{me}/v3/{name}")}));
    }
    Json(json!({ "links": links }))
}

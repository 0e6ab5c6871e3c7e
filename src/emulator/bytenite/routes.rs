//! The emulator's HTTP handlers and grpc-gateway style errors
//! (`rpcStatus {code, message, details}` with the matching HTTP status).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::archive::{decode_data, read_app, UploadedApp};
use super::records::{resolve, upsert, Push, StoredTar};
use super::{AppRecord, ByteniteEmulator, User};
use crate::backend::bytenite::upload::hash_base64;

/// Pushes carry whole apps, base64-encoded; axum's 2 MiB default is far too
/// small. 2 GiB takes the tar of a 1,000,000-file app (a header and a block
/// per file, about 1.4 GB in base64), which `scripts/bench.sh` deploys.
pub const BODY_LIMIT: usize = 2048 * 1024 * 1024;

const INVALID_ARGUMENT: i32 = 3;
const NOT_FOUND: i32 = 5;
const FAILED_PRECONDITION: i32 = 9;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

pub fn router(emulator: Arc<ByteniteEmulator>) -> Router {
    Router::new()
        .route("/v1/auth/access_token", post(access_token))
        .route("/v1/dev/apps", post(push_app).get(list_apps))
        .route("/v1/dev/apps/{tag}", get(get_app))
        .route("/v1/dev/apps/{tag}/activate", post(activate_app))
        .route("/v1/dev/apps/{tag}/deactivate", post(deactivate_app))
        .route("/v1/dev/apps/{tag}/status", get(app_status))
        .route("/_emulator/apps/{id}/tar", get(download))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(emulator)
}

/// An error answer: `rpcStatus` with grpc-gateway's code → HTTP mapping.
pub struct RpcError {
    code: i32,
    message: String,
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let status = match self.code {
            INVALID_ARGUMENT | FAILED_PRECONDITION => StatusCode::BAD_REQUEST,
            NOT_FOUND => StatusCode::NOT_FOUND,
            UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({"code": self.code, "message": self.message, "details": []});
        (status, Json(body)).into_response()
    }
}

fn rpc_error(code: i32, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> RpcError {
    rpc_error(INVALID_ARGUMENT, message)
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RpcError> {
    body.map_err(|rejection| {
        invalid(format!(
            "cannot read the request body ({}); the emulator accepts up to {} MiB",
            rejection.body_text(),
            BODY_LIMIT / (1024 * 1024)
        ))
    })
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default, alias = "api_key")]
    #[serde(rename = "apiKey")]
    api_key: Option<String>,
}

async fn access_token(
    State(emulator): State<Arc<ByteniteEmulator>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, RpcError> {
    emulator.state.lock().stats.token_requests += 1;
    let body = body_bytes(body)?;
    let request: TokenRequest = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("the request body is not valid JSON: {err}")))?;
    let key = request
        .api_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("apiKey is required"))?;
    let (token, lifetime) = emulator
        .state
        .lock()
        .issue(&key)
        .ok_or_else(|| rpc_error(UNAUTHENTICATED, "invalid API key"))?;
    Ok(Json(json!({
        "token": token,
        "expiresIn": lifetime.as_secs().to_string(),
        "scope": "default",
    })))
}

/// The token's user, or the 401 to send.
fn authenticate(emulator: &ByteniteEmulator, headers: &HeaderMap) -> Result<User, RpcError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(rpc_error(
            UNAUTHENTICATED,
            "missing Authorization header: send your ByteNite access token",
        ));
    };
    let token = value.to_str().unwrap_or_default();
    emulator
        .state
        .lock()
        .user_for(token)
        .ok_or_else(|| rpc_error(UNAUTHENTICATED, "invalid or expired access token"))
}

/// Where this emulator is reachable, as the client called it (for `link`).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

#[derive(Deserialize)]
struct PushRequest {
    #[serde(default)]
    data: Option<Value>,
}

/// What a push decoded to: the archive's length if base64 decoding got
/// that far, the app, and the `hash` to report.
struct Decoded {
    tar_len: Option<u64>,
    app: Result<UploadedApp, String>,
    hash: String,
}

fn decode_push(body: &[u8], hash_of_text: bool) -> Decoded {
    let failed = |tar_len, message: String| Decoded {
        tar_len,
        app: Err(message),
        hash: String::new(),
    };
    let request: PushRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => return failed(None, format!("the request body is not valid JSON: {err}")),
    };
    let data = match request.data {
        Some(Value::String(data)) if !data.is_empty() => data,
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return failed(
                None,
                "data is required: a base64-encoded tar archive of the app".to_string(),
            )
        }
        Some(_) => return failed(None, "data must be a base64 string".to_string()),
    };
    let bytes = match decode_data(&data) {
        Ok(bytes) => bytes,
        Err(message) => return failed(None, message),
    };
    let text_hash = hash_of_text.then(|| hash_base64(data.as_bytes()));
    drop(data);
    let tar_len = Some(bytes.len() as u64);
    let app = read_app(bytes);
    let hash = match (&app, text_hash) {
        (_, Some(hash)) => hash,
        (Ok(app), None) => hash_base64(&app.tar),
        (Err(_), None) => String::new(),
    };
    Decoded { tar_len, app, hash }
}

async fn push_app(
    State(emulator): State<Arc<ByteniteEmulator>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, RpcError> {
    emulator.state.lock().stats.upload_requests += 1;
    let user = authenticate(&emulator, &headers)?;
    let body = body_bytes(body)?;
    // Decoding and reading a big archive is CPU work: keep it off the reactor.
    let hash_of_text = emulator.state.lock().hash_of_text;
    let decoded = tokio::task::spawn_blocking(move || decode_push(&body, hash_of_text))
        .await
        .map_err(|err| rpc_error(INTERNAL, format!("the emulator failed: {err}")))?;
    if decoded.tar_len.is_some() {
        emulator.state.lock().stats.last_tar_len = decoded.tar_len;
    }
    let app = decoded.app.map_err(invalid)?;
    let hash = decoded.hash;
    let tar = StoredTar::store(&app.tar)
        .map_err(|err| rpc_error(INTERNAL, format!("cannot keep the archive: {err}")))?;
    let mut state = emulator.state.lock();
    let index = upsert(
        &mut state.apps,
        Push {
            owner: user.id,
            user_name: user.name,
            manifest: app.manifest,
            hash,
            tar,
        },
    );
    state.stats.uploads_accepted += 1;
    Ok(Json(state.apps[index].to_json(&base_url(&headers))))
}

async fn list_apps(
    State(emulator): State<Arc<ByteniteEmulator>>,
    headers: HeaderMap,
) -> Result<Json<Value>, RpcError> {
    let user = authenticate(&emulator, &headers)?;
    let base = base_url(&headers);
    let state = emulator.state.lock();
    let apps: Vec<Value> = state
        .apps
        .iter()
        .filter(|a| a.owner == user.id)
        .map(|a| a.to_json(&base))
        .collect();
    let total = apps.len();
    Ok(Json(json!({
        "apps": apps,
        "pagination": {"page": 1, "pageSize": total, "totalItems": total.to_string()},
    })))
}

async fn get_app(
    State(emulator): State<Arc<ByteniteEmulator>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, RpcError> {
    let user = authenticate(&emulator, &headers)?;
    let state = emulator.state.lock();
    let app = resolve(&state.apps, &user.id, &tag)
        .ok_or_else(|| rpc_error(NOT_FOUND, format!("app {tag} not found")))?;
    Ok(Json(json!({"app": app.to_json(&base_url(&headers))})))
}

/// `POST /apps/{tag}/activate`: the resolved version becomes `active`.
/// The answer is a `commonGenericResponse`, as ByteNite's other actions
/// give (the real schema is not public).
async fn activate_app(
    State(emulator): State<Arc<ByteniteEmulator>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, RpcError> {
    emulator.state.lock().stats.activate_requests += 1;
    let user = authenticate(&emulator, &headers)?;
    let mut state = emulator.state.lock();
    let plan = &mut state.activation;
    if plan.fail_next > 0 {
        plan.fail_next -= 1;
        return Err(rpc_error(
            UNAVAILABLE,
            "activation is temporarily unavailable",
        ));
    }
    if let Some(message) = plan.refuse.clone() {
        return Err(rpc_error(FAILED_PRECONDITION, message));
    }
    set_status(&mut state.apps, &user.id, &tag, "active")
}

/// `POST /apps/{tag}/deactivate`: the resolved version becomes `inactive`.
async fn deactivate_app(
    State(emulator): State<Arc<ByteniteEmulator>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, RpcError> {
    emulator.state.lock().stats.deactivate_requests += 1;
    let user = authenticate(&emulator, &headers)?;
    let mut state = emulator.state.lock();
    set_status(&mut state.apps, &user.id, &tag, "inactive")
}

fn set_status(
    apps: &mut [AppRecord],
    owner: &str,
    tag: &str,
    status: &str,
) -> Result<Json<Value>, RpcError> {
    let id = resolve(apps, owner, tag)
        .map(|a| a.id.clone())
        .ok_or_else(|| rpc_error(NOT_FOUND, format!("app {tag} not found")))?;
    let app = apps
        .iter_mut()
        .find(|a| a.id == id)
        .expect("resolve found it");
    app.status = status.to_string();
    Ok(Json(json!({
        "ok": true,
        "requestId": uuid::Uuid::new_v4().to_string(),
        "message": format!("app {}@{} is {status}", app.name(), app.version()),
        "error": null,
    })))
}

/// `GET /apps/{tag}/status`: `{id, name, version, status}` (the real
/// schema is not public; this is pushfs's guess).
async fn app_status(
    State(emulator): State<Arc<ByteniteEmulator>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, RpcError> {
    emulator.state.lock().stats.status_requests += 1;
    let user = authenticate(&emulator, &headers)?;
    let state = emulator.state.lock();
    if state.activation.no_status_route {
        return Err(rpc_error(NOT_FOUND, "Not Found"));
    }
    let app = resolve(&state.apps, &user.id, &tag)
        .ok_or_else(|| rpc_error(NOT_FOUND, format!("app {tag} not found")))?;
    Ok(Json(json!({
        "id": app.id,
        "name": app.name(),
        "version": app.version(),
        "status": app.status,
    })))
}

async fn download(
    State(emulator): State<Arc<ByteniteEmulator>>,
    Path(id): Path<String>,
) -> Result<Response, RpcError> {
    let tar = emulator
        .tar_of(&id)
        .ok_or_else(|| rpc_error(NOT_FOUND, format!("app {id} not found")))?;
    let body = Bytes::from(tar.as_ref().clone());
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

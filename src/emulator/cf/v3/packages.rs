//! `/v3/packages`: create a bits package, upload its bits (checked in the
//! controller's order: `resources` JSON, the message, the package, its
//! type and state), then the job's work, revealed over the polls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::super::apps::timestamp;
use super::super::auth::authenticate;
use super::super::bits::{list_files, package, read_parts, UploadedZip};
use super::super::{CfEmulator, CfFault, PackagedFile, UploadRecord};
use super::errors::V3ApiError;
use super::{Caller, DockerData, Package};

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let docker = match request.get("type").and_then(Value::as_str) {
        Some("bits") => {
            if request
                .get("data")
                .is_some_and(|d| d.as_object().is_none_or(|o| !o.is_empty()))
            {
                return Err(V3ApiError::unprocessable(
                    "Data must be empty if provided for bits packages",
                ));
            }
            None
        }
        Some("docker") => Some(docker_data(request.get("data"))?),
        _ => {
            return Err(V3ApiError::unprocessable(
                "Type must be one of 'bits, docker'",
            ))
        }
    };
    let app = request
        .pointer("/relationships/app/data/guid")
        .and_then(Value::as_str)
        .and_then(|g| state.apps.get(g))
        .ok_or_else(|| {
            V3ApiError::unprocessable("App is invalid. Ensure it exists and you have access to it.")
        })?;
    let app_guid = app.guid.clone();
    let docker_app = app.lifecycle_type == "docker";
    if docker.is_none() && docker_app {
        return Err(V3ApiError::unprocessable(
            "Cannot create bits package for a Docker app.",
        ));
    }
    if docker.is_some() && !docker_app {
        return Err(V3ApiError::unprocessable(
            "Cannot create Docker package for a buildpack app.",
        ));
    }
    let seq = state.next_seq();
    let package = match docker {
        Some(data) => Package::docker(&app_guid, data, seq),
        None => Package::new(&app_guid, seq),
    };
    let body = package.presented();
    state.packages.insert(package.guid.clone(), package);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A docker package's `data` (`DockerDataValidator`): `image` required,
/// no keys but `image`, `username` and `password`.
fn docker_data(data: Option<&Value>) -> Result<DockerData, V3ApiError> {
    let text = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let unknown: Vec<String> = data
        .and_then(Value::as_object)
        .map(|o| {
            o.keys()
                .filter(|k| !["image", "username", "password"].contains(&k.as_str()))
                .map(|k| format!("'{k}'"))
                .collect()
        })
        .unwrap_or_default();
    let mut errors = Vec::new();
    let image = text("image").filter(|i| !i.trim().is_empty());
    if image.is_none() {
        errors.push("Data Image required".to_string());
    }
    if !unknown.is_empty() {
        errors.push(format!("Data Unknown field(s): {}", unknown.join(", ")));
    }
    if !errors.is_empty() {
        return Err(V3ApiError::unprocessable(&errors.join(", ")));
    }
    Ok(DockerData {
        image: image.expect("checked above"),
        username: text("username"),
        password: text("password"),
    })
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let pacing = state.settings.v3_pacing;
    let package = state
        .packages
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("Package"))?;
    package.poll(pacing.processing_polls);
    Ok(Json(package.presented()))
}

/// `V2V3ResourceTranslator`: an element with both `checksum` and
/// `size_in_bytes` is v3 and becomes `{fn, size, sha1, mode}`; any other
/// passes through as v2. `None` where CC's parse raises.
fn translate(resources: &Value) -> Option<Value> {
    let list = resources.as_array()?;
    let mut out = Vec::new();
    for item in list {
        let object = item.as_object()?;
        if object.contains_key("checksum") && object.contains_key("size_in_bytes") {
            let mut v2 = json!({
                "fn": object.get("path"),
                "size": object.get("size_in_bytes"),
                "sha1": item.pointer("/checksum/value"),
            });
            if let Some(mode) = object.get("mode") {
                v2["mode"] = mode.clone();
            }
            out.push(v2);
        } else {
            out.push(item.clone());
        }
    }
    Some(Value::Array(out))
}

/// The emulator's stand-in for the stored zip's SHA-256: a digest of the
/// package's listing (path, SHA-1, mode), so equal packages hash equal.
fn package_sha256(files: &BTreeMap<String, PackagedFile>) -> String {
    let mut hasher = Sha256::new();
    for (path, file) in files {
        hasher.update(format!("{path}\0{}\0{:o}\n", file.sha1, file.mode));
    }
    hex::encode(hasher.finalize())
}

pub(super) async fn upload(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, V3ApiError> {
    {
        let state = emu.state.lock();
        let grace = state.settings.upload_grace;
        authenticate(&state.tokens, &headers, grace)?;
    }
    let parts = read_parts(&emu, request, "bits").await?;
    let zip = parts
        .application
        .as_ref()
        .map(|(path, _)| UploadedZip(path.clone()));
    let invalid_json = || V3ApiError::unprocessable("Resources must be valid JSON.");
    let resources = match &parts.resources {
        Some(text) => {
            let parsed: Value = serde_json::from_str(text).map_err(|_| invalid_json())?;
            translate(&parsed).ok_or_else(invalid_json)?
        }
        None => Value::Array(Vec::new()),
    };
    let no_resources = resources.as_array().is_none_or(Vec::is_empty);
    if zip.is_none() && no_resources {
        return Err(V3ApiError::unprocessable(
            "Upload must include either resources or bits",
        ));
    }
    let app_guid = {
        let mut state = emu.state.lock();
        let caller = authenticate(&state.tokens, &headers, state.settings.upload_grace)?;
        let package = state
            .packages
            .get_mut(&guid)
            .ok_or_else(|| V3ApiError::not_found("Package"))?;
        if !caller.can_write() {
            return Err(V3ApiError::not_authorized());
        }
        if package.docker.is_some() {
            return Err(V3ApiError::unprocessable("Package type must be bits."));
        }
        if package.state != "AWAITING_UPLOAD" {
            return Err(V3ApiError::bits_already_uploaded());
        }
        package.state = "PROCESSING_UPLOAD".into();
        package.app_guid.clone()
    };
    let corrupt = emu.state.lock().take_fault(CfFault::CorruptNextZip);
    if let (true, Some((path, size))) = (corrupt, &parts.application) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|_| V3ApiError::unknown())?;
        file.set_len(size / 2).map_err(|_| V3ApiError::unknown())?;
    }
    let zipped_files = zip.as_ref().map(|z| list_files(&z.0)).unwrap_or_default();
    emu.state.lock().uploads.push(UploadRecord {
        app_guid: app_guid.clone(),
        is_async: true,
        application_bytes: parts.application.as_ref().map(|(_, size)| *size),
        zipped_files,
        resources: resources.as_array().map_or(0, Vec::len),
        dropped_fields: parts.dropped,
        package_guid: Some(guid.clone()),
        field_order: parts.order,
    });
    let worker = emu.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let result = package(&worker, zip.as_ref().map(|z| z.0.as_path()), &resources);
        drop(zip);
        result
    })
    .await
    .unwrap_or_else(|_| Err(super::super::errors::CfApiError::unknown()));
    let mut state = emu.state.lock();
    let outcome = outcome.map(|(files, contents)| {
        let sha256 = package_sha256(&files);
        if let Some(app) = state.apps.get_mut(&app_guid) {
            app.package = Some(files.clone());
            app.package_updated_at = Some(timestamp(std::time::SystemTime::now()));
        }
        (contents, sha256)
    });
    let package = state
        .packages
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("Package"))?;
    let outcome = outcome.map(|(contents, sha)| {
        package.contents = Arc::new(contents);
        sha
    });
    package.outcome = Some(outcome.map_err(|e| e.description));
    // Rendered from the object before the job ran: always PROCESSING_UPLOAD.
    Ok((StatusCode::OK, Json(package.presented())).into_response())
}

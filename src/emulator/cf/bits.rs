//! `PUT /v2/apps/:guid/bits`: the multipart upload, checked in the Cloud
//! Controller's order (auth, app, `resources` present and parsable, then
//! the job: zip size, unzip into the pool, fingerprints, size again).
//!
//! The job's work is done when the upload arrives; the job then reveals
//! its outcome over the following polls.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{FromRequest, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;

use super::apps::timestamp;
use super::auth::authenticate;
use super::errors::CfApiError;
use super::jobs::Job;
use super::pool::{add_to_pool, ruby_octal};
use super::{CfEmulator, CfFault, PackagedFile, UploadRecord};

/// CC's `DEFAULT_FILE_MODE` for a fingerprint without a mode.
const DEFAULT_FILE_MODE: u32 = 0o744;

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// What the multipart body held.
#[derive(Default)]
pub(super) struct Parts {
    pub resources: Option<String>,
    /// The file part (`application` in v2, `bits` in v3): path and size.
    pub application: Option<(PathBuf, u64)>,
    pub dropped: Vec<String>,
    /// Every field's name, in the order they came.
    pub order: Vec<String>,
}

/// A file's bytes are kept (for the router) only up to this size...
pub(crate) const KEPT_FILE_MAX: u64 = 1024 * 1024;
/// ...and only while the package's kept bytes stay under this.
pub(crate) const KEPT_PACKAGE_MAX: u64 = 64 * 1024 * 1024;

/// The bytes kept of a package's files, by path.
#[derive(Debug, Default)]
pub(crate) struct PackageContents {
    files: std::collections::HashMap<String, bytes::Bytes>,
    total: u64,
}

impl PackageContents {
    pub fn get(&self, path: &str) -> Option<&bytes::Bytes> {
        self.files.get(path)
    }

    /// Keeps the bytes at `from` if the limits allow.
    fn keep(&mut self, path: &str, size: u64, from: &Path) {
        if size > KEPT_FILE_MAX || self.total + size > KEPT_PACKAGE_MAX {
            return;
        }
        if let Ok(bytes) = std::fs::read(from) {
            self.total += bytes.len() as u64;
            self.files.insert(path.to_string(), bytes.into());
        }
    }

    fn keep_bytes(&mut self, path: &str, bytes: &[u8]) {
        let size = bytes.len() as u64;
        if size <= KEPT_FILE_MAX && self.total + size <= KEPT_PACKAGE_MAX {
            self.total += size;
            self.files
                .insert(path.to_string(), bytes::Bytes::copy_from_slice(bytes));
        }
    }
}

/// The zip file in the uploads dir, removed however the request ends.
pub(super) struct UploadedZip(pub PathBuf);

impl Drop for UploadedZip {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) async fn upload(
    State(emu): State<Arc<CfEmulator>>,
    UrlPath(guid): UrlPath<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, CfApiError> {
    let query: Query<Vec<(String, String)>> =
        Query::try_from_uri(request.uri()).unwrap_or(Query(Vec::new()));
    if query.0.iter().any(|(k, _)| k == "application_path") {
        // nginx: `if ($arg_application_path) { return 422; }`
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    }
    let is_async = query.0.iter().any(|(k, v)| k == "async" && v == "true");
    {
        let mut state = emu.state.lock();
        let grace = state.settings.upload_grace;
        let caller = authenticate(&state.tokens, &headers, grace)?;
        let app = state
            .apps
            .get_mut(&guid)
            .ok_or_else(|| CfApiError::app_not_found(&guid))?;
        if !caller.can_write() {
            return Err(CfApiError::not_authorized());
        }
        // A new package exists from here on; it fails with the upload.
        app.package_state = "PENDING".into();
    }

    let parts = read_parts(&emu, request, "application").await;
    let parts = match parts {
        Ok(parts) => parts,
        Err(err) => return Err(fail_package(&emu, &guid, err)),
    };
    let zip = parts
        .application
        .as_ref()
        .map(|(path, _)| UploadedZip(path.clone()));
    let Some(resources_text) = parts.resources else {
        return Err(fail_package(
            &emu,
            &guid,
            CfApiError::app_bits_upload_invalid("missing :resources"),
        ));
    };
    let resources: Value = match serde_json::from_str(&resources_text) {
        Ok(value) => value,
        Err(_) => {
            return Err(fail_package(
                &emu,
                &guid,
                CfApiError::app_bits_upload_invalid("invalid :resources"),
            ))
        }
    };

    let corrupt = emu.state.lock().take_fault(CfFault::CorruptNextZip);
    if let (true, Some((path, size))) = (corrupt, &parts.application) {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(size / 2)?;
    }
    let zipped_files = zip.as_ref().map(|z| list_files(&z.0)).unwrap_or_default();
    emu.state.lock().uploads.push(UploadRecord {
        app_guid: guid.clone(),
        is_async,
        application_bytes: parts.application.as_ref().map(|(_, size)| *size),
        zipped_files,
        resources: resources.as_array().map_or(0, Vec::len),
        dropped_fields: parts.dropped,
        package_guid: None,
        field_order: parts.order,
    });

    let worker = emu.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let result = package(&worker, zip.as_ref().map(|z| z.0.as_path()), &resources);
        drop(zip);
        result.map(|(files, _)| files)
    })
    .await
    .unwrap_or_else(|_| Err(CfApiError::unknown()));
    {
        let mut state = emu.state.lock();
        if let Some(app) = state.apps.get_mut(&guid) {
            match &outcome {
                Ok(files) => {
                    app.package = Some(files.clone());
                    app.package_state = "PENDING".into();
                    app.package_updated_at = Some(timestamp(SystemTime::now()));
                }
                Err(_) => app.package_state = "FAILED".into(),
            }
            app.touch();
        }
    }
    if is_async {
        let job = Job::new(outcome.map(|_| ()));
        let body = job.body("queued");
        emu.state.lock().jobs.insert(job.guid.clone(), job);
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    }
    outcome?;
    Ok((
        StatusCode::CREATED,
        [("content-type", "application/json;charset=utf-8")],
        "{}",
    )
        .into_response())
}

impl From<io::Error> for CfApiError {
    fn from(_: io::Error) -> CfApiError {
        CfApiError::unknown()
    }
}

fn fail_package(emu: &CfEmulator, guid: &str, err: CfApiError) -> CfApiError {
    if let Some(app) = emu.state.lock().apps.get_mut(guid) {
        app.package_state = "FAILED".into();
    }
    err
}

/// Reads the form: `resources` as text, the file part (`file_field`)
/// streamed to disk. Other fields are dropped, as nginx's upload module
/// does. A body that is not multipart at all simply has no fields.
pub(super) async fn read_parts(
    emu: &CfEmulator,
    request: Request,
    file_field: &str,
) -> Result<Parts, CfApiError> {
    let mut parts = Parts::default();
    let Ok(mut form) = Multipart::from_request(request, &()).await else {
        return Ok(parts);
    };
    let broken = |err: axum::extract::multipart::MultipartError| {
        CfApiError::app_bits_upload_invalid(&format!("broken multipart body ({})", err.body_text()))
    };
    while let Some(mut field) = form.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or("").to_string();
        parts.order.push(name.clone());
        match name.as_str() {
            "resources" => parts.resources = Some(field.text().await.map_err(broken)?),
            _ if name == file_field => {
                let path = emu
                    .uploads_dir()
                    .join(format!("{}.zip", uuid::Uuid::new_v4()));
                let mut file = tokio::fs::File::create(&path).await?;
                let mut size = 0u64;
                let copied = async {
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        size += chunk.len() as u64;
                        file.write_all(&chunk).await?;
                    }
                    file.flush().await?;
                    Ok::<(), CfApiError>(())
                }
                .await;
                if let Err(err) = copied {
                    let _ = std::fs::remove_file(&path);
                    return Err(err);
                }
                parts.application = Some((path, size));
            }
            other => {
                parts.dropped.push(other.to_string());
                while field.chunk().await.map_err(broken)?.is_some() {}
            }
        }
    }
    Ok(parts)
}

/// Files and symlinks in a zip, for the upload record; empty if unreadable.
pub(super) fn list_files(path: &Path) -> Vec<String> {
    let Ok(mut archive) = File::open(path)
        .map_err(drop)
        .and_then(|f| zip::ZipArchive::new(f).map_err(drop))
    else {
        return Vec::new();
    };
    (0..archive.len())
        .filter_map(|i| {
            archive
                .by_index_raw(i)
                .ok()
                .filter(|e| !e.is_dir())
                .map(|e| e.name().to_string())
        })
        .collect()
}

/// Info-ZIP's treatment of an entry name: `.` and `..` parts and leading
/// slashes are dropped.
fn entry_path(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .collect::<Vec<_>>()
        .join("/")
}

/// `FilePathChecker.safe_path?`: the path must stay inside the app root.
/// Returns the normalised path when it does.
fn safe_path(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn invalid_zip(reason: Option<&str>) -> CfApiError {
    match reason {
        Some(reason) => {
            CfApiError::app_bits_upload_invalid(&format!("Invalid zip archive ({reason})."))
        }
        None => CfApiError::app_bits_upload_invalid("Invalid zip archive."),
    }
}

fn too_big(max: u64) -> CfApiError {
    CfApiError::app_package_invalid(&format!("Package may not be larger than {max} bytes"))
}

/// The job's work: the package's files and the bytes kept of them, or the
/// error the job fails with.
pub(super) fn package(
    emu: &CfEmulator,
    zip: Option<&Path>,
    resources: &Value,
) -> Result<(BTreeMap<String, PackagedFile>, PackageContents), CfApiError> {
    let settings = emu.settings();
    let mut files = BTreeMap::new();
    let mut contents = PackageContents::default();
    if let Some(path) = zip {
        let file = File::open(path)?;
        let mut archive = zip::ZipArchive::new(file).map_err(|_| invalid_zip(None))?;
        let mut total = 0u64;
        for i in 0..archive.len() {
            total += archive
                .by_index_raw(i)
                .map_err(|_| invalid_zip(None))?
                .size();
        }
        if total > settings.max_package_size {
            return Err(too_big(settings.max_package_size));
        }
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|err| invalid_zip(Some(&err.to_string())))?;
            let name = entry_path(entry.name());
            if entry.is_dir() || name.is_empty() {
                continue;
            }
            let mode = entry.unix_mode().unwrap_or(0o100644);
            let mtime = Some(entry_mtime(&entry));
            if mode & S_IFMT == S_IFLNK {
                let mut target = String::new();
                entry
                    .read_to_string(&mut target)
                    .map_err(|err| invalid_zip(Some(&err.to_string())))?;
                contents.keep_bytes(&name, target.as_bytes());
                files.insert(
                    name,
                    PackagedFile {
                        sha1: hex::encode(Sha1::digest(target.as_bytes())),
                        size: target.len() as u64,
                        mode: mode & 0o7777,
                        link_target: Some(target),
                        mtime,
                    },
                );
                continue;
            }
            let temp = emu.uploads_dir().join(uuid::Uuid::new_v4().to_string());
            let (sha1, size) = copy_hashing(&mut entry, &temp).map_err(|err| {
                let _ = std::fs::remove_file(&temp);
                invalid_zip(Some(&err.to_string()))
            })?;
            contents.keep(&name, size, &temp);
            let poolable = settings.resource_matching
                && size >= settings.pool_min_size
                && size <= settings.pool_max_size
                && mode & 0o700 >= 0o600;
            if poolable {
                add_to_pool(emu, &sha1, size, &temp)?;
            } else {
                std::fs::remove_file(&temp)?;
            }
            files.insert(
                name,
                PackagedFile {
                    sha1,
                    size,
                    mode: mode & 0o7777,
                    link_target: None,
                    mtime,
                },
            );
        }
    }

    let Value::Array(fingerprints) = resources else {
        return Err(CfApiError::app_bits_upload_invalid("invalid :resources"));
    };
    // Every fingerprint is validated before any is fetched.
    let mut wanted = Vec::new();
    for fingerprint in fingerprints {
        let path = fingerprint
            .get("fn")
            .and_then(Value::as_str)
            .ok_or_else(CfApiError::unknown)?;
        let normalised = safe_path(path).ok_or_else(|| CfApiError::file_path_invalid(path))?;
        let mode = match fingerprint.get("mode") {
            None | Some(Value::Null) => DEFAULT_FILE_MODE,
            Some(Value::String(raw)) => {
                let mode = ruby_octal(raw);
                if mode < 0 || mode & 0o600 != 0o600 {
                    return Err(CfApiError::file_mode_invalid(raw, path));
                }
                mode as u32
            }
            // `Integer#to_i(8)` raises: an unknown error.
            Some(_) => return Err(CfApiError::unknown()),
        };
        let sha1 = fingerprint
            .get("sha1")
            .and_then(Value::as_str)
            .ok_or_else(CfApiError::unknown)?;
        wanted.push((normalised, sha1.to_string(), mode));
    }
    for (path, sha1, mode) in &wanted {
        let key = sha1.to_ascii_lowercase();
        if !emu.state.lock().pool.contains_key(&key) {
            return Err(CfApiError::blobstore_error());
        }
        let blob = emu.pool_path(&key);
        let (actual, size) = hash_file(&blob).map_err(|_| CfApiError::blobstore_error())?;
        if actual != *sha1 {
            emu.state.lock().pool.remove(&key);
            let _ = std::fs::remove_file(&blob);
            return Err(CfApiError::resource_checksum_mismatch());
        }
        contents.keep(path, size, &blob);
        files.insert(
            path.clone(),
            PackagedFile {
                sha1: actual,
                size,
                mode: mode & 0o7777,
                link_target: None,
                mtime: None,
            },
        );
    }
    if zip.is_none() && wanted.is_empty() {
        return Err(invalid_zip(None));
    }
    let total: u64 = files.values().map(|f| f.size).sum();
    if total > settings.max_package_size {
        return Err(too_big(settings.max_package_size));
    }
    Ok((files, contents))
}

fn copy_hashing(from: &mut impl Read, to: &Path) -> io::Result<(String, u64)> {
    hash_into(from, &mut File::create(to)?)
}

fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    hash_into(&mut File::open(path)?, &mut io::sink())
}

fn hash_into(from: &mut impl Read, out: &mut impl Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// An entry's mtime as unzip restores it: the extended timestamp (0x5455)
/// when there is one, else the DOS date and time, read as UTC.
fn entry_mtime(entry: &zip::read::ZipFile<'_, impl std::io::Read>) -> i64 {
    for field in entry.extra_data_fields() {
        if let zip::extra_fields::ExtraField::ExtendedTimestamp(ts) = field {
            if let Some(secs) = ts.mod_time() {
                return i64::from(secs);
            }
        }
    }
    let t = entry.last_modified().unwrap_or_default();
    let days = days_from_civil(i64::from(t.year()), t.month().into(), t.day().into());
    days * 86_400 + i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
}

/// Howard Hinnant's days-from-civil: (y, m, d) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_paths_must_stay_inside_the_app() {
        assert_eq!(safe_path("a/b.txt").as_deref(), Some("a/b.txt"));
        assert_eq!(safe_path("a/../b").as_deref(), Some("b"));
        assert_eq!(safe_path("../../lol"), None);
        assert_eq!(safe_path("/etc/passwd"), None);
        assert_eq!(safe_path("../x"), None);
    }

    #[test]
    fn zip_entry_names_lose_dot_dot() {
        assert_eq!(entry_path("../../etc/x"), "etc/x");
        assert_eq!(entry_path("./a/./b"), "a/b");
        assert_eq!(entry_path("/abs"), "abs");
    }
}

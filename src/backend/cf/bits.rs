//! The bits of one deploy: which files the server already holds
//! (`PUT /v2/resource_match`), the zip of the rest, and the multipart
//! `PUT /v2/apps/:guid/bits?async=true` that carries both.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Body, StatusCode};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::api::CcSession;
use crate::backend::metered::metered;
use crate::backend::{DeployError, DeployState, ProgressPhase, Report};
use crate::package::fingerprint::{fingerprints, Fingerprint, PoolWindow};
use crate::package::zip::{write_zip_to_temp, ZipSummary};
use crate::progress::{count_stream, ByteCounter};
use crate::snapshot::{EntryKind, SnapshotEntry};

/// The cf CLI's `MaxResourceMatchChunkSize`: keeps each request far below
/// the Cloud Controller's 15 MB body limit.
pub const MATCH_CHUNK: usize = 1000;

const MATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The cf CLI's upload timeout.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What a snapshot becomes on the wire.
pub struct BitsPlan<'a> {
    /// Everything packaged: the app's bits, without pushfs's spec files.
    pub entries: Vec<&'a SnapshotEntry>,
    /// One per regular file in `entries`.
    pub fingerprints: Vec<Fingerprint>,
}

impl<'a> BitsPlan<'a> {
    /// The plan for `entries`, an app's bits (see `source::AppBits`).
    pub fn new(entries: Vec<&'a SnapshotEntry>) -> BitsPlan<'a> {
        let fingerprints = fingerprints(entries.iter().copied());
        BitsPlan {
            entries,
            fingerprints,
        }
    }

    /// The fingerprints worth asking the server about.
    pub fn candidates(&self, window: &PoolWindow) -> Vec<&Fingerprint> {
        self.fingerprints
            .iter()
            .filter(|f| window.may_match(f))
            .collect()
    }

    /// Splits the app by the SHA-1s the server holds: the fingerprints it
    /// will copy from its pool, and the entries that must go in the zip
    /// (directories, symlinks and every other file).
    pub fn split(
        &self,
        known: &HashSet<String>,
        window: &PoolWindow,
    ) -> (Vec<Fingerprint>, Vec<&'a SnapshotEntry>) {
        let is_matched = |f: &Fingerprint| window.may_match(f) && known.contains(&f.sha1);
        let matched: Vec<Fingerprint> = self
            .fingerprints
            .iter()
            .filter(|f| is_matched(f))
            .cloned()
            .collect();
        let matched_paths: HashSet<&str> = matched.iter().map(|f| f.path.as_str()).collect();
        let to_zip = self
            .entries
            .iter()
            .copied()
            .filter(|e| !(e.file().is_some() && matched_paths.contains(e.path.as_str())))
            .collect();
        (matched, to_zip)
    }
}

/// A zip is needed only for content the pool cannot provide: unmatched
/// files or symlinks. Directory entries alone are pointless, the Cloud
/// Controller deletes them from the package.
pub fn needs_zip(to_zip: &[&SnapshotEntry]) -> bool {
    to_zip.iter().any(|e| !matches!(e.kind, EntryKind::Dir))
}

#[derive(Deserialize)]
struct MatchedResource {
    sha1: String,
}

/// Asks the server which of `candidates` it holds, in chunks; returns their
/// SHA-1s. Any failure is the caller's to log: matching is an optimization.
pub async fn match_resources(
    session: &CcSession<'_>,
    candidates: &[&Fingerprint],
) -> Result<HashSet<String>, DeployError> {
    let url = session.url("/v2/resource_match");
    let mut known = HashSet::new();
    for chunk in candidates.chunks(MATCH_CHUNK) {
        let (_, answer) = session
            .send(|http| Ok(http.put(&url).json(chunk).timeout(MATCH_TIMEOUT)))
            .await?;
        let matched: Vec<MatchedResource> = serde_json::from_value(answer)
            .map_err(|err| DeployError::Protocol(format!("resource_match answer: {err}")))?;
        known.extend(matched.into_iter().map(|m| m.sha1.to_ascii_lowercase()));
    }
    Ok(known)
}

/// Where to write the zip: beside the snapshot's blobs, so it lands on the
/// state directory's disk rather than a RAM-backed /tmp. The temp file has
/// no name (or loses it at once), so nothing else ever sees it there.
pub fn zip_dir(entries: &[&SnapshotEntry]) -> PathBuf {
    entries
        .iter()
        .find_map(|e| e.file())
        .and_then(|f| f.path().parent().map(Path::to_path_buf))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// The zip of `to_zip`, built off the async runtime; `read` counts the
/// file content read into it.
pub async fn build_zip(
    to_zip: Vec<SnapshotEntry>,
    read: ByteCounter,
) -> Result<(File, ZipSummary), DeployError> {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&SnapshotEntry> = to_zip.iter().collect();
        let dir = zip_dir(&refs);
        write_zip_to_temp(refs, &dir, &read).map_err(|err| DeployError::Io(err.into()))
    })
    .await
    .map_err(|err| DeployError::Io(std::io::Error::other(format!("zip task: {err}"))))?
}

/// The zip of the files the server lacks, or `None` when it has them all;
/// either way said in the log. Its progress counts their bytes, not the
/// snapshot's: pooled files are never read. Shared by the v2 and v3 uploads.
pub async fn zip_if_needed(
    to_zip: &[&SnapshotEntry],
    report: &dyn Report,
) -> Result<Option<(File, ZipSummary)>, DeployError> {
    if !needs_zip(to_zip) {
        report.log("cf: no zip, every file is already on the server");
        return Ok(None);
    }
    // Local work between two requests: the state says so while it lasts.
    report.state(DeployState::Packaging);
    let owned: Vec<SnapshotEntry> = to_zip.iter().map(|e| (*e).clone()).collect();
    let content: u64 = owned
        .iter()
        .filter_map(|e| e.file())
        .map(|f| f.blob.size)
        .sum();
    let read = ByteCounter::new();
    let built = build_zip(owned, read.clone());
    let (file, summary) = metered(report, ProgressPhase::Packaging, &read, content, built).await?;
    report.log(&format!(
        "cf: zip of {} files ({} entries), {} bytes, sha256 {}",
        summary.files, summary.entries, summary.size, summary.sha256
    ));
    report.state(DeployState::Uploading);
    Ok(Some((file, summary)))
}

/// The zip as a multipart part streamed from its temp file, its bytes
/// counted in `sent` as the request takes them. A clone of the file shares
/// its offset, so it is rewound: a resend after a 401 starts over, and so
/// does its count.
pub fn zip_part(
    (file, summary): &(File, ZipSummary),
    file_name: &'static str,
    mime: &str,
    sent: &ByteCounter,
) -> std::io::Result<Part> {
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(0))?;
    sent.reset();
    let stream = count_stream(
        ReaderStream::new(tokio::fs::File::from_std(file)),
        sent.clone(),
    );
    Ok(
        Part::stream_with_length(Body::wrap_stream(stream), summary.size)
            .file_name(file_name)
            .mime_str(mime)
            .expect("a valid mime type"),
    )
}

/// `PUT /v2/apps/:guid/bits?async=true`: `resources` first, then the zip as
/// `application` when there is one. `async` must be a query parameter:
/// nginx drops form fields other than `resources` and `_method`. The zip's
/// bytes sent so far are reported as progress.
pub async fn upload(
    session: &CcSession<'_>,
    guid: &str,
    resources: &[Fingerprint],
    zip: Option<&(File, ZipSummary)>,
    report: &dyn Report,
) -> Result<(StatusCode, serde_json::Value), DeployError> {
    let url = session.url(&format!("/v2/apps/{guid}/bits"));
    let resources = serde_json::to_string(resources)
        .map_err(|err| DeployError::Protocol(format!("encoding fingerprints: {err}")))?;
    let sent = ByteCounter::new();
    let request = session.send(|http| {
        let mut form = Form::new().part("resources", Part::text(resources.clone()));
        if let Some(zip) = zip {
            form = form.part(
                "application",
                zip_part(zip, "application.zip", "application/zip", &sent)?,
            );
        }
        Ok(http
            .put(&url)
            .query(&[("async", "true")])
            .multipart(form)
            .timeout(UPLOAD_TIMEOUT))
    });
    metered(
        report,
        ProgressPhase::Uploading,
        &sent,
        zip_len(zip),
        request,
    )
    .await
}

/// The bytes of an upload that progress counts: the zip's. The fingerprints
/// beside it are a small fraction, sent in one piece.
pub fn zip_len(zip: Option<&(File, ZipSummary)>) -> u64 {
    zip.map_or(0, |(_, summary)| summary.size)
}

#[cfg(test)]
mod tests {
    use super::super::plan::DeployPlan;
    use super::super::source::AppBits;
    use super::*;
    use crate::backend::{BackendKind, IgnoreProfile};
    use crate::snapshot::Snapshot;
    use crate::store::ContentStore;

    async fn bits_of(snap: &Snapshot) -> Result<Vec<SnapshotEntry>, DeployError> {
        let plan = DeployPlan::new(snap)?;
        let profile = IgnoreProfile::default();
        let bits = AppBits::gather(snap, &plan, &plan.apps[0].source, &profile).await?;
        Ok(bits.entries().into_iter().cloned().collect())
    }

    #[tokio::test]
    async fn spec_and_manifests_are_not_packaged_and_matched_files_leave_the_zip() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir_all(app.join("sub")).unwrap();
        std::fs::write(app.join("spec.json"), r#"{"space_guid":"s-1"}"#).unwrap();
        std::fs::write(app.join("vars.yml"), "n: 1\n").unwrap();
        std::fs::write(app.join("manifest.yml"), "applications: [{name: a}]").unwrap();
        std::fs::write(app.join("sub/manifest.yaml"), "x").unwrap();
        std::fs::write(
            app.join("sub/spec.json"),
            "kept: only the root spec is pushfs's",
        )
        .unwrap();
        std::fs::write(app.join("big"), vec![7u8; 70_000]).unwrap();
        std::fs::write(app.join("big-copy"), vec![7u8; 70_000]).unwrap();
        std::fs::write(app.join("small"), "s").unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let snap =
            Snapshot::from_dir(&app, BackendKind::Cf, &IgnoreProfile::default(), &store).unwrap();
        let entries = bits_of(&snap).await.unwrap();
        let plan = BitsPlan::new(entries.iter().collect());
        let paths: Vec<&str> = plan.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["big", "big-copy", "small", "sub", "sub/spec.json"]);

        let window = PoolWindow::CAPI_DEFAULT;
        let candidates = plan.candidates(&window);
        assert_eq!(candidates.len(), 2);
        let known = HashSet::from([candidates[0].sha1.clone()]);
        let (matched, to_zip) = plan.split(&known, &window);
        let matched: Vec<&str> = matched.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            matched,
            ["big", "big-copy"],
            "same content at two paths matches twice"
        );
        let zipped: Vec<&str> = to_zip.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(zipped, ["small", "sub", "sub/spec.json"]);
        assert!(needs_zip(&to_zip));
        assert!(!needs_zip(&to_zip[1..2]), "a lone directory needs no zip");
    }

    #[tokio::test]
    async fn a_folder_with_only_its_spec_is_refused_locally() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir_all(app.join("empty")).unwrap();
        std::fs::write(app.join("spec.json"), r#"{"name":"a"}"#).unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let snap =
            Snapshot::from_dir(&app, BackendKind::Cf, &IgnoreProfile::default(), &store).unwrap();
        assert!(matches!(
            bits_of(&snap).await,
            Err(DeployError::InvalidSpec(_))
        ));
    }
}

//! What goes into the tar pushfs uploads to ByteNite, decided from a snapshot.
//!
//! The server reads `manifest.json` from the archive root, so the archive
//! always holds one built from the effective manifest (`spec.json` merged
//! over `manifest.json`) in place of both files. The rest follows the
//! `bytenite app new` layout:
//!
//! - the app folder has an `app/` directory: everything else is packed as
//!   it is (`app/…`, `template.json`, …), and the entrypoint must be in `app/`;
//! - it has none (a flat folder, e.g. `spec.json` + `main.py`): every other
//!   entry is packed under `app/`, and the entrypoint must be at the root.

use crate::package::tar::{TarBody, TarItem, TarPackage};
use crate::snapshot::{EntryKind, Snapshot, SnapshotEntry, SpecReadError};

use super::manifest::{AppManifest, Manifest, ManifestError, MANIFEST_FILE, SPEC_FILE};

/// The directory ByteNite runs the entrypoint from.
pub const APP_DIR: &str = "app";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A `bytenite app new` folder: code already in `app/`.
    AppDir,
    /// Code at the folder's root, packed under `app/`.
    Flat,
}

#[derive(Debug)]
pub struct Bundle {
    pub package: TarPackage,
    pub app: AppManifest,
    pub layout: Layout,
    /// The files the manifest came from, for the log (`manifest.json + spec.json`).
    pub sources: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("no {SPEC_FILE} or {MANIFEST_FILE} at the app's root: add one with name, version, entrypoint and platform_config.container")]
    NoSpec,
    #[error("{0}")]
    Entrypoint(String),
    #[error(transparent)]
    Read(#[from] SpecReadError),
}

/// Reads and checks the spec, and plans the archive.
pub fn bundle(snapshot: &Snapshot) -> Result<Bundle, BundleError> {
    let mut sources = Vec::new();
    let mut manifest: Option<Manifest> = None;
    for file in [MANIFEST_FILE, SPEC_FILE] {
        if let Some(bytes) = snapshot.read(file)? {
            let parsed = Manifest::parse(&bytes, file)?;
            manifest = Some(match manifest {
                Some(base) => base.merged_with(parsed),
                None => parsed,
            });
            sources.push(file);
        }
    }
    let manifest = manifest.ok_or(BundleError::NoSpec)?.with_default_platform();
    let app = manifest.validate()?;

    let layout = match snapshot.find(APP_DIR).map(|e| &e.kind) {
        Some(EntryKind::Dir) => Layout::AppDir,
        _ => Layout::Flat,
    };
    let is_spec = |e: &SnapshotEntry| e.path == MANIFEST_FILE || e.path == SPEC_FILE;
    let mut package = match layout {
        Layout::AppDir => TarPackage::from_snapshot(snapshot, |e| !is_spec(e)),
        Layout::Flat => {
            let mut package = TarPackage::from_snapshot_under(snapshot, APP_DIR, |e| !is_spec(e));
            package.insert(TarItem {
                path: APP_DIR.to_string(),
                mode: 0o755,
                body: TarBody::Dir,
            });
            package
        }
    };

    let entry_path = format!("{APP_DIR}/{}", app.entrypoint);
    let entry_ok = package
        .get(&entry_path)
        .is_some_and(|i| !matches!(i.body, TarBody::Dir));
    if !entry_ok {
        let (wanted, hint) = match layout {
            Layout::AppDir => (
                entry_path.clone(),
                "put the script in app/ or fix \"entrypoint\"",
            ),
            Layout::Flat => (
                app.entrypoint.clone(),
                "put the script at the app's root (it is packed as app/…) or fix \"entrypoint\"",
            ),
        };
        return Err(BundleError::Entrypoint(format!(
            "entrypoint {:?} not found: there is no file {wanted}; {hint}",
            app.entrypoint
        )));
    }

    package.insert(TarItem {
        path: MANIFEST_FILE.to_string(),
        mode: 0o644,
        body: TarBody::Bytes(manifest.to_bytes()),
    });
    Ok(Bundle {
        package,
        app,
        layout,
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendKind, IgnoreProfile};
    use crate::store::ContentStore;
    use std::fs;
    use std::path::Path;

    fn snapshot(dir: &Path, store: &ContentStore) -> Snapshot {
        Snapshot::from_dir(dir, BackendKind::Bytenite, &IgnoreProfile::default(), store).unwrap()
    }

    fn paths(bundle: &Bundle) -> Vec<String> {
        bundle.package.items().map(|i| i.path).collect()
    }

    fn manifest_bytes(bundle: &Bundle) -> serde_json::Value {
        let item = bundle.package.get(MANIFEST_FILE).unwrap();
        let TarBody::Bytes(bytes) = &item.body else {
            panic!("generated")
        };
        serde_json::from_slice(bytes).unwrap()
    }

    const MANIFEST: &str = r#"{"name":"hello","version":"0.1","platform":"docker","entrypoint":"main.py",
        "platform_config":{"container":"python:latest"}}"#;

    #[test]
    fn app_folder_is_packed_as_is_with_a_merged_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("s")).unwrap();
        let dir = tmp.path().join("hello");
        fs::create_dir_all(dir.join("app")).unwrap();
        fs::write(dir.join("manifest.json"), MANIFEST).unwrap();
        fs::write(dir.join("spec.json"), r#"{"Version":"0.2"}"#).unwrap();
        fs::write(dir.join("template.json"), "{}").unwrap();
        fs::write(dir.join("app/main.py"), "print(1)").unwrap();
        let b = bundle(&snapshot(&dir, &store)).unwrap();
        assert_eq!(b.layout, Layout::AppDir);
        assert_eq!(
            paths(&b),
            ["app", "app/main.py", "manifest.json", "template.json"]
        );
        assert_eq!(b.app.version, "0.2");
        assert_eq!(b.sources, ["manifest.json", "spec.json"]);
        assert_eq!(manifest_bytes(&b)["version"], "0.2");
    }

    #[test]
    fn flat_folder_goes_under_app() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("s")).unwrap();
        let dir = tmp.path().join("flat");
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::write(
            dir.join("spec.json"),
            MANIFEST.replace("\"platform\":\"docker\",", ""),
        )
        .unwrap();
        fs::write(dir.join("main.py"), "print(1)").unwrap();
        fs::write(dir.join("lib/x.py"), "").unwrap();
        let b = bundle(&snapshot(&dir, &store)).unwrap();
        assert_eq!(b.layout, Layout::Flat);
        assert_eq!(
            paths(&b),
            [
                "app",
                "app/lib",
                "app/lib/x.py",
                "app/main.py",
                "manifest.json"
            ]
        );
        assert_eq!(manifest_bytes(&b)["platform"], "docker");
    }

    #[test]
    fn a_missing_entrypoint_is_reported_before_upload() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("s")).unwrap();
        let dir = tmp.path().join("a");
        fs::create_dir_all(dir.join("app")).unwrap();
        fs::write(dir.join("manifest.json"), MANIFEST).unwrap();
        fs::write(dir.join("main.py"), "at the root, not in app/").unwrap();
        let err = bundle(&snapshot(&dir, &store)).unwrap_err().to_string();
        assert!(err.contains("no file app/main.py"), "{err}");

        let flat = tmp.path().join("b");
        fs::create_dir_all(&flat).unwrap();
        fs::write(flat.join("spec.json"), MANIFEST).unwrap();
        let err = bundle(&snapshot(&flat, &store)).unwrap_err().to_string();
        assert!(
            err.contains("no file main.py") && err.contains("root"),
            "{err}"
        );
    }

    #[test]
    fn no_spec_and_bad_spec_are_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("s")).unwrap();
        let dir = tmp.path().join("a");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("main.py"), "").unwrap();
        assert!(matches!(
            bundle(&snapshot(&dir, &store)),
            Err(BundleError::NoSpec)
        ));
        fs::write(dir.join("spec.json"), r#"{"name":"my app!"}"#).unwrap();
        let err = bundle(&snapshot(&dir, &store)).unwrap_err().to_string();
        assert!(err.contains("name \"my app!\" is not valid"), "{err}");
    }
}

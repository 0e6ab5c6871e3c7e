//! What one deploy of a folder will do, decided locally before any
//! request: the manifest to apply, and one [`PushPlan`] per app in
//! manifest order, each with where its bits come from. The cf CLI's
//! `CreatePushPlans`, for a folder.

use super::manifest::{CfManifest, DockerImage, MANIFEST_FILES, VARS_FILE};
use super::spec::{read_spec_json, AppRef, SpecJson, SpecJsonRead, Strategy, SPEC_FILE};
use crate::backend::DeployError;
use crate::snapshot::{EntryKind, Snapshot, SnapshotEntry};

/// Where an app's bits come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// A folder of the app folder (`""`: the app folder itself), as if it
    /// were the app folder.
    Folder(String),
    /// A zip archive in the app folder (`.zip`, `.jar`, `.war`): its
    /// entries are the bits.
    Archive(String),
    /// A docker image: no bits at all.
    Docker(DockerImage),
}

/// One app of the deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPlan {
    pub app: AppRef,
    pub source: AppSource,
}

impl PushPlan {
    /// The app's name, or its guid when the folder gives only that.
    pub fn label(&self) -> &str {
        match &self.app {
            AppRef::Name { name, .. } => name,
            AppRef::Guid(guid) => guid,
        }
    }
}

/// The whole deploy.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    /// The file that named the apps, for the log.
    pub named_by: &'static str,
    pub apps: Vec<PushPlan>,
    /// The space `spec.json` gives, if any; else the configured or
    /// targeted one.
    pub space_guid: Option<String>,
    /// The YAML for `apply_manifest` (v3), with the default-route rule;
    /// `None` for an app given by guid.
    pub manifest: Option<String>,
    pub no_start: bool,
    /// `None`: the configured `[cf] strategy`.
    pub strategy: Option<Strategy>,
    /// `spec.json` is the app's own file and travels with it.
    pub spec_json_travels: bool,
}

impl DeployPlan {
    /// Reads the folder's spec and manifest; every refusal comes from
    /// here, before a request is sent.
    pub fn new(snapshot: &Snapshot) -> Result<DeployPlan, DeployError> {
        let manifest = CfManifest::read(snapshot)?;
        // An OpenAPI document can pass the 1 MiB a spec may have.
        let spec = if manifest.is_some() && too_big(snapshot, SPEC_FILE) {
            SpecJsonRead::AppFile
        } else {
            read_spec_json(snapshot, manifest.is_some())?
        };
        let (spec_json, spec_json_travels) = match spec {
            SpecJsonRead::Ours(spec) => (Some(spec), false),
            SpecJsonRead::AppFile => (None, true),
            SpecJsonRead::Absent => (None, false),
        };
        let Some(manifest) = manifest else {
            let Some(spec) = spec_json else {
                return Err(DeployError::InvalidSpec(format!(
                    "no {SPEC_FILE} (or cf manifest.yml) in the app folder: write {{\"name\": \"my-app\", \"space_guid\": \"...\"}} or {{\"guid\": \"...\"}} into {SPEC_FILE}"
                )));
            };
            return Self::from_spec_json(spec);
        };
        let spec = spec_json.unwrap_or_default();
        if spec.guid.is_some() {
            return Err(DeployError::InvalidSpec(format!(
                "{SPEC_FILE} gives a \"guid\", but {} names the apps: remove the guid (the manifest's name finds the app), or the manifest",
                manifest.file
            )));
        }
        let mut apps = manifest.apps()?;
        if let Some(name) = &spec.name {
            apps.retain(|a| &a.name == name);
            if apps.is_empty() {
                return Err(DeployError::InvalidSpec(format!(
                    "{SPEC_FILE} names the app {name:?}, which {} does not list",
                    manifest.file
                )));
            }
        }
        let names: Vec<String> = match &spec.name {
            Some(name) => vec![name.clone()],
            None => Vec::new(),
        };
        let mut plans = Vec::with_capacity(apps.len());
        for app in apps {
            let source = match (app.docker, &app.path) {
                (Some(image), _) => AppSource::Docker(image),
                (None, Some(path)) => source_at(snapshot, manifest.file, &app.name, path)?,
                (None, None) => AppSource::Folder(String::new()),
            };
            plans.push(PushPlan {
                app: AppRef::Name {
                    name: app.name,
                    space_guid: spec.space_guid.clone(),
                },
                source,
            });
        }
        Ok(DeployPlan {
            named_by: manifest.file,
            apps: plans,
            space_guid: spec.space_guid,
            manifest: Some(manifest.to_apply(&names)?),
            no_start: spec.no_start,
            strategy: spec.strategy,
            spec_json_travels,
        })
    }

    /// A folder with `spec.json` and no manifest: one app from the root.
    /// A named app still gets what `cf push NAME` sends, a manifest of its
    /// name with the default route.
    fn from_spec_json(spec: SpecJson) -> Result<DeployPlan, DeployError> {
        let app = spec.app_ref()?;
        let manifest = match &app {
            AppRef::Name { name, .. } => Some(CfManifest::for_name(name).to_apply(&[])?),
            AppRef::Guid(_) => None,
        };
        Ok(DeployPlan {
            named_by: SPEC_FILE,
            apps: vec![PushPlan {
                app,
                source: AppSource::Folder(String::new()),
            }],
            space_guid: spec.space_guid,
            manifest,
            no_start: spec.no_start,
            strategy: spec.strategy,
            spec_json_travels: false,
        })
    }

    /// Whether an entry is pushfs's to read, not the app's: at the root
    /// `spec.json` (unless it is the app's own) and `vars.yml`; at any
    /// depth the manifests and `.cfignore`, as the cf CLI's ignore list
    /// has them.
    pub fn is_deploy_metadata(&self, entry: &SnapshotEntry) -> bool {
        if matches!(entry.kind, EntryKind::Dir) {
            return false;
        }
        if entry.path == VARS_FILE || (entry.path == SPEC_FILE && !self.spec_json_travels) {
            return true;
        }
        is_cf_metadata(&entry.path)
    }
}

/// A manifest or `.cfignore`, at any depth: never uploaded.
pub fn is_cf_metadata(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base == CF_IGNORE_FILE || MANIFEST_FILES.contains(&base)
}

/// The cf CLI's ignore file.
pub const CF_IGNORE_FILE: &str = ".cfignore";

fn too_big(snapshot: &Snapshot, path: &str) -> bool {
    snapshot
        .find(path)
        .and_then(|e| e.file())
        .is_some_and(|f| f.blob.size > crate::snapshot::SPEC_LIMIT)
}

/// `path:` of an app: a folder or an archive inside the app folder.
fn source_at(
    snapshot: &Snapshot,
    file: &str,
    app: &str,
    path: &str,
) -> Result<AppSource, DeployError> {
    let invalid = |why: String| DeployError::InvalidSpec(format!("{file}: {app:?} {why}"));
    let clean = normalize(path).ok_or_else(|| {
        invalid(format!(
            "has path {path:?}, which leaves the app folder; pushfs packages only what is in the folder, so give a path inside it"
        ))
    })?;
    if clean.is_empty() {
        return Ok(AppSource::Folder(clean));
    }
    match snapshot.find(&clean).map(|e| &e.kind) {
        Some(EntryKind::Dir) => Ok(AppSource::Folder(clean)),
        Some(EntryKind::File(content)) => {
            if is_zip(&content.path()) {
                Ok(AppSource::Archive(clean))
            } else {
                Err(invalid(format!(
                    "has path {path:?}, a file that is not a zip archive (.zip, .jar, .war)"
                )))
            }
        }
        Some(EntryKind::Symlink { .. }) => Err(invalid(format!(
            "has path {path:?}, a symlink; give the folder or archive itself"
        ))),
        None => Err(invalid(format!(
            "has path {path:?}, which is not in the app folder (or is excluded by an ignore file)"
        ))),
    }
}

/// `path` relative to the app folder, without `.`, empty parts or a
/// trailing slash; `None` when it is absolute or climbs out.
fn normalize(path: &str) -> Option<String> {
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
            _ => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The zip magic, as the cf CLI sniffs it (any name).
fn is_zip(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::kind::IgnoreProfile;
    use crate::store::ContentStore;

    fn plan_of(files: &[(&str, &[u8])]) -> Result<DeployPlan, DeployError> {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        for (path, bytes) in files {
            let full = app.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        std::fs::create_dir_all(&app).unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let snap =
            Snapshot::from_dir(&app, BackendKind::Cf, &IgnoreProfile::default(), &store).unwrap();
        DeployPlan::new(&snap)
    }

    #[test]
    fn a_manifest_plans_each_app_in_order_from_its_path() {
        let plan = plan_of(&[
            (
                "manifest.yml",
                b"applications:\n- name: web\n  path: ./dist/\n- name: api\n- name: img\n  docker: {image: nginx}\n",
            ),
            ("dist/index.html", b"hi"),
            ("app.py", b"print()"),
        ])
        .unwrap();
        let sources: Vec<(&str, &AppSource)> =
            plan.apps.iter().map(|p| (p.label(), &p.source)).collect();
        assert_eq!(
            sources,
            [
                ("web", &AppSource::Folder("dist".into())),
                ("api", &AppSource::Folder(String::new())),
                (
                    "img",
                    &AppSource::Docker(DockerImage {
                        image: "nginx".into(),
                        username: None
                    })
                ),
            ]
        );
        assert!(plan.manifest.unwrap().contains("default-route: true"));
    }

    #[test]
    fn paths_outside_or_missing_are_refused() {
        for (path, words) in [
            ("../other", "leaves the app folder"),
            ("/etc", "leaves the app folder"),
            ("nope", "not in the app folder"),
            ("app.py", "not a zip archive"),
        ] {
            let manifest = format!("applications:\n- name: web\n  path: {path}\n");
            let err = plan_of(&[("manifest.yml", manifest.as_bytes()), ("app.py", b"x")])
                .unwrap_err()
                .to_string();
            assert!(err.contains(words), "{path}: {err}");
        }
    }

    #[test]
    fn an_archive_path_is_sniffed_by_its_magic() {
        let plan = plan_of(&[
            (
                "manifest.yml",
                b"applications:\n- name: web\n  path: app.jar\n",
            ),
            ("app.jar", b"PK\x03\x04rest"),
        ])
        .unwrap();
        assert_eq!(plan.apps[0].source, AppSource::Archive("app.jar".into()));
    }

    #[test]
    fn an_openapi_spec_json_beside_a_manifest_is_an_app_file() {
        let openapi = br#"{"openapi":"3.0.0","info":{"title":"shop"}}"#;
        let plan = plan_of(&[
            ("manifest.yml", b"applications:\n- name: shop\n"),
            ("spec.json", openapi),
        ])
        .unwrap();
        assert!(plan.spec_json_travels);
        let err = plan_of(&[("spec.json", openapi)]).unwrap_err().to_string();
        assert!(err.contains("none of pushfs's cf keys"), "{err}");
        let err = plan_of(&[
            ("manifest.yml", b"applications:\n- name: shop\n"),
            ("spec.json", br#"{"name":"shop","strateg":"rolling"}"#),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown ones: strateg"), "{err}");
    }

    #[test]
    fn spec_json_overrides_and_selects() {
        let plan = plan_of(&[
            ("manifest.yml", b"applications:\n- name: a\n- name: b\n"),
            (
                "spec.json",
                br#"{"name":"b","space_guid":"s-1","strategy":"rolling"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(plan.apps.len(), 1);
        assert_eq!(plan.apps[0].label(), "b");
        assert_eq!(plan.strategy, Some(Strategy::Rolling));
        assert_eq!(plan.space_guid.as_deref(), Some("s-1"));
        assert!(!plan.manifest.unwrap().contains("name: a"));
        let err = plan_of(&[
            ("manifest.yml", b"applications:\n- name: a\n"),
            ("spec.json", br#"{"guid":"g-1"}"#),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("remove the guid"), "{err}");
    }

    #[test]
    fn a_named_spec_json_alone_gets_the_default_route() {
        let plan = plan_of(&[("spec.json", br#"{"name":"web"}"#)]).unwrap();
        let manifest = plan.manifest.unwrap();
        assert!(manifest.contains("name: web"), "{manifest}");
        assert!(manifest.contains("default-route: true"), "{manifest}");
        let plan = plan_of(&[("spec.json", br#"{"guid":"g-1"}"#)]).unwrap();
        assert!(
            plan.manifest.is_none(),
            "an existing app keeps its settings"
        );
    }

    #[test]
    fn normalize_keeps_paths_inside() {
        assert_eq!(normalize("./dist/").as_deref(), Some("dist"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize(".").as_deref(), Some(""));
        assert_eq!(normalize("a/../../b"), None);
    }
}

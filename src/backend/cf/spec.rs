//! Which Cloud Foundry app a folder deploys to: `spec.json`, or the app
//! name of a cf CLI `manifest.yml` when there is no spec.

use serde::Deserialize;

use crate::backend::DeployError;
use crate::snapshot::Snapshot;

pub const SPEC_FILE: &str = "spec.json";
pub const MANIFEST_FILES: [&str; 2] = ["manifest.yml", "manifest.yaml"];

/// The app a deploy targets, as the folder names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRef {
    /// An existing app.
    Guid(String),
    /// Found by name in a space, created there when absent. `space_guid`
    /// is `None` when the folder leaves it to the configuration or the
    /// cf CLI's target.
    Name {
        name: String,
        space_guid: Option<String>,
    },
}

/// Where the [`AppRef`] came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecSource {
    SpecJson,
    Manifest(&'static str),
}

impl SpecSource {
    pub fn file_name(self) -> &'static str {
        match self {
            SpecSource::SpecJson => SPEC_FILE,
            SpecSource::Manifest(name) => name,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecJson {
    guid: Option<String>,
    name: Option<String>,
    space_guid: Option<String>,
    /// `cf push --no-start`: upload the package, stage and start nothing.
    #[serde(default)]
    no_start: bool,
}

/// What the folder asks of a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub app: AppRef,
    pub source: SpecSource,
    /// v3 only: stop after the package is READY (`cf push --no-start`).
    pub no_start: bool,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    applications: Vec<ManifestApp>,
}

#[derive(Debug, Deserialize)]
struct ManifestApp {
    name: Option<String>,
}

/// Reads the app reference from the snapshot: `spec.json` first, then
/// `manifest.yml`, then `manifest.yaml`.
pub fn read_app_spec(snapshot: &Snapshot) -> Result<AppSpec, DeployError> {
    if let Some(bytes) = snapshot.read(SPEC_FILE)? {
        let (app, no_start) = parse_spec_json(&bytes)?;
        return Ok(AppSpec {
            app,
            source: SpecSource::SpecJson,
            no_start,
        });
    }
    for name in MANIFEST_FILES {
        if let Some(bytes) = snapshot.read(name)? {
            return Ok(AppSpec {
                app: parse_manifest(name, &bytes)?,
                source: SpecSource::Manifest(name),
                no_start: false,
            });
        }
    }
    Err(DeployError::InvalidSpec(format!(
        "no {SPEC_FILE} (or cf manifest.yml) in the app folder: write {{\"name\": \"my-app\", \"space_guid\": \"...\"}} or {{\"guid\": \"...\"}} into {SPEC_FILE}"
    )))
}

fn parse_spec_json(bytes: &[u8]) -> Result<(AppRef, bool), DeployError> {
    let spec: SpecJson = serde_json::from_slice(bytes)
        .map_err(|err| DeployError::InvalidSpec(format!("{SPEC_FILE} is not valid: {err}")))?;
    let no_start = spec.no_start;
    let app = match (spec.guid, spec.name) {
        (Some(_), Some(_)) => Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE} names the app twice: give either \"guid\" or \"name\" (with \"space_guid\"), not both"
        ))),
        (Some(guid), None) => {
            if spec.space_guid.is_some() {
                return Err(DeployError::InvalidSpec(format!(
                    "{SPEC_FILE}: \"space_guid\" goes with \"name\"; an app given by \"guid\" already has its space"
                )));
            }
            Ok(AppRef::Guid(check_guid("guid", guid)?))
        }
        (None, Some(name)) => Ok(AppRef::Name {
            name: check_name(SPEC_FILE, name)?,
            space_guid: spec
                .space_guid
                .map(|s| check_guid("space_guid", s))
                .transpose()?,
        }),
        (None, None) => Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE} must give \"guid\" (an existing app) or \"name\" and \"space_guid\""
        ))),
    }?;
    Ok((app, no_start))
}

fn parse_manifest(file: &str, bytes: &[u8]) -> Result<AppRef, DeployError> {
    let manifest: Manifest = serde_norway::from_slice(bytes).map_err(|err| {
        DeployError::InvalidSpec(format!("{file} is not a valid cf manifest: {err}"))
    })?;
    let name = manifest
        .applications
        .into_iter()
        .next()
        .and_then(|app| app.name)
        .ok_or_else(|| DeployError::InvalidSpec(format!("{file} has no applications[0].name")))?;
    Ok(AppRef::Name {
        name: check_name(file, name)?,
        space_guid: None,
    })
}

fn check_name(file: &str, name: String) -> Result<String, DeployError> {
    if name.trim().is_empty() {
        return Err(DeployError::InvalidSpec(format!(
            "{file}: the app name is empty"
        )));
    }
    Ok(name)
}

/// Guids go into URL paths and query filters, so only guid characters pass.
fn check_guid(field: &str, value: String) -> Result<String, DeployError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value)
    } else {
        Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE}: {field} {value:?} is not a guid (letters, digits and '-')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<AppRef, String> {
        parse_spec_json(json.as_bytes())
            .map(|(app, _)| app)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_start_is_read_and_defaults_to_false() {
        let parse = |json: &str| parse_spec_json(json.as_bytes()).unwrap().1;
        assert!(parse(r#"{"name":"web","no_start":true}"#));
        assert!(!parse(r#"{"name":"web"}"#));
        assert!(parse_spec_json(br#"{"name":"web","no_start":"yes"}"#).is_err());
    }

    #[test]
    fn spec_json_forms() {
        assert_eq!(
            spec(r#"{"guid":"abc-123"}"#).unwrap(),
            AppRef::Guid("abc-123".into())
        );
        assert_eq!(
            spec(r#"{"name":"web","space_guid":"s-1"}"#).unwrap(),
            AppRef::Name {
                name: "web".into(),
                space_guid: Some("s-1".into())
            }
        );
        assert_eq!(
            spec(r#"{"name":"web"}"#).unwrap(),
            AppRef::Name {
                name: "web".into(),
                space_guid: None
            }
        );
    }

    #[test]
    fn spec_json_errors_say_what_to_write() {
        assert!(spec("{}").unwrap_err().contains("\"guid\""));
        assert!(spec(r#"{"guid":"a","name":"b"}"#)
            .unwrap_err()
            .contains("not both"));
        assert!(spec(r#"{"guid":"a/../b"}"#)
            .unwrap_err()
            .contains("not a guid"));
        assert!(spec(r#"{"name":"a","space":"s"}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(spec(r#"{"name":"  "}"#).unwrap_err().contains("empty"));
        assert!(spec("{").unwrap_err().contains("not valid"));
    }

    #[test]
    fn manifest_gives_the_first_app_name() {
        let yaml = "---\napplications:\n- name: shop\n  memory: 256M\n- name: other\n";
        assert_eq!(
            parse_manifest("manifest.yml", yaml.as_bytes()).unwrap(),
            AppRef::Name {
                name: "shop".into(),
                space_guid: None
            }
        );
        let err = parse_manifest("manifest.yml", b"applications: []\n").unwrap_err();
        assert!(err.to_string().contains("applications[0].name"), "{err}");
    }
}

//! pushfs's own `spec.json` for Cloud Foundry: which app (by guid or
//! name), its space, `no_start` and the redeploy `strategy`; and how to
//! tell it from an app's own `spec.json`.

use serde::Deserialize;

use crate::backend::DeployError;
use crate::snapshot::Snapshot;

pub const SPEC_FILE: &str = "spec.json";

/// The keys of pushfs's own `spec.json` for Cloud Foundry. A `spec.json`
/// with none of them is the app's own file (an OpenAPI document, say).
pub const SPEC_KEYS: [&str; 5] = ["guid", "name", "space_guid", "no_start", "strategy"];

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

/// How a redeploy replaces the running app (`cf push --strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Stop and start on the new droplet, as `cf push` does by default.
    #[default]
    Restart,
    /// A rolling deployment (`POST /v3/deployments`): no downtime.
    Rolling,
}

/// pushfs's `spec.json` for Cloud Foundry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecJson {
    pub guid: Option<String>,
    pub name: Option<String>,
    pub space_guid: Option<String>,
    /// `cf push --no-start`: upload the package, stage and start nothing.
    #[serde(default)]
    pub no_start: bool,
    pub strategy: Option<Strategy>,
}

/// What `spec.json` turned out to be.
#[derive(Debug)]
pub enum SpecJsonRead {
    Absent,
    Ours(SpecJson),
    /// Beside a manifest, a `spec.json` with none of pushfs's keys: an app
    /// file, packaged like any other.
    AppFile,
}

/// Reads `spec.json`. Beside a manifest, one that holds none of pushfs's
/// keys belongs to the app; one that mixes them with others is refused,
/// naming the others, so a typo still shows.
pub fn read_spec_json(
    snapshot: &Snapshot,
    has_manifest: bool,
) -> Result<SpecJsonRead, DeployError> {
    let Some(bytes) = snapshot.read(SPEC_FILE)? else {
        return Ok(SpecJsonRead::Absent);
    };
    let object = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.as_object().cloned());
    let Some(object) = object else {
        if has_manifest {
            return Ok(SpecJsonRead::AppFile);
        }
        return parse_spec_json(&bytes).map(SpecJsonRead::Ours);
    };
    let unknown: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|k| !SPEC_KEYS.contains(k))
        .collect();
    let known = object.len() - unknown.len();
    match (known, unknown.is_empty()) {
        (0, false) if has_manifest => Ok(SpecJsonRead::AppFile),
        (0, false) => Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE} holds none of pushfs's cf keys ({}); give the app's name there, or add a manifest.yml (then this {SPEC_FILE} is packaged as an app file)",
            SPEC_KEYS.join(", ")
        ))),
        (_, false) => Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE} mixes pushfs's keys with unknown ones: {} (pushfs's are {})",
            unknown.join(", "),
            SPEC_KEYS.join(", ")
        ))),
        // A repeated key is refused here: a mistake, not last-one-wins.
        _ => parse_spec_json(&bytes).map(SpecJsonRead::Ours),
    }
}

fn parse_spec_json(bytes: &[u8]) -> Result<SpecJson, DeployError> {
    let invalid = |err: serde_json::Error| {
        DeployError::InvalidSpec(format!("{SPEC_FILE} is not valid: {err}"))
    };
    let spec: SpecJson = serde_json::from_value(crate::spec_json::parse(bytes).map_err(invalid)?)
        .map_err(invalid)?;
    if spec.guid.is_some() && spec.name.is_some() {
        return Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE} names the app twice: give either \"guid\" or \"name\" (with \"space_guid\"), not both"
        )));
    }
    if spec.guid.is_some() && spec.space_guid.is_some() {
        return Err(DeployError::InvalidSpec(format!(
            "{SPEC_FILE}: \"space_guid\" goes with \"name\"; an app given by \"guid\" already has its space"
        )));
    }
    Ok(SpecJson {
        guid: spec.guid.map(|g| check_guid("guid", g)).transpose()?,
        name: spec.name.map(|n| check_name(SPEC_FILE, n)).transpose()?,
        space_guid: spec
            .space_guid
            .map(|s| check_guid("space_guid", s))
            .transpose()?,
        no_start: spec.no_start,
        strategy: spec.strategy,
    })
}

impl SpecJson {
    /// The app this spec names on its own (no manifest).
    pub fn app_ref(&self) -> Result<AppRef, DeployError> {
        match (&self.guid, &self.name) {
            (Some(guid), _) => Ok(AppRef::Guid(guid.clone())),
            (None, Some(name)) => Ok(AppRef::Name {
                name: name.clone(),
                space_guid: self.space_guid.clone(),
            }),
            (None, None) => Err(DeployError::InvalidSpec(format!(
                "{SPEC_FILE} must give \"guid\" (an existing app) or \"name\" and \"space_guid\""
            ))),
        }
    }
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
            .and_then(|s| s.app_ref())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_start_and_strategy_are_read() {
        let parse = |json: &str| parse_spec_json(json.as_bytes()).unwrap();
        assert!(parse(r#"{"name":"web","no_start":true}"#).no_start);
        assert!(!parse(r#"{"name":"web"}"#).no_start);
        assert_eq!(
            parse(r#"{"name":"web","strategy":"rolling"}"#).strategy,
            Some(Strategy::Rolling)
        );
        assert!(parse_spec_json(br#"{"name":"web","no_start":"yes"}"#).is_err());
        let err = parse_spec_json(br#"{"name":"web","strategy":"canary"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
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
        let twice = spec(r#"{"name":"a","name":"b"}"#).unwrap_err();
        assert!(twice.contains("name"), "a repeated key is named: {twice}");
    }
}

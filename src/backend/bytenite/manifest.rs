//! The ByteNite app manifest: key normalisation, merging, validation and
//! the canonical bytes pushfs writes as the archive's `manifest.json`.
//!
//! ByteNite's own sample apps spell keys in several ways (`name`, `Name`;
//! `platform_config`), so keys are matched without regard to case, `_` or
//! `-` (Go `encoding/json` style) and rewritten to the documented
//! snake_case names. Unknown keys (`type`, future fields) are kept verbatim.
//! The emulator uses the same rules when it reads an uploaded manifest.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use thiserror::Error;

/// The file a `bytenite app new` folder carries, and the archive's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// pushfs's spec file: the same fields, applied over `manifest.json`.
pub const SPEC_FILE: &str = "spec.json";
/// The only platform ByteNite supports.
pub const DOCKER: &str = "docker";

const TOP_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "platform",
    "entrypoint",
    "type",
    "platform_config",
    "device_requirements",
    ACTIVATE,
];
/// pushfs's own key: activate the app after the push. Read from the spec,
/// never written into the archive's manifest (ByteNite knows no such key).
pub const ACTIVATE: &str = "activate";
const PLATFORM_CONFIG_KEYS: &[&str] =
    &["container", "private_image", "username", "token", "secrets"];
const DEVICE_KEYS: &[&str] = &["min_cpu", "min_memory", "gpu"];
const NAME_MAX: usize = 64;

#[derive(Debug, Error, PartialEq)]
pub enum ManifestError {
    #[error("{file} is not valid JSON: {detail}")]
    NotJson { file: String, detail: String },
    #[error("{file} must hold a JSON object ({{\"name\": ..., \"version\": ...}})")]
    NotObject { file: String },
    #[error("{file} spells \"{key}\" twice ({first:?} and {second:?}); keep one")]
    DuplicateKey {
        file: String,
        key: String,
        first: String,
        second: String,
    },
    /// A field is missing or wrong; the message names the field and the fix.
    #[error("{0}")]
    Field(String),
}

/// A manifest with canonical keys; nested objects sorted, so its bytes are
/// reproducible.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    fields: BTreeMap<String, Value>,
}

/// The fields ByteNite reads, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppManifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub platform: String,
    pub entrypoint: String,
    pub platform_config: PlatformConfig,
    pub device_requirements: DeviceRequirements,
    /// `"activate": true/false`; `None` leaves it to `[bytenite] activate`.
    pub activate: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlatformConfig {
    pub container: String,
    pub private_image: bool,
    pub username: String,
    /// A registry token: a secret, never logged.
    pub token: String,
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceRequirements {
    pub min_cpu: Option<f64>,
    pub min_memory: Option<f64>,
    pub gpu: Vec<String>,
}

impl Manifest {
    /// Parses `bytes` (the file called `file`, for messages) and
    /// normalises its keys.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Manifest, ManifestError> {
        let value: Value = crate::spec_json::parse(bytes).map_err(|e| ManifestError::NotJson {
            file: file.to_string(),
            detail: e.to_string(),
        })?;
        let Value::Object(map) = value else {
            return Err(ManifestError::NotObject {
                file: file.to_string(),
            });
        };
        let fields = normalize(map, TOP_KEYS, file)?;
        Ok(Manifest { fields })
    }

    /// Applies `overlay` as a JSON Merge Patch (RFC 7396): its keys replace
    /// ours, objects merge key by key, and `null` removes a key.
    pub fn merged_with(self, overlay: Manifest) -> Manifest {
        let mut target = Value::Object(self.fields.into_iter().collect());
        merge_patch(
            &mut target,
            Value::Object(overlay.fields.into_iter().collect()),
        );
        let Value::Object(map) = sorted(target) else {
            unreachable!("merging two objects gives an object")
        };
        Manifest {
            fields: map.into_iter().collect(),
        }
    }

    /// Sets `platform` to `docker` when absent: the only value ByteNite supports.
    pub fn with_default_platform(mut self) -> Manifest {
        self.fields
            .entry("platform".to_string())
            .or_insert_with(|| Value::String(DOCKER.to_string()));
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// Pretty JSON with sorted keys and a final newline, without pushfs's
    /// own keys (`activate`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let fields = self
            .fields
            .iter()
            .filter(|(key, _)| key.as_str() != ACTIVATE)
            .map(|(key, value)| (key.clone(), value.clone()));
        let value = sorted(Value::Object(fields.collect()));
        let mut bytes = serde_json::to_vec_pretty(&value).expect("a JSON value always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Checks every field ByteNite reads; the first problem found is returned.
    pub fn validate(&self) -> Result<AppManifest, ManifestError> {
        let name = required_string(
            self.get("name"),
            "name",
            "the app's identifier, e.g. \"hello-world\"",
        )?;
        let name_ok = !name.is_empty()
            && name.len() <= NAME_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(field(format!(
                "name {name:?} is not valid: use 1 to {NAME_MAX} letters, digits, '-' or '_'"
            )));
        }

        let version = match self.get("version") {
            Some(Value::Number(n)) => {
                return Err(field(format!(
                    "version must be a string \"major.minor\", e.g. \"{n}\" in quotes, not a number"
                )))
            }
            other => required_string(other, "version", "\"major.minor\", e.g. \"0.1\"")?,
        };
        if !is_major_minor(&version) {
            return Err(field(format!(
                "version {version:?} must be \"major.minor\" with whole numbers, e.g. \"0.1\""
            )));
        }

        let platform = required_string(self.get("platform"), "platform", "\"docker\"")?;
        if platform != DOCKER {
            return Err(field(format!(
                "platform {platform:?} is not supported; use \"docker\""
            )));
        }

        let entrypoint = required_string(
            self.get("entrypoint"),
            "entrypoint",
            "the script ByteNite runs inside app/, e.g. \"main.py\"",
        )?;
        if entrypoint.is_empty() {
            return Err(field(
                "entrypoint is empty; name the script ByteNite runs inside app/, e.g. \"main.py\"",
            ));
        }
        if entrypoint.starts_with('/') || entrypoint.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(field(format!(
                "entrypoint {entrypoint:?} must be a relative path inside app/, e.g. \"main.py\""
            )));
        }

        let description =
            optional_string(self.get("description"), "description")?.unwrap_or_default();
        let platform_config = platform_config(self.get("platform_config"))?;
        let device_requirements = device_requirements(self.get("device_requirements"))?;
        let activate = match self.get(ACTIVATE) {
            None => None,
            Some(Value::Bool(on)) => Some(*on),
            Some(other) => {
                return Err(field(format!(
                    "activate must be true or false, not {} ({other})",
                    json_type(other)
                )))
            }
        };
        Ok(AppManifest {
            name,
            version,
            description,
            platform,
            entrypoint,
            platform_config,
            device_requirements,
            activate,
        })
    }
}

fn field(message: impl Into<String>) -> ManifestError {
    ManifestError::Field(message.into())
}

fn is_major_minor(version: &str) -> bool {
    let mut parts = version.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn required_string(value: Option<&Value>, name: &str, hint: &str) -> Result<String, ManifestError> {
    match value {
        None | Some(Value::Null) => Err(field(format!("{name} is missing: set it to {hint}"))),
        other => Ok(optional_string(other, name)?.unwrap_or_default()),
    }
}

fn optional_string(value: Option<&Value>, name: &str) -> Result<Option<String>, ManifestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(field(format!(
            "{name} must be a string, not {}",
            json_type(other)
        ))),
    }
}

fn string_list(value: Option<&Value>, name: &str) -> Result<Vec<String>, ManifestError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(field(format!(
                    "{name} must be a list of strings; found {}",
                    json_type(other)
                ))),
            })
            .collect(),
        Some(other) => Err(field(format!(
            "{name} must be a list of strings, not {}",
            json_type(other)
        ))),
    }
}

fn object<'a>(
    value: Option<&'a Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, ManifestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(field(format!(
            "{name} must be an object, not {}",
            json_type(other)
        ))),
    }
}

fn platform_config(value: Option<&Value>) -> Result<PlatformConfig, ManifestError> {
    let hint = "platform_config.container is missing: set it to a Docker image, e.g. {\"platform_config\": {\"container\": \"python:3.12-slim\"}}";
    let Some(map) = object(value, "platform_config")? else {
        return Err(field(hint));
    };
    let container = match optional_string(map.get("container"), "platform_config.container")? {
        Some(c) if !c.trim().is_empty() => c,
        _ => return Err(field(hint)),
    };
    let private_image = match map.get("private_image") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(field(format!(
                "platform_config.private_image must be true or false, not {}",
                json_type(other)
            )))
        }
    };
    Ok(PlatformConfig {
        container,
        private_image,
        username: optional_string(map.get("username"), "platform_config.username")?
            .unwrap_or_default(),
        token: optional_string(map.get("token"), "platform_config.token")?.unwrap_or_default(),
        secrets: string_list(map.get("secrets"), "platform_config.secrets")?,
    })
}

fn device_requirements(value: Option<&Value>) -> Result<DeviceRequirements, ManifestError> {
    let Some(map) = object(value, "device_requirements")? else {
        return Ok(DeviceRequirements::default());
    };
    let amount = |key: &str| -> Result<Option<f64>, ManifestError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x >= 0.0 && x.is_finite() => Ok(Some(x)),
                _ => Err(field(format!(
                    "device_requirements.{key} must be zero or more, not {n}"
                ))),
            },
            Some(other) => Err(field(format!(
                "device_requirements.{key} must be a number, not {}",
                json_type(other)
            ))),
        }
    };
    Ok(DeviceRequirements {
        min_cpu: amount("min_cpu")?,
        min_memory: amount("min_memory")?,
        gpu: string_list(map.get("gpu"), "device_requirements.gpu")?,
    })
}

/// Case, `_` and `-` do not matter: `platformConfig` = `Platform_Config`.
fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn normalize(
    map: Map<String, Value>,
    known: &[&str],
    file: &str,
) -> Result<BTreeMap<String, Value>, ManifestError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in map {
        let folded = fold(&key);
        let canonical = known
            .iter()
            .find(|k| fold(k) == folded)
            .map(|k| k.to_string())
            .unwrap_or_else(|| key.clone());
        let value = match (canonical.as_str(), value) {
            ("platform_config", Value::Object(inner)) => Value::Object(
                normalize(inner, PLATFORM_CONFIG_KEYS, file)?
                    .into_iter()
                    .collect(),
            ),
            ("device_requirements", Value::Object(inner)) => {
                Value::Object(normalize(inner, DEVICE_KEYS, file)?.into_iter().collect())
            }
            (_, value) => value,
        };
        if let Some(first) = spelled.insert(canonical.clone(), key.clone()) {
            return Err(ManifestError::DuplicateKey {
                file: file.to_string(),
                key: canonical,
                first,
                second: key,
            });
        }
        out.insert(canonical, value);
    }
    Ok(out)
}

fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        unreachable!("just made an object")
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(&key);
        } else {
            merge_patch(map.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// Rebuilds objects in key order whatever serde_json's map preserves.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A float as protojson writes it: `2`, not `2.0`, when it is whole.
pub fn proto_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Number(Number::from(x as i64))
    } else {
        Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Manifest {
        Manifest::parse(value.to_string().as_bytes(), "manifest.json").unwrap()
    }

    fn valid() -> Value {
        json!({
            "name": "hello-world", "version": "0.1", "platform": "docker", "entrypoint": "main.py",
            "platform_config": {"container": "python:latest"},
            "device_requirements": {"min_cpu": 2, "min_memory": 2}
        })
    }

    fn error_of(value: Value) -> String {
        parse(value).validate().unwrap_err().to_string()
    }

    #[test]
    fn activate_is_read_but_never_packed() {
        assert_eq!(parse(valid()).validate().unwrap().activate, None);
        let mut with = valid();
        with["Activate"] = json!(true);
        let manifest = parse(with);
        assert_eq!(manifest.validate().unwrap().activate, Some(true));
        let packed: Value = serde_json::from_slice(&manifest.to_bytes()).unwrap();
        assert_eq!(packed.get("activate"), None);
        assert_eq!(packed.get("Activate"), None);
        let mut wrong = valid();
        wrong["activate"] = json!("yes");
        assert!(error_of(wrong).contains("activate must be true or false"));
    }

    #[test]
    fn a_valid_manifest_gives_its_fields() {
        let app = parse(valid()).validate().unwrap();
        assert_eq!(app.name, "hello-world");
        assert_eq!(app.version, "0.1");
        assert_eq!(app.entrypoint, "main.py");
        assert_eq!(app.platform_config.container, "python:latest");
        assert_eq!(app.device_requirements.min_cpu, Some(2.0));
        assert!(app.device_requirements.gpu.is_empty());
    }

    #[test]
    fn keys_match_without_case_or_separators() {
        let m = parse(json!({
            "Name": "x", "Version": "1.0", "Platform": "docker", "Entrypoint": "main.py",
            "platformConfig": {"Container": "python", "privateImage": true},
            "device-requirements": {"minCpu": 1}, "type": "app"
        }));
        let app = m.validate().unwrap();
        assert_eq!(app.name, "x");
        assert!(app.platform_config.private_image);
        assert_eq!(app.device_requirements.min_cpu, Some(1.0));
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(text.contains("\"platform_config\""), "{text}");
        assert!(text.contains("\"private_image\": true"), "{text}");
        assert!(text.contains("\"type\": \"app\""), "{text}");
        assert!(!text.contains("Name"), "{text}");
    }

    #[test]
    fn two_spellings_of_one_key_are_refused() {
        let err = Manifest::parse(br#"{"name":"a","Name":"b"}"#, "spec.json").unwrap_err();
        assert!(
            matches!(err, ManifestError::DuplicateKey { ref key, .. } if key == "name"),
            "{err}"
        );
        assert!(err.to_string().contains("spec.json"), "{err}");
    }

    #[test]
    fn spec_overrides_manifest_field_by_field() {
        let base = parse(valid());
        let spec = parse(json!({
            "Version": "0.2",
            "platform_config": {"container": "python:3.12-slim"},
            "device_requirements": {"min_memory": null}
        }));
        let merged = base.merged_with(spec);
        let app = merged.validate().unwrap();
        assert_eq!(app.version, "0.2");
        assert_eq!(app.name, "hello-world");
        assert_eq!(app.platform_config.container, "python:3.12-slim");
        assert_eq!(app.device_requirements.min_cpu, Some(2.0));
        assert_eq!(app.device_requirements.min_memory, None);
    }

    #[test]
    fn bytes_are_canonical() {
        let a = parse(
            json!({"version": "0.1", "name": "a", "platform_config": {"token": "t", "container": "c"}}),
        );
        let b = parse(
            json!({"platform_config": {"container": "c", "token": "t"}, "name": "a", "version": "0.1"}),
        );
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert!(a.to_bytes().ends_with(b"}\n"));
    }

    #[test]
    fn platform_defaults_to_docker() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("platform");
        assert!(error_of(v.clone()).contains("platform is missing"));
        let app = parse(v).with_default_platform().validate().unwrap();
        assert_eq!(app.platform, "docker");
    }

    #[test]
    fn field_errors_say_what_to_fix() {
        let with = |key: &str, value: Value| {
            let mut v = valid();
            v[key] = value;
            error_of(v)
        };
        assert!(with("name", json!("my app!")).contains("name \"my app!\" is not valid"));
        assert!(with("name", json!("a".repeat(65))).contains("1 to 64"));
        assert!(parse({
            let mut v = valid();
            v["name"] = json!("a".repeat(64));
            v
        })
        .validate()
        .is_ok());
        assert!(with("version", json!("1.2.3")).contains("major.minor"));
        assert!(with("version", json!("1")).contains("major.minor"));
        assert!(with("version", json!("a.b")).contains("major.minor"));
        assert!(with("version", json!(0.4)).contains("not a number"));
        assert!(with("platform", json!("k8s")).contains("use \"docker\""));
        assert!(with("entrypoint", json!("")).contains("entrypoint is empty"));
        assert!(with("entrypoint", json!("../x.py")).contains("inside app/"));
        assert!(with("entrypoint", json!("/x.py")).contains("inside app/"));
        assert!(with("platform_config", json!({"container": ""}))
            .contains("platform_config.container is missing"));
        assert!(
            with("platform_config", json!("python")).contains("platform_config must be an object")
        );
        assert!(with(
            "platform_config",
            json!({"container": "c", "private_image": "yes"})
        )
        .contains("true or false"));
        assert!(with("device_requirements", json!({"min_cpu": -1})).contains("zero or more"));
        assert!(with("device_requirements", json!({"gpu": "T4"})).contains("list of strings"));
        assert!(with("description", json!(3)).contains("description must be a string"));
        let mut v = valid();
        v.as_object_mut().unwrap().remove("name");
        assert!(error_of(v).contains("name is missing"));
    }

    #[test]
    fn unparsable_files_name_themselves() {
        let err = Manifest::parse(b"{nope", "spec.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("spec.json is not valid JSON"), "{err}");
        let err = Manifest::parse(b"[1]", "manifest.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest.json must hold a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn whole_floats_print_as_integers() {
        assert_eq!(proto_number(2.0), json!(2));
        assert_eq!(proto_number(0.5), json!(0.5));
    }
}

//! A cf CLI `manifest.yml` as `cf push` reads it: `((vars))` filled from
//! `vars.yml` beside it, the apps in order with the local keys the CLI
//! keeps for itself (`path`), and the document the Cloud Controller gets
//! (`apply_manifest`), with the CLI's default-route rule.

use serde_norway::{Mapping, Value};

use crate::backend::DeployError;
use crate::snapshot::Snapshot;

pub const MANIFEST_FILES: [&str; 2] = ["manifest.yml", "manifest.yaml"];

/// The vars file read beside the manifest, as `cf push --vars-file` would.
pub const VARS_FILE: &str = "vars.yml";

/// A manifest, read and interpolated.
#[derive(Debug, Clone)]
pub struct CfManifest {
    pub file: &'static str,
    doc: Value,
}

/// What pushfs itself needs of one app of the manifest; every other key
/// goes to the Cloud Controller as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestApp {
    pub name: String,
    /// `path:` as written, relative to the app folder.
    pub path: Option<String>,
    /// `docker: {image, username}`: a docker package, no bits.
    pub docker: Option<DockerImage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImage {
    pub image: String,
    pub username: Option<String>,
}

impl CfManifest {
    /// The folder's `manifest.yml` (or `.yaml`), interpolated; `None`
    /// when there is none.
    pub fn read(snapshot: &Snapshot) -> Result<Option<CfManifest>, DeployError> {
        for file in MANIFEST_FILES {
            let Some(bytes) = snapshot.read(file)? else {
                continue;
            };
            let doc: Value = serde_norway::from_slice(&bytes).map_err(|err| {
                DeployError::InvalidSpec(format!("{file} is not a valid cf manifest: {err}"))
            })?;
            let vars = match snapshot.read(VARS_FILE)? {
                Some(bytes) => serde_norway::from_slice::<Mapping>(&bytes).map_err(|err| {
                    DeployError::InvalidSpec(format!(
                        "{VARS_FILE} is not a YAML map of variables: {err}"
                    ))
                })?,
                None => Mapping::new(),
            };
            let doc = interpolate(doc, &vars).map_err(|missing| {
                DeployError::InvalidSpec(format!(
                    "{file}: Expected to find variables: {} (give them in {VARS_FILE} beside the manifest)",
                    missing.join(", ")
                ))
            })?;
            let manifest = CfManifest { file, doc };
            manifest.apps()?;
            return Ok(Some(manifest));
        }
        Ok(None)
    }

    /// What `cf push NAME` sends for a folder without a manifest.
    pub fn for_name(name: &str) -> CfManifest {
        let mut app = Mapping::new();
        app.insert("name".into(), Value::String(name.to_string()));
        let mut doc = Mapping::new();
        doc.insert(
            "applications".into(),
            Value::Sequence(vec![Value::Mapping(app)]),
        );
        CfManifest {
            file: "spec.json",
            doc: Value::Mapping(doc),
        }
    }

    /// The apps, in manifest order.
    pub fn apps(&self) -> Result<Vec<ManifestApp>, DeployError> {
        let file = self.file;
        let invalid = |what: String| DeployError::InvalidSpec(format!("{file}: {what}"));
        let apps = self
            .doc
            .get("applications")
            .and_then(Value::as_sequence)
            .filter(|apps| !apps.is_empty())
            .ok_or_else(|| {
                invalid("no applications: write `applications: [{name: my-app}]`".into())
            })?;
        let mut out: Vec<ManifestApp> = Vec::with_capacity(apps.len());
        for (i, app) in apps.iter().enumerate() {
            let name = app
                .get("name")
                .and_then(scalar_text)
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| invalid(format!("applications[{i}] has no name")))?;
            if out.iter().any(|a| a.name == name) {
                return Err(invalid(format!("the app {name:?} is listed twice")));
            }
            let path = match app.get("path") {
                None | Some(Value::Null) => None,
                Some(p) => Some(
                    scalar_text(p)
                        .ok_or_else(|| invalid(format!("the path of {name:?} is not a string")))?,
                ),
            };
            let docker = match app.get("docker") {
                None | Some(Value::Null) => None,
                Some(d) => Some(DockerImage {
                    image: d
                        .get("image")
                        .and_then(scalar_text)
                        .ok_or_else(|| invalid(format!("docker of {name:?} has no image")))?,
                    username: d.get("username").and_then(scalar_text),
                }),
            };
            if docker.is_some() && path.is_some() {
                return Err(invalid(format!(
                    "{name:?} gives both docker and path; an app is either an image or bits"
                )));
            }
            out.push(ManifestApp { name, path, docker });
        }
        Ok(out)
    }

    /// The YAML `apply_manifest` gets for `names` (all apps when empty), as
    /// the cf CLI sends it: `default-route: true` on every app without
    /// `no-route`, `random-route` or `routes`, and without the local `path`.
    pub fn to_apply(&self, names: &[String]) -> Result<String, DeployError> {
        let mut doc = self.doc.clone();
        if let Some(apps) = doc.get_mut("applications").and_then(Value::as_sequence_mut) {
            apps.retain(|app| {
                names.is_empty()
                    || app
                        .get("name")
                        .and_then(scalar_text)
                        .is_some_and(|n| names.contains(&n))
            });
            for app in apps.iter_mut() {
                let Some(map) = app.as_mapping_mut() else {
                    continue;
                };
                map.shift_remove("path");
                let routed = map.get("no-route").is_some_and(is_true)
                    || map.get("random-route").is_some_and(is_true)
                    || map.contains_key("routes");
                if !routed {
                    map.insert("default-route".into(), Value::Bool(true));
                }
            }
        }
        serde_norway::to_string(&doc).map_err(|err| {
            DeployError::InvalidSpec(format!("{}: cannot encode it again: {err}", self.file))
        })
    }
}

/// A string, number or boolean as text; `None` for maps, lists and null.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    }
}

/// Fills every `((name))`: a value that is only a var takes the var's
/// value as it is typed (`instances: ((n))` stays a number); a var inside
/// a longer string is replaced by its text. Returns the names that have
/// no value, each once, in the order met.
pub fn interpolate(doc: Value, vars: &Mapping) -> Result<Value, Vec<String>> {
    let mut missing = Vec::new();
    let doc = fill(doc, vars, &mut missing);
    if missing.is_empty() {
        Ok(doc)
    } else {
        Err(missing)
    }
}

fn fill(value: Value, vars: &Mapping, missing: &mut Vec<String>) -> Value {
    match value {
        Value::String(text) => fill_text(text, vars, missing),
        Value::Sequence(items) => {
            Value::Sequence(items.into_iter().map(|v| fill(v, vars, missing)).collect())
        }
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (k, fill(v, vars, missing)))
                .collect(),
        ),
        Value::Tagged(mut tagged) => {
            tagged.value = fill(tagged.value, vars, missing);
            Value::Tagged(tagged)
        }
        other => other,
    }
}

fn fill_text(text: String, vars: &Mapping, missing: &mut Vec<String>) -> Value {
    let mut lookup = |name: &str| -> Option<Value> {
        let found = vars.get(name).cloned();
        if found.is_none() && !missing.iter().any(|m| m == name) {
            missing.push(name.to_string());
        }
        found
    };
    if let Some(name) = whole_var(&text) {
        return lookup(name).unwrap_or(Value::String(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("((") {
        let Some(len) = rest[start + 2..].find("))") else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        if is_var_name(name) {
            match lookup(name).as_ref().and_then(scalar_text) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + len + 4]),
            }
        } else {
            out.push_str(&rest[start..start + len + 4]);
        }
        rest = &rest[start + len + 4..];
    }
    out.push_str(rest);
    Value::String(out)
}

/// `((name))` and nothing else.
fn whole_var(text: &str) -> Option<&str> {
    let name = text.strip_prefix("((")?.strip_suffix("))")?;
    is_var_name(name).then_some(name)
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    fn manifest(text: &str) -> CfManifest {
        CfManifest {
            file: "manifest.yml",
            doc: yaml(text),
        }
    }

    #[test]
    fn vars_fill_typed_values_and_text() {
        let vars: Mapping = serde_norway::from_str("n: 2\nhost: shop\nmem: 256M\n").unwrap();
        let doc = yaml(
            "applications:\n- name: ((host))\n  instances: ((n))\n  memory: ((mem))\n  routes:\n  - route: ((host)).example.com\n",
        );
        let filled = interpolate(doc, &vars).unwrap();
        let app = &filled["applications"][0];
        assert_eq!(app["name"], Value::String("shop".into()));
        assert_eq!(app["instances"], yaml("2"), "a whole var keeps its type");
        assert_eq!(app["memory"], Value::String("256M".into()));
        assert_eq!(
            app["routes"][0]["route"],
            Value::String("shop.example.com".into())
        );
    }

    #[test]
    fn missing_vars_are_named_once_each() {
        let doc = yaml("applications:\n- name: ((a))\n  env: {X: ((b)), Y: \"((a))-((c))\"}\n");
        assert_eq!(
            interpolate(doc, &Mapping::new()).unwrap_err(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn default_route_follows_the_cf_cli_rule() {
        let m = manifest(
            "applications:\n- name: a\n  path: dist\n- name: b\n  no-route: true\n- name: c\n  random-route: true\n- name: d\n  routes: [{route: d.example.com}]\n",
        );
        let sent = yaml(&m.to_apply(&[]).unwrap());
        let apps = sent["applications"].as_sequence().unwrap();
        assert_eq!(apps[0]["default-route"], Value::Bool(true));
        assert!(apps[0].get("path").is_none(), "path stays local");
        for app in &apps[1..] {
            assert!(app.get("default-route").is_none(), "{app:?}");
        }
        let only_b = yaml(&m.to_apply(&["b".to_string()]).unwrap());
        assert_eq!(only_b["applications"].as_sequence().unwrap().len(), 1);
    }

    #[test]
    fn apps_come_in_order_with_path_and_docker() {
        let m = manifest(
            "applications:\n- name: web\n  path: dist\n- name: worker\n  docker: {image: busybox, username: me}\n",
        );
        let apps = m.apps().unwrap();
        assert_eq!(apps[0].name, "web");
        assert_eq!(apps[0].path.as_deref(), Some("dist"));
        assert_eq!(
            apps[1].docker,
            Some(DockerImage {
                image: "busybox".into(),
                username: Some("me".into())
            })
        );
        let err = manifest("applications: []\n").apps().unwrap_err();
        assert!(err.to_string().contains("no applications"), "{err}");
        let err = manifest("applications:\n- name: a\n- name: a\n")
            .apps()
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}

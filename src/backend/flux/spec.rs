//! The Flux app specification (v7 and v8) in FluxOS's canonical form.
//!
//! [`AppSpec::format`] is a port of FluxOS's `specificationFormatter`
//! (`ZelBack/src/services/utils/appUtilities.js`): it rebuilds the spec with a
//! fixed key order, coerces values the way JavaScript does and drops unknown
//! keys. The struct field order below *is* that key order, and
//! [`AppSpec::canonical_json`] prints it like `JSON.stringify`: those are the
//! bytes that get signed and hashed.

use serde::Serialize;
use serde_json::{Map, Value};

use super::js::{
    ensure_boolean, ensure_number, ensure_object, ensure_string, to_canonical_json, to_js_string,
    truthy, JsNumber,
};

/// FluxOS `config.fluxapps.minimumInstances` (v7) and `maximumInstances`.
pub const MIN_INSTANCES: f64 = 3.0;
pub const MAX_INSTANCES: f64 = 100.0;
/// FluxOS `config.fluxapps.minimumInstancesV8`.
pub const MIN_INSTANCES_V8: f64 = 1.0;

/// Top-level keys the formatter reads, for v7 and v8; anything else is dropped.
const KNOWN_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "owner",
    "compose",
    "instances",
    "contacts",
    "geolocation",
    "expire",
    "nodes",
    "staticip",
    "datacenter",
    "enterprise",
];

const KNOWN_COMPONENT_KEYS: &[&str] = &[
    "name",
    "description",
    "repotag",
    "ports",
    "domains",
    "environmentParameters",
    "commands",
    "containerPorts",
    "containerData",
    "cpu",
    "ram",
    "hdd",
    "tiered",
    "cpubasic",
    "cpusuper",
    "cpubamf",
    "rambasic",
    "ramsuper",
    "rambamf",
    "hddbasic",
    "hddsuper",
    "hddbamf",
    "repoauth",
    "secrets",
];

/// A tiered v7 component's per-tier hardware keys.
const TIER_KEYS: [&str; 9] = [
    "cpubasic", "cpusuper", "cpubamf", "rambasic", "ramsuper", "rambamf", "hddbasic", "hddsuper",
    "hddbamf",
];

/// An app specification as FluxOS's formatter leaves it. `None` fields are
/// JavaScript `undefined`: `JSON.stringify` leaves them out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppSpec {
    pub version: JsNumber,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub compose: Vec<Component>,
    pub instances: JsNumber,
    pub contacts: Vec<String>,
    pub geolocation: Vec<String>,
    pub expire: JsNumber,
    pub nodes: Vec<String>,
    pub staticip: bool,
    /// v8 only, kept when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<bool>,
    /// v8 only: `""` for a normal app, encrypted text for an enterprise app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repotag: Option<String>,
    pub ports: Vec<JsNumber>,
    pub domains: Vec<String>,
    pub environment_parameters: Vec<String>,
    pub commands: Vec<String>,
    /// As sent: FluxOS coerces a copy and never assigns it back.
    pub container_ports: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_data: Option<String>,
    pub cpu: JsNumber,
    pub ram: JsNumber,
    pub hdd: JsNumber,
    /// v7 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiered: Option<bool>,
    #[serde(flatten)]
    pub tiers: Option<Tiers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repoauth: Option<String>,
    /// v7 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<String>,
}

/// Per-tier hardware of a tiered v7 component, in FluxOS's key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tiers {
    pub cpubasic: JsNumber,
    pub cpusuper: JsNumber,
    pub cpubamf: JsNumber,
    pub rambasic: JsNumber,
    pub ramsuper: JsNumber,
    pub rambamf: JsNumber,
    pub hddbasic: JsNumber,
    pub hddsuper: JsNumber,
    pub hddbamf: JsNumber,
}

/// The formatter's verdict: FluxOS's own error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(message.into()))
}

impl AppSpec {
    /// `specificationFormatter` for v7 and v8 specs. Versions FluxOS knows
    /// but pushfs does not send (1–6) are refused with a message of our own.
    pub fn format(raw: &Value) -> Result<AppSpec, SpecError> {
        let empty = Map::new();
        let obj =
            match raw {
                Value::Object(map) => map,
                Value::Null => return err(
                    "Cannot destructure property 'version' of 'appSpecification' as it is null.",
                ),
                _ => &empty,
            };
        let get = |key: &str| obj.get(key);

        if !truthy(get("version")) {
            return err("Missing Flux App specification parameter version");
        }
        let version = ensure_number(get("version"));
        if !truthy(get("name")) || !truthy(get("description")) || !truthy(get("owner")) {
            return err(
                "Missing Flux App specification parameter name and/or description and/or owner",
            );
        }
        let v = version.value();
        if v != 7.0 && v != 8.0 {
            return err(format!(
                "pushfs sends Flux app specifications of version 7 or 8 only, not version {version}"
            ));
        }
        let name = ensure_string(get("name")).unwrap_or_default();
        let description = ensure_string(get("description")).unwrap_or_default();
        let owner = ensure_string(get("owner")).unwrap_or_default();

        if !truthy(get("compose")) {
            return err("Missing Flux App specification parameter compose");
        }
        let compose = match ensure_object(get("compose")) {
            Value::Array(items) => items,
            _ => return err("Flux App compose parameter is not valid"),
        };
        let compose = compose
            .iter()
            .map(|c| Component::format(c, v))
            .collect::<Result<Vec<_>, _>>()?;

        if !truthy(get("instances")) {
            return err("Missing Flux App specification parameter instances");
        }
        let instances = ensure_number(get("instances"));
        if !instances.is_integer() {
            return err("Invalid instances specified");
        }
        let min_instances = if v >= 8.0 {
            MIN_INSTANCES_V8
        } else {
            MIN_INSTANCES
        };
        if instances.value() < min_instances {
            return err(format!(
                "Minimum number of instances is {}",
                JsNumber(min_instances)
            ));
        }
        if instances.value() > MAX_INSTANCES {
            return err(format!(
                "Maximum number of instances is {}",
                JsNumber(MAX_INSTANCES)
            ));
        }

        if !truthy(get("contacts")) || !truthy(get("geolocation")) {
            return err("Missing Flux App specification parameter contacts and/or geolocation");
        }
        let contacts = string_list(get("contacts"), "Contacts for Flux App are invalid")?;
        let geolocation = string_list(get("geolocation"), "Geolocation for Flux App is invalid")?;

        if !truthy(get("expire")) {
            return err("Missing Flux App specification parameter expire");
        }
        let expire = ensure_number(get("expire"));
        if !expire.is_integer() {
            // FluxOS reuses the instances wording here.
            return err("Invalid instances specified");
        }

        if !truthy(get("nodes")) {
            return err("Missing Flux App specification parameter nodes");
        }
        let nodes = string_list(get("nodes"), "Nodes for Flux App are invalid")?;
        let Some(staticip) = ensure_boolean(get("staticip")) else {
            return err("Invalid staticip specification. Only boolean as true or false allowed.");
        };

        let (datacenter, enterprise) = if v >= 8.0 {
            let datacenter = get("datacenter").and_then(|d| ensure_boolean(Some(d)));
            let enterprise = match get("enterprise") {
                Some(e) if truthy(Some(e)) => ensure_string(Some(e)).map(Value::String),
                other => other.cloned(),
            };
            (datacenter, enterprise)
        } else {
            (None, None)
        };

        Ok(AppSpec {
            version,
            name,
            description,
            owner,
            compose,
            instances,
            contacts,
            geolocation,
            expire,
            nodes,
            staticip,
            datacenter,
            enterprise,
        })
    }

    /// `JSON.stringify(appSpecFormatted)`.
    pub fn canonical_json(&self) -> String {
        to_canonical_json(self)
    }

    pub fn is_v8(&self) -> bool {
        self.version.value() == 8.0
    }

    /// Whether this is an enterprise (encrypted) v8 app.
    pub fn is_enterprise(&self) -> bool {
        self.is_v8() && truthy(self.enterprise.as_ref())
    }
}

/// Keys of `raw` (and of its components) that the formatter drops, so the
/// user can be told they are not sent.
pub fn unknown_keys(raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = raw.as_object() else {
        return out;
    };
    let v8 = obj.get("version").and_then(Value::as_f64) == Some(8.0);
    // v8 has no tiers or secrets; v7 has no datacenter or enterprise.
    let v8_only = |k: &str| matches!(k, "datacenter" | "enterprise");
    let v7_only = |k: &str| k == "tiered" || k == "secrets" || TIER_KEYS.contains(&k);
    out.extend(
        obj.keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()) || (!v8 && v8_only(k)))
            .cloned(),
    );
    if let Some(Value::Array(compose)) = obj.get("compose") {
        for (i, c) in compose.iter().enumerate() {
            if let Some(c) = c.as_object() {
                out.extend(
                    c.keys()
                        .filter(|k| {
                            !KNOWN_COMPONENT_KEYS.contains(&k.as_str()) || (v8 && v7_only(k))
                        })
                        .map(|k| format!("compose[{i}].{k}")),
                );
            }
        }
    }
    out
}

impl Component {
    fn format(raw: &Value, version: f64) -> Result<Component, SpecError> {
        let obj = match raw {
            Value::Object(map) => Some(map),
            Value::Null => return err("Cannot read properties of null (reading 'name')"),
            _ => None,
        };
        let get = |key: &str| obj.and_then(|o| o.get(key));
        // Error texts interpolate the raw name, as FluxOS's template literals do.
        let label = to_js_string(get("name"));

        let ports = match ensure_object(get("ports")) {
            Value::Array(items) => items.iter().map(|p| ensure_number(Some(p))).collect(),
            _ => return err(format!("Ports for Flux App component {label} are invalid")),
        };
        let domains = string_list(
            get("domains"),
            &format!("Domains for Flux App component {label} are invalid"),
        )?;
        let environment_parameters = string_list(
            get("environmentParameters"),
            &format!("Environmental parameters for Flux App component {label} are invalid"),
        )?;
        let commands = string_list(
            get("commands"),
            &format!("Flux App component {label} commands are invalid"),
        )?;
        let container_ports = match ensure_object(get("containerPorts")) {
            Value::Array(items) => items,
            _ => {
                return err(format!(
                    "Container Ports for Flux App component {label} are invalid"
                ))
            }
        };

        let (tiered, tiers) = if version <= 7.0 {
            let Some(Value::Bool(tiered)) = get("tiered") else {
                return err(
                    "Invalid tiered value obtained. Only boolean as true or false allowed.",
                );
            };
            let tiers = if *tiered {
                if TIER_KEYS.iter().any(|k| !truthy(get(k))) {
                    return err(format!(
                        "Flux App component {label} was requested as tiered setup but specifications are missing"
                    ));
                }
                let n = |k: &str| ensure_number(get(k));
                Some(Tiers {
                    cpubasic: n("cpubasic"),
                    cpusuper: n("cpusuper"),
                    cpubamf: n("cpubamf"),
                    rambasic: n("rambasic"),
                    ramsuper: n("ramsuper"),
                    rambamf: n("rambamf"),
                    hddbasic: n("hddbasic"),
                    hddsuper: n("hddsuper"),
                    hddbamf: n("hddbamf"),
                })
            } else {
                None
            };
            (Some(*tiered), tiers)
        } else {
            (None, None)
        };

        Ok(Component {
            name: ensure_string(get("name")),
            description: ensure_string(get("description")),
            repotag: ensure_string(get("repotag")),
            ports,
            domains,
            environment_parameters,
            commands,
            container_ports,
            container_data: ensure_string(get("containerData")),
            cpu: ensure_number(get("cpu")),
            ram: ensure_number(get("ram")),
            hdd: ensure_number(get("hdd")),
            tiered,
            tiers,
            repoauth: ensure_string(get("repoauth")),
            secrets: if version == 7.0 {
                ensure_string(get("secrets"))
            } else {
                None
            },
        })
    }
}

/// `ensureObject` then `Array.isArray`, each item through `ensureString`.
fn string_list(value: Option<&Value>, message: &str) -> Result<Vec<String>, SpecError> {
    match ensure_object(value) {
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(|item| ensure_string(Some(item)))
            .collect()),
        _ => err(message),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use serde_json::{json, Value};

    /// flux.md §8's minimal valid v7 spec.
    pub fn minimal_v7() -> Value {
        json!({
            "version": 7, "name": "myapp", "description": "demo", "owner": "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC",
            "compose": [{
                "name": "web", "description": "web", "repotag": "nginx:1.27", "ports": [31111],
                "domains": [""], "environmentParameters": [], "commands": [], "containerPorts": [80],
                "containerData": "/data", "cpu": 0.5, "ram": 500, "hdd": 5, "tiered": false,
                "repoauth": "", "secrets": ""
            }],
            "instances": 3, "contacts": [], "geolocation": [], "expire": 88000, "nodes": [], "staticip": false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::minimal_v7;
    use super::*;
    use serde_json::json;

    #[test]
    fn v7_canonical_bytes_follow_fluxos_key_order() {
        // Keys deliberately shuffled, numbers written as floats, an unknown key.
        let raw = json!({
            "staticip": "false", "nodes": [], "expire": 88000.0, "geolocation": [], "contacts": [],
            "instances": "3", "comment": "dropped",
            "compose": [{
                "secrets": "", "repoauth": "", "tiered": false, "hdd": 5.0, "ram": "500", "cpu": 0.50,
                "containerData": "/data", "containerPorts": [80], "commands": [], "environmentParameters": [],
                "domains": [""], "ports": ["31111"], "repotag": "nginx:1.27", "description": "web", "name": "web",
                "extra": 1
            }],
            "owner": "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC", "description": "demo", "name": "myapp", "version": 7
        });
        let spec = AppSpec::format(&raw).unwrap();
        assert_eq!(
            spec.canonical_json(),
            concat!(
                r#"{"version":7,"name":"myapp","description":"demo","owner":"1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC","#,
                r#""compose":[{"name":"web","description":"web","repotag":"nginx:1.27","ports":[31111],"domains":[""],"#,
                r#""environmentParameters":[],"commands":[],"containerPorts":[80],"containerData":"/data","cpu":0.5,"#,
                r#""ram":500,"hdd":5,"tiered":false,"repoauth":"","secrets":""}],"instances":3,"contacts":[],"#,
                r#""geolocation":[],"expire":88000,"nodes":[],"staticip":false}"#
            )
        );
        assert_eq!(unknown_keys(&raw), vec!["comment", "compose[0].extra"]);
    }

    #[test]
    fn tiered_fields_come_between_tiered_and_repoauth() {
        let mut raw = minimal_v7();
        let c = &mut raw["compose"][0];
        c["tiered"] = json!(true);
        for (k, v) in [
            ("cpubasic", 0.5),
            ("cpusuper", 1.0),
            ("cpubamf", 2.0),
            ("rambasic", 500.0),
            ("ramsuper", 1000.0),
            ("rambamf", 2000.0),
            ("hddbasic", 5.0),
            ("hddsuper", 5.0),
            ("hddbamf", 5.0),
        ] {
            c[k] = json!(v);
        }
        let text = AppSpec::format(&raw).unwrap().canonical_json();
        assert!(
            text.contains(r#""tiered":true,"cpubasic":0.5,"cpusuper":1,"cpubamf":2,"rambasic":500,"ramsuper":1000,"rambamf":2000,"hddbasic":5,"hddsuper":5,"hddbamf":5,"repoauth":"","secrets":""}"#),
            "{text}"
        );
    }

    #[test]
    fn v8_drops_tiered_and_secrets_and_ends_with_enterprise() {
        let mut raw = minimal_v7();
        raw["version"] = json!(8);
        raw["enterprise"] = json!("");
        raw["datacenter"] = json!("true");
        raw["instances"] = json!(1);
        assert_eq!(
            unknown_keys(&raw),
            vec!["compose[0].secrets", "compose[0].tiered"]
        );
        let text = AppSpec::format(&raw).unwrap().canonical_json();
        assert!(text.starts_with(r#"{"version":8,"#));
        assert!(text.contains(r#""hdd":5,"repoauth":""}]"#), "{text}");
        assert!(
            text.ends_with(r#""staticip":false,"datacenter":true,"enterprise":""}"#),
            "{text}"
        );
    }

    #[test]
    fn formatter_messages_are_fluxos_messages() {
        let case = |edit: &dyn Fn(&mut Value)| {
            let mut raw = minimal_v7();
            edit(&mut raw);
            AppSpec::format(&raw).unwrap_err().0
        };
        assert_eq!(
            case(&|r| {
                r["compose"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("environmentParameters");
                r["compose"][0]["enviromentParameters"] = json!([]);
            }),
            "Environmental parameters for Flux App component web are invalid"
        );
        assert_eq!(
            case(&|r| r["instances"] = json!(2)),
            "Minimum number of instances is 3"
        );
        assert_eq!(
            case(&|r| r["instances"] = json!(101)),
            "Maximum number of instances is 100"
        );
        assert_eq!(
            case(&|r| r["instances"] = json!(3.5)),
            "Invalid instances specified"
        );
        assert_eq!(
            case(&|r| r["description"] = json!("")),
            "Missing Flux App specification parameter name and/or description and/or owner"
        );
        assert_eq!(
            case(&|r| r["compose"][0]["tiered"] = json!("false")),
            "Invalid tiered value obtained. Only boolean as true or false allowed."
        );
        assert_eq!(
            case(&|r| r["staticip"] = json!("maybe")),
            "Invalid staticip specification. Only boolean as true or false allowed."
        );
        assert_eq!(
            case(&|r| r["compose"][0]["ports"] = json!(31111)),
            "Ports for Flux App component web are invalid"
        );
        assert_eq!(
            case(&|r| r["compose"][0]["tiered"] = json!(true)),
            "Flux App component web was requested as tiered setup but specifications are missing"
        );
        assert_eq!(
            case(&|r| r["compose"] = json!({})),
            "Flux App compose parameter is not valid"
        );
        assert_eq!(
            case(&|r| {
                r.as_object_mut().unwrap().remove("contacts");
            }),
            "Missing Flux App specification parameter contacts and/or geolocation"
        );
        assert!(case(&|r| r["version"] = json!(6)).contains("version 7 or 8 only"));
    }

    #[test]
    fn container_ports_keep_their_sent_type() {
        let mut raw = minimal_v7();
        raw["compose"][0]["containerPorts"] = json!(["80"]);
        let spec = AppSpec::format(&raw).unwrap();
        assert_eq!(spec.compose[0].container_ports, vec![json!("80")]);
    }
}

//! What FluxOS lets an update change (`validateApplicationUpdateCompatibility`
//! in `ZelBack/src/services/appLifecycle/advancedWorkflows.js`).
//!
//! Besides these structural rules, an update must pass every registration
//! check except the name conflict, the app must already exist (exact name),
//! and the message must be signed by the *registered* owner, so a new
//! `owner` in the spec transfers the app.

use serde_json::Value;

use super::js::{to_js_string, JsNumber};

/// The newest spec version; the only one an update may change version to.
pub const LATEST_SPEC_VERSION: f64 = 8.0;

/// The parts of a registered spec the update rules look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub version: f64,
    pub owner: Option<String>,
    /// Component names (v4+), in order.
    pub components: Vec<String>,
    pub repotag: Option<String>,
}

impl Registered {
    /// From the spec a node returns for `GET /apps/appspecifications/<name>`.
    pub fn from_value(spec: &Value) -> Registered {
        Registered {
            version: spec
                .get("version")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
            owner: spec
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_string),
            components: spec
                .get("compose")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(|c| to_js_string(c.get("name"))).collect())
                .unwrap_or_default(),
            repotag: spec
                .get("repotag")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// The new spec's side of the comparison.
pub struct Proposed<'a> {
    pub name: &'a str,
    pub version: f64,
    pub components: Vec<&'a str>,
}

/// FluxOS's verdict on changing `old` into `new`, with its messages.
pub fn check_compatible(old: &Registered, new: &Proposed<'_>) -> Result<(), String> {
    let name = new.name;
    if old.version != new.version && new.version != LATEST_SPEC_VERSION {
        return Err(format!(
            "Application update rejected: Version changes are only allowed when updating to version 8 (current latest supported version). Current version: {}, Attempted version: {}. To update this application, please use version 8 specifications.",
            JsNumber(old.version),
            JsNumber(new.version)
        ));
    }
    if new.version >= 4.0 {
        if old.version >= 4.0 {
            if new.components.len() != old.components.len() {
                return Err(format!(
                    "Application update rejected: Cannot change the number of components for \"{name}\". Previous version has {} component(s), new version has {}. Component count must remain constant for v4+ applications.",
                    old.components.len(),
                    new.components.len()
                ));
            }
            if let Some(missing) = old
                .components
                .iter()
                .find(|c| !new.components.contains(&c.as_str()))
            {
                return Err(format!(
                    "Application update rejected: Component \"{missing}\" not found in new specification for \"{name}\". Component names must remain constant. Previous components: [{}], New components: [{}]. Note: Docker image tags (repotag) can be changed, but component names cannot.",
                    old.components.join(", "),
                    new.components.join(", ")
                ));
            }
        }
        // v1–3 → v4+: the node redeploys the app; allowed.
        Ok(())
    } else if old.version >= 4.0 {
        Err(format!(
            "Application update rejected: Cannot downgrade \"{name}\" from v4+ to v{}. Version rollbacks from v4+ specifications to older versions (v1-3) are not permitted. Current version: v{}, Attempted version: v{}.",
            JsNumber(new.version),
            JsNumber(old.version),
            JsNumber(new.version)
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn old() -> Registered {
        Registered::from_value(&json!({
            "version": 7, "owner": "1abc", "compose": [{"name": "web"}, {"name": "db"}]
        }))
    }

    #[test]
    fn same_components_any_order_is_fine() {
        let new = Proposed {
            name: "app",
            version: 7.0,
            components: vec!["db", "web"],
        };
        check_compatible(&old(), &new).unwrap();
        let to_v8 = Proposed {
            name: "app",
            version: 8.0,
            components: vec!["web", "db"],
        };
        check_compatible(&old(), &to_v8).unwrap();
    }

    #[test]
    fn version_and_component_changes_are_refused() {
        let mut o = old();
        o.version = 6.0;
        let e = check_compatible(
            &o,
            &Proposed {
                name: "app",
                version: 7.0,
                components: vec!["web", "db"],
            },
        )
        .unwrap_err();
        assert!(
            e.contains("Current version: 6, Attempted version: 7."),
            "{e}"
        );
        let e = check_compatible(
            &old(),
            &Proposed {
                name: "app",
                version: 7.0,
                components: vec!["web"],
            },
        )
        .unwrap_err();
        assert!(
            e.contains("Previous version has 2 component(s), new version has 1."),
            "{e}"
        );
        let e = check_compatible(
            &old(),
            &Proposed {
                name: "app",
                version: 7.0,
                components: vec!["web", "cache"],
            },
        )
        .unwrap_err();
        assert!(
            e.contains("Component \"db\" not found in new specification for \"app\""),
            "{e}"
        );
    }
}

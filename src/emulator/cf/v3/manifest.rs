//! One app of a manifest read by the Cloud Controller's message rules
//! (`AppManifestMessage` and the messages it builds): top-level keys are
//! underscored (`disk-quota` is `disk_quota`), unknown keys ignored, byte
//! quantities need a unit, and each mistake has CC's wording, prefixed
//! `For application '<name>': ` as the controller reports them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::views::{ServiceBindingView, SidecarView};

/// What a manifest sets on one process (`web` for the app-level keys).
/// `Some(None)` resets a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessChange {
    pub process_type: String,
    pub command: Option<Option<String>>,
    pub instances: Option<u32>,
    pub memory_in_mb: Option<u64>,
    pub disk_in_mb: Option<u64>,
    pub log_rate_limit: Option<i64>,
    pub health_check_type: Option<String>,
    pub health_check_http_endpoint: Option<Option<String>>,
    pub health_check_timeout: Option<Option<u64>>,
    pub health_check_invocation_timeout: Option<Option<u64>>,
    pub health_check_interval: Option<Option<u64>>,
    pub readiness_health_check_type: Option<String>,
    pub readiness_health_check_http_endpoint: Option<Option<String>>,
    pub readiness_health_check_invocation_timeout: Option<Option<u64>>,
    pub readiness_health_check_interval: Option<Option<u64>>,
}

/// One entry of `routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteRequest {
    pub route: String,
    pub protocol: Option<String>,
}

/// The app's lifecycle as the manifest changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LifecycleChange {
    Docker,
    Buildpack {
        buildpacks: Option<Vec<String>>,
        stack: Option<String>,
    },
}

/// One app of a manifest, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppManifest {
    pub name: String,
    pub lifecycle: Option<LifecycleChange>,
    /// `docker`, `buildpack(s)` asked for (the controller's checks
    /// against an existing app's lifecycle).
    pub wants_docker: bool,
    pub wants_buildpacks: bool,
    /// `buildpacks` (not the singular `buildpack`) was given.
    pub plural_buildpacks: bool,
    pub env: Option<BTreeMap<String, String>>,
    pub processes: Vec<ProcessChange>,
    pub sidecars: Vec<SidecarView>,
    pub routes: Option<Vec<RouteRequest>>,
    pub no_route: Option<bool>,
    pub random_route: Option<bool>,
    pub default_route: Option<bool>,
    pub services: Option<Vec<ServiceBindingView>>,
    /// `None` values delete a key.
    pub labels: Option<BTreeMap<String, Option<String>>>,
    pub annotations: Option<BTreeMap<String, Option<String>>>,
}

/// ActiveSupport's `underscore` for a manifest key.
fn underscore(key: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if c == '-' {
            out.push('_');
            previous_lower = false;
        } else if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

fn underscored(object: &Map<String, Value>) -> BTreeMap<String, Value> {
    object
        .iter()
        .map(|(k, v)| (underscore(k), v.clone()))
        .collect()
}

/// Ruby's `to_s` of a YAML scalar (`nil` is empty).
pub(crate) fn ruby_to_s(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `blank?`: nil, false, or a string of blanks.
fn blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ByteError {
    Units,
    NonNumeric,
}

/// `ByteConverter#convert_to_b`: `None` when blank.
fn to_bytes(value: Option<&Value>) -> Result<Option<i64>, ByteError> {
    if blank(value) {
        return Ok(None);
    }
    let text = ruby_to_s(value.expect("not blank"));
    let text = text.trim();
    let (number, rest) = leading_number(text).ok_or(ByteError::NonNumeric)?;
    let unit = rest.to_ascii_uppercase();
    let factor: f64 = match unit.as_str() {
        "B" => 1.0,
        _ => {
            let mut chars = unit.chars();
            let power = match chars.next() {
                Some('K') => 1,
                Some('M') => 2,
                Some('G') => 3,
                Some('T') => 4,
                _ => return Err(ByteError::Units),
            };
            let tail: String = chars.collect();
            if !["", "B", "I", "IB"].contains(&tail.as_str()) {
                return Err(ByteError::Units);
            }
            1024f64.powi(power)
        }
    };
    Ok(Some((number * factor) as i64))
}

/// `-?\d+(\.\d+)?` at the start of `text`: the number and the rest.
fn leading_number(text: &str) -> Option<(f64, &str)> {
    let bytes = text.as_bytes();
    let mut end = usize::from(bytes.first() == Some(&b'-'));
    let digits_start = end;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// `convert_to_mb`, `None` when blank or invalid (the format check reports it).
fn to_mb(value: Option<&Value>) -> Option<i64> {
    to_bytes(value)
        .ok()
        .flatten()
        .map(|b| (b as f64 / 1_048_576.0) as i64)
}

/// `validate_byte_format`'s message for an attribute, if any.
fn byte_format_error(value: Option<&Value>, label: &str, allow_unlimited: bool) -> Option<String> {
    if allow_unlimited && value.is_some_and(|v| ["-1", "0"].contains(&ruby_to_s(v).as_str())) {
        return None;
    }
    match to_bytes(value) {
        Ok(_) => None,
        Err(ByteError::Units) => Some(format!(
            "{label} must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"
        )),
        Err(ByteError::NonNumeric) => Some(format!("{label} is not a number")),
    }
}

/// Rails' `numericality: { only_integer: true }` with bounds; `Ok(None)`
/// for nil.
fn integer(value: Option<&Value>, label: &str, min: i64, max: i64) -> Result<Option<i64>, String> {
    let number = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i,
            None => return Err(format!("{label} must be an integer")),
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => i,
            Err(_) if s.trim().parse::<f64>().is_ok() => {
                return Err(format!("{label} must be an integer"))
            }
            Err(_) => return Err(format!("{label} is not a number")),
        },
        Some(_) => return Err(format!("{label} is not a number")),
    };
    if number < min {
        return Err(format!("{label} must be greater than or equal to {min}"));
    }
    if number > max {
        return Err(format!("{label} must be less than or equal to {max}"));
    }
    Ok(Some(number))
}

const HEALTH_CHECK_TYPES: [&str; 3] = ["port", "process", "http"];

/// `none` was deprecated in favour of `process`.
fn health_check_type(value: &Value) -> String {
    match ruby_to_s(value).as_str() {
        "none" => "process".into(),
        other => other.into(),
    }
}

/// The process keys of one process (the app level for `web`): its update
/// and scale messages, and their errors.
fn process_change(
    keys: &BTreeMap<String, Value>,
    process_type: &str,
    errors: &mut Vec<String>,
) -> ProcessChange {
    let mut change = ProcessChange {
        process_type: process_type.into(),
        ..ProcessChange::default()
    };
    let mut fail = |message: String| errors.push(format!("Process \"{process_type}\": {message}"));
    // Scale.
    match integer(keys.get("instances"), "Instances", 0, 2_000_000) {
        Ok(i) => change.instances = i.map(|i| i as u32),
        Err(e) => fail(e),
    }
    for (key, label, slot) in [
        ("memory", "Memory", &mut change.memory_in_mb),
        ("disk_quota", "Disk quota", &mut change.disk_in_mb),
    ] {
        if let Some(mb) = to_mb(keys.get(key)) {
            if mb <= 0 {
                fail(format!("{label} must be greater than 0MB"));
            } else {
                *slot = Some(mb as u64);
            }
        }
    }
    if let Some(v) = keys.get("log_rate_limit_per_second") {
        match ruby_to_s(v).trim() {
            "-1" => change.log_rate_limit = Some(-1),
            "0" => change.log_rate_limit = Some(0),
            _ => change.log_rate_limit = to_bytes(Some(v)).ok().flatten(),
        }
        if change.log_rate_limit.is_some_and(|l| l < -1) {
            fail("Log rate limit must be an integer greater than or equal to -1".into());
        }
    }
    // Update.
    if let Some(command) = keys.get("command") {
        match command {
            Value::Null => change.command = Some(None),
            Value::String(s) if (1..=4096).contains(&s.len()) => {
                change.command = Some(Some(s.clone()))
            }
            Value::String(_) => fail("Command must be between 1 and 4096 characters".into()),
            _ => fail("Command must be a string".into()),
        }
    }
    for (key, label, slot) in [
        (
            "health_check_type",
            "Health check type",
            &mut change.health_check_type,
        ),
        (
            "readiness_health_check_type",
            "Readiness health check type",
            &mut change.readiness_health_check_type,
        ),
    ] {
        if let Some(v) = keys.get(key) {
            let kind = health_check_type(v);
            if HEALTH_CHECK_TYPES.contains(&kind.as_str()) {
                *slot = Some(kind);
            } else {
                fail(format!(
                    "{label} must be \"port\", \"process\", or \"http\""
                ));
            }
        }
    }
    for (key, type_key, label, slot) in [
        (
            "health_check_http_endpoint",
            "health_check_type",
            "Health check type",
            &mut change.health_check_http_endpoint,
        ),
        (
            "readiness_health_check_http_endpoint",
            "readiness_health_check_type",
            "Readiness health check type",
            &mut change.readiness_health_check_http_endpoint,
        ),
    ] {
        let Some(v) = keys.get(key) else { continue };
        if let Some(kind) = keys.get(type_key) {
            if health_check_type(kind) != "http" {
                fail(format!(
                    "{label} must be \"http\" to set a health check HTTP endpoint"
                ));
            }
        }
        match v {
            Value::Null => *slot = Some(None),
            Value::String(s) if s.starts_with('/') && !s.contains(char::is_whitespace) => {
                *slot = Some(Some(s.clone()))
            }
            _ => {
                let attribute = if key.starts_with("readiness") {
                    "Readiness health check http endpoint"
                } else {
                    "Health check http endpoint"
                };
                fail(format!("{attribute} must be a valid URI path"));
            }
        }
    }
    for (key, label, slot) in [
        ("timeout", "Timeout", &mut change.health_check_timeout),
        (
            "health_check_invocation_timeout",
            "Health check invocation timeout",
            &mut change.health_check_invocation_timeout,
        ),
        (
            "health_check_interval",
            "Health check interval",
            &mut change.health_check_interval,
        ),
        (
            "readiness_health_check_invocation_timeout",
            "Readiness health check invocation timeout",
            &mut change.readiness_health_check_invocation_timeout,
        ),
        (
            "readiness_health_check_interval",
            "Readiness health check interval",
            &mut change.readiness_health_check_interval,
        ),
    ] {
        if keys.contains_key(key) {
            match integer(keys.get(key), label, 1, i64::MAX) {
                Ok(v) => *slot = Some(v.map(|v| v as u64)),
                Err(e) => fail(e),
            }
        }
    }
    change
}

const PROCESS_KEYS: [&str; 16] = [
    "command",
    "instances",
    "memory",
    "disk_quota",
    "log_rate_limit_per_second",
    "health_check_type",
    "health_check_http_endpoint",
    "health_check_invocation_timeout",
    "health_check_interval",
    "timeout",
    "readiness_health_check_type",
    "readiness_health_check_http_endpoint",
    "readiness_health_check_invocation_timeout",
    "readiness_health_check_interval",
    "user",
    "type",
];

/// A parsed `route`: the host part (lowercased) and the path, or `None`
/// when `ManifestRoute#valid?` would refuse it.
pub(crate) fn parse_route(route: &str) -> Option<(String, String)> {
    let (scheme, rest) = match route.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("unspecified".to_string(), route),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let schemes: &[&str] = if port.is_some() {
        &["tcp", "unspecified"]
    } else {
        &["http", "https", "unspecified"]
    };
    if !schemes.contains(&scheme.as_str()) {
        return None;
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let path = tail[..path_end].trim_end_matches('/');
    Some((host.to_ascii_lowercase(), path.to_string()))
}

fn routes_part(
    keys: &BTreeMap<String, Value>,
    manifest: &mut AppManifest,
    errors: &mut Vec<String>,
) {
    if let Some(routes) = keys.get("routes") {
        let list = routes
            .as_array()
            .filter(|list| list.iter().all(|r| r.is_object() && !blank(r.get("route"))));
        match list {
            None => errors.push("Routes must be a list of route objects".into()),
            Some(list) => {
                let mut parsed = Vec::new();
                for r in list {
                    let route = ruby_to_s(&r["route"]);
                    if parse_route(&route).is_none() {
                        errors.push(format!("The route '{route}' is not a properly formed URL"));
                    }
                    let protocol = r.get("protocol").filter(|p| !p.is_null()).map(ruby_to_s);
                    if protocol
                        .as_deref()
                        .is_some_and(|p| !["http1", "http2", "tcp"].contains(&p))
                    {
                        errors.push("Route protocol must be 'http1', 'http2' or 'tcp'.".into());
                    }
                    parsed.push(RouteRequest { route, protocol });
                }
                manifest.routes = Some(parsed);
            }
        }
    }
    for (key, label, slot) in [
        ("no_route", "No-route", &mut manifest.no_route),
        (
            "default_route",
            "Default-route",
            &mut manifest.default_route,
        ),
        ("random_route", "Random-route", &mut manifest.random_route),
    ] {
        match keys.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => *slot = Some(*b),
            Some(_) => errors.push(format!("{label} must be a boolean")),
        }
    }
    if manifest.random_route == Some(true) && manifest.default_route == Some(true) {
        errors.push("Random-route and default-route may not be used together".into());
    }
}

fn services_part(value: &Value) -> Option<Vec<ServiceBindingView>> {
    value
        .as_array()?
        .iter()
        .map(|s| match s {
            Value::String(name) => Some(ServiceBindingView {
                name: name.clone(),
                binding_name: None,
                parameters: None,
            }),
            Value::Object(o) => {
                let name = o.get("name")?.as_str()?.to_string();
                let parameters = match o.get("parameters") {
                    None | Some(Value::Null) => None,
                    Some(p @ Value::Object(_)) => Some(p.clone()),
                    Some(_) => return None,
                };
                let binding_name = match o.get("binding_name") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(b)) => Some(b.clone()),
                    Some(_) => return None,
                };
                Some(ServiceBindingView {
                    name,
                    binding_name,
                    parameters,
                })
            }
            _ => None,
        })
        .collect()
}

fn sidecars_part(value: &Value, errors: &mut Vec<String>) -> Vec<SidecarView> {
    let Some(list) = value.as_array() else {
        errors.push("Sidecars must be an array of sidecar configurations".into());
        return Vec::new();
    };
    let mut sidecars = Vec::new();
    for item in list {
        let empty = Map::new();
        let object = item.as_object().unwrap_or(&empty);
        let name = object.get("name").and_then(Value::as_str).unwrap_or("");
        let command = object.get("command").and_then(Value::as_str).unwrap_or("");
        let types: Option<Vec<String>> = object
            .get("process_types")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|t| t.as_str().map(str::to_string)).collect());
        let mut problems = Vec::new();
        if name.trim().is_empty() {
            problems.push("Name can't be blank".to_string());
        }
        if command.trim().is_empty() {
            problems.push("Command can't be blank".to_string());
        }
        match &types {
            None => problems.push("Process types must be an array".to_string()),
            Some(t) if t.is_empty() => {
                problems.push("Process types must have at least 1 process_type".to_string())
            }
            Some(_) => {}
        }
        let memory = object.get("memory").filter(|m| !m.is_null());
        let memory_in_mb = memory.and_then(|m| to_mb(Some(m)).or_else(|| m.as_i64()));
        if memory.is_some() && memory_in_mb.is_none_or(|m| m <= 0) {
            problems.push("Memory in mb must be greater than 0".to_string());
        }
        for problem in problems {
            errors.push(if name.trim().is_empty() {
                format!("Sidecar {}", problem.to_lowercase())
            } else {
                format!("Sidecar \"{name}\": {problem}")
            });
        }
        sidecars.push(SidecarView {
            name: name.into(),
            process_types: types.unwrap_or_default(),
            command: command.into(),
            memory_in_mb: memory_in_mb.map(|m| m.max(0) as u64),
        });
    }
    sidecars
}

fn metadata_part(value: &Value, key: &str) -> Option<BTreeMap<String, Option<String>>> {
    let map = value.get(key)?.as_object()?;
    Some(
        map.iter()
            .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| ruby_to_s(v))))
            .collect(),
    )
}

/// Reads app `index` of the manifest; the errors come with the
/// controller's prefix.
pub(crate) fn parse(
    app: &Value,
    index: usize,
    diego_docker: bool,
) -> Result<AppManifest, Vec<String>> {
    let Some(object) = app.as_object() else {
        return Err(vec![format!(
            "For application at index {index}: Application must be an object"
        )]);
    };
    let keys = underscored(object);
    let mut errors: Vec<String> = Vec::new();
    let mut manifest = AppManifest::default();
    match keys.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => manifest.name = name.clone(),
        Some(value) if !blank(Some(value)) => errors.push("Name must be a string".into()),
        _ => errors.push("Name must not be empty".into()),
    }

    // The top-level web process's byte formats, then each process's.
    for (key, label, unlimited) in [
        ("memory", "Memory", false),
        ("disk_quota", "Disk quota", false),
        (
            "log_rate_limit_per_second",
            "Log rate limit per second",
            true,
        ),
    ] {
        if let Some(e) = byte_format_error(keys.get(key), label, unlimited) {
            errors.push(format!("Process \"web\": {e}"));
        }
    }
    let mut per_process: Vec<(String, BTreeMap<String, Value>)> = Vec::new();
    if let Some(processes) = keys.get("processes") {
        match processes.as_array() {
            None => errors.push("Processes must be an array of process configurations".into()),
            Some(list) => {
                let entries: Vec<BTreeMap<String, Value>> = list
                    .iter()
                    .map(|p| p.as_object().map(underscored).unwrap_or_default())
                    .collect();
                if entries.iter().any(|p| blank(p.get("type"))) {
                    errors.push("All Processes must specify a type".into());
                }
                let mut seen: Vec<String> = Vec::new();
                for p in &entries {
                    let kind = p.get("type").map(ruby_to_s).unwrap_or_default();
                    if seen.contains(&kind) && !kind.is_empty() {
                        let message = format!("Process \"{kind}\" may only be present once");
                        if !errors.contains(&message) {
                            errors.push(message);
                        }
                    }
                    seen.push(kind.clone());
                    for (key, label, unlimited) in [
                        ("memory", "Memory", false),
                        ("disk_quota", "Disk quota", false),
                        (
                            "log_rate_limit_per_second",
                            "Log rate limit per second",
                            true,
                        ),
                    ] {
                        if let Some(e) = byte_format_error(p.get(key), label, unlimited) {
                            errors.push(format!("Process \"{kind}\": {e}"));
                        }
                    }
                    per_process.push((kind, p.clone()));
                }
            }
        }
    }
    if let Some(sidecars) = keys.get("sidecars") {
        manifest.sidecars = sidecars_part(sidecars, &mut errors);
    }

    // `process_attributes`: a `web` entry of `processes` replaces the
    // app-level keys; the other types follow.
    let app_level: BTreeMap<String, Value> = keys
        .iter()
        .filter(|(k, _)| PROCESS_KEYS.contains(&k.as_str()) && *k != "type")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (web, others): (Vec<_>, Vec<_>) = per_process.iter().partition(|(t, _)| t == "web");
    let mut changes = Vec::new();
    match web.first() {
        Some((_, keys)) => changes.push(process_change(keys, "web", &mut errors)),
        None if !app_level.is_empty() => {
            changes.push(process_change(&app_level, "web", &mut errors))
        }
        None => {}
    }
    for (kind, keys) in others {
        if !kind.is_empty() {
            changes.push(process_change(keys, kind, &mut errors));
        }
    }
    manifest.processes = changes;

    // The lifecycle.
    let wants_buildpack = keys.contains_key("buildpack");
    let wants_buildpacks = keys.contains_key("buildpacks");
    manifest.wants_docker = keys.contains_key("docker");
    manifest.wants_buildpacks = wants_buildpack || wants_buildpacks;
    manifest.plural_buildpacks = wants_buildpacks && !keys["buildpacks"].is_null();
    let buildpacks = if wants_buildpacks {
        match keys.get("buildpacks") {
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
                Some(list.iter().map(ruby_to_s).collect())
            }
            Some(Value::Null) => Some(Vec::new()),
            _ => {
                errors.push("Buildpacks must only contain strings".into());
                None
            }
        }
    } else if wants_buildpack {
        let name = keys.get("buildpack").map(ruby_to_s).unwrap_or_default();
        Some(if ["", "default", "null"].contains(&name.as_str()) {
            Vec::new()
        } else {
            vec![name]
        })
    } else {
        None
    };
    let stack = keys.get("stack").filter(|s| !s.is_null()).map(ruby_to_s);
    if wants_buildpack && wants_buildpacks {
        errors.push("Buildpack and Buildpacks fields cannot be used together.".into());
    }
    if manifest.wants_docker && !diego_docker {
        errors.push("Feature Disabled: diego_docker".into());
    }
    if manifest.wants_docker && manifest.wants_buildpacks {
        errors.push("Cannot specify both buildpack(s) and docker keys".into());
    }
    manifest.lifecycle = if manifest.wants_docker {
        Some(LifecycleChange::Docker)
    } else if buildpacks.is_some() || stack.is_some() {
        Some(LifecycleChange::Buildpack { buildpacks, stack })
    } else {
        None
    };

    if let Some(services) = keys.get("services") {
        match services_part(services) {
            Some(list) => manifest.services = Some(list),
            None => errors.push("Services must be a list of service instances".into()),
        }
    }
    if let Some(env) = keys.get("env") {
        match env.as_object() {
            Some(map) => {
                manifest.env = Some(map.iter().map(|(k, v)| (k.clone(), ruby_to_s(v))).collect())
            }
            None => errors.push("Env must be an object of keys and values".into()),
        }
    }
    routes_part(&keys, &mut manifest, &mut errors);
    if let Some(metadata) = keys.get("metadata") {
        manifest.labels = metadata_part(metadata, "labels");
        manifest.annotations = metadata_part(metadata, "annotations");
    }

    if errors.is_empty() {
        return Ok(manifest);
    }
    let prefix = if manifest.name.is_empty() {
        format!("For application at index {index}: ")
    } else {
        format!("For application '{}': ", manifest.name)
    };
    Err(errors.into_iter().map(|e| format!("{prefix}{e}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_underscored() {
        assert_eq!(underscore("disk-quota"), "disk_quota");
        assert_eq!(underscore("healthCheckType"), "health_check_type");
        assert_eq!(
            underscore("log-rate-limit-per-second"),
            "log_rate_limit_per_second"
        );
    }

    #[test]
    fn byte_quantities_need_a_unit() {
        let mb = |v: Value| to_mb(Some(&v));
        assert_eq!(mb(json!("256M")), Some(256));
        assert_eq!(mb(json!("256mb")), Some(256));
        assert_eq!(mb(json!("1G")), Some(1024));
        assert_eq!(mb(json!("2gb")), Some(2048));
        assert_eq!(mb(json!("1.5G")), Some(1536));
        assert_eq!(to_bytes(Some(&json!(256))), Err(ByteError::Units));
        assert_eq!(to_bytes(Some(&json!("256Q"))), Err(ByteError::Units));
        assert_eq!(to_bytes(Some(&json!("lots"))), Err(ByteError::NonNumeric));
        assert_eq!(to_bytes(Some(&json!(""))), Ok(None));
    }

    #[test]
    fn mistakes_carry_cc_wording() {
        let errs = |v: Value| parse(&v, 0, false).unwrap_err();
        assert_eq!(
            errs(json!({"name": "shop", "memory": "1024"})),
            ["For application 'shop': Process \"web\": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"]
        );
        assert_eq!(
            errs(json!({"name": "shop", "docker": {"image": "nginx"}})),
            ["For application 'shop': Feature Disabled: diego_docker"]
        );
        assert_eq!(
            errs(json!({"memory": "1G"})),
            ["For application at index 0: Name must not be empty"]
        );
        assert_eq!(
            errs(json!({"name": "a", "health-check-type": "tcp", "instances": -1})),
            [
                "For application 'a': Process \"web\": Instances must be greater than or equal to 0",
                "For application 'a': Process \"web\": Health check type must be \"port\", \"process\", or \"http\""
            ]
        );
        assert_eq!(
            errs(
                json!({"name": "a", "routes": [{"route": "x.apps.localhost", "protocol": "h3"}], "random-route": true, "default-route": true})
            ),
            [
                "For application 'a': Route protocol must be 'http1', 'http2' or 'tcp'.",
                "For application 'a': Random-route and default-route may not be used together"
            ]
        );
    }

    #[test]
    fn a_web_entry_of_processes_replaces_the_app_level_keys() {
        let m = parse(
            &json!({"name": "a", "memory": "2G", "processes": [{"type": "web", "instances": 3}, {"type": "worker", "memory": "128M"}]}),
            0,
            true,
        )
        .unwrap();
        assert_eq!(m.processes[0].process_type, "web");
        assert_eq!(m.processes[0].instances, Some(3));
        assert_eq!(m.processes[0].memory_in_mb, None);
        assert_eq!(m.processes[1].memory_in_mb, Some(128));
    }

    #[test]
    fn routes_parse_like_manifest_route() {
        assert_eq!(
            parse_route("shop.apps.localhost/api"),
            Some(("shop.apps.localhost".into(), "/api".into()))
        );
        assert_eq!(
            parse_route("https://Shop.example.com"),
            Some(("shop.example.com".into(), String::new()))
        );
        assert_eq!(parse_route("ftp://x.com"), None);
        assert_eq!(parse_route("/path-only"), None);
    }
}

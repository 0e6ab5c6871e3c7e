//! FluxOS's checks of a formatted app spec, with FluxOS's own messages.
//!
//! A port of `verifyAppSpecifications` (`ZelBack/src/services/appRequirements/appValidator.js`)
//! for v7 and v8, in its order: type checks, restrictions, the spec version's
//! enforcement height, unique ports, hardware totals, then the image tag's
//! syntax. What needs the network (the Docker registry lookup, the image
//! blocklist, enterprise secrets) is left to the node.

use std::collections::HashSet;

use serde_json::Value;

use super::js::{is_decimal_limit, js_len, opt_str, JsNumber};
use super::spec::{AppSpec, Component, SpecError, MAX_INSTANCES, MIN_INSTANCES, MIN_INSTANCES_V8};

/// The chain height the client assumes: past every fork the rules depend on
/// (PoN at 2 020 000, v8 single-instance apps at 2 176 519).
pub const ASSUMED_CHAIN_HEIGHT: u64 = 2_200_000;

/// Ports FluxOS refuses (`config.fluxapps.bannedPorts`).
const BANNED_PORTS: &[(u32, u32)] = &[
    (16100, 16299),
    (26100, 26299),
    (30000, 30099),
    (8384, 8384),
    (27017, 27017),
    (22, 22),
    (23, 23),
    (25, 25),
    (3389, 3389),
    (5900, 5900),
    (5800, 5800),
    (161, 161),
    (512, 512),
    (513, 513),
    (5901, 5901),
    (3388, 3388),
    (4444, 4444),
    (123, 123),
    (53, 53),
];

// Heights at which FluxOS's rules change (`ZelBack/config/default.js`).
const PORT_BLOCKHEIGHT_CHANGE: u64 = 1_420_000;
const COMPONENTS_10_HEIGHT: u64 = 1_300_000;
const NEW_MIN_BLOCKS_ALLOWANCE_BLOCK: u64 = 1_630_040;
const CANCEL_1_BLOCK_MIN_BLOCKS_ALLOWANCE_BLOCK: u64 = 1_964_447;
const REMOVE_BLOCKS_ALLOWANCE_INTERVAL_BLOCK: u64 = 1_625_000;
pub const DAEMON_PON_FORK: u64 = 2_020_000;
const V8_SINGLE_INSTANCE_HEIGHT: u64 = 2_176_519;
const V7_ENFORCEMENT_HEIGHT: u64 = 1_420_000;
const V8_ENFORCEMENT_HEIGHT: u64 = 1_932_380;

/// Node resources left for apps, ×10 for cpu (stratus/nimbus/cumulus
/// `fluxSpecifics` minus `lockedSystemResources`).
const STRATUS: (f64, f64, f64) = (150.0, 59_000.0, 820.0);
const NIMBUS: (f64, f64, f64) = (70.0, 28_000.0, 380.0);
const CUMULUS: (f64, f64, f64) = (30.0, 5_000.0, 160.0);

fn fail<T>(message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(message.into()))
}

/// Runs FluxOS's checks at chain height `height`.
pub fn verify(spec: &AppSpec, height: u64) -> Result<(), SpecError> {
    check_types(spec)?;
    check_restrictions(spec, height)?;
    let enforcement = if spec.is_v8() {
        V8_ENFORCEMENT_HEIGHT
    } else {
        V7_ENFORCEMENT_HEIGHT
    };
    if height < enforcement {
        return fail(format!(
            "Flux apps specifications of version {} not yet supported",
            spec.version
        ));
    }
    // The key whitelist cannot fail here: the formatter only emits allowed keys.
    check_unique_ports(spec)?;
    check_hardware_totals(spec)?;
    check_image_tags(spec)
}

fn check_types(spec: &AppSpec) -> Result<(), SpecError> {
    let v8 = spec.is_v8();
    if v8 {
        if matches!(spec.enterprise, None | Some(Value::Null)) {
            return fail("Missing enterprise property");
        }
        if !spec.is_enterprise() && !spec.nodes.is_empty() {
            return fail("Nodes can only be used in enterprise apps");
        }
    }
    for c in &spec.compose {
        let Some(name) = &c.name else {
            return fail("Invalid Flux App component name");
        };
        if c.description.is_none() {
            return fail(format!("Invalid Flux App component {name} description"));
        }
        for p in &c.ports {
            if !is_decimal_limit(*p, 0) {
                return fail(format!(
                    "Ports for Flux App component {name} are invalid decimals"
                ));
            }
        }
        for p in &c.container_ports {
            let Some(n) = p.as_f64() else {
                return fail(format!(
                    "Container Ports for Flux App component {name} are invalid"
                ));
            };
            if !is_decimal_limit(JsNumber(n), 0) {
                return fail(format!(
                    "Container Ports for Flux App component {name} are invalid decimals"
                ));
            }
        }
        if [c.cpu, c.ram, c.hdd]
            .iter()
            .any(|n| !is_decimal_limit(*n, 8))
        {
            return fail("Invalid HW specifications decimal limits");
        }
        if let Some(t) = &c.tiers {
            let all = [
                t.cpubasic, t.cpusuper, t.cpubamf, t.rambasic, t.ramsuper, t.rambamf, t.hddbasic,
                t.hddsuper, t.hddbamf,
            ];
            if all.iter().any(|n| !is_decimal_limit(*n, 8)) {
                return fail("Invalid tiered HW specifications");
            }
        }
        if !v8 && c.secrets.is_none() {
            return fail(format!("Secrets for Flux App component {name} are invalid"));
        }
        if c.repoauth.is_none() {
            return fail(format!(
                "Repository Authentication for Flux App component {name} are invalid"
            ));
        }
    }
    Ok(())
}

fn is_alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$`
fn is_v8_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

fn is_banned(port: f64) -> bool {
    BANNED_PORTS
        .iter()
        .any(|(lo, hi)| port >= f64::from(*lo) && port <= f64::from(*hi))
}

/// `x.length` of a property FluxOS never type-checks: `undefined` throws.
fn length_of(value: &Option<String>) -> Result<usize, SpecError> {
    match value {
        Some(s) => Ok(js_len(s)),
        None => fail("Cannot read properties of undefined (reading 'length')"),
    }
}

fn check_restrictions(spec: &AppSpec, height: u64) -> Result<(), SpecError> {
    let v8 = spec.is_v8();
    let (min_port, max_port) = if height >= PORT_BLOCKHEIGHT_CHANGE {
        (1.0, 65535.0)
    } else {
        (31000.0, 39999.0)
    };
    let max_name = if v8 { 63 } else { 32 };
    if js_len(&spec.name) > max_name {
        return fail(format!(
            "Flux App name is too long. Maximum {max_name} characters allowed"
        ));
    }
    if v8 {
        if !is_v8_name(&spec.name) {
            return fail("Flux App name contains special characters. Only a-z, A-Z, 0-9 and hyphens are allowed (hyphens cannot be first or last character)");
        }
    } else if !is_alnum(&spec.name) {
        return fail(
            "Flux App name contains special characters. Only a-z, A-Z and 0-9 are allowed",
        );
    }
    if spec.name.starts_with("zel") {
        return fail("Flux App name can not start with zel");
    }
    if spec.name.to_lowercase() == "watchtower" {
        return fail("Flux App name is conflicting with another application");
    }
    if spec.name.starts_with("flux") {
        return fail("Flux App name can not start with flux");
    }
    if js_len(&spec.description) > 256 {
        return fail("Description is too long. Maximum of 256 characters is allowed");
    }

    if spec.compose.is_empty() {
        return fail("Flux App does not contain any composition");
    }
    let max_components = if height < COMPONENTS_10_HEIGHT { 5 } else { 10 };
    if spec.compose.len() > max_components {
        return fail("Flux App has too many components");
    }
    let mut used_names: Vec<&str> = Vec::new();
    for c in &spec.compose {
        check_component(spec, c, max_name, (min_port, max_port), &mut used_names)?;
    }

    let min_instances = if v8 && height >= V8_SINGLE_INSTANCE_HEIGHT {
        MIN_INSTANCES_V8
    } else {
        MIN_INSTANCES
    };
    if spec.instances.value() < min_instances {
        return fail(format!(
            "Minimum number of instances is {}",
            JsNumber(min_instances)
        ));
    }
    if spec.instances.value() > MAX_INSTANCES {
        return fail(format!(
            "Maximum number of instances is {}",
            JsNumber(MAX_INSTANCES)
        ));
    }

    if spec.contacts.len() > 5 {
        return fail("Too many contacts defined. Maximum of 5 allowed.");
    }
    if let Some(c) = spec.contacts.iter().find(|c| js_len(c) > 75) {
        return fail(format!(
            "Contact {c} is too long. Maximum of 75 characters is allowed."
        ));
    }
    if spec.geolocation.len() > 10 {
        return fail("Invalid geolocation submited.");
    }
    if let Some(g) = spec.geolocation.iter().find(|g| js_len(g) > 50) {
        return fail(format!("Geolocation {g} is not valid."));
    }

    let expire = spec.expire.value();
    if height < NEW_MIN_BLOCKS_ALLOWANCE_BLOCK {
        if expire < 5000.0 {
            return fail("Minimum expiration of application is 5000 blocks ~ 1 week");
        }
    } else if height < CANCEL_1_BLOCK_MIN_BLOCKS_ALLOWANCE_BLOCK {
        if expire < 100.0 {
            return fail("Minimum expiration of application is 100 blocks ~ 3 hours");
        }
    } else if expire < 1.0 {
        return fail("Minimum expiration of application is 1 blocks");
    }
    let max_expire = if height >= DAEMON_PON_FORK {
        1_056_000
    } else {
        264_000
    };
    if expire > f64::from(max_expire) {
        return fail(format!(
            "Maximum expiration of application is {max_expire} blocks ~ 1 year"
        ));
    }
    if height < REMOVE_BLOCKS_ALLOWANCE_INTERVAL_BLOCK && expire % 1000.0 != 0.0 {
        return fail("Expiration of application has to be a multiple of 1000 blocks ~ 1 day");
    }

    if spec.nodes.len() > 120 {
        return fail("Maximum number of selecteed nodes is 120");
    }
    if spec.nodes.iter().any(|n| js_len(n) > 70) {
        return fail("Invalid node length");
    }
    Ok(())
}

fn check_component<'a>(
    spec: &AppSpec,
    c: &'a Component,
    max_name: usize,
    (min_port, max_port): (f64, f64),
    used_names: &mut Vec<&'a str>,
) -> Result<(), SpecError> {
    let name = c.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return fail("Please provide a valid Flux App Component name");
    }
    if js_len(name) > max_name {
        return fail(format!(
            "Flux App component name is too long. Maximum {max_name} characters allowed"
        ));
    }
    if name.starts_with("zel") {
        return fail("Flux App Component name can not start with zel");
    }
    if name.starts_with("flux") {
        return fail("Flux App Component name can not start with flux");
    }
    if !is_alnum(name) {
        return fail(
            "Flux App component name contains special characters. Only a-z, A-Z and 0-9 are allowed",
        );
    }
    if used_names.contains(&name) {
        return fail(format!(
            "Flux App component {name} already assigned. Use different name."
        ));
    }
    used_names.push(name);
    if length_of(&c.description)? > 256 {
        return fail("Description is too long. Maximum of 256 characters is allowed.");
    }
    for port in &c.ports {
        let p = port.value();
        if p < min_port || p > max_port {
            return fail(format!(
                "Assigned port {port} is not within Flux Apps range {}-{}",
                JsNumber(min_port),
                JsNumber(max_port)
            ));
        }
        if is_banned(p) {
            return fail(format!("Assigned port {port} is not allowed for Flux Apps"));
        }
    }
    if length_of(&c.repotag)? > 200 {
        return fail("Flux App Repository is too long. Maximum of 200 characters is allowed.");
    }
    if length_of(&c.container_data)? > 200 {
        return fail("Flux App Container Data is too long. Maximum of 200 characters is allowed");
    }
    if c.environment_parameters.len() > 20 {
        return fail(format!(
            "App component {name} environment invalid. Maximum of 20 environment variables allowed."
        ));
    }
    if let Some(env) = c.environment_parameters.iter().find(|e| js_len(e) > 400) {
        return fail(format!(
            "App component {name} environment {env} is too long. Maximum of 400 characters is allowed"
        ));
    }
    if c.commands.len() > 20 {
        return fail(format!(
            "App component {name} commands invalid. Maximum of 20 commands allowed."
        ));
    }
    if let Some(com) = c.commands.iter().find(|e| js_len(e) > 400) {
        return fail(format!(
            "App component {name} command {com} is too long. Maximum of 400 characters is allowed"
        ));
    }
    if let Some(dom) = c.domains.iter().find(|d| js_len(d) > 253) {
        return fail(format!(
            "App component {name} domain {dom} is too long. Maximum of 253 characters is allowed"
        ));
    }
    for port in &c.container_ports {
        let p = port.as_f64().unwrap_or(f64::NAN);
        if !(0.0..=65535.0).contains(&p) {
            return fail(format!(
                "Container Port {} in in {name} is not within system limits 0-65535",
                JsNumber(p)
            ));
        }
    }
    if c.container_ports.len() != c.ports.len() {
        return fail(format!("Ports specifications in {name} do not match"));
    }
    if c.domains.len() != c.ports.len() {
        return fail(format!(
            "Domains specifications in {name} do not match available ports"
        ));
    }
    if c.ports.len() > 5 {
        return fail(format!(
            "Too many ports defined in {name}. Maximum of 5 allowed."
        ));
    }
    if length_of(&c.container_data)? < 2 {
        return fail(format!(
            "Flux App container data folder not specified in in {name}. If no data folder is whished, use /tmp"
        ));
    }
    let secrets = length_of(&c.secrets);
    let repoauth = length_of(&c.repoauth)?;
    if spec.is_v8() {
        if !spec.is_enterprise() {
            if repoauth > 0 {
                return fail("Private repositories are only allowed for Enterprise Applications");
            }
        } else if repoauth > 15000 {
            return fail("Maximum length of repoauth is 15000.");
        }
    } else if spec.nodes.is_empty() {
        if secrets? > 0 {
            return fail("Secrets can not be defined for non Enterprise Applications");
        }
        if repoauth > 0 {
            return fail("Private repositories are only allowed for Enterprise Applications");
        }
    } else {
        if secrets? > 15000 {
            return fail(
                "Maximum length of secrets is 15000. Consider uploading to Flux Storage for bigger payload.",
            );
        }
        if repoauth > 15000 {
            return fail("Maximum length of repoauth is 15000.");
        }
    }
    Ok(())
}

fn check_unique_ports(spec: &AppSpec) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for port in spec.compose.iter().flat_map(|c| &c.ports) {
        if !seen.insert(port.value().to_bits()) {
            return fail(format!(
                "Flux App {} must have unique ports specified accross all composition",
                spec.name
            ));
        }
    }
    Ok(())
}

/// `checkComposeHWParameters`: only totals are limited for compose apps.
fn check_hardware_totals(spec: &AppSpec) -> Result<(), SpecError> {
    let name = &spec.name;
    let tiered = spec.compose.iter().any(|c| c.tiered == Some(true));
    // `a || b`: a falsy tier value (0, NaN, absent) falls back to the plain one.
    let or = |tier: Option<JsNumber>, plain: JsNumber| match tier {
        Some(t) if t.truthy() => t.value(),
        _ => plain.value(),
    };
    let mut total = (0.0, 0.0, 0.0);
    let mut tiers = [(0.0, 0.0, 0.0); 3];
    for c in &spec.compose {
        if tiered {
            let t = c.tiers.as_ref();
            let picks = [
                (
                    t.map(|t| t.cpubasic),
                    t.map(|t| t.rambasic),
                    t.map(|t| t.hddbasic),
                ),
                (
                    t.map(|t| t.cpusuper),
                    t.map(|t| t.ramsuper),
                    t.map(|t| t.hddsuper),
                ),
                (
                    t.map(|t| t.cpubamf),
                    t.map(|t| t.rambamf),
                    t.map(|t| t.hddbamf),
                ),
            ];
            for (sum, (cpu, ram, hdd)) in tiers.iter_mut().zip(picks) {
                sum.0 += or(cpu, c.cpu) * 10.0;
                sum.1 += or(ram, c.ram);
                sum.2 += or(hdd, c.hdd);
            }
        } else {
            total.0 += c.cpu.value() * 10.0;
            total.1 += c.ram.value();
            total.2 += c.hdd.value();
        }
    }
    let check = |sum: (f64, f64, f64), limit: (f64, f64, f64), tier: &str| {
        if sum.0 > limit.0 {
            return fail(format!("Too much CPU {tier}resources assigned for {name}"));
        }
        if sum.1 > limit.1 {
            return fail(format!("Too much RAM {tier}resources assigned for {name}"));
        }
        if sum.2 > limit.2 {
            return fail(format!("Too much SSD {tier}resources assigned for {name}"));
        }
        Ok(())
    };
    check(total, STRATUS, "")?;
    if tiered {
        check(tiers[0], CUMULUS, "for Cumulus ")?;
        check(tiers[1], NIMBUS, "for Nimbus ")?;
        check(tiers[2], STRATUS, "for Stratus ")?;
    }
    Ok(())
}

/// The syntax part of FluxOS's `ImageVerifier`; the registry lookup is the node's.
fn check_image_tags(spec: &AppSpec) -> Result<(), SpecError> {
    for c in &spec.compose {
        // FluxOS skips v7 components with private-registry credentials ("fail open").
        if !spec.is_v8() && c.repoauth.as_deref().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
        let tag = opt_str(&c.repotag);
        if tag.chars().any(char::is_whitespace) {
            return fail(format!(
                "Image tag: \"{tag}\" should not contain space characters."
            ));
        }
        if tag.starts_with('/') || tag.ends_with('/') {
            return fail(format!(
                "Image tag: \"{tag}\" cannot start or end with a backslash."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        crate::backend::flux::spec::tests_support::minimal_v7()
    }

    fn message(edit: impl Fn(&mut Value)) -> String {
        let mut raw = base();
        edit(&mut raw);
        let spec = AppSpec::format(&raw).expect("formats");
        verify(&spec, ASSUMED_CHAIN_HEIGHT).unwrap_err().0
    }

    #[test]
    fn the_base_spec_is_valid() {
        let spec = AppSpec::format(&base()).unwrap();
        verify(&spec, ASSUMED_CHAIN_HEIGHT).unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(
            message(|r| r["name"] = json!("fluxdemo")),
            "Flux App name can not start with flux"
        );
        assert_eq!(
            message(|r| r["name"] = json!("zeldemo")),
            "Flux App name can not start with zel"
        );
        assert_eq!(
            message(|r| r["name"] = json!("WatchTower")),
            "Flux App name is conflicting with another application"
        );
        assert_eq!(
            message(|r| r["name"] = json!("my-app")),
            "Flux App name contains special characters. Only a-z, A-Z and 0-9 are allowed"
        );
        assert_eq!(
            message(|r| r["name"] = json!("a".repeat(33))),
            "Flux App name is too long. Maximum 32 characters allowed"
        );
        assert_eq!(
            message(|r| r["compose"][0]["name"] = json!("web-1")),
            "Flux App component name contains special characters. Only a-z, A-Z and 0-9 are allowed"
        );
        assert_eq!(
            message(|r| {
                let c = r["compose"][0].clone();
                r["compose"].as_array_mut().unwrap().push(c);
            }),
            "Flux App component web already assigned. Use different name."
        );
    }

    #[test]
    fn v8_names_allow_inner_hyphens() {
        let mut raw = base();
        raw["version"] = json!(8);
        raw["enterprise"] = json!("");
        raw["name"] = json!("my-app");
        let c = raw["compose"][0].as_object_mut().unwrap();
        c.remove("tiered");
        c.remove("secrets");
        verify(&AppSpec::format(&raw).unwrap(), ASSUMED_CHAIN_HEIGHT).unwrap();
        raw["name"] = json!("my-app-");
        assert_eq!(
            verify(&AppSpec::format(&raw).unwrap(), ASSUMED_CHAIN_HEIGHT).unwrap_err().0,
            "Flux App name contains special characters. Only a-z, A-Z, 0-9 and hyphens are allowed (hyphens cannot be first or last character)"
        );
        raw.as_object_mut().unwrap().remove("enterprise");
        assert_eq!(
            verify(&AppSpec::format(&raw).unwrap(), ASSUMED_CHAIN_HEIGHT)
                .unwrap_err()
                .0,
            "Missing enterprise property"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(
            message(|r| r["compose"][0]["ports"] = json!([22])),
            "Assigned port 22 is not allowed for Flux Apps"
        );
        assert_eq!(
            message(|r| r["compose"][0]["ports"] = json!([16150])),
            "Assigned port 16150 is not allowed for Flux Apps"
        );
        assert_eq!(
            message(|r| r["compose"][0]["ports"] = json!([70000])),
            "Assigned port 70000 is not within Flux Apps range 1-65535"
        );
        assert_eq!(
            message(|r| r["compose"][0]["ports"] = json!([31111.5])),
            "Ports for Flux App component web are invalid decimals"
        );
        assert_eq!(
            message(|r| r["compose"][0]["containerPorts"] = json!(["80"])),
            "Container Ports for Flux App component web are invalid"
        );
        assert_eq!(
            message(|r| r["compose"][0]["containerPorts"] = json!([80, 81])),
            "Ports specifications in web do not match"
        );
        assert_eq!(
            message(|r| r["compose"][0]["domains"] = json!([])),
            "Domains specifications in web do not match available ports"
        );
        assert_eq!(
            message(|r| {
                r["compose"][0]["ports"] = json!([31001, 31002, 31003, 31004, 31005, 31006]);
                r["compose"][0]["containerPorts"] = json!([1, 2, 3, 4, 5, 6]);
                r["compose"][0]["domains"] = json!(["", "", "", "", "", ""]);
            }),
            "Too many ports defined in web. Maximum of 5 allowed."
        );
        assert_eq!(
            message(|r| {
                let mut c = r["compose"][0].clone();
                c["name"] = json!("db");
                r["compose"].as_array_mut().unwrap().push(c);
            }),
            "Flux App myapp must have unique ports specified accross all composition"
        );
    }

    #[test]
    fn list_lengths() {
        assert_eq!(
            message(|r| r["compose"][0]["environmentParameters"] = json!(vec!["A=1"; 21])),
            "App component web environment invalid. Maximum of 20 environment variables allowed."
        );
        assert_eq!(
            message(|r| r["compose"][0]["commands"] = json!(vec!["x"; 21])),
            "App component web commands invalid. Maximum of 20 commands allowed."
        );
        assert_eq!(
            message(|r| r["contacts"] = json!(vec!["a@b.c"; 6])),
            "Too many contacts defined. Maximum of 5 allowed."
        );
        assert_eq!(
            message(|r| r["geolocation"] = json!(vec!["acEU"; 11])),
            "Invalid geolocation submited."
        );
        assert_eq!(
            message(|r| r["compose"][0]["containerData"] = json!("/")),
            "Flux App container data folder not specified in in web. If no data folder is whished, use /tmp"
        );
        assert_eq!(
            message(|r| r["description"] = json!("d".repeat(257))),
            "Description is too long. Maximum of 256 characters is allowed"
        );
    }

    #[test]
    fn expire_and_instances() {
        assert_eq!(
            message(|r| r["expire"] = json!(2_000_000)),
            "Maximum expiration of application is 1056000 blocks ~ 1 year"
        );
        assert_eq!(
            message(|r| r["expire"] = json!(-5)),
            "Minimum expiration of application is 1 blocks"
        );
        let mut raw = base();
        raw["expire"] = json!(3000);
        let spec = AppSpec::format(&raw).unwrap();
        verify(&spec, ASSUMED_CHAIN_HEIGHT).unwrap();
        assert_eq!(
            verify(&spec, 1_500_000).unwrap_err().0,
            "Minimum expiration of application is 5000 blocks ~ 1 week"
        );
        raw["expire"] = json!(5500);
        let spec = AppSpec::format(&raw).unwrap();
        assert_eq!(
            verify(&spec, 1_500_000).unwrap_err().0,
            "Expiration of application has to be a multiple of 1000 blocks ~ 1 day"
        );
    }

    #[test]
    fn hardware_totals() {
        assert_eq!(
            message(|r| r["compose"][0]["cpu"] = json!(15.1)),
            "Too much CPU resources assigned for myapp"
        );
        assert_eq!(
            message(|r| r["compose"][0]["ram"] = json!(59001)),
            "Too much RAM resources assigned for myapp"
        );
        assert_eq!(
            message(|r| r["compose"][0]["hdd"] = json!(821)),
            "Too much SSD resources assigned for myapp"
        );
        assert_eq!(
            message(|r| r["compose"][0]["cpu"] = json!("lots")),
            "Invalid HW specifications decimal limits"
        );
        // Two components of 8 cpu each: each is fine, the total is not.
        assert_eq!(
            message(|r| {
                r["compose"][0]["cpu"] = json!(8);
                let mut c = r["compose"][0].clone();
                c["name"] = json!("db");
                c["ports"] = json!([31112]);
                r["compose"].as_array_mut().unwrap().push(c);
            }),
            "Too much CPU resources assigned for myapp"
        );
        assert_eq!(
            message(|r| {
                let c = &mut r["compose"][0];
                c["tiered"] = json!(true);
                for k in ["cpubasic", "cpusuper", "cpubamf"] {
                    c[k] = json!(4);
                }
                for k in ["rambasic", "ramsuper", "rambamf"] {
                    c[k] = json!(1000);
                }
                for k in ["hddbasic", "hddsuper", "hddbamf"] {
                    c[k] = json!(10);
                }
            }),
            "Too much CPU for Cumulus resources assigned for myapp"
        );
    }

    #[test]
    fn secrets_and_repoauth() {
        assert_eq!(
            message(|r| r["compose"][0]["secrets"] = json!("s3cret")),
            "Secrets can not be defined for non Enterprise Applications"
        );
        assert_eq!(
            message(|r| r["compose"][0]["repoauth"] = json!("user:token")),
            "Private repositories are only allowed for Enterprise Applications"
        );
        assert_eq!(
            message(|r| {
                r["compose"][0].as_object_mut().unwrap().remove("secrets");
            }),
            "Secrets for Flux App component web are invalid"
        );
        assert_eq!(
            message(|r| {
                r["compose"][0].as_object_mut().unwrap().remove("repoauth");
            }),
            "Repository Authentication for Flux App component web are invalid"
        );
        assert_eq!(
            message(|r| {
                r["nodes"] = json!(["abc:0"]);
                r["compose"][0]["secrets"] = json!("x".repeat(15001));
            }),
            "Maximum length of secrets is 15000. Consider uploading to Flux Storage for bigger payload."
        );
    }

    #[test]
    fn image_tag_syntax() {
        assert_eq!(
            message(|r| r["compose"][0]["repotag"] = json!("nginx :1")),
            "Image tag: \"nginx :1\" should not contain space characters."
        );
        assert_eq!(
            message(|r| r["compose"][0]["repotag"] = json!("/nginx")),
            "Image tag: \"/nginx\" cannot start or end with a backslash."
        );
    }
}

//! The manifest job's work, `AppApplyManifest#apply` for each app in
//! order: processes and their scale, sidecars, lifecycle and metadata,
//! routes, env, then service bindings. The first error ends the job,
//! prefixed `For application '<name>': `; what was applied before it
//! stays, as in CC (no transaction).

use super::super::apps::Process;
use super::super::views::ProcessView;
use super::super::EmulatorState;
use super::errors::V3ApiError;
use super::manifest::{parse_route, AppManifest, LifecycleChange, ProcessChange, RouteRequest};
use super::routes::Route;

/// The stacks the emulated foundation has.
const STACKS: [&str; 2] = ["cflinuxfs4", "cflinuxfs3"];

/// Applies each app's manifest; the error is the job's.
pub(super) fn apply_all(
    state: &mut EmulatorState,
    plan: &[(String, AppManifest)],
) -> Result<(), V3ApiError> {
    for (guid, manifest) in plan {
        apply(state, guid, manifest)
            .map_err(|e| e.prefixed(&format!("For application '{}': ", manifest.name)))?;
    }
    Ok(())
}

fn apply(state: &mut EmulatorState, app_guid: &str, m: &AppManifest) -> Result<(), V3ApiError> {
    {
        let app = state.apps.get_mut(app_guid).ok_or_else(|| {
            V3ApiError::resource_not_found(&format!("App with guid '{app_guid}' not found"))
        })?;
        for change in &m.processes {
            if app.process_mut(&change.process_type).is_none() {
                app.processes.push(Process {
                    view: ProcessView::new(&change.process_type, 0),
                    scaled: false,
                });
            }
            let process = app.process_mut(&change.process_type).expect("added above");
            update_process(process, change);
        }
        for sidecar in &m.sidecars {
            match app.sidecars.iter_mut().find(|s| s.name == sidecar.name) {
                Some(existing) => *existing = sidecar.clone(),
                None => app.sidecars.push(sidecar.clone()),
            }
        }
        match &m.lifecycle {
            Some(LifecycleChange::Docker) => {
                app.lifecycle_type = "docker".into();
                app.buildpacks.clear();
            }
            Some(LifecycleChange::Buildpack { buildpacks, stack }) => {
                if let Some(stack) = stack {
                    if !STACKS.contains(&stack.as_str()) {
                        return Err(V3ApiError::unprocessable("Stack must be an existing stack"));
                    }
                    app.stack = stack.clone();
                }
                if let Some(buildpacks) = buildpacks {
                    app.buildpacks = buildpacks.clone();
                }
            }
            None => {}
        }
        for (given, stored) in [
            (&m.labels, &mut app.labels),
            (&m.annotations, &mut app.annotations),
        ] {
            for (key, value) in given.iter().flatten() {
                match value {
                    Some(v) => stored.insert(key.clone(), v.clone()),
                    None => stored.remove(key),
                };
            }
        }
        app.touch();
    }
    update_routes(state, app_guid, m)?;
    let space_guid = {
        let app = state.apps.get_mut(app_guid).expect("checked above");
        if let Some(env) = &m.env {
            app.env.extend(env.clone());
        }
        app.space_guid.clone()
    };
    for binding in m.services.iter().flatten() {
        let exists = state
            .service_instances
            .iter()
            .any(|s| s.name == binding.name && s.space_guid == space_guid);
        if !exists {
            return Err(V3ApiError::resource_not_found(&format!(
                "Service instance '{}' not found",
                binding.name
            )));
        }
        let app = state.apps.get_mut(app_guid).expect("checked above");
        if !app.services.iter().any(|s| s.name == binding.name) {
            app.services.push(binding.clone());
        }
    }
    Ok(())
}

fn update_process(process: &mut Process, c: &ProcessChange) {
    let p = &mut process.view;
    if let Some(command) = &c.command {
        p.command = command.clone();
    }
    if let Some(instances) = c.instances {
        p.instances = instances;
        process.scaled = true;
    }
    if let Some(memory) = c.memory_in_mb {
        p.memory_in_mb = memory;
    }
    if let Some(disk) = c.disk_in_mb {
        p.disk_in_mb = disk;
    }
    if let Some(limit) = c.log_rate_limit {
        p.log_rate_limit_in_bytes_per_second = limit;
    }
    if let Some(kind) = &c.health_check_type {
        p.health_check_type = kind.clone();
        if kind != "http" {
            p.health_check_http_endpoint = None;
        }
    }
    if let Some(endpoint) = &c.health_check_http_endpoint {
        p.health_check_http_endpoint = endpoint.clone();
    }
    if let Some(timeout) = c.health_check_timeout {
        p.health_check_timeout = timeout;
    }
    if let Some(timeout) = c.health_check_invocation_timeout {
        p.health_check_invocation_timeout = timeout;
    }
    if let Some(interval) = c.health_check_interval {
        p.health_check_interval = interval;
    }
    if let Some(kind) = &c.readiness_health_check_type {
        p.readiness_health_check_type = kind.clone();
        if kind != "http" {
            p.readiness_health_check_http_endpoint = None;
        }
    }
    if let Some(endpoint) = &c.readiness_health_check_http_endpoint {
        p.readiness_health_check_http_endpoint = endpoint.clone();
    }
    if let Some(timeout) = c.readiness_health_check_invocation_timeout {
        p.readiness_health_check_invocation_timeout = timeout;
    }
    if let Some(interval) = c.readiness_health_check_interval {
        p.readiness_health_check_interval = interval;
    }
}

/// `update_routes`: `no-route` unmaps everything; `routes` maps those;
/// otherwise a random or the default route, only for an app with none.
fn update_routes(
    state: &mut EmulatorState,
    app_guid: &str,
    m: &AppManifest,
) -> Result<(), V3ApiError> {
    let name = state.apps[app_guid].name.clone();
    let has_routes = state
        .routes
        .values()
        .any(|r| r.destinations.iter().any(|d| d.app_guid == app_guid));
    if m.no_route == Some(true) {
        for route in state.routes.values_mut() {
            route.destinations.retain(|d| d.app_guid != app_guid);
        }
        return Ok(());
    }
    if let Some(routes) = &m.routes {
        return map_routes(state, app_guid, routes);
    }
    let default_domain = state.settings.apps_domain.to_ascii_lowercase();
    if m.random_route == Some(true) && !has_routes {
        let route = format!("{name}-{}.{default_domain}", random_words());
        map_routes(
            state,
            app_guid,
            &[RouteRequest {
                route,
                protocol: None,
            }],
        )?;
    }
    if m.default_route == Some(true) && !has_routes {
        let prefix = "Failed to create default route from app name:";
        if name.len() > 63 {
            return Err(V3ApiError::unprocessable(&format!(
                "{prefix} Host cannot exceed 63 characters"
            )));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(V3ApiError::unprocessable(&format!(
                "{prefix} Host must be either \"*\" or contain only alphanumeric characters, \"_\", or \"-\""
            )));
        }
        let route = format!("{name}.{default_domain}");
        map_routes(
            state,
            app_guid,
            &[RouteRequest {
                route,
                protocol: None,
            }],
        )?;
    }
    Ok(())
}

/// `RandomRouteGenerator`: an adjective, a noun and two letters.
fn random_words() -> String {
    const ADJECTIVES: [&str; 8] = [
        "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "jolly",
    ];
    const NOUNS: [&str; 8] = [
        "badger", "camel", "dolphin", "eagle", "ferret", "gecko", "heron", "ibex",
    ];
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let letter = |b: u8| (b'a' + b % 26) as char;
    format!(
        "{}-{}-{}{}",
        ADJECTIVES[bytes[0] as usize % 8],
        NOUNS[bytes[1] as usize % 8],
        letter(bytes[2]),
        letter(bytes[3])
    )
}

/// `ManifestRouteUpdate.update`: find or create every route first, then
/// map them all.
fn map_routes(
    state: &mut EmulatorState,
    app_guid: &str,
    routes: &[RouteRequest],
) -> Result<(), V3ApiError> {
    let space_guid = state.apps[app_guid].space_guid.clone();
    let mut to_map = Vec::new();
    for request in routes {
        let (hostname, path) = parse_route(&request.route).ok_or_else(|| {
            V3ApiError::unprocessable(&format!(
                "The route '{}' is not a properly formed URL",
                request.route
            ))
        })?;
        let mut candidates: Vec<(String, String)> = Vec::new();
        if !hostname.starts_with('*') {
            candidates.push((String::new(), hostname.clone()));
        }
        if let Some((host, domain)) = hostname.split_once('.') {
            candidates.push((host.to_string(), domain.to_string()));
        }
        let invalid = |message: &str| {
            V3ApiError::unprocessable(&format!("For route '{}': {message}", request.route))
        };
        let mut found = None;
        for (host, domain) in candidates {
            let Some(domain_guid) = state.domain_guid(&domain) else {
                continue;
            };
            let existing = state.routes.values().find(|r| {
                r.domain_guid == domain_guid && r.host.eq_ignore_ascii_case(&host) && r.path == path
            });
            let guid = match existing {
                Some(route) if route.space_guid != space_guid => {
                    return Err(V3ApiError::unprocessable(
                        "Routes cannot be mapped to destinations in different spaces",
                    ))
                }
                Some(route) => route.guid.clone(),
                None => {
                    if host.is_empty() {
                        return Err(invalid(
                            "Missing host. Routes in shared domains must have a host defined.",
                        ));
                    }
                    if host == "*" {
                        return Err(V3ApiError::not_authorized());
                    }
                    let taken = state.routes.values().any(|r| {
                        r.domain_guid == domain_guid
                            && r.host.eq_ignore_ascii_case(&host)
                            && r.space_guid != space_guid
                    });
                    if taken {
                        return Err(invalid(
                            "domain_id and host host_and_domain_taken_different_space",
                        ));
                    }
                    let seq = state.next_seq();
                    let route = Route::new(&host, (&domain_guid, &domain), &path, &space_guid, seq);
                    let guid = route.guid.clone();
                    state.routes.insert(guid.clone(), route);
                    guid
                }
            };
            found = Some(guid);
            break;
        }
        let Some(guid) = found else {
            return Err(V3ApiError::unprocessable(&format!(
                "No domains exist for route {}",
                request.route
            )));
        };
        to_map.push((guid, request.protocol.clone()));
    }
    for (guid, protocol) in to_map {
        if let Some(route) = state.routes.get_mut(&guid) {
            route.map(app_guid, protocol.as_deref());
        }
    }
    Ok(())
}

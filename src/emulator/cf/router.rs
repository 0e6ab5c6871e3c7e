//! A gorouter in front of the emulated apps: a request whose `Host` (port
//! stripped) is a name under one of the org's domains goes to the app its
//! route names, if that app is STARTED with a current droplet, and gets
//! the file at its path from the droplet's package (`/` is `index.html`),
//! as a static-file app answers. A name with no such app gets gorouter's
//! `404 Not Found: Requested route ('<host>') does not exist.`. Any other
//! `Host` (127.0.0.1, localhost) goes on to the API.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::bits::KEPT_FILE_MAX;
use super::CfEmulator;

/// The `Host` header without its port, lowercased.
fn host_of(request: &Request) -> String {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        raw.split(':').next().unwrap_or("")
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "application/javascript",
        "json" => "application/json",
        "txt" | "md" => "text/plain",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "xml" => "text/xml",
        _ => "application/octet-stream",
    }
}

fn unknown_route(host: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            ("x-cf-routererror", "unknown_route"),
            ("content-type", "text/plain; charset=utf-8"),
        ],
        format!("404 Not Found: Requested route ('{host}') does not exist.\n"),
    )
        .into_response()
}

fn app_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/html")],
        "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    )
        .into_response()
}

/// Whether a request path falls under a route's path (`""` takes all).
fn under(route_path: &str, path: &str) -> bool {
    route_path.is_empty()
        || path == route_path
        || path
            .strip_prefix(route_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

pub(super) async fn gorouter(
    State(emu): State<Arc<CfEmulator>>,
    request: Request,
    next: Next,
) -> Response {
    let host = host_of(&request);
    let routed = {
        let state = emu.state.lock();
        state
            .domains()
            .iter()
            .any(|(_, d)| host == *d || host.ends_with(&format!(".{d}")))
    };
    if !routed {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let state = emu.state.lock();
    let mut routes: Vec<_> = state
        .routes
        .values()
        .filter(|r| r.hostname().eq_ignore_ascii_case(&host) && under(&r.path, &path))
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
    let package = routes.iter().find_map(|route| {
        route.destinations.iter().find_map(|d| {
            let app = state.apps.get(&d.app_guid)?;
            if app.state != "STARTED" {
                return None;
            }
            let droplet = state.droplets.get(app.current_droplet.as_deref()?)?;
            let package = state.packages.get(&droplet.package_guid)?;
            Some((app.package.clone(), package.contents.clone()))
        })
    });
    let Some((listing, contents)) = package else {
        return unknown_route(&host);
    };
    drop(state);
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "405 Not Allowed\n").into_response();
    }
    let mut file = path.trim_start_matches('/').to_string();
    if file.is_empty() || file.ends_with('/') {
        file.push_str("index.html");
    }
    match contents.get(&file) {
        Some(bytes) => {
            let body = if request.method() == Method::HEAD {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(bytes.clone())
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(&file).to_string()),
                    (header::CONTENT_LENGTH, bytes.len().to_string()),
                ],
                body,
            )
                .into_response()
        }
        None => {
            let listed = listing.as_ref().and_then(|l| l.get(&file));
            match listed {
                Some(f) if f.size > KEPT_FILE_MAX || f.link_target.is_none() => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the emulator lists this file but keeps no bytes of it (over 1 MiB, or past 64 MiB per package)\n",
                )
                    .into_response(),
                _ => app_not_found(),
            }
        }
    }
}

//! Routes: the model (host, domain, path, destinations), CC's
//! `RoutePresenter`, `GET /v3/apps/:guid/routes` and `GET /v3/routes/:guid`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::super::CfEmulator;
use super::errors::V3ApiError;
use super::{list_body, now, Caller};

/// One destination of a route: an app's `web` process.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub guid: String,
    pub app_guid: String,
    pub protocol: String,
}

/// An HTTP route in a domain.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub guid: String,
    pub host: String,
    pub domain_guid: String,
    pub domain: String,
    /// Empty, or starting with `/`.
    pub path: String,
    pub space_guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub destinations: Vec<Destination>,
    /// Creation order.
    pub seq: u64,
}

impl Route {
    pub fn new(host: &str, domain: (&str, &str), path: &str, space_guid: &str, seq: u64) -> Route {
        let at = now();
        Route {
            guid: uuid::Uuid::new_v4().to_string(),
            host: host.into(),
            domain_guid: domain.0.into(),
            domain: domain.1.into(),
            path: path.into(),
            space_guid: space_guid.into(),
            created_at: at.clone(),
            updated_at: at,
            destinations: Vec::new(),
            seq,
        }
    }

    /// `host.domain/path`, without a scheme (`RoutePresenter#build_url`).
    pub fn url(&self) -> String {
        if self.host.is_empty() {
            format!("{}{}", self.domain, self.path)
        } else {
            format!("{}.{}{}", self.host, self.domain, self.path)
        }
    }

    /// The name a request's `Host` must carry to reach this route.
    pub fn hostname(&self) -> String {
        if self.host.is_empty() {
            self.domain.clone()
        } else {
            format!("{}.{}", self.host, self.domain)
        }
    }

    /// Maps the app's web process (or changes its protocol).
    pub fn map(&mut self, app_guid: &str, protocol: Option<&str>) {
        match self
            .destinations
            .iter_mut()
            .find(|d| d.app_guid == app_guid)
        {
            Some(existing) => {
                if let Some(p) = protocol {
                    existing.protocol = p.into();
                }
            }
            None => self.destinations.push(Destination {
                guid: uuid::Uuid::new_v4().to_string(),
                app_guid: app_guid.into(),
                protocol: protocol.unwrap_or("http1").into(),
            }),
        }
        self.updated_at = now();
    }

    pub fn presented(&self) -> Value {
        let me = format!("/v3/routes/{}", self.guid);
        let mut destinations: Vec<&Destination> = self.destinations.iter().collect();
        destinations.sort_by(|a, b| a.guid.cmp(&b.guid));
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "protocol": "http",
            "host": self.host,
            "path": self.path,
            "port": null,
            "url": self.url(),
            "destinations": destinations.iter().map(|d| json!({
                "guid": d.guid,
                "app": {"guid": d.app_guid, "process": {"type": "web"}},
                "weight": null,
                "port": 8080,
                "protocol": d.protocol,
            })).collect::<Vec<_>>(),
            "metadata": {"labels": {}, "annotations": {}},
            "relationships": {
                "space": {"data": {"guid": self.space_guid}},
                "domain": {"data": {"guid": self.domain_guid}},
            },
            "links": {
                "self": {"href": me},
                "space": {"href": format!("/v3/spaces/{}", self.space_guid)},
                "destinations": {"href": format!("{me}/destinations")},
                "domain": {"href": format!("/v3/domains/{}", self.domain_guid)},
            },
        })
    }
}

pub(super) async fn list_for_app(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    Caller::reader(&state, &headers)?;
    if !state.apps.contains_key(&guid) {
        return Err(V3ApiError::not_found("App"));
    }
    let mut routes: Vec<&Route> = state
        .routes
        .values()
        .filter(|r| r.destinations.iter().any(|d| d.app_guid == guid))
        .collect();
    routes.sort_by_key(|r| r.seq);
    Ok(Json(list_body(
        &format!("/v3/apps/{guid}/routes"),
        routes.iter().map(|r| r.presented()).collect(),
    )))
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    Caller::reader(&state, &headers)?;
    state
        .routes
        .get(&guid)
        .map(|r| Json(r.presented()))
        .ok_or_else(|| V3ApiError::not_found("Route"))
}

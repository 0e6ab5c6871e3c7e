//! `GET /v3/apps/:guid/routes`: where an app is reached, as URLs.

use std::time::Duration;

use serde::Deserialize;

use super::super::api::CcSession;
use super::error::read;
use crate::backend::DeployError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct RouteList {
    resources: Vec<Route>,
}

#[derive(Deserialize)]
struct Route {
    /// `host.domain/path`, no scheme.
    url: String,
    #[serde(default)]
    protocol: Option<String>,
}

/// How a route's `host.domain/path` becomes a URL to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUrls {
    /// `https` on a real foundation; `http` where the router serves plain
    /// HTTP (the emulator).
    pub scheme: String,
    /// A router on a port of its own, e.g. the emulator's.
    pub port: Option<u16>,
}

impl Default for RouteUrls {
    fn default() -> Self {
        RouteUrls {
            scheme: "https".into(),
            port: None,
        }
    }
}

impl RouteUrls {
    /// `host.domain/path` → `scheme://host.domain[:port]/path`. TCP routes
    /// (`host:port`) keep their own port and get no scheme's default.
    pub fn url(&self, route: &str) -> String {
        let (host, path) = match route.find('/') {
            Some(i) => (&route[..i], &route[i..]),
            None => (route, "/"),
        };
        match self.port {
            Some(port) if !host.contains(':') => format!("{}://{host}:{port}{path}", self.scheme),
            _ => format!("{}://{host}{path}", self.scheme),
        }
    }
}

/// The app's routes as URLs, in the server's order.
pub async fn list(
    session: &CcSession<'_>,
    app_guid: &str,
    urls: &RouteUrls,
) -> Result<Vec<String>, DeployError> {
    let url = session.url(&format!("/v3/apps/{app_guid}/routes"));
    let (_, body) = session
        .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
        .await?;
    let list: RouteList = read("GET /v3/apps/:guid/routes", &body)?;
    Ok(list
        .resources
        .into_iter()
        .map(|r| match r.protocol.as_deref() {
            Some("tcp") => format!("tcp://{}", r.url),
            _ => urls.url(&r.url),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_become_urls() {
        let real = RouteUrls::default();
        assert_eq!(
            real.url("shop.apps.example.com"),
            "https://shop.apps.example.com/"
        );
        assert_eq!(
            real.url("shop.apps.example.com/api/v1"),
            "https://shop.apps.example.com/api/v1"
        );
        let emulator = RouteUrls {
            scheme: "http".into(),
            port: Some(8083),
        };
        assert_eq!(
            emulator.url("shop.apps.localhost"),
            "http://shop.apps.localhost:8083/"
        );
    }
}

//! The cf emulator's push-parity endpoints over HTTP, no client, no mount:
//! `apply_manifest` and its job (every attribute, routes, services,
//! docker), docker packages, deployments, log-cache staging lines, and
//! the router that serves a started app's files.

use std::sync::Arc;

use pushfs::emulator::cf::{CfEmulator, CfFault, DEMO_SPACE_GUID, DEMO_TOKEN};
use pushfs::emulator::{serve, Running};
use serde_json::{json, Value};

struct Api {
    emu: Running<CfEmulator>,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let emu = serve(Arc::new(CfEmulator::new()), 0).await.unwrap();
        Api {
            emu,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url)
    }

    fn auth(&self) -> String {
        format!("bearer {DEMO_TOKEN}")
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .header("authorization", self.auth())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .header("authorization", self.auth())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// `apply_manifest` to the demo space: the status, the Location, the body.
    async fn apply(&self, yaml: &str) -> (u16, Option<String>, String) {
        let r = self
            .http
            .post(self.url(&format!(
                "/v3/spaces/{DEMO_SPACE_GUID}/actions/apply_manifest"
            )))
            .header("authorization", self.auth())
            .header("content-type", "application/x-yaml")
            .body(yaml.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        (status, location, r.text().await.unwrap())
    }

    /// Polls a job to its end; checks it was PROCESSING first.
    async fn finish(&self, location: &str) -> Value {
        let path = location
            .strip_prefix(&self.emu.url)
            .expect("absolute Location");
        let (status, first) = self.get(path).await;
        assert_eq!(status, 200);
        assert_eq!(first["state"], "PROCESSING", "{first}");
        for _ in 0..10 {
            let (_, job) = self.get(path).await;
            if job["state"] != "PROCESSING" {
                return job;
            }
        }
        panic!("the job never ended");
    }

    /// Applies a manifest that must be accepted; returns the ended job.
    async fn apply_job(&self, yaml: &str) -> Value {
        let (status, location, body) = self.apply(yaml).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body, "");
        self.finish(&location.expect("a Location")).await
    }

    fn app(&self, name: &str) -> pushfs::emulator::cf::AppView {
        self.emu.api.app_by_name(name).expect("the app exists")
    }

    /// A bits package of `files` for the app, READY.
    async fn package(&self, app_guid: &str, files: &[(&str, &[u8])]) -> String {
        let (status, package) = self
            .post(
                "/v3/packages",
                json!({"type": "bits", "relationships": {"app": {"data": {"guid": app_guid}}}}),
            )
            .await;
        assert_eq!(status, 201, "{package}");
        let guid = package["guid"].as_str().unwrap().to_string();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, bytes).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let form = reqwest::multipart::Form::new()
            .text("resources", "[]")
            .part(
                "bits",
                reqwest::multipart::Part::bytes(bytes).file_name("package.zip"),
            );
        let r = self
            .http
            .post(self.url(&format!("/v3/packages/{guid}/upload")))
            .header("authorization", self.auth())
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for _ in 0..10 {
            if self.get(&format!("/v3/packages/{guid}")).await.1["state"] == "READY" {
                return guid;
            }
        }
        panic!("the package never got READY");
    }

    /// Stages a package; returns the ended build.
    async fn stage(&self, package_guid: &str) -> Value {
        let (status, build) = self
            .post("/v3/builds", json!({"package": {"guid": package_guid}}))
            .await;
        assert_eq!(status, 201, "{build}");
        let path = format!("/v3/builds/{}", build["guid"].as_str().unwrap());
        for _ in 0..10 {
            let (_, build) = self.get(&path).await;
            if build["state"] != "STAGING" {
                return build;
            }
        }
        panic!("the build never ended");
    }

    /// A staged droplet of `files` for the app.
    async fn droplet(&self, app_guid: &str, files: &[(&str, &[u8])]) -> String {
        let package = self.package(app_guid, files).await;
        let build = self.stage(&package).await;
        assert_eq!(build["state"], "STAGED", "{build}");
        build["droplet"]["guid"].as_str().unwrap().to_string()
    }

    /// Sets the droplet and restarts, as `cf push` does by default.
    async fn push_droplet(&self, app_guid: &str, droplet: &str) {
        let (status, body) = self
            .send(
                reqwest::Method::PATCH,
                &format!("/v3/apps/{app_guid}/relationships/current_droplet"),
                json!({"data": {"guid": droplet}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .post(&format!("/v3/apps/{app_guid}/actions/restart"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

const FULL: &str = r#"---
applications:
- name: shop
  buildpacks: [staticfile_buildpack, nodejs_buildpack]
  stack: cflinuxfs3
  env:
    GREETING: hello
    PORT_COUNT: 3
    DEBUG: true
  command: npm start
  memory: 256M
  disk-quota: 2G
  log-rate-limit-per-second: 16K
  instances: 3
  health-check-type: http
  health-check-http-endpoint: /health
  health-check-invocation-timeout: 7
  health-check-interval: 11
  timeout: 90
  readiness-health-check-type: http
  readiness-health-check-http-endpoint: /ready
  readiness-health-check-invocation-timeout: 4
  readiness-health-check-interval: 9
  processes:
  - type: worker
    command: node worker.js
    instances: 2
    memory: 128mb
    disk_quota: 512M
    health-check-type: process
  sidecars:
  - name: proxy
    process_types: [web]
    command: ./proxy
    memory: 64M
  routes:
  - route: shop.apps.localhost
  - route: api.apps.localhost/v1
    protocol: http2
  services:
  - db
  - name: cache
    binding_name: redis
    parameters: {size: small}
  metadata:
    labels: {team: web}
    annotations: {owner: alice}
  unknown-key: ignored
"#;

#[tokio::test]
async fn apply_manifest_applies_every_attribute() {
    let api = Api::start().await;
    api.emu.api.add_service_instance(DEMO_SPACE_GUID, "db");
    api.emu.api.add_service_instance(DEMO_SPACE_GUID, "cache");
    let job = api.apply_job(FULL).await;
    assert_eq!(job["state"], "COMPLETE", "{job}");
    assert_eq!(job["operation"], "space.apply_manifest");
    assert_eq!(job["errors"], json!([]));
    assert_eq!(job["warnings"], json!([]));
    assert_eq!(
        job["links"]["space"]["href"],
        format!("/v3/spaces/{DEMO_SPACE_GUID}")
    );
    assert_eq!(api.emu.api.manifests(), [FULL]);

    let app = api.app("shop");
    assert_eq!(app.state, "STOPPED");
    assert_eq!(app.lifecycle_type, "buildpack");
    assert_eq!(app.buildpacks, ["staticfile_buildpack", "nodejs_buildpack"]);
    assert_eq!(app.stack, "cflinuxfs3");
    assert_eq!(app.env["GREETING"], "hello");
    assert_eq!(app.env["PORT_COUNT"], "3", "values stored as strings");
    assert_eq!(app.env["DEBUG"], "true");
    assert_eq!(app.command.as_deref(), Some("npm start"));
    assert_eq!(app.memory_in_mb, 256);
    assert_eq!(app.disk_in_mb, 2048);
    assert_eq!(app.log_rate_limit_in_bytes_per_second, 16 * 1024);
    assert_eq!(app.instances, 3);
    assert_eq!(app.health_check_type, "http");
    assert_eq!(app.health_check_http_endpoint.as_deref(), Some("/health"));
    assert_eq!(app.health_check_invocation_timeout, Some(7));
    assert_eq!(app.health_check_interval, Some(11));
    assert_eq!(app.health_check_timeout, Some(90));
    assert_eq!(app.readiness_health_check_type, "http");
    assert_eq!(
        app.readiness_health_check_http_endpoint.as_deref(),
        Some("/ready")
    );
    assert_eq!(app.readiness_health_check_invocation_timeout, Some(4));
    assert_eq!(app.readiness_health_check_interval, Some(9));
    let worker = &app.processes[1];
    assert_eq!(worker.process_type, "worker");
    assert_eq!(worker.command.as_deref(), Some("node worker.js"));
    assert_eq!(
        (worker.instances, worker.memory_in_mb, worker.disk_in_mb),
        (2, 128, 512)
    );
    assert_eq!(worker.health_check_type, "process");
    assert_eq!(app.sidecars.len(), 1);
    assert_eq!(app.sidecars[0].name, "proxy");
    assert_eq!(app.sidecars[0].process_types, ["web"]);
    assert_eq!(app.sidecars[0].command, "./proxy");
    assert_eq!(app.sidecars[0].memory_in_mb, Some(64));
    assert_eq!(app.routes, ["shop.apps.localhost", "api.apps.localhost/v1"]);
    let services: Vec<&str> = app.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["db", "cache"]);
    assert_eq!(app.services[1].binding_name.as_deref(), Some("redis"));
    assert_eq!(app.services[1].parameters, Some(json!({"size": "small"})));
    assert_eq!(app.labels["team"], "web");
    assert_eq!(app.annotations["owner"], "alice");
    assert_eq!(app.counts, Default::default());

    // The API shows the same.
    let (_, shown) = api.get(&format!("/v3/apps/{}", app.guid)).await;
    assert_eq!(
        shown["lifecycle"],
        json!({"type": "buildpack", "data": {"buildpacks": ["staticfile_buildpack", "nodejs_buildpack"], "stack": "cflinuxfs3"}})
    );
    assert_eq!(shown["metadata"]["labels"], json!({"team": "web"}));
    let (_, processes) = api.get(&format!("/v3/apps/{}/processes", app.guid)).await;
    let web = &processes["resources"][0];
    assert_eq!(web["type"], "web");
    assert_eq!(web["instances"], 3);
    assert_eq!(web["memory_in_mb"], 256);
    assert_eq!(web["disk_in_mb"], 2048);
    assert_eq!(web["command"], "npm start");
    assert_eq!(
        web["health_check"],
        json!({"type": "http", "data": {"timeout": 90, "invocation_timeout": 7, "interval": 11, "endpoint": "/health"}})
    );
    assert_eq!(processes["resources"][1]["type"], "worker");
    let stats_path = format!("/v3/processes/{}/stats", web["guid"].as_str().unwrap());
    let (_, stats) = api.get(&stats_path).await;
    assert_eq!(stats["resources"].as_array().unwrap().len(), 3);
    assert_eq!(stats["resources"][0]["mem_quota"], 256 * 1024 * 1024);

    // Routes as CC's RoutePresenter.
    let (status, routes) = api.get(&format!("/v3/apps/{}/routes", app.guid)).await;
    assert_eq!(status, 200);
    assert_eq!(routes["pagination"]["total_results"], 2);
    let route = &routes["resources"][1];
    assert_eq!(route["protocol"], "http");
    assert_eq!(route["host"], "api");
    assert_eq!(route["path"], "/v1");
    assert_eq!(route["url"], "api.apps.localhost/v1");
    let destination = &route["destinations"][0];
    assert_eq!(
        destination["app"],
        json!({"guid": app.guid, "process": {"type": "web"}})
    );
    assert_eq!(destination["port"], 8080);
    assert_eq!(destination["weight"], Value::Null);
    assert_eq!(destination["protocol"], "http2");
    assert_eq!(
        route["relationships"]["space"]["data"]["guid"],
        DEMO_SPACE_GUID
    );
    assert!(route["relationships"]["domain"]["data"]["guid"].is_string());
    assert!(route["links"]["self"]["href"].is_string());

    // Applying again changes what it names and keeps the rest.
    let job = api
        .apply_job("applications:\n- name: shop\n  instances: 1\n  env: {GREETING: hi}\n")
        .await;
    assert_eq!(job["state"], "COMPLETE");
    let app = api.app("shop");
    assert_eq!((app.instances, app.memory_in_mb), (1, 256));
    assert_eq!(app.env["GREETING"], "hi");
    assert_eq!(app.env["DEBUG"], "true");
    assert_eq!(api.emu.api.apps().len(), 1, "found by name");
}

#[tokio::test]
async fn the_controller_refuses_what_cc_refuses() {
    let api = Api::start().await;
    // Not YAML by Content-Type.
    let r = api
        .http
        .post(api.url(&format!(
            "/v3/spaces/{DEMO_SPACE_GUID}/actions/apply_manifest"
        )))
        .header("authorization", api.auth())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Content-Type must be yaml"));
    // Unknown space.
    let r = api
        .http
        .post(api.url("/v3/spaces/nope/actions/apply_manifest"))
        .header("authorization", api.auth())
        .header("content-type", "application/x-yaml")
        .body("applications: [{name: a}]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"errors":[{"detail":"Space not found","title":"CF-ResourceNotFound","code":10010}]}"#
    );
    let (status, _, body) = api.apply("- just\n- a list\n").await;
    assert_eq!(status, 400);
    assert!(body.contains("Request invalid due to parse error: invalid request body"));
    let (status, _, body) = api.apply("version: 1\n").await;
    assert_eq!(status, 422);
    assert!(body.contains("Cannot parse manifest with no 'applications' field."));

    // A bad unit is the controller's 422, every mistake of every app in it.
    let (status, location, body) = api
        .apply("applications:\n- name: shop\n  memory: 1024\n- name: cart\n  disk_quota: 1Q\n  instances: -2\n")
        .await;
    assert_eq!(status, 422);
    assert!(location.is_none());
    let errors: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        errors,
        json!({"errors": [
            {"detail": "For application 'shop': Process \"web\": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB", "title": "CF-UnprocessableEntity", "code": 10008},
            {"detail": "For application 'cart': Process \"web\": Disk quota must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB", "title": "CF-UnprocessableEntity", "code": 10008},
            {"detail": "For application 'cart': Process \"web\": Instances must be greater than or equal to 0", "title": "CF-UnprocessableEntity", "code": 10008},
        ]})
    );
    assert!(api.emu.api.apps().is_empty(), "nothing created");
    assert_eq!(api.emu.api.manifests().len(), 3);
}

#[tokio::test]
async fn default_route_only_when_asked_and_no_route_unmaps() {
    let api = Api::start().await;
    api.apply_job("applications:\n- name: plain\n").await;
    assert!(api.app("plain").routes.is_empty(), "AppCreate makes none");

    let job = api
        .apply_job("applications:\n- name: shop\n  default-route: true\n")
        .await;
    assert_eq!(job["state"], "COMPLETE");
    assert_eq!(api.app("shop").routes, ["shop.apps.localhost"]);
    // An app with a route keeps it; no second default route.
    api.apply_job("applications:\n- name: shop\n  default-route: true\n")
        .await;
    assert_eq!(api.app("shop").routes, ["shop.apps.localhost"]);

    // The default domain is a setting.
    api.emu
        .api
        .update_settings(|s| s.apps_domain = "apps.example.test".into());
    api.apply_job("applications:\n- name: other\n  default-route: true\n")
        .await;
    assert_eq!(api.app("other").routes, ["other.apps.example.test"]);

    // A random route is made only for an app with none.
    api.apply_job("applications:\n- name: rnd\n  random-route: true\n")
        .await;
    let routes = api.app("rnd").routes;
    assert_eq!(routes.len(), 1);
    assert!(routes[0].starts_with("rnd-") && routes[0].ends_with(".apps.example.test"));

    let job = api
        .apply_job("applications:\n- name: shop\n  no-route: true\n")
        .await;
    assert_eq!(job["state"], "COMPLETE");
    assert!(api.app("shop").routes.is_empty());
    let guid = api.app("shop").guid;
    let (_, routes) = api.get(&format!("/v3/apps/{guid}/routes")).await;
    assert_eq!(routes["resources"], json!([]));

    let job = api
        .apply_job("applications:\n- name: bad_name!\n  default-route: true\n")
        .await;
    assert_eq!(job["state"], "FAILED");
    assert_eq!(
        job["errors"][0]["detail"],
        "For application 'bad_name!': Failed to create default route from app name: Host must be either \"*\" or contain only alphanumeric characters, \"_\", or \"-\""
    );
}

#[tokio::test]
async fn explicit_routes_need_a_known_domain_and_their_own_space() {
    let api = Api::start().await;
    api.emu.api.add_domain("example.test");
    let job = api
        .apply_job("applications:\n- name: shop\n  routes:\n  - route: www.example.test/shop\n  - route: shop.apps.localhost\n")
        .await;
    assert_eq!(job["state"], "COMPLETE", "{job}");
    assert_eq!(
        api.app("shop").routes,
        ["www.example.test/shop", "shop.apps.localhost"]
    );

    let job = api
        .apply_job("applications:\n- name: cart\n  routes:\n  - route: cart.nowhere.test\n")
        .await;
    assert_eq!(job["state"], "FAILED");
    assert_eq!(
        job["errors"],
        json!([{"detail": "For application 'cart': No domains exist for route cart.nowhere.test", "title": "CF-UnprocessableEntity", "code": 10008}])
    );
    assert!(api.app("cart").routes.is_empty());

    // A route of another space's app.
    api.emu
        .api
        .add_space("0ther000-0000-4000-8000-00000000d0e0");
    let other = api
        .emu
        .api
        .create_app("elsewhere", "0ther000-0000-4000-8000-00000000d0e0");
    let r = api
        .http
        .post(api.url("/v3/spaces/0ther000-0000-4000-8000-00000000d0e0/actions/apply_manifest"))
        .header("authorization", api.auth())
        .header("content-type", "application/x-yaml")
        .body("applications:\n- name: elsewhere\n  routes: [{route: taken.apps.localhost}]\n")
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(api.finish(&location).await["state"], "COMPLETE");
    assert_eq!(
        api.emu.api.app(&other).unwrap().routes,
        ["taken.apps.localhost"]
    );
    let job = api
        .apply_job("applications:\n- name: shop\n  routes: [{route: taken.apps.localhost}]\n")
        .await;
    assert_eq!(job["state"], "FAILED");
    assert_eq!(
        job["errors"][0]["detail"],
        "For application 'shop': Routes cannot be mapped to destinations in different spaces"
    );
}

#[tokio::test]
async fn services_must_exist_in_the_space() {
    let api = Api::start().await;
    let job = api
        .apply_job("applications:\n- name: shop\n  services: [db]\n")
        .await;
    assert_eq!(job["state"], "FAILED");
    assert_eq!(
        job["errors"],
        json!([{"detail": "For application 'shop': Service instance 'db' not found", "title": "CF-ResourceNotFound", "code": 10010}])
    );
    assert!(api.app("shop").services.is_empty());
    api.emu.api.add_service_instance(DEMO_SPACE_GUID, "db");
    let job = api
        .apply_job("applications:\n- name: shop\n  services: [db]\n")
        .await;
    assert_eq!(job["state"], "COMPLETE");
    assert_eq!(api.app("shop").services[0].name, "db");
}

#[tokio::test]
async fn docker_needs_the_feature_flag() {
    let api = Api::start().await;
    let yaml = "applications:\n- name: web\n  docker: {image: nginx:1.27, username: bob}\n";
    let (status, _, body) = api.apply(yaml).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        r#"{"errors":[{"detail":"For application 'web': Feature Disabled: diego_docker","title":"CF-UnprocessableEntity","code":10008}]}"#
    );
    assert!(api.emu.api.app_by_name("web").is_none());

    api.emu.api.update_settings(|s| s.diego_docker = true);
    assert_eq!(api.apply_job(yaml).await["state"], "COMPLETE");
    let app = api.app("web");
    assert_eq!(app.lifecycle_type, "docker");
    let (_, shown) = api.get(&format!("/v3/apps/{}", app.guid)).await;
    assert_eq!(shown["lifecycle"], json!({"type": "docker", "data": {}}));

    // The docker package: READY at once, no upload, a docker droplet.
    let (status, package) = api
        .post(
            "/v3/packages",
            json!({"type": "docker", "data": {"image": "nginx:1.27", "username": "bob", "password": "s3cret"},
                   "relationships": {"app": {"data": {"guid": app.guid}}}}),
        )
        .await;
    assert_eq!(status, 201, "{package}");
    assert_eq!(package["state"], "READY");
    assert_eq!(
        package["data"],
        json!({"image": "nginx:1.27", "username": "bob", "password": "***"})
    );
    let guid = package["guid"].as_str().unwrap();
    let view = api.emu.api.packages().pop().unwrap();
    assert_eq!(view.package_type, "docker");
    assert_eq!(view.docker_image.as_deref(), Some("nginx:1.27"));
    assert_eq!(view.docker_password.as_deref(), Some("s3cret"));
    assert_eq!(api.app("web").docker_image.as_deref(), Some("nginx:1.27"));
    let r = api
        .http
        .post(api.url(&format!("/v3/packages/{guid}/upload")))
        .header("authorization", api.auth())
        .multipart(reqwest::multipart::Form::new().text("resources", "[{\"fn\":\"a\"}]"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Package type must be bits."));
    let build = api.stage(guid).await;
    assert_eq!(build["state"], "STAGED");
    assert_eq!(build["lifecycle"]["type"], "docker");
    let (_, droplet) = api
        .get(&format!(
            "/v3/droplets/{}",
            build["droplet"]["guid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(droplet["image"], "nginx:1.27");

    // A bits package is refused for a docker app, a docker one for a
    // buildpack app; with the flag off again, builds are refused.
    let (status, body) = api
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app.guid}}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body
        .to_string()
        .contains("Cannot create bits package for a Docker app."));
    api.emu.api.update_settings(|s| s.diego_docker = false);
    let (status, body) = api
        .post("/v3/builds", json!({"package": {"guid": guid}}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"errors": [{"detail": "Feature Disabled: diego_docker", "title": "CF-FeatureDisabled", "code": 330002}]})
    );
    let droplet = build["droplet"]["guid"].as_str().unwrap();
    let (status, _) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/v3/apps/{}/relationships/current_droplet", app.guid),
            json!({"data": {"guid": droplet}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = api
        .post(&format!("/v3/apps/{}/actions/restart", app.guid), json!({}))
        .await;
    assert_eq!(status, 403, "docker apps need the flag to start: {body}");
    let (status, body) = api
        .post(
            "/v3/packages",
            json!({"type": "docker", "data": {"tag": "x"}, "relationships": {"app": {"data": {"guid": app.guid}}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["detail"],
        "Data Image required, Data Unknown field(s): 'tag'"
    );
    let plain = api.emu.api.create_app("plain", DEMO_SPACE_GUID);
    let (status, _) = api
        .post(
            "/v3/packages",
            json!({"type": "docker", "data": {"image": "x"}, "relationships": {"app": {"data": {"guid": plain}}}}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_deployment_swaps_the_droplet_without_a_restart() {
    let api = Api::start().await;
    api.emu
        .api
        .update_settings(|s| s.push_pacing.deployment_polls = 2);
    api.apply_job("applications:\n- name: shop\n").await;
    let app = api.app("shop").guid;
    let first = api.droplet(&app, &[("index.html", b"v1")]).await;
    api.push_droplet(&app, &first).await;
    let second = api.droplet(&app, &[("index.html", b"v2")]).await;

    let (status, body) = api
        .post(
            "/v3/deployments",
            json!({"droplet": {"guid": second}, "strategy": "blue-green", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["detail"],
        "Strategy 'blue-green' is not a supported deployment strategy"
    );
    let (status, body) = api
        .post(
            "/v3/deployments",
            json!({"droplet": {"guid": second}, "strategy": "rolling", "relationships": {"app": {"data": {"guid": "nope"}}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["detail"],
        "Unable to use app. Ensure that the app exists and you have access to it."
    );

    let (status, deployment) = api
        .post(
            "/v3/deployments",
            json!({"droplet": {"guid": second}, "strategy": "rolling", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    assert_eq!(deployment["status"]["value"], "ACTIVE");
    assert_eq!(deployment["status"]["reason"], "DEPLOYING");
    assert_eq!(deployment["strategy"], "rolling");
    assert_eq!(deployment["droplet"]["guid"], second.as_str());
    assert_eq!(deployment["previous_droplet"]["guid"], first.as_str());
    assert_eq!(deployment["new_processes"][0]["type"], "web");
    assert_eq!(
        deployment["relationships"]["app"]["data"]["guid"],
        app.as_str()
    );
    assert_eq!(deployment["options"]["max_in_flight"], 1);
    assert!(deployment["links"]["cancel"]["href"].is_string());

    let (status, body) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": first}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["detail"],
        "Unable to assign current droplet while the app has a deployment in progress. Wait for the deployment to complete or cancel it."
    );

    let path = format!("/v3/deployments/{}", deployment["guid"].as_str().unwrap());
    let mut reasons = Vec::new();
    for _ in 0..4 {
        let (_, d) = api.get(&path).await;
        reasons.push(format!(
            "{}/{}",
            d["status"]["value"].as_str().unwrap(),
            d["status"]["reason"].as_str().unwrap()
        ));
    }
    assert_eq!(
        reasons,
        [
            "ACTIVE/DEPLOYING",
            "ACTIVE/DEPLOYING",
            "FINALIZED/DEPLOYED",
            "FINALIZED/DEPLOYED"
        ]
    );
    let view = api.app("shop");
    assert_eq!(view.state, "STARTED");
    assert_eq!(view.current_droplet.as_deref(), Some(second.as_str()));
    assert_eq!(view.counts.restarts, 1, "only the first push restarted");
    assert_eq!((view.counts.starts, view.counts.stops), (0, 0));
    assert_eq!(view.counts.deployments, 1);
}

#[tokio::test]
async fn a_failed_or_canceled_deployment_puts_the_old_droplet_back() {
    let api = Api::start().await;
    api.apply_job("applications:\n- name: shop\n").await;
    let app = api.app("shop").guid;
    let first = api.droplet(&app, &[("index.html", b"v1")]).await;
    api.push_droplet(&app, &first).await;
    let second = api.droplet(&app, &[("index.html", b"v2")]).await;
    let body = json!({"droplet": {"guid": second}, "strategy": "rolling", "relationships": {"app": {"data": {"guid": app}}}});

    api.emu.api.inject(CfFault::FailNextDeployment);
    let (_, deployment) = api.post("/v3/deployments", body.clone()).await;
    let path = format!("/v3/deployments/{}", deployment["guid"].as_str().unwrap());
    let mut last = Value::Null;
    for _ in 0..3 {
        last = api.get(&path).await.1;
    }
    assert_eq!(last["status"]["value"], "FINALIZED");
    assert_eq!(last["status"]["reason"], "CANCELED");
    assert_eq!(
        api.app("shop").current_droplet.as_deref(),
        Some(first.as_str())
    );

    // Canceled by the client.
    let (_, deployment) = api.post("/v3/deployments", body).await;
    let guid = deployment["guid"].as_str().unwrap();
    let (status, _) = api
        .post(&format!("/v3/deployments/{guid}/actions/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, d) = api.get(&format!("/v3/deployments/{guid}")).await;
    assert_eq!(
        (
            d["status"]["value"].as_str(),
            d["status"]["reason"].as_str()
        ),
        (Some("FINALIZED"), Some("CANCELED"))
    );
    assert_eq!(
        api.app("shop").current_droplet.as_deref(),
        Some(first.as_str())
    );
    let (status, body) = api
        .post(&format!("/v3/deployments/{guid}/actions/cancel"), json!({}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["detail"],
        "Cannot cancel a deployment with status: FINALIZED and reason: CANCELED"
    );
    assert_eq!(api.app("shop").counts.deployments, 2);
}

#[tokio::test]
async fn log_cache_has_the_staging_lines_of_a_failed_build() {
    let api = Api::start().await;
    let (_, root) = api.get("/").await;
    assert_eq!(root["links"]["log_cache"]["href"], api.emu.url.as_str());
    api.apply_job("applications:\n- name: shop\n").await;
    let app = api.app("shop").guid;
    let package = api.package(&app, &[("index.html", b"hi")]).await;
    let first = api.stage(&package).await;
    assert_eq!(first["state"], "STAGED");
    let after_first = api.emu.api.log_lines(&app).last().unwrap().timestamp_ns + 1;

    api.emu.api.inject(CfFault::FailNextStaging);
    let package = api.package(&app, &[("index.html", b"hi again")]).await;
    let (_, build) = api
        .post("/v3/builds", json!({"package": {"guid": package}}))
        .await;
    assert_eq!(build["state"], "STAGING");
    let read = format!("/api/v1/read/{app}?envelope_types=LOG&start_time={after_first}");
    let (status, logs) = api.get(&read).await;
    assert_eq!(status, 200);
    let batch = logs["envelopes"]["batch"].as_array().unwrap();
    assert!(batch.len() >= 3, "{logs}");
    let decode = |e: &Value| {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(e["log"]["payload"].as_str().unwrap())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    };
    for envelope in batch {
        assert_eq!(envelope["source_id"], app.as_str());
        assert_eq!(envelope["instance_id"], "0");
        assert_eq!(envelope["tags"]["source_type"], "STG");
        let ts: i64 = envelope["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(ts >= after_first, "start_time honoured");
    }
    let last = batch.last().unwrap();
    assert_eq!(last["log"]["type"], "ERR");
    assert_eq!(
        decode(last),
        "None of the buildpacks detected a compatible application"
    );
    assert!(batch
        .iter()
        .any(|e| decode(e) == "Downloading app package..."));
    let path = format!("/v3/builds/{}", build["guid"].as_str().unwrap());
    let mut state = Value::Null;
    for _ in 0..3 {
        state = api.get(&path).await.1["state"].clone();
    }
    assert_eq!(state, "FAILED");

    // Everything since the start: both builds' lines.
    let (_, all) = api
        .get(&format!(
            "/api/v1/read/{app}?envelope_types=LOG&start_time=0"
        ))
        .await;
    assert!(all["envelopes"]["batch"].as_array().unwrap().len() > batch.len());
    let r = api.http.get(api.url(&read)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = api.get("/api/v1/read/not-an-app").await;
    assert_eq!(status, 404);

    api.emu.api.update_settings(|s| s.log_cache = false);
    let (_, root) = api.get("/").await;
    assert_eq!(root["links"]["log_cache"], Value::Null);
}

#[tokio::test]
async fn the_router_serves_a_started_apps_files() {
    let api = Api::start().await;
    let addr: std::net::SocketAddr = api.emu.url.trim_start_matches("http://").parse().unwrap();
    let browser = reqwest::Client::builder()
        .resolve("shop.apps.localhost", addr)
        .resolve("nobody.apps.localhost", addr)
        .build()
        .unwrap();
    let site = |host: &str, path: &str| format!("http://{host}:{}{path}", addr.port());

    api.apply_job("applications:\n- name: shop\n  default-route: true\n")
        .await;
    let r = browser
        .get(site("shop.apps.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no started app yet");
    assert_eq!(
        r.text().await.unwrap(),
        "404 Not Found: Requested route ('shop.apps.localhost') does not exist.\n"
    );

    let app = api.app("shop").guid;
    let droplet = api
        .droplet(
            &app,
            &[("index.html", b"<h1>shop</h1>"), ("css/site.css", b"h1{}")],
        )
        .await;
    api.push_droplet(&app, &droplet).await;
    let r = browser
        .get(site("shop.apps.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html");
    assert_eq!(r.text().await.unwrap(), "<h1>shop</h1>");
    let r = browser
        .get(site("shop.apps.localhost", "/css/site.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "h1{}");
    let r = browser
        .get(site("shop.apps.localhost", "/missing.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("404 Not Found"));
    let r = browser
        .get(site("nobody.apps.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        "404 Not Found: Requested route ('nobody.apps.localhost') does not exist.\n"
    );
    assert_eq!(
        api.emu
            .api
            .package_file(&api.emu.api.packages()[0].guid, "index.html"),
        Some(b"<h1>shop</h1>".to_vec())
    );

    // The API's own host still reaches the API.
    let (status, _) = api.get(&format!("/v3/apps/{app}")).await;
    assert_eq!(status, 200);

    // Stopped, the route has no backend.
    let (status, _) = api
        .post(&format!("/v3/apps/{app}/actions/stop"), json!({}))
        .await;
    assert_eq!(status, 200);
    let r = browser
        .get(site("shop.apps.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("404 Not Found: Requested route"));
    assert_eq!(api.app("shop").counts.stops, 1);
}

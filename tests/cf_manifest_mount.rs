//! Cloud Foundry as `cf push` leaves it, on a real mount against the
//! emulator: the manifest applied (every attribute, in the server's
//! state), routes and `.pushfs/url`, `path:` as a folder and as an
//! archive, several apps, vars, a rolling redeploy with no restart, an
//! app's own `spec.json`, zip mtimes, and the failures with the server's
//! words (a refused manifest, a failed build with its staging lines).

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{eventually, run, status, status_json, wait, TestMount};
use pushfs::emulator::cf::{CfFault, DEMO_SPACE_GUID};

/// The emulator with v2 on (as it ships), polls every 20 ms.
fn mount() -> TestMount {
    TestMount::with_emulators_and(|config, _| config.cf.poll_interval_ms = Some(20))
}

fn app_with(t: &TestMount, name: &str, manifest: &str) -> PathBuf {
    let app = t.app("cf", name);
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("index.html"), format!("<p>{name}</p>")).unwrap();
    fs::write(app.join("manifest.yml"), manifest).unwrap();
    app
}

/// `curl URL`, as the README has it: `*.apps.localhost` is loopback to
/// curl, so the request reaches the emulator's router. Status and body.
fn fetch(url: &str) -> (u16, String) {
    let out = run(std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(url));
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

const EVERY_ATTRIBUTE: &str = r#"---
applications:
- name: shop
  memory: 256M
  disk_quota: 512M
  instances: 2
  buildpacks: [python_buildpack]
  stack: cflinuxfs4
  command: python app.py
  log-rate-limit-per-second: 16K
  health-check-type: http
  health-check-http-endpoint: /health
  health-check-invocation-timeout: 7
  health-check-interval: 11
  timeout: 90
  readiness-health-check-type: http
  readiness-health-check-http-endpoint: /ready
  env: {GREETING: hello, RETRIES: 3}
  services: [db]
  sidecars:
  - name: proxy
    process_types: [web]
    command: ./proxy
    memory: 32M
  processes:
  - type: worker
    command: python worker.py
    instances: 3
    memory: 128M
  metadata:
    labels: {team: web}
    annotations: {owner: me@example.com}
"#;

#[test]
fn every_manifest_attribute_reaches_the_server_and_the_default_route_is_made() {
    let t = mount();
    let cf = &t.emulators().cf.api;
    cf.add_service_instance(DEMO_SPACE_GUID, "db");
    let app = app_with(&t, "shop", EVERY_ATTRIBUTE);
    fs::write(app.join("app.py"), "print('hi')").unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));

    let sent = cf.manifests().pop().expect("apply_manifest was sent");
    assert!(sent.contains("default-route: true"), "{sent}");
    let shop = cf.app_by_name("shop").unwrap();
    assert_eq!(shop.state, "STARTED");
    assert_eq!(shop.memory_in_mb, 256);
    assert_eq!(shop.disk_in_mb, 512);
    assert_eq!(shop.instances, 2);
    assert_eq!(shop.buildpacks, ["python_buildpack"]);
    assert_eq!(shop.stack, "cflinuxfs4");
    assert_eq!(shop.command.as_deref(), Some("python app.py"));
    assert_eq!(shop.log_rate_limit_in_bytes_per_second, 16 * 1024);
    assert_eq!(shop.health_check_type, "http");
    assert_eq!(shop.health_check_http_endpoint.as_deref(), Some("/health"));
    assert_eq!(shop.health_check_invocation_timeout, Some(7));
    assert_eq!(shop.health_check_interval, Some(11));
    assert_eq!(shop.health_check_timeout, Some(90));
    assert_eq!(shop.readiness_health_check_type, "http");
    assert_eq!(
        shop.readiness_health_check_http_endpoint.as_deref(),
        Some("/ready")
    );
    assert_eq!(shop.env["GREETING"], "hello");
    assert_eq!(shop.env["RETRIES"], "3");
    assert_eq!(shop.services.len(), 1);
    assert_eq!(shop.services[0].name, "db");
    assert_eq!(shop.sidecars.len(), 1);
    assert_eq!(shop.sidecars[0].name, "proxy");
    assert_eq!(shop.sidecars[0].command, "./proxy");
    let worker = shop
        .processes
        .iter()
        .find(|p| p.process_type == "worker")
        .expect("the worker process");
    assert_eq!(worker.instances, 3);
    assert_eq!(worker.memory_in_mb, 128);
    assert_eq!(worker.command.as_deref(), Some("python worker.py"));
    assert_eq!(shop.labels["team"], "web");
    assert_eq!(shop.annotations["owner"], "me@example.com");

    // The default route, in the status files, and the app answers there.
    assert_eq!(shop.routes, ["shop.apps.localhost"]);
    let url = status(&app, "url");
    let port = reqwest::Url::parse(&t.emulators().cf.url)
        .unwrap()
        .port()
        .unwrap();
    assert_eq!(url, format!("http://shop.apps.localhost:{port}/"));
    let json = status_json(&app);
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["apps"][0]["name"], "shop");
    assert_eq!(json["apps"][0]["state"], "deployed");
    assert_eq!(json["apps"][0]["guid"], shop.guid.as_str());
    assert_eq!(json["apps"][0]["routes"][0], url.as_str());
    assert!(json["apps"][0]["package"].is_string());
    assert!(json["apps"][0]["droplet"].is_string());
    let (code, body) = fetch(&url);
    assert_eq!((code, body.as_str()), (200, "<p>shop</p>"));
    assert!(!sent.contains("path:"), "path stays with the client");
}

#[test]
fn no_route_and_explicit_routes_are_the_manifests() {
    let t = mount();
    let cf = &t.emulators().cf.api;
    cf.add_domain("example.com");
    let quiet = app_with(
        &t,
        "quiet",
        "applications:\n- name: quiet\n  no-route: true\n",
    );
    let routed = app_with(
        &t,
        "routed",
        "applications:\n- name: routed\n  routes:\n  - route: www.example.com\n  - route: routed.apps.localhost/api\n",
    );
    assert_eq!(wait(&quiet), "deployed");
    assert_eq!(wait(&routed), "deployed");
    assert!(cf.app_by_name("quiet").unwrap().routes.is_empty());
    assert_eq!(status(&quiet, "url"), "", "no route, no url");
    assert!(status(&quiet, "log").contains("has no route"));
    let sent = cf.manifests().join("\n---\n");
    assert!(!sent.contains("default-route"), "{sent}");
    let mut routes = cf.app_by_name("routed").unwrap().routes;
    routes.sort();
    assert_eq!(routes, ["routed.apps.localhost/api", "www.example.com"]);
    let urls: Vec<String> = status_json(&routed)["apps"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls.iter().all(|u| u.starts_with("http://")), "{urls:?}");
}

#[test]
fn path_as_a_folder_uploads_only_its_content_under_its_own_ignore_file() {
    let t = mount();
    let app = app_with(&t, "site", "applications:\n- name: site\n  path: dist\n");
    fs::write(app.join("src.ts"), "source").unwrap();
    fs::create_dir_all(app.join("dist/assets")).unwrap();
    fs::write(app.join("dist/index.html"), "<p>built</p>").unwrap();
    fs::write(app.join("dist/assets/app.js"), "js").unwrap();
    fs::write(app.join("dist/notes.md"), "not for the server").unwrap();
    fs::write(app.join("dist/.cfignore"), "*.md\n").unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let cf = &t.emulators().cf.api;
    let upload = cf.uploads().pop().unwrap();
    let mut zipped = upload.zipped_files.clone();
    zipped.sort();
    assert_eq!(zipped, ["assets/app.js", "index.html"]);
    let url = status(&app, "url");
    assert_eq!(fetch(&url), (200, "<p>built</p>".to_string()));
}

/// A jar with two entries, written by the zip crate.
fn jar() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory("META-INF/", options).unwrap();
    zip.start_file("META-INF/MANIFEST.MF", options).unwrap();
    zip.write_all(b"Main-Class: Hello\n").unwrap();
    zip.start_file("index.html", options).unwrap();
    zip.write_all(b"<p>from the jar</p>").unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn path_as_an_archive_uploads_its_entries_and_a_path_outside_is_refused() {
    let t = mount();
    let app = app_with(
        &t,
        "javaapp",
        "applications:\n- name: javaapp\n  path: target/app.jar\n",
    );
    fs::create_dir_all(app.join("target")).unwrap();
    fs::write(app.join("target/app.jar"), jar()).unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let cf = &t.emulators().cf.api;
    let mut zipped = cf.uploads().pop().unwrap().zipped_files;
    zipped.sort();
    assert_eq!(
        zipped,
        ["META-INF/MANIFEST.MF", "index.html"],
        "the entries, not the jar"
    );
    assert_eq!(
        fetch(&status(&app, "url")),
        (200, "<p>from the jar</p>".to_string())
    );

    let outside = app_with(
        &t,
        "outside",
        "applications:\n- name: outside\n  path: ../javaapp\n",
    );
    assert_eq!(wait(&outside), "failed");
    let error = status(&outside, "error");
    assert!(error.contains("leaves the app folder"), "{error}");
    assert!(cf.app_by_name("outside").is_none(), "nothing was sent");
}

#[test]
fn two_apps_deploy_in_order_each_from_its_path_and_all_are_listed() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.cf.poll_interval_ms = Some(30);
        emulators
            .cf
            .api
            .update_settings(|s| s.v3_pacing.staging_polls = 4);
    });
    let app = app_with(
        &t,
        "duo",
        "applications:\n- name: duo-web\n  path: web\n- name: duo-api\n  path: api\n  instances: 2\n",
    );
    fs::create_dir_all(app.join("web")).unwrap();
    fs::create_dir_all(app.join("api")).unwrap();
    fs::write(app.join("web/index.html"), "<p>web</p>").unwrap();
    fs::write(app.join("api/index.html"), "<p>api</p>").unwrap();
    // While the second app stages, the first is done and the folder is not.
    eventually("duo-api staging", || {
        let json = status_json(&app);
        json["apps"][1]["state"] == "staging"
    });
    let json = status_json(&app);
    assert_eq!(json["apps"][0]["state"], "deployed", "{json}");
    assert_eq!(status(&app, "state"), "staging");
    assert_eq!(json["busy"], true);
    assert_eq!(wait(&app), "deployed");

    let cf = &t.emulators().cf.api;
    let web = cf.app_by_name("duo-web").unwrap();
    let api = cf.app_by_name("duo-api").unwrap();
    assert_eq!(
        (web.state.as_str(), api.state.as_str()),
        ("STARTED", "STARTED")
    );
    assert_eq!(api.instances, 2);
    let json = status_json(&app);
    let apps = json["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    for (entry, remote) in apps.iter().zip([&web, &api]) {
        assert_eq!(entry["guid"], remote.guid.as_str());
        assert_eq!(entry["state"], "deployed");
        assert!(entry["build"].is_string());
        assert!(entry["droplet"].is_string());
        assert!(entry["package"].is_string());
    }
    assert_eq!(
        fetch(apps[1]["routes"][0].as_str().unwrap()),
        (200, "<p>api</p>".to_string())
    );
    let job = status(&app, "job");
    assert!(
        job.contains("duo-web package") && job.contains("duo-api droplet"),
        "{job}"
    );
    assert_eq!(cf.manifests().len(), 1, "one apply_manifest for both");

    let table = run(std::process::Command::new(env!("CARGO_BIN_EXE_pushfs"))
        .arg("status")
        .arg(t.mnt()));
    assert!(
        table.contains("    duo-web: deployed  http://duo-web."),
        "{table}"
    );
    assert!(
        table.contains("    duo-api: deployed  http://duo-api."),
        "{table}"
    );
}

#[test]
fn vars_fill_the_manifest_and_a_missing_one_is_named() {
    let t = mount();
    let app = t.app("cf", "varied");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("index.html"), "<p>v</p>").unwrap();
    fs::write(
        app.join("manifest.yml"),
        "applications:\n- name: ((name))\n  instances: ((count))\n  env: {TIER: ((tier))}\n",
    )
    .unwrap();
    fs::write(app.join("vars.yml"), "name: varied-app\ncount: 2\n").unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("Expected to find variables: tier"),
        "{error}"
    );
    let cf = &t.emulators().cf.api;
    assert!(cf.manifests().is_empty(), "nothing sent");

    fs::write(
        app.join("vars.yml"),
        "name: varied-app\ncount: 2\ntier: gold\n",
    )
    .unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let record = cf.app_by_name("varied-app").unwrap();
    assert_eq!(record.instances, 2);
    assert_eq!(record.env["TIER"], "gold");
    let zipped = cf.uploads().pop().unwrap().zipped_files;
    assert!(!zipped.iter().any(|f| f == "vars.yml"), "{zipped:?}");
}

#[test]
fn a_rolling_redeploy_goes_through_a_deployment_without_a_restart() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.cf.poll_interval_ms = Some(20);
        config.cf.strategy = Some(pushfs::backend::cf::CfStrategy::Rolling);
        emulators
            .cf
            .api
            .update_settings(|s| s.push_pacing.deployment_polls = 3);
    });
    let app = app_with(&t, "rolled", "applications:\n- name: rolled\n");
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    let first = cf.app_by_name("rolled").unwrap();
    let droplet = first.current_droplet.clone().unwrap();
    let before = first.counts;

    fs::write(app.join("index.html"), "<p>v2</p>").unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let after = cf.app_by_name("rolled").unwrap();
    assert_eq!(after.counts.deployments, before.deployments + 1);
    assert_eq!(after.counts.restarts, before.restarts, "no restart");
    assert_eq!(after.counts.stops, before.stops, "no stop");
    assert_ne!(after.current_droplet.unwrap(), droplet);
    assert_eq!(after.state, "STARTED");
    let log = status(&app, "log");
    assert!(log.contains("rolling deployment"), "{log}");
    assert!(status_json(&app)["apps"][0]["deployment"].is_string());
    assert_eq!(fetch(&status(&app, "url")), (200, "<p>v2</p>".to_string()));

    // A deployment that is canceled fails the deploy with its reason.
    cf.inject(CfFault::FailNextDeployment);
    fs::write(app.join("index.html"), "<p>v3</p>").unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("CANCELED"), "{error}");
}

#[test]
fn an_openapi_spec_json_beside_a_manifest_is_an_app_file() {
    let t = mount();
    let app = app_with(&t, "api-docs", "applications:\n- name: api-docs\n");
    fs::write(
        app.join("spec.json"),
        r#"{"openapi":"3.0.3","info":{"title":"shop","version":"1"},"paths":{}}"#,
    )
    .unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let cf = &t.emulators().cf.api;
    let zipped = cf.uploads().pop().unwrap().zipped_files;
    assert!(zipped.iter().any(|f| f == "spec.json"), "{zipped:?}");
    assert!(status(&app, "log").contains("it is the app's own file"));

    // One that mixes pushfs's keys with others is refused, naming them.
    fs::write(
        app.join("spec.json"),
        r#"{"name":"api-docs","strateg":"rolling"}"#,
    )
    .unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("unknown ones: strateg"), "{error}");
}

fn set_mtime(path: &Path, secs: i64) {
    let status = std::process::Command::new("touch")
        .arg("-m")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn zip_entries_carry_mtimes_and_a_touch_alone_deploys_nothing() {
    let t = mount();
    let app = app_with(&t, "dated", "applications:\n- name: dated\n");
    let first = 1_700_000_001;
    set_mtime(&app.join("index.html"), first);
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    let file = |cf: &pushfs::emulator::cf::CfEmulator| {
        cf.app_by_name("dated").unwrap().package.unwrap()["index.html"].clone()
    };
    assert_eq!(file(cf).mtime, Some(first));
    let uploads = cf.uploads().len();

    // touch: new time, same content: nothing deploys.
    set_mtime(&app.join("index.html"), first + 100);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(cf.uploads().len(), uploads, "content decides");

    // A same-size edit reaches the app with its new mtime.
    fs::write(app.join("index.html"), "<p>DATED</p>").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(wait(&app), "deployed");
    let edited = file(cf);
    assert_eq!(edited.size, "<p>dated</p>".len() as u64);
    let mtime = edited.mtime.unwrap();
    assert!((now - 60..=now + 60).contains(&mtime), "{mtime} vs {now}");
}

#[test]
fn a_refused_manifest_fails_with_the_cloud_controllers_words() {
    let t = mount();
    // A service the space does not have: the job fails.
    let app = app_with(
        &t,
        "lonely",
        "applications:\n- name: lonely\n  services: [missing-db]\n",
    );
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("the manifest was refused"), "{error}");
    assert!(
        error.contains("Service instance 'missing-db' not found"),
        "{error}"
    );
    let cf = &t.emulators().cf.api;
    assert!(
        cf.uploads().is_empty(),
        "nothing uploaded after a refused manifest"
    );

    // A bad unit: the Cloud Controller refuses the request itself.
    let app = app_with(
        &t,
        "greedy",
        "applications:\n- name: greedy\n  memory: 1 lot\n",
    );
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("Memory must use a supported unit"),
        "{error}"
    );
}

#[test]
fn a_failed_build_shows_its_error_and_its_staging_lines() {
    let t = mount();
    t.emulators().cf.api.inject(CfFault::FailNextStaging);
    let app = app_with(&t, "undetected", "applications:\n- name: undetected\n");
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("NoAppDetectedError"), "{error}");
    let log = status(&app, "log");
    assert!(
        log.contains("cf: staging: ")
            && log.contains("None of the buildpacks detected a compatible application"),
        "{log}"
    );
}

#[test]
fn a_docker_image_is_pushed_without_bits() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.cf.poll_interval_ms = Some(20);
        emulators.cf.api.update_settings(|s| s.diego_docker = true);
    });
    let app = app_with(
        &t,
        "boxed",
        "applications:\n- name: boxed\n  docker: {image: nginx:1.27}\n",
    );
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let cf = &t.emulators().cf.api;
    let record = cf.app_by_name("boxed").unwrap();
    assert_eq!(record.lifecycle_type, "docker");
    assert_eq!(record.docker_image.as_deref(), Some("nginx:1.27"));
    assert_eq!(record.state, "STARTED");
    assert!(cf.uploads().is_empty(), "no bits");
}

#[test]
fn the_example_is_deployed_routed_and_reachable() {
    let t = mount();
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let cf = &t.emulators().cf.api;
    let record = cf.app_by_name("cf-hello").unwrap();
    assert_eq!(record.memory_in_mb, 64);
    assert_eq!(record.buildpacks, ["staticfile_buildpack"]);
    let (code, body) = fetch(&status(&app, "url"));
    assert_eq!(code, 200);
    assert!(body.contains("cf-hello") || body.contains("<"), "{body}");
}

//! Inputs users really write, on a real mount: a spec saved with a UTF-8
//! byte-order mark deploys; a spec too big to be one is refused unread,
//! with its size and the limit named, and nothing is uploaded.

mod common;

use std::fs;

use common::{status, wait, TestMount};
use pushfs::emulator::cf::DEMO_SPACE_GUID;

fn cf_spec(name: &str) -> String {
    format!(r#"{{"name":"{name}","space_guid":"{DEMO_SPACE_GUID}"}}"#)
}

#[test]
fn a_spec_with_a_bom_deploys() {
    let t = TestMount::with_emulators();
    let app = t.app("cf", "bom");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("index.html"), "<p>hi</p>").unwrap();
    let mut spec = b"\xEF\xBB\xBF".to_vec();
    spec.extend_from_slice(cf_spec("bom").as_bytes());
    fs::write(app.join("spec.json"), spec).unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
}

#[test]
fn a_spec_over_one_mib_is_refused_unread_and_nothing_is_uploaded() {
    let t = TestMount::with_emulators();
    let app = t.app("cf", "huge");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("index.html"), "<p>hi</p>").unwrap();
    let mut spec = cf_spec("huge").into_bytes();
    spec.extend(std::iter::repeat_n(b' ', 5 << 20));
    fs::write(app.join("spec.json"), &spec).unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains(&format!("spec.json is {} bytes", spec.len()))
            && error.contains("at most 1048576 (1 MiB)"),
        "{error}"
    );
    assert!(t.emulators().cf.api.uploads().is_empty());
    assert!(
        t.emulators().cf.api.apps().iter().all(|a| a.name != "huge"),
        "not even looked up or created"
    );
}

#[test]
fn a_spec_excluded_by_an_ignore_file_is_called_that() {
    let t = TestMount::with_emulators();
    let app = t.app("cf", "ignored");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("index.html"), "<p>hi</p>").unwrap();
    fs::write(app.join(".cfignore"), "# generated files\n*.json\n").unwrap();
    fs::write(app.join("spec.json"), cf_spec("ignored")).unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("spec.json is excluded from the app by `.cfignore` line 2 (`*.json`)"),
        "{error}"
    );
}

#[test]
fn a_second_folder_for_the_same_remote_app_is_refused() {
    let t = TestMount::with_emulators();
    let first = t.app("cf", "shop");
    fs::create_dir(&first).unwrap();
    fs::write(first.join("index.html"), "<p>one</p>").unwrap();
    fs::write(first.join("spec.json"), cf_spec("shop")).unwrap();
    assert_eq!(wait(&first), "deployed");

    let second = t.app("cf", "shop-copy");
    fs::create_dir(&second).unwrap();
    fs::write(second.join("index.html"), "<p>two</p>").unwrap();
    fs::write(second.join("spec.json"), cf_spec("shop")).unwrap();
    assert_eq!(wait(&second), "failed");
    let error = status(&second, "error");
    assert!(
        error.contains(&format!(
            "app shop in space {DEMO_SPACE_GUID} is already deployed from the folder shop"
        )),
        "{error}"
    );
    assert_eq!(
        t.emulators().cf.api.uploads().len(),
        1,
        "only the first folder went up"
    );

    // The first folder keeps deploying.
    fs::write(first.join("index.html"), "<p>one, again</p>").unwrap();
    assert_eq!(wait(&first), "deployed");
    assert_eq!(t.emulators().cf.api.uploads().len(), 2);
}

#[test]
fn a_symlink_leaving_the_app_travels_as_a_link_with_a_warning() {
    let t = TestMount::with_emulators();
    let app = t.app("cf", "links");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("index.html"), "<p>hi</p>").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", app.join("passwd")).unwrap();
    std::os::unix::fs::symlink("index.html", app.join("home.html")).unwrap();
    fs::write(app.join("spec.json"), cf_spec("links")).unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let log = status(&app, "log");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("symlinks pointing outside the app"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].ends_with("passwd -> /etc/passwd"), "{log}");
}

#[test]
fn a_spec_that_is_a_directory_or_a_symlink_is_called_that() {
    let t = TestMount::with_emulators();
    let app = t.app("cf", "odd");
    fs::create_dir(&app).unwrap();
    fs::create_dir(app.join("spec.json")).unwrap();
    assert_eq!(wait(&app), "idle");
    assert!(
        status(&app, "error").contains("spec.json is a directory, not a file"),
        "{}",
        status(&app, "error")
    );
    fs::remove_dir(app.join("spec.json")).unwrap();
    fs::write(app.join("real.json"), cf_spec("odd")).unwrap();
    std::os::unix::fs::symlink("real.json", app.join("spec.json")).unwrap();
    assert_eq!(wait(&app), "idle");
    assert!(
        status(&app, "error").contains("spec.json is a symlink, not a file"),
        "{}",
        status(&app, "error")
    );
}

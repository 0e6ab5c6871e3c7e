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

//! The config file `pushfs emulate` writes is enough to deploy every example.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, status, wait, TestMount};
use pushfs::config::{Config, Env};

#[test]
fn the_written_client_config_deploys_the_three_examples() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestMount::with_emulators_and(|config, emulators| {
        let path = emulators.write_client_config(dir.path()).unwrap();
        let loaded = Config::load(Some(&path), &Env::new()).expect("the written config parses");
        assert_eq!(loaded.warnings, Vec::<String>::new(), "written 0600");
        config.bytenite = loaded.bytenite;
        config.flux = loaded.flux;
        config.cf = loaded.cf;
    });
    for (backend, example) in [
        ("bytenite", "bytenite-hello"),
        ("flux", "flux-hello"),
        ("cf", "cf-hello"),
    ] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example);
        run(Command::new("cp")
            .arg("-r")
            .arg(source)
            .arg(t.mnt().join(backend)));
        let app = t.app(backend, example);
        // A Flux registration the node accepted waits for its fee.
        let done = if backend == "flux" {
            "awaiting_payment"
        } else {
            "deployed"
        };
        assert_eq!(wait(&app), done, "{backend}: {}", status(&app, "error"));
    }
}

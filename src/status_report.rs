//! `pushfs status`: every app's status on every pushfs mount, read back
//! through the mounts' own `.pushfs/status.json` files, as a table for
//! people or as JSON for programs.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::kind::BackendKind;

#[derive(Debug, Clone, Serialize)]
pub struct MountReport {
    pub mountpoint: PathBuf,
    pub apps: Vec<AppReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    pub backend: BackendKind,
    pub name: String,
    /// The app's `status.json`, as the mount shows it.
    pub status: serde_json::Value,
}

/// The mounts to report: the one named, or every pushfs mount.
pub fn mounts(named: Option<&Path>) -> Vec<PathBuf> {
    match named {
        Some(m) => vec![m.to_path_buf()],
        None => crate::fs::mount::pushfs_mounts()
            .into_iter()
            .map(PathBuf::from)
            .collect(),
    }
}

/// Reads every app of one mount.
pub fn read_mount(mountpoint: &Path) -> std::io::Result<MountReport> {
    let mut apps = Vec::new();
    for backend in BackendKind::ALL {
        let dir = mountpoint.join(backend.dir_name());
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let status = std::fs::read(dir.join(&name).join(".pushfs/status.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            apps.push(AppReport {
                backend,
                name,
                status,
            });
        }
    }
    Ok(MountReport {
        mountpoint: mountpoint.to_path_buf(),
        apps,
    })
}

/// One line per app under its mount: state, hash, error.
pub fn table(reports: &[MountReport]) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str(&format!("{}\n", report.mountpoint.display()));
        for app in &report.apps {
            let field = |k: &str| app.status[k].as_str().unwrap_or("").to_string();
            let mut line = format!("  {}/{}: {}", app.backend, app.name, field("state"));
            if !field("hash").is_empty() {
                line.push_str(&format!("  hash {}", field("hash")));
            }
            if !field("error").is_empty() {
                line.push_str(&format!("  error: {}", field("error")));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_line_per_app() {
        let report = MountReport {
            mountpoint: "/mnt/deploy".into(),
            apps: vec![AppReport {
                backend: BackendKind::Cf,
                name: "site".into(),
                status: serde_json::json!({"state": "held", "error": "held through .pushfs/ctl"}),
            }],
        };
        assert_eq!(
            table(std::slice::from_ref(&report)),
            "/mnt/deploy\n  cf/site: held  error: held through .pushfs/ctl\n"
        );
        let json = serde_json::to_value([report]).unwrap();
        assert_eq!(json[0]["apps"][0]["backend"], "cf");
        assert_eq!(json[0]["apps"][0]["status"]["state"], "held");
    }
}

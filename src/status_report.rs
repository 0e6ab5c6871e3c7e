//! `pushfs status`: every app's status on every pushfs mount, read back
//! through the mounts' own `.pushfs/status.json` files, as a table for
//! people or as JSON for programs. `status_watch` redraws it live.

use std::path::{Path, PathBuf};

use indicatif::BinaryBytes;
use serde::Serialize;
use thiserror::Error;

use crate::kind::BackendKind;
use crate::printable::printable;
use crate::progress::Progress;

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

impl AppReport {
    /// `backend/name`: the app's place in its mount.
    pub fn label(&self) -> String {
        format!("{}/{}", self.backend, printable(&self.name))
    }

    /// What its deploy has packaged or sent, while it does.
    pub fn progress(&self) -> Option<Progress> {
        serde_json::from_value(self.status.get("progress")?.clone()).ok()
    }

    fn field(&self, key: &str) -> &str {
        self.status[key].as_str().unwrap_or("")
    }

    /// The words after the label: state, hash, error; no progress. Shown
    /// [`printable`]: `status.json` carries what a server said.
    pub fn summary(&self) -> String {
        let mut line = printable(self.field("state")).into_owned();
        if !self.field("hash").is_empty() {
            line.push_str(&format!("  hash {}", printable(self.field("hash"))));
        }
        if !self.field("url").is_empty() {
            line.push_str(&format!("  {}", self.field("url")));
        }
        if let Some(left) = self.time_left(std::time::SystemTime::now()) {
            line.push_str(&format!("  {left}"));
        }
        if !self.field("error").is_empty() {
            line.push_str(&format!("  error: {}", printable(self.field("error"))));
        }
        let waiting: Vec<&str> = self.status["waiting_for"]
            .as_array()
            .map(|paths| paths.iter().filter_map(|p| p.as_str()).collect())
            .unwrap_or_default();
        if !waiting.is_empty() {
            line.push_str(&format!("  waiting for {} to close", waiting.join(", ")));
        }
        line
    }

    /// `expires in 6days 23h 59m (height 2288000)`: the paid time left of
    /// an app rented by the block (Flux), from `expires_at` and `now`.
    pub fn time_left(&self, now: std::time::SystemTime) -> Option<String> {
        let height = self.status["expire_height"].as_u64()?;
        let at = humantime::parse_rfc3339_weak(self.status["expires_at"].as_str()?).ok()?;
        if !matches!(
            self.field("state"),
            "deployed" | "awaiting_payment" | "paid"
        ) {
            return None;
        }
        Some(match at.duration_since(now) {
            Ok(left) => {
                // Minutes are enough for a lease of weeks.
                let shown = match left.as_secs() {
                    s if s >= 3600 => std::time::Duration::from_secs(s / 60 * 60),
                    s => std::time::Duration::from_secs(s),
                };
                format!(
                    "expires in {} (height {height})",
                    humantime::format_duration(shown)
                )
            }
            Err(_) => format!("expiry due now (height {height})"),
        })
    }

    /// The wallet link and its QR code in half blocks, for an app whose
    /// payment is due (Flux): a phone camera reads it off the terminal.
    pub fn payment_qr(&self) -> Option<(String, String)> {
        let payment = &self.status["payment"];
        if self.field("state") != "awaiting_payment" || payment["stage"] != "unpaid" {
            return None;
        }
        let link = payment["link"].as_str()?;
        let code = crate::pay_code::terminal(link).ok()?;
        Some((link.to_string(), code))
    }

    /// One line per server-side app when the folder deploys several (a
    /// Cloud Foundry manifest): name, state, current step, first route.
    pub fn remote_apps(&self) -> Vec<String> {
        let apps = self.status["apps"].as_array().cloned().unwrap_or_default();
        if apps.len() < 2 {
            return Vec::new();
        }
        apps.iter()
            .map(|app| {
                let text = |key: &str| app[key].as_str().unwrap_or("").to_string();
                let mut line = format!("{}: {}", text("name"), text("state"));
                let step = text("step");
                if !step.is_empty() && !matches!(text("state").as_str(), "deployed" | "idle") {
                    line.push_str(&format!(" ({step})"));
                }
                if let Some(url) = app["routes"].get(0).and_then(|u| u.as_str()) {
                    line.push_str(&format!("  {url}"));
                }
                line
            })
            .collect()
    }
}

/// `12.00 MiB of 85.00 MiB (14%)`, and the rate when one is known. The
/// phase is the app's state, shown beside it.
pub fn progress_text(progress: &Progress, bytes_per_sec: Option<f64>) -> String {
    let percent = match progress.bytes_total {
        0 => 100,
        total => progress.bytes_done.min(total) * 100 / total,
    };
    let mut text = format!(
        "{} of {} ({percent}%)",
        BinaryBytes(progress.bytes_done),
        BinaryBytes(progress.bytes_total)
    );
    if let Some(rate) = bytes_per_sec {
        text.push_str(&format!(", {}/s", BinaryBytes(rate as u64)));
    }
    text
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

/// What `pushfs status` could read, and the mounts it could not.
#[derive(Debug, Default)]
pub struct Gathered {
    pub reports: Vec<MountReport>,
    /// One line per mount left out, e.g. another user's mount (FUSE keeps
    /// it from everyone else, root included, unless mounted allow_other).
    pub skipped: Vec<String>,
}

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("no pushfs mount found; pass the mount point")]
    NoMount,
    #[error("cannot read {}: {source}", mountpoint.display())]
    Unreadable {
        mountpoint: PathBuf,
        source: std::io::Error,
    },
    #[error("no pushfs mount could be read:\n{}", skipped.join("\n"))]
    NoneReadable { skipped: Vec<String> },
}

/// Reads the mount named, which must be readable, or every pushfs mount
/// on the machine, leaving out (with a note) those the caller cannot read:
/// one user's mount must not fail another user's `pushfs status`.
pub fn gather(named: Option<&Path>) -> Result<Gathered, StatusError> {
    let found = mounts(named);
    if found.is_empty() {
        return Err(StatusError::NoMount);
    }
    let mut gathered = Gathered::default();
    for mountpoint in found {
        match read_mount(&mountpoint) {
            Ok(report) => gathered.reports.push(report),
            Err(source) if named.is_some() => {
                return Err(StatusError::Unreadable { mountpoint, source })
            }
            Err(err) => gathered.skipped.push(format!(
                "skipped {}: {}",
                printable(&mountpoint.display().to_string()),
                skip_reason(&err)
            )),
        }
    }
    if gathered.reports.is_empty() {
        return Err(StatusError::NoneReadable {
            skipped: gathered.skipped,
        });
    }
    Ok(gathered)
}

fn skip_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (another user's mount, not mounted with allow_other)".into()
        }
        _ => err.to_string(),
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

/// One line per app under its mount: state, hash, error, and what a
/// running deploy has packaged or sent.
pub fn table(reports: &[MountReport]) -> String {
    table_with_rates(reports, |_, _| None)
}

/// [`table`], with the rate `rate_of` knows for an app's progress.
pub fn table_with_rates(
    reports: &[MountReport],
    rate_of: impl Fn(&MountReport, &AppReport) -> Option<f64>,
) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str(&format!("{}\n", report.mountpoint.display()));
        for app in &report.apps {
            out.push_str(&format!("  {}: {}", app.label(), app.summary()));
            if let Some(progress) = app.progress() {
                out.push_str("  ");
                out.push_str(&progress_text(&progress, rate_of(report, app)));
            }
            out.push('\n');
            for line in app.remote_apps() {
                out.push_str(&format!("    {line}\n"));
            }
            if let Some((link, code)) = app.payment_qr() {
                out.push_str(&format!("    pay from a phone: scan, or open {link}\n"));
                for line in code.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
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

    #[test]
    fn a_manifest_of_several_apps_shows_a_line_each() {
        let report = MountReport {
            mountpoint: "/mnt/deploy".into(),
            apps: vec![AppReport {
                backend: BackendKind::Cf,
                name: "shop".into(),
                status: serde_json::json!({
                    "state": "staging",
                    "url": "https://web.apps.example.com/",
                    "apps": [
                        {"name": "web", "state": "deployed", "step": "routes", "routes": ["https://web.apps.example.com/"]},
                        {"name": "worker", "state": "staging", "step": "stage", "routes": []},
                    ],
                }),
            }],
        };
        assert_eq!(
            table(std::slice::from_ref(&report)),
            "/mnt/deploy\n  cf/shop: staging  https://web.apps.example.com/\n    web: deployed  https://web.apps.example.com/\n    worker: staging (stage)\n"
        );
    }

    #[test]
    fn a_running_upload_shows_how_far_it_got() {
        let report = MountReport {
            mountpoint: "/mnt/deploy".into(),
            apps: vec![AppReport {
                backend: BackendKind::Bytenite,
                name: "big".into(),
                status: serde_json::json!({
                    "state": "uploading",
                    "progress": {"phase": "uploading", "bytes_done": 3 << 20, "bytes_total": 12 << 20},
                }),
            }],
        };
        assert_eq!(
            table(std::slice::from_ref(&report)),
            "/mnt/deploy\n  bytenite/big: uploading  3.00 MiB of 12.00 MiB (25%)\n"
        );
        let with_rate = table_with_rates(std::slice::from_ref(&report), |_, _| Some(1048576.0));
        assert!(with_rate.ends_with("(25%), 1.00 MiB/s\n"), "{with_rate}");
        assert!(!with_rate.contains('\x1b'));
    }

    #[test]
    fn a_flux_app_shows_its_time_left_and_a_qr_code_while_unpaid() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let deployed = AppReport {
            backend: BackendKind::Flux,
            name: "hello".into(),
            status: serde_json::json!({
                "state": "deployed",
                "expire_height": 2_288_000,
                "blocks_left": 20160,
                "expires_at": humantime::format_rfc3339_millis(at + std::time::Duration::from_secs(7 * 86_400 + 90)).to_string(),
            }),
        };
        assert_eq!(
            deployed.time_left(at).as_deref(),
            Some("expires in 7days 1m (height 2288000)")
        );
        assert!(deployed.payment_qr().is_none());

        let link = "zel:?action=pay&coin=zelcash&address=t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX&amount=0.63&message=ab";
        let mut unpaid = deployed.clone();
        unpaid.status = serde_json::json!({
            "state": "awaiting_payment",
            "payment": {"stage": "unpaid", "link": link},
        });
        let report = MountReport {
            mountpoint: "/mnt/deploy".into(),
            apps: vec![unpaid.clone()],
        };
        let text = table(&[report]);
        assert!(
            text.contains(&format!("pay from a phone: scan, or open {link}")),
            "{text}"
        );
        assert!(text.contains('▀') || text.contains('▄'), "{text}");
        assert!(text.lines().count() > 20, "{text}");
        // Paid: no code to scan.
        unpaid.status["payment"]["stage"] = "paid".into();
        assert!(unpaid.payment_qr().is_none());
    }
}

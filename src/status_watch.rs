//! `pushfs status --watch`: the status table, redrawn until Ctrl-C. On a
//! terminal an app that packages or uploads gets a progress bar (phase,
//! bytes, total, rate); anywhere else the table is printed again as plain
//! text, with no escape codes, so a log or a pipe stays readable.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, ProgressPhase};
use crate::status_report::{table_with_rates, AppReport, MountReport};

/// A bar follows `status.json`'s progress, itself updated at most this often.
const LIVE_EVERY: Duration = Duration::from_millis(250);
/// Plain text is a new copy of the table each time: not too many of them.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// Redraws what `read` returns until the process is stopped.
pub fn watch(read: impl Fn() -> Result<Vec<MountReport>, String>) -> io::Result<()> {
    // indicatif draws nothing on a dumb terminal: that one gets text too.
    if io::stdout().is_terminal() && !ProgressDrawTarget::stdout().is_hidden() {
        live(read)
    } else {
        plain(read)
    }
}

fn plain(read: impl Fn() -> Result<Vec<MountReport>, String>) -> io::Result<()> {
    let mut rates = Rates::default();
    loop {
        let text = match read() {
            Ok(reports) => {
                rates.sample(&reports, Instant::now());
                table_with_rates(&reports, |mount, app| rates.of(key(mount, app)))
            }
            Err(message) => format!("{message}\n"),
        };
        let mut out = io::stdout().lock();
        write!(out, "{}\n{text}\n", clock())?;
        out.flush()?;
        drop(out);
        std::thread::sleep(PLAIN_EVERY);
    }
}

fn live(read: impl Fn() -> Result<Vec<MountReport>, String>) -> io::Result<()> {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let header = multi.add(ProgressBar::new(0).with_style(text_style()));
    let mut rows: Vec<Row> = Vec::new();
    loop {
        let lines = match read() {
            Ok(reports) => {
                header.set_message(format!("{}  (Ctrl-C to stop)", clock()));
                lines(&reports)
            }
            Err(message) => {
                header.set_message(format!("{}  {message}", clock()));
                Vec::new()
            }
        };
        if rows.len() != lines.len() || rows.iter().zip(&lines).any(|(r, l)| r.key != l.key) {
            // Apps came or went: draw the rows again in the new order.
            for row in rows.drain(..) {
                multi.remove(&row.bar);
            }
            rows = lines
                .iter()
                .map(|line| Row {
                    key: line.key.clone(),
                    bar: multi.add(ProgressBar::new(0).with_style(text_style())),
                    phase: None,
                })
                .collect();
        }
        for (row, line) in rows.iter_mut().zip(lines) {
            row.show(line);
        }
        std::thread::sleep(LIVE_EVERY);
    }
}

/// One line of the table: a mount, or an app with its progress if any.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    key: String,
    text: String,
    progress: Option<Progress>,
}

fn lines(reports: &[MountReport]) -> Vec<Line> {
    let mut out = Vec::new();
    for report in reports {
        out.push(Line {
            key: report.mountpoint.display().to_string(),
            text: report.mountpoint.display().to_string(),
            progress: None,
        });
        for app in &report.apps {
            let (mount, label) = key(report, app);
            out.push(Line {
                key: format!("{}\0{label}", mount.display()),
                text: format!("  {label}: {}", app.summary()),
                progress: app.progress(),
            });
        }
    }
    out
}

/// A line on the terminal; a bar while its app's deploy counts bytes.
struct Row {
    key: String,
    bar: ProgressBar,
    /// The phase the bar measures, `None` while it is plain text.
    phase: Option<ProgressPhase>,
}

impl Row {
    fn show(&mut self, line: Line) {
        let phase = line.progress.map(|p| p.phase);
        if phase != self.phase {
            // A new phase measures something else: its rate starts over.
            self.bar.reset();
            self.bar.set_style(match phase {
                Some(_) => bar_style(),
                None => text_style(),
            });
            self.phase = phase;
        }
        if let Some(progress) = line.progress {
            self.bar.set_length(progress.bytes_total);
            self.bar.set_position(progress.bytes_done);
        }
        self.bar.set_message(line.text);
    }
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").expect("a valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg}  [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

fn key(mount: &MountReport, app: &AppReport) -> (PathBuf, String) {
    (mount.mountpoint.clone(), app.label())
}

/// Each app's transfer rate, from the progress seen at two readings.
#[derive(Debug, Default)]
struct Rates {
    seen: HashMap<(PathBuf, String), Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    phase: ProgressPhase,
    done: u64,
    at: Instant,
    rate: Option<f64>,
}

impl Rates {
    /// Records what `reports` show at `now`; forgets apps that stopped counting.
    fn sample(&mut self, reports: &[MountReport], now: Instant) {
        let mut seen = HashMap::new();
        for report in reports {
            for app in &report.apps {
                let Some(progress) = app.progress() else {
                    continue;
                };
                let k = key(report, app);
                let rate = self.seen.get(&k).and_then(|before| {
                    let secs = now.checked_duration_since(before.at)?.as_secs_f64();
                    let counting_on = before.phase == progress.phase
                        && progress.bytes_done >= before.done
                        && secs > 0.0;
                    counting_on.then(|| (progress.bytes_done - before.done) as f64 / secs)
                });
                seen.insert(
                    k,
                    Sample {
                        phase: progress.phase,
                        done: progress.bytes_done,
                        at: now,
                        rate,
                    },
                );
            }
        }
        self.seen = seen;
    }

    fn of(&self, key: (PathBuf, String)) -> Option<f64> {
        self.seen.get(&key).and_then(|s| s.rate)
    }
}

fn clock() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::BackendKind;

    fn reports(state: &str, progress: serde_json::Value) -> Vec<MountReport> {
        vec![MountReport {
            mountpoint: "/mnt/deploy".into(),
            apps: vec![AppReport {
                backend: BackendKind::Cf,
                name: "site".into(),
                status: serde_json::json!({"state": state, "progress": progress}),
            }],
        }]
    }

    fn uploading(done: u64) -> Vec<MountReport> {
        reports(
            "uploading",
            serde_json::json!({"phase": "uploading", "bytes_done": done, "bytes_total": 1 << 30}),
        )
    }

    fn site() -> (PathBuf, String) {
        ("/mnt/deploy".into(), "cf/site".into())
    }

    #[test]
    fn the_rate_is_the_bytes_between_two_readings_over_their_time() {
        let start = Instant::now();
        let mut rates = Rates::default();
        rates.sample(&uploading(1 << 20), start);
        assert_eq!(rates.of(site()), None, "one reading has no rate");
        rates.sample(&uploading(5 << 20), start + Duration::from_secs(2));
        assert_eq!(rates.of(site()), Some((2 << 20) as f64));
    }

    #[test]
    fn a_new_phase_or_a_restart_has_no_rate_yet_and_an_idle_app_none() {
        let start = Instant::now();
        let mut rates = Rates::default();
        rates.sample(&uploading(5 << 20), start);
        rates.sample(&uploading(1 << 20), start + Duration::from_secs(1));
        assert_eq!(rates.of(site()), None, "a resend starts from zero");
        let packaging = reports(
            "packaging",
            serde_json::json!({"phase": "packaging", "bytes_done": 2 << 20, "bytes_total": 1 << 30}),
        );
        rates.sample(&packaging, start + Duration::from_secs(2));
        assert_eq!(rates.of(site()), None);
        rates.sample(
            &reports("deployed", serde_json::Value::Null),
            start + Duration::from_secs(3),
        );
        assert!(rates.seen.is_empty());
    }

    #[test]
    fn lines_carry_the_progress_of_the_apps_that_count() {
        let shown = lines(&uploading(7));
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].text, "/mnt/deploy");
        assert_eq!(shown[0].progress, None);
        assert_eq!(shown[1].text, "  cf/site: uploading");
        assert_eq!(
            shown[1].progress,
            Some(Progress {
                phase: ProgressPhase::Uploading,
                bytes_done: 7,
                bytes_total: 1 << 30
            })
        );
        assert_eq!(
            lines(&reports("deployed", serde_json::Value::Null))[1].progress,
            None
        );
    }
}

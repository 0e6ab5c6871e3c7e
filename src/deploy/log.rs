//! An app's event log: one line per event (trigger, package, upload, poll,
//! result), kept in memory for `.pushfs/log` and appended to disk.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use super::status::now_rfc3339;
use crate::private_files::{create_private_dir_all, private_file_options};

/// Lines kept in memory and shown in `.pushfs/log`.
const KEPT_LINES: usize = 1000;
const FILE_NAME: &str = "log";
/// The log on disk is rotated to `log.1` past this size, so months of
/// unattended running keep at most twice this much.
const ROTATE_AT: u64 = 1 << 20;

#[derive(Debug, Default)]
pub struct AppLog {
    lines: VecDeque<String>,
    file: Option<File>,
    /// The newest lines that could not be appended yet (a full disk);
    /// tried again with the next line.
    unwritten: usize,
    /// Where the log lives, and how big it is on disk.
    path: std::path::PathBuf,
    size: u64,
}

impl AppLog {
    /// Opens the app's log in `dir`, keeping the tail of what was there.
    pub fn open(dir: &Path) -> AppLog {
        let path = dir.join(FILE_NAME);
        let mut lines = VecDeque::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if lines.len() == KEPT_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        }
        let file = create_private_dir_all(dir)
            .and_then(|_| private_file_options().create(true).append(true).open(&path))
            .map_err(|err| tracing::error!(%err, path = %path.display(), "cannot open the app log"))
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        AppLog {
            lines,
            file,
            unwritten: 0,
            path,
            size,
        }
    }

    /// Appends `event: message`, stamped with the time.
    pub fn push(&mut self, event: &str, message: &str) {
        let line = format!("{} {event}: {message}", now_rfc3339());
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.unwritten = (self.unwritten + 1).min(self.lines.len());
        self.flush();
    }

    /// Appends the lines not on disk yet; they stay pending on failure.
    pub fn flush(&mut self) {
        let Some(file) = &mut self.file else {
            self.unwritten = 0;
            return;
        };
        if self.unwritten == 0 {
            return;
        }
        let mut text = String::new();
        for line in self.lines.range(self.lines.len() - self.unwritten..) {
            text.push_str(line);
            text.push('\n');
        }
        match file.write_all(text.as_bytes()) {
            Ok(()) => {
                self.unwritten = 0;
                self.size += text.len() as u64;
                if self.size > ROTATE_AT {
                    self.rotate();
                }
            }
            Err(err) if self.unwritten == 1 => {
                tracing::error!(%err, "cannot append to the app log; retrying with the next line");
            }
            Err(_) => {}
        }
    }

    /// Moves the log to `log.1` (replacing an older one) and starts anew.
    fn rotate(&mut self) {
        let old = self.path.with_extension("1");
        let reopened = std::fs::rename(&self.path, &old).and_then(|_| {
            private_file_options()
                .create(true)
                .append(true)
                .open(&self.path)
        });
        match reopened {
            Ok(file) => {
                self.file = Some(file);
                self.size = 0;
            }
            Err(err) => {
                tracing::warn!(%err, path = %self.path.display(), "cannot rotate the app log")
            }
        }
    }

    /// Whether some lines are only in memory.
    pub fn behind(&self) -> bool {
        self.unwritten > 0
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    /// Stops writing to disk (the app was removed with its directory).
    pub fn detach(&mut self) {
        self.file = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_cannot_be_written_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AppLog::open(dir.path());
        log.file = Some(
            std::fs::OpenOptions::new()
                .append(true)
                .open("/dev/full")
                .unwrap(),
        );
        log.push("trigger", "one");
        log.push("trigger", "two");
        assert!(log.behind());
        assert_eq!(log.lines().len(), 2, "shown in .pushfs/log meanwhile");
        log.file = Some(File::create(dir.path().join(FILE_NAME)).unwrap());
        log.flush();
        assert!(!log.behind());
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            text.contains("trigger: one\n") && text.contains("trigger: two\n"),
            "{text}"
        );
    }

    #[test]
    fn the_file_rotates_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AppLog::open(dir.path());
        let long = "x".repeat(1000);
        for _ in 0..1100 {
            log.push("upload", &long);
        }
        let current = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        let rotated = std::fs::metadata(dir.path().join("log.1")).unwrap().len();
        assert!(
            current < ROTATE_AT && rotated > ROTATE_AT,
            "{current} {rotated}"
        );
        assert_eq!(log.lines().len(), KEPT_LINES, ".pushfs/log shows the tail");
    }

    #[test]
    fn lines_survive_reopen_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AppLog::open(dir.path());
        for i in 0..KEPT_LINES + 5 {
            log.push("trigger", &format!("change {i}"));
        }
        assert_eq!(log.lines().len(), KEPT_LINES);
        assert!(log.lines()[0].ends_with("trigger: change 5"));
        drop(log);
        let reopened = AppLog::open(dir.path());
        assert_eq!(reopened.lines().len(), KEPT_LINES);
        assert!(reopened.lines().last().unwrap().ends_with("change 1004"));
    }
}

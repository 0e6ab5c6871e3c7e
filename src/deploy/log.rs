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

#[derive(Debug, Default)]
pub struct AppLog {
    lines: VecDeque<String>,
    file: Option<File>,
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
        AppLog { lines, file }
    }

    /// Appends `event: message`, stamped with the time.
    pub fn push(&mut self, event: &str, message: &str) {
        let line = format!("{} {event}: {message}", now_rfc3339());
        if let Some(file) = &mut self.file {
            if let Err(err) = writeln!(file, "{line}") {
                tracing::error!(%err, "cannot append to the app log");
                self.file = None;
            }
        }
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
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

//! A `Report` that records everything a backend says, for assertions.

#![allow(dead_code)]

use parking_lot::Mutex;
use pushfs::backend::{DeployState, JobInfo, Report};

#[derive(Default)]
pub struct Recorder {
    pub states: Mutex<Vec<DeployState>>,
    pub logs: Mutex<Vec<String>>,
    pub ids: Mutex<Vec<String>>,
    pub jobs: Mutex<Vec<JobInfo>>,
    pub responses: Mutex<Vec<serde_json::Value>>,
}

impl Recorder {
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().clone()
    }

    pub fn states(&self) -> Vec<DeployState> {
        self.states.lock().clone()
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().clone()
    }

    pub fn last_response(&self) -> Option<serde_json::Value> {
        self.responses.lock().last().cloned()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs.lock().iter().any(|l| l.contains(needle))
    }

    /// Every text the recorder holds, for leak checks.
    pub fn all_text(&self) -> String {
        let mut text = self.logs().join("\n");
        text.push('\n');
        text.push_str(&self.ids().join("\n"));
        for response in self.responses.lock().iter() {
            text.push('\n');
            text.push_str(&response.to_string());
        }
        for job in self.jobs.lock().iter() {
            text.push_str(&format!("\n{} {}", job.guid, job.state));
        }
        text
    }
}

impl Report for Recorder {
    fn state(&self, state: DeployState) {
        self.states.lock().push(state);
    }

    fn log(&self, line: &str) {
        self.logs.lock().push(line.to_string());
    }

    fn id(&self, id: &str) {
        self.ids.lock().push(id.to_string());
    }

    fn job(&self, job: &JobInfo) {
        self.jobs.lock().push(job.clone());
    }

    fn response(&self, body: &serde_json::Value) {
        self.responses.lock().push(body.clone());
    }
}

//! A `Report` that records everything a backend tells it, for assertions.

use std::sync::Mutex;

use pushfs::backend::{DeployState, JobInfo, Report};
use serde_json::Value;

#[derive(Default)]
pub struct Recorder {
    pub states: Mutex<Vec<DeployState>>,
    pub logs: Mutex<Vec<String>>,
    pub ids: Mutex<Vec<String>>,
    pub jobs: Mutex<Vec<JobInfo>>,
    pub responses: Mutex<Vec<Value>>,
}

impl Recorder {
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn states(&self) -> Vec<DeployState> {
        self.states.lock().unwrap().clone()
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }

    /// Everything recorded, as one text, to search for leaks.
    pub fn all_text(&self) -> String {
        let mut out = self.logs().join("\n");
        for r in self.responses.lock().unwrap().iter() {
            out.push('\n');
            out.push_str(&r.to_string());
        }
        out.push('\n');
        out.push_str(&self.ids().join("\n"));
        out
    }
}

impl Report for Recorder {
    fn state(&self, state: DeployState) {
        self.states.lock().unwrap().push(state);
    }

    fn log(&self, line: &str) {
        self.logs.lock().unwrap().push(line.to_string());
    }

    fn id(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    fn job(&self, job: &JobInfo) {
        self.jobs.lock().unwrap().push(job.clone());
    }

    fn response(&self, body: &Value) {
        self.responses.lock().unwrap().push(body.clone());
    }
}

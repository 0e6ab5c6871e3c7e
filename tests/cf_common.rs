//! A [`Report`] that records everything a backend reports, for the cf tests.
#![allow(dead_code)]

use parking_lot::Mutex;
use pushfs::backend::{DeployState, JobInfo, Report};

#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub states: Vec<DeployState>,
    pub log: Vec<String>,
    pub ids: Vec<String>,
    pub jobs: Vec<JobInfo>,
    pub responses: Vec<serde_json::Value>,
}

#[derive(Default)]
pub struct Recorder {
    inner: Mutex<Recorded>,
}

impl Recorder {
    pub fn get(&self) -> Recorded {
        self.inner.lock().clone()
    }

    /// Everything reported, as one string, to search for secrets.
    pub fn all_text(&self) -> String {
        let r = self.get();
        format!(
            "{:?}\n{}\n{:?}\n{:?}\n{}",
            r.states,
            r.log.join("\n"),
            r.ids,
            r.jobs,
            r.responses
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

impl Report for Recorder {
    fn state(&self, state: DeployState) {
        self.inner.lock().states.push(state);
    }
    fn log(&self, line: &str) {
        self.inner.lock().log.push(line.to_string());
    }
    fn id(&self, id: &str) {
        self.inner.lock().ids.push(id.to_string());
    }
    fn job(&self, job: &JobInfo) {
        self.inner.lock().jobs.push(job.clone());
    }
    fn response(&self, body: &serde_json::Value) {
        self.inner.lock().responses.push(body.clone());
    }
}

//! A [`Report`] that records everything a backend reports, for the
//! client-against-emulator tests.

use parking_lot::Mutex;
use pushfs::backend::{DeployState, JobInfo, PaymentDue, Report};
use serde_json::Value;

#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub states: Vec<DeployState>,
    pub log: Vec<String>,
    pub ids: Vec<String>,
    pub jobs: Vec<JobInfo>,
    pub responses: Vec<Value>,
    pub payments: Vec<PaymentDue>,
}

#[derive(Default)]
pub struct Recorder {
    inner: Mutex<Recorded>,
}

impl Recorder {
    pub fn get(&self) -> Recorded {
        self.inner.lock().clone()
    }

    pub fn logs(&self) -> Vec<String> {
        self.get().log
    }

    pub fn states(&self) -> Vec<DeployState> {
        self.get().states
    }

    pub fn ids(&self) -> Vec<String> {
        self.get().ids
    }

    pub fn responses(&self) -> Vec<Value> {
        self.get().responses
    }

    pub fn payments(&self) -> Vec<PaymentDue> {
        self.get().payments
    }

    pub fn last_response(&self) -> Option<Value> {
        self.get().responses.last().cloned()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.get().log.iter().any(|line| line.contains(needle))
    }

    /// Everything reported, as one string, to search for secrets.
    pub fn all_text(&self) -> String {
        let r = self.get();
        let responses: Vec<String> = r.responses.iter().map(Value::to_string).collect();
        format!(
            "{:?}\n{}\n{:?}\n{:?}\n{}",
            r.states,
            r.log.join("\n"),
            r.ids,
            r.jobs,
            responses.join("\n")
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

    fn response(&self, body: &Value) {
        self.inner.lock().responses.push(body.clone());
    }

    fn payment(&self, due: &PaymentDue) {
        self.inner.lock().payments.push(due.clone());
    }
}

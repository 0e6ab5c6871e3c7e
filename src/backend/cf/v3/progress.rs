//! `.pushfs/job` for a v3 push: the package, build and droplet with their
//! guids and states, the latest one as the job being waited on.

use crate::backend::{JobInfo, JobStep, Report};

#[derive(Debug, Default)]
pub struct Progress {
    steps: Vec<JobStep>,
    /// The app the next steps belong to, when a folder deploys several:
    /// their kinds read `shop package`, `shop build`.
    app: Option<String>,
}

impl Progress {
    /// Names the app of the steps that follow (`None`: a single app).
    pub fn for_app(&mut self, app: Option<&str>) {
        self.app = app.map(str::to_string);
    }

    /// Records `kind`'s guid and state and reports the list.
    pub fn set(&mut self, report: &dyn Report, kind: &str, guid: &str, state: &str) {
        let kind = match &self.app {
            Some(app) => format!("{app} {kind}"),
            None => kind.to_string(),
        };
        match self.steps.iter_mut().find(|s| s.kind == kind) {
            Some(step) => {
                step.guid = guid.to_string();
                step.state = state.to_string();
            }
            None => self.steps.push(JobStep {
                kind,
                guid: guid.to_string(),
                state: state.to_string(),
            }),
        }
        report.job(&self.job());
    }

    /// The job as it stands: the latest step, and all of them.
    pub fn job(&self) -> JobInfo {
        let last = self.steps.last();
        JobInfo {
            guid: last.map(|s| s.guid.clone()).unwrap_or_default(),
            state: last.map(|s| s.state.clone()).unwrap_or_default(),
            steps: self.steps.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_render_one_line_each_and_update_in_place() {
        struct Quiet;
        impl Report for Quiet {
            fn state(&self, _: crate::backend::DeployState) {}
            fn log(&self, _: &str) {}
            fn id(&self, _: &str) {}
            fn job(&self, _: &JobInfo) {}
            fn response(&self, _: &serde_json::Value) {}
        }
        let mut p = Progress::default();
        p.set(&Quiet, "package", "p1", "PROCESSING_UPLOAD");
        p.set(&Quiet, "package", "p1", "READY");
        p.set(&Quiet, "build", "b1", "STAGING");
        let job = p.job();
        assert_eq!((job.guid.as_str(), job.state.as_str()), ("b1", "STAGING"));
        assert_eq!(job.render(), "package p1 READY\nbuild b1 STAGING\n");
    }
}

//! The virtual files of `.pushfs/`: their names, modes and contents.

use crate::deploy::status::AppStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFile {
    State,
    StatusJson,
    Hash,
    Revision,
    Job,
    Id,
    Error,
    ResponseJson,
    Log,
    Wait,
    Ctl,
}

impl StatusFile {
    /// In the order `ls` shows them.
    pub const ALL: [StatusFile; 11] = [
        StatusFile::Ctl,
        StatusFile::Error,
        StatusFile::Hash,
        StatusFile::Id,
        StatusFile::Job,
        StatusFile::Log,
        StatusFile::ResponseJson,
        StatusFile::Revision,
        StatusFile::State,
        StatusFile::StatusJson,
        StatusFile::Wait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatusFile::State => "state",
            StatusFile::StatusJson => "status.json",
            StatusFile::Hash => "hash",
            StatusFile::Revision => "revision",
            StatusFile::Job => "job",
            StatusFile::Id => "id",
            StatusFile::Error => "error",
            StatusFile::ResponseJson => "response.json",
            StatusFile::Log => "log",
            StatusFile::Wait => "wait",
            StatusFile::Ctl => "ctl",
        }
    }

    pub fn from_name(name: &str) -> Option<StatusFile> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn perm(self) -> u16 {
        match self {
            StatusFile::Ctl => 0o644,
            _ => 0o444,
        }
    }

    /// The file's bytes now. `wait` reads like `state` until it is read for real.
    pub fn render(self, status: &AppStatus, log: &[String]) -> Vec<u8> {
        let line = |value: Option<&str>| match value {
            Some(v) if !v.is_empty() => format!("{v}\n").into_bytes(),
            _ => Vec::new(),
        };
        match self {
            StatusFile::State | StatusFile::Wait => line(Some(status.state.as_str())),
            StatusFile::StatusJson => pretty(&serde_json::to_value(status).unwrap_or_default()),
            StatusFile::Hash => line(status.hash.as_deref()),
            StatusFile::Revision => line(status.revision.as_deref()),
            StatusFile::Id => line(status.id.as_deref()),
            StatusFile::Job => match &status.job {
                Some(job) => job.render().into_bytes(),
                None => Vec::new(),
            },
            StatusFile::Error => line(status.error.as_deref()),
            StatusFile::ResponseJson => match &status.response {
                Some(body) => pretty(body),
                None => Vec::new(),
            },
            StatusFile::Log => {
                let mut out = String::new();
                for entry in log {
                    out.push_str(entry);
                    out.push('\n');
                }
                out.into_bytes()
            }
            StatusFile::Ctl => Vec::new(),
        }
    }
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendKind, DeployState, JobInfo};

    #[test]
    fn files_render_one_line_or_nothing() {
        let mut s = AppStatus::new("app", BackendKind::Cf);
        assert_eq!(StatusFile::State.render(&s, &[]), b"idle\n");
        assert!(StatusFile::Hash.render(&s, &[]).is_empty());
        s.state = DeployState::Deployed;
        s.hash = Some("abc".into());
        s.job = Some(JobInfo::new("j1", "finished"));
        assert_eq!(StatusFile::State.render(&s, &[]), b"deployed\n");
        assert_eq!(StatusFile::Hash.render(&s, &[]), b"abc\n");
        assert_eq!(StatusFile::Job.render(&s, &[]), b"j1 finished\n");
        let json: serde_json::Value =
            serde_json::from_slice(&StatusFile::StatusJson.render(&s, &[])).unwrap();
        assert_eq!(json["state"], "deployed");
        assert_eq!(json["backend"], "cf");
        let log = vec!["a".to_string(), "b".to_string()];
        assert_eq!(StatusFile::Log.render(&s, &log), b"a\nb\n");
    }

    #[test]
    fn names_round_trip() {
        for f in StatusFile::ALL {
            assert_eq!(StatusFile::from_name(f.name()), Some(f));
        }
        assert_eq!(StatusFile::from_name("nope"), None);
    }
}

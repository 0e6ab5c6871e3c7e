//! What the tree tells the deploy layer, and asks of it. The deploy layer
//! implements [`DeployHooks`]; no call may lock the tree back.

use crate::kind::{BackendKind, IgnoreProfile};

use super::history::RolledBack;
use super::status_files::StatusFile;
use super::AppId;

/// A command written to `.pushfs/ctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    /// Deploy now, even if nothing changed.
    Deploy,
    /// Stop the deploy in flight.
    Cancel,
    /// Stop automatic deploys until `release` (or `deploy`).
    Hold,
    /// Resume automatic deploys; a changed tree deploys.
    Release,
    /// Put the folder back to a kept tree (by digest prefix) and deploy it.
    Rollback(String),
    /// Extend a deployed app's paid time (Flux): by the spec's own length,
    /// or by this many blocks, counted from now.
    Renew(Option<u64>),
}

impl CtlCommand {
    pub fn parse(text: &[u8]) -> Option<CtlCommand> {
        match std::str::from_utf8(text).ok()?.trim() {
            "deploy" | "" => Some(CtlCommand::Deploy),
            "cancel" => Some(CtlCommand::Cancel),
            "hold" => Some(CtlCommand::Hold),
            "release" => Some(CtlCommand::Release),
            "renew" => Some(CtlCommand::Renew(None)),
            command => {
                let (verb, arg) = command.split_once(char::is_whitespace)?;
                match verb {
                    "rollback" => Some(CtlCommand::Rollback(arg.trim().to_string())),
                    "renew" => arg.trim().parse().ok().map(|b| CtlCommand::Renew(Some(b))),
                    _ => None,
                }
            }
        }
    }
}

/// Whether an app can start a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppReadiness {
    pub has_spec: bool,
    /// Files open for writing, as paths from the app root: the deploy
    /// waits for those its package would carry.
    pub being_written: Vec<String>,
    /// A spec name that is there but is no regular file: the name, and
    /// what it is instead ("a directory", "a symlink").
    pub spec_not_a_file: Option<(&'static str, &'static str)>,
}

pub trait DeployHooks: Send + Sync {
    /// A new app directory (or one restored from disk at start-up).
    fn app_created(&self, app: &AppId, backend: BackendKind, name: &str);
    /// Anything inside the app changed: restart its settle timer.
    fn app_changed(&self, app: &AppId);
    fn app_renamed(&self, app: &AppId, name: &str);
    /// A line for the app's log (what recovery at start-up did).
    fn app_note(&self, app: &AppId, message: &str);
    /// Stop automatic deploys of the app, saying why, until the user asks.
    fn app_held(&self, app: &AppId, reason: &str);
    /// The app directory was removed: stop its deploys, forget its state.
    fn app_removed(&self, app: &AppId);
    fn command(&self, app: &AppId, command: CtlCommand);
    /// A ctl command could not be carried out: say why in the app's log.
    fn command_refused(&self, app: &AppId, message: &str);
    /// The folder was put back to a kept tree: deploy it.
    fn app_rolled_back(&self, app: &AppId, rollback: &RolledBack);
    /// The files a backend never packages (a rollback digests the tree it
    /// replaces as a deploy would).
    fn ignore_profile(&self, backend: BackendKind) -> IgnoreProfile;
    /// The current bytes of one status file.
    fn status_file(&self, app: &AppId, file: StatusFile) -> Vec<u8>;
    /// Calls `done` with the final state once the app has no deploy
    /// pending or running (at once if it has none).
    fn wait(&self, app: &AppId, done: Box<dyn FnOnce(Vec<u8>) + Send>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_commands_parse_with_newlines() {
        assert_eq!(CtlCommand::parse(b"deploy\n"), Some(CtlCommand::Deploy));
        assert_eq!(CtlCommand::parse(b""), Some(CtlCommand::Deploy));
        assert_eq!(CtlCommand::parse(b" cancel \n"), Some(CtlCommand::Cancel));
        assert_eq!(CtlCommand::parse(b"hold\n"), Some(CtlCommand::Hold));
        assert_eq!(CtlCommand::parse(b"release"), Some(CtlCommand::Release));
        assert_eq!(CtlCommand::parse(b"reboot"), None);
        assert_eq!(
            CtlCommand::parse(b"rollback  3f2a9c\n"),
            Some(CtlCommand::Rollback("3f2a9c".into()))
        );
        assert_eq!(CtlCommand::parse(b"rollback"), None);
        assert_eq!(CtlCommand::parse(b"renew\n"), Some(CtlCommand::Renew(None)));
        assert_eq!(
            CtlCommand::parse(b"renew 100000\n"),
            Some(CtlCommand::Renew(Some(100_000)))
        );
        assert_eq!(CtlCommand::parse(b"renew soon"), None);
        assert_eq!(CtlCommand::parse(b"renew -5"), None);
        assert_eq!(CtlCommand::parse(b"rollbacks 3f2a"), None);
    }
}

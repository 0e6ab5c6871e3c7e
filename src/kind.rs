//! The vocabulary every floor shares: which backends there are, and which
//! files each one never packages. Depends on nothing of pushfs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The backends, one per top-level directory of the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Bytenite,
    Flux,
    Cf,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Bytenite, BackendKind::Flux, BackendKind::Cf];

    /// The directory name under the mount point.
    pub fn dir_name(self) -> &'static str {
        match self {
            BackendKind::Bytenite => "bytenite",
            BackendKind::Flux => "flux",
            BackendKind::Cf => "cf",
        }
    }

    pub fn from_dir_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.dir_name() == name)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// Which files an app may carry that are never packaged, beyond pushfs's own
/// rules (`.pushfs/`, editor droppings, `.pushfsignore`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IgnoreProfile {
    /// Ignore files read from the app root, gitignore syntax (e.g. `.cfignore`).
    pub ignore_files: &'static [&'static str],
    /// Patterns always ignored for this backend, gitignore syntax.
    pub default_patterns: &'static [&'static str],
}

//! Which files of an app are never packaged.
//!
//! pushfs's own rules (editor droppings, `.pushfsignore`) apply to every
//! backend; a backend adds its own defaults and ignore files (`.cfignore`).
//! Patterns use gitignore syntax, matched by the `ignore` crate.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::kind::IgnoreProfile;

/// The name of the directory of status files; never packaged, never listed.
pub const STATUS_DIR: &str = ".pushfs";

/// The app's own ignore file, read from the app root.
pub const PUSHFS_IGNORE_FILE: &str = ".pushfsignore";

/// Editor droppings, ignored for every backend. `#` is escaped because a
/// gitignore line starting with it is a comment.
pub const EDITOR_DROPPINGS: &[&str] =
    &["*.swp", "*.swo", "*~", "4913", ".#*", "\\#*#", ".DS_Store"];

pub struct IgnoreRules {
    matcher: Gitignore,
}

impl IgnoreRules {
    /// Builds the rules for one app. `read_root_file` returns the content of
    /// a file at the app root, if present (the ignore files live there).
    pub fn new(profile: &IgnoreProfile, read_root_file: impl Fn(&str) -> Option<Vec<u8>>) -> Self {
        let mut builder = GitignoreBuilder::new("/");
        let mut add = |line: &str| {
            // A malformed line is skipped, as git does, rather than failing the deploy.
            let _ = builder.add_line(None, line);
        };
        add(&format!("/{STATUS_DIR}/"));
        for pattern in EDITOR_DROPPINGS.iter().chain(profile.default_patterns) {
            add(pattern);
        }
        let files = std::iter::once(PUSHFS_IGNORE_FILE).chain(profile.ignore_files.iter().copied());
        for name in files {
            if let Some(bytes) = read_root_file(name) {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    add(line);
                }
            }
        }
        IgnoreRules {
            matcher: builder.build().unwrap_or_else(|_| Gitignore::empty()),
        }
    }

    /// `path` is relative to the app root, with `/` separators.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        self.matcher
            .matched_path_or_any_parents(format!("/{path}"), is_dir)
            .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(extra: &'static [&'static str], pushfsignore: Option<&'static str>) -> IgnoreRules {
        let profile = IgnoreProfile {
            ignore_files: &[],
            default_patterns: extra,
        };
        IgnoreRules::new(&profile, move |name| {
            (name == PUSHFS_IGNORE_FILE)
                .then(|| pushfsignore.map(|s| s.as_bytes().to_vec()))
                .flatten()
        })
    }

    #[test]
    fn editor_droppings_and_status_dir_are_ignored() {
        let r = rules(&[], None);
        for path in [
            ".main.py.swp",
            "a/b.swo",
            "x~",
            "4913",
            ".#lock",
            "#auto#",
            ".DS_Store",
        ] {
            assert!(r.is_ignored(path, false), "{path}");
        }
        assert!(r.is_ignored(".pushfs", true));
        assert!(r.is_ignored(".pushfs/state", false));
        assert!(!r.is_ignored("main.py", false));
        assert!(
            !r.is_ignored("src/.pushfs", true),
            "only the root status dir is special"
        );
    }

    #[test]
    fn pushfsignore_and_backend_defaults_apply_to_subtrees() {
        let r = rules(&["/.git/"], Some("build/\n*.log\n!keep.log\n"));
        assert!(r.is_ignored("build/out.o", false));
        assert!(r.is_ignored("deep/x.log", false));
        assert!(!r.is_ignored("keep.log", false));
        assert!(r.is_ignored(".git/HEAD", false));
        assert!(!r.is_ignored("main.rs", false));
    }
}

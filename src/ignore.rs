//! Which files of an app are never packaged.
//!
//! pushfs's own rules (editor droppings, `.pushfsignore`) apply to every
//! backend; a backend adds its own defaults and ignore files (`.cfignore`).
//! Patterns use gitignore syntax, matched by the `ignore` crate.

use std::path::PathBuf;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::kind::IgnoreProfile;

/// The name of the directory of status files; never packaged, never listed.
pub const STATUS_DIR: &str = ".pushfs";

/// The app's own ignore file, read from the app root.
pub const PUSHFS_IGNORE_FILE: &str = ".pushfsignore";

/// Editor droppings, ignored for every backend. `#` is escaped because a
/// gitignore line starting with it is a comment.
pub const EDITOR_DROPPINGS: &[&str] =
    &["*.swp", "*.swo", "*~", "4913", ".#*", "\\#*#", ".DS_Store"];

/// Version-control folders and package-manager stores, ignored for every
/// backend: a `git clone` into an app would otherwise ship its whole
/// history. `!.git` in `.pushfsignore` brings one back.
pub const TOOL_FOLDERS: &[&str] = &[".git/", ".hg/", ".svn/", ".pnpm-store/"];

pub struct IgnoreRules {
    matcher: Gitignore,
    /// Each line read from an ignore file, as (file, line number, text), to
    /// say which line excluded a file.
    lines: Vec<(String, usize, String)>,
}

impl IgnoreRules {
    /// Builds the rules for one app. `read_root_file` returns the content of
    /// a file at the app root, if present (the ignore files live there).
    pub fn new(profile: &IgnoreProfile, read_root_file: impl Fn(&str) -> Option<Vec<u8>>) -> Self {
        let mut builder = GitignoreBuilder::new("/");
        let mut add = |from: Option<&str>, line: &str| {
            // A malformed line is skipped, as git does, rather than failing the deploy.
            let _ = builder.add_line(from.map(PathBuf::from), line);
        };
        add(None, &format!("/{STATUS_DIR}/"));
        for pattern in EDITOR_DROPPINGS.iter().chain(TOOL_FOLDERS) {
            add(None, pattern);
        }
        let mut lines = Vec::new();
        let mut read = |name: &str, add: &mut dyn FnMut(Option<&str>, &str)| {
            if let Some(bytes) = read_root_file(name) {
                for (number, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
                    add(Some(name), line);
                    lines.push((name.to_string(), number + 1, line.to_string()));
                }
            }
        };
        read(PUSHFS_IGNORE_FILE, &mut add);
        // The backend's own list comes after `.pushfsignore`, as its CLI
        // would apply it: `!.git` there does not bring `.git` to Cloud
        // Foundry, whose cf CLI never uploads it.
        for pattern in profile.default_patterns {
            add(None, pattern);
        }
        for name in profile.ignore_files.iter().copied() {
            read(name, &mut add);
        }
        IgnoreRules {
            matcher: builder.build().unwrap_or_else(|_| Gitignore::empty()),
            lines,
        }
    }

    /// Which rule excludes `path`, in words: "`.cfignore` line 3 (`*.json`)",
    /// or the built-in pattern. `None` if it is packaged.
    pub fn why_ignored(&self, path: &str, is_dir: bool) -> Option<String> {
        let Match::Ignore(glob) = self
            .matcher
            .matched_path_or_any_parents(format!("/{path}"), is_dir)
        else {
            return None;
        };
        let pattern = glob.original();
        let Some(from) = glob.from().and_then(|f| f.to_str()) else {
            return Some(format!("pushfs's built-in ignore pattern `{pattern}`"));
        };
        let line = self
            .lines
            .iter()
            .find(|(file, _, text)| file == from && text.trim_end() == pattern.trim_end())
            .map_or(String::new(), |(_, number, _)| format!(" line {number}"));
        Some(format!("`{from}`{line} (`{pattern}`)"))
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
    fn the_excluding_line_is_named() {
        let rules = rules(&["/vendor/"], Some("# comment\n*.json\n"));
        assert_eq!(
            rules.why_ignored("spec.json", false).as_deref(),
            Some("`.pushfsignore` line 2 (`*.json`)")
        );
        assert_eq!(
            rules.why_ignored("a.swp", false).as_deref(),
            Some("pushfs's built-in ignore pattern `*.swp`")
        );
        assert_eq!(rules.why_ignored("main.py", false), None);
    }

    #[test]
    fn version_control_folders_are_ignored_unless_brought_back() {
        let r = rules(&[], None);
        for path in [
            ".git/config",
            ".hg/store",
            ".svn/entries",
            ".pnpm-store/v3/x",
            "sub/.git/HEAD",
        ] {
            assert!(r.is_ignored(path, false), "{path}");
        }
        assert!(r.is_ignored(".git", true));
        assert!(!r.is_ignored(".gitignore", false), "only the folder");
        let back = rules(&[], Some("!.git\n"));
        assert!(!back.is_ignored(".git", true));
        assert!(!back.is_ignored(".git/config", false));
        assert!(back.is_ignored(".hg/store", false), "only what is named");
        let cf = rules(&[".git"], Some("!.git\n"));
        assert!(
            cf.is_ignored(".git/config", false),
            "a backend's own list stays on top of .pushfsignore"
        );
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

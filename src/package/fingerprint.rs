//! Cloud Foundry resource fingerprints: the JSON that tells the server which
//! files of an app it may already hold (`PUT /v2/resource_match`, and the
//! `resources` part of a bits upload).
//!
//! A fingerprint is built from the snapshot's [`BlobInfo`](crate::store::BlobInfo):
//! the SHA-1 was computed when the file was stored and blobs never change,
//! so nothing is hashed again here, except for a file stored sparse, whose
//! SHA-1 is computed now over its real content (holes as zeros from memory).

use serde::{Deserialize, Serialize};

use crate::snapshot::{FileContent, SnapshotEntry};

/// One regular file as the cf CLI describes it to the Cloud Controller.
/// Field order follows the cf CLI's wire format: fn, mode, sha1, size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Relative to the app root, `/`-separated, no leading `./`.
    #[serde(rename = "fn")]
    pub path: String,
    /// Permission bits as an octal string without a leading 0 (`"644"`).
    pub mode: String,
    /// Lowercase hex SHA-1 of the content.
    pub sha1: String,
    /// Content length in bytes.
    pub size: u64,
}

impl Fingerprint {
    pub fn of(entry: &SnapshotEntry, content: &FileContent) -> Fingerprint {
        Fingerprint {
            path: entry.path.clone(),
            mode: mode_string(entry.mode),
            sha1: real_sha1(content),
            size: content.blob.size,
        }
    }

    /// The numeric permission bits of [`Fingerprint::mode`].
    pub fn mode_bits(&self) -> Option<u32> {
        u32::from_str_radix(&self.mode, 8).ok()
    }
}

/// A SHA-1 that cannot be read gives an empty one, which no pool holds:
/// the file then goes in the zip, whose read reports the error.
fn real_sha1(content: &FileContent) -> String {
    match content.blob.to_info().real_sha1(&content.path()) {
        Ok(sha1) => sha1.to_ascii_lowercase(),
        Err(err) => {
            tracing::warn!(%err, blob = %content.blob.sha256_hex(), "cannot compute the SHA-1 of a sparse blob");
            String::new()
        }
    }
}

/// `0o644` → `"644"`, as Go's `strconv.FormatUint(mode, 8)` prints it.
/// Only permission, setuid/setgid and sticky bits are kept; the file type
/// never goes into a fingerprint.
pub fn mode_string(mode: u32) -> String {
    format!("{:o}", mode & 0o7777)
}

/// Fingerprints of the regular files among `entries`, in their order.
pub fn fingerprints<'a>(entries: impl IntoIterator<Item = &'a SnapshotEntry>) -> Vec<Fingerprint> {
    entries
        .into_iter()
        .filter_map(|entry| entry.file().map(|content| Fingerprint::of(entry, content)))
        .collect()
}

/// Which files a Cloud Controller's resource pool can hand back.
///
/// The server matches only sizes strictly inside its window and modes with
/// owner read and write; a file outside it must always travel in the zip, so
/// asking about it only makes the request bigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    /// `cc.resource_pool.minimum_size`; sizes must be strictly greater.
    pub min_size: u64,
    /// `cc.resource_pool.maximum_size`; sizes must be strictly smaller.
    pub max_size: u64,
}

impl PoolWindow {
    /// capi-release's defaults: 64 KiB and 512 MiB.
    pub const CAPI_DEFAULT: PoolWindow = PoolWindow {
        min_size: 65536,
        max_size: 536_870_912,
    };

    /// Whether asking the server about this file can pay off. The mode rule
    /// is the upload's (owner read AND write), stricter than the matcher's
    /// numeric `>= 0600`, so a matched file never fails the upload's check.
    pub fn may_match(&self, fingerprint: &Fingerprint) -> bool {
        let size_ok = fingerprint.size > self.min_size && fingerprint.size < self.max_size;
        let mode_ok = fingerprint
            .mode_bits()
            .is_some_and(|mode| mode & 0o600 == 0o600);
        size_ok && mode_ok
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::snapshot::{BlobId, EntryKind};

    fn file(path: &str, mode: u32, size: u64) -> SnapshotEntry {
        SnapshotEntry {
            path: path.into(),
            mode,
            kind: EntryKind::File(FileContent {
                blob: BlobId {
                    sha256: [0; 32],
                    sparse: false,
                    sha1: Some([0xAB; 20]),
                    size,
                },
                objects: Path::new("/nonexistent").into(),
                inode: None,
            }),
            mtime: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn mode_strings_are_octal_without_leading_zero() {
        assert_eq!(mode_string(0o644), "644");
        assert_eq!(mode_string(0o755), "755");
        assert_eq!(mode_string(0o600), "600");
        assert_eq!(mode_string(0o4755), "4755");
        assert_eq!(mode_string(0o100644), "644", "the file type is dropped");
        assert_eq!(mode_string(0), "0");
    }

    #[test]
    fn only_regular_files_get_fingerprints() {
        let entries = vec![
            SnapshotEntry {
                path: "dir".into(),
                mode: 0o755,
                kind: EntryKind::Dir,
                mtime: std::time::SystemTime::UNIX_EPOCH,
            },
            file("dir/app.py", 0o644, 12),
            SnapshotEntry {
                path: "link".into(),
                mode: 0o777,
                kind: EntryKind::Symlink {
                    target: "dir/app.py".into(),
                },
                mtime: std::time::SystemTime::UNIX_EPOCH,
            },
            file("run.sh", 0o755, 0),
        ];
        let fps = fingerprints(&entries);
        assert_eq!(
            fps,
            vec![
                Fingerprint {
                    path: "dir/app.py".into(),
                    mode: "644".into(),
                    sha1: "ab".repeat(20),
                    size: 12,
                },
                Fingerprint {
                    path: "run.sh".into(),
                    mode: "755".into(),
                    sha1: "ab".repeat(20),
                    size: 0,
                },
            ]
        );
    }

    #[test]
    fn wire_format_matches_the_cf_cli() {
        let fp = Fingerprint::of(
            &file("a/b.txt", 0o640, 7),
            file("a/b.txt", 0o640, 7).file().unwrap(),
        );
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"fn":"a/b.txt","mode":"640","sha1":"{}","size":7}}"#,
                "ab".repeat(20)
            )
        );
    }

    #[test]
    fn pool_window_is_strict_on_both_sides_and_needs_owner_rw() {
        let w = PoolWindow::CAPI_DEFAULT;
        let fp = |size: u64, mode: &str| Fingerprint {
            path: "f".into(),
            mode: mode.into(),
            sha1: "0".repeat(40),
            size,
        };
        assert!(
            !w.may_match(&fp(65536, "644")),
            "the minimum itself is never matched"
        );
        assert!(w.may_match(&fp(65537, "644")));
        assert!(w.may_match(&fp(536_870_911, "600")));
        assert!(!w.may_match(&fp(536_870_912, "644")));
        assert!(
            !w.may_match(&fp(100_000, "444")),
            "read-only files fail the upload's mode check"
        );
        assert!(!w.may_match(&fp(100_000, "1000")));
        assert!(!w.may_match(&fp(100_000, "x")));
    }
}

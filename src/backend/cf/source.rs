//! One app's bits as the cf CLI gathers them from its `path:`: the app
//! folder (less pushfs's spec files), a folder inside it under that
//! folder's own ignore files, or the entries of a zip archive
//! (`.zip`, `.jar`, `.war`), unpacked into a scratch directory and hashed
//! so they can be matched and zipped like files.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha1::Sha1;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::plan::{AppSource, DeployPlan};
use crate::backend::DeployError;
use crate::ignore::IgnoreRules;
use crate::kind::IgnoreProfile;
use crate::snapshot::{BlobId, EntryKind, FileContent, Snapshot, SnapshotEntry};
use crate::store::{object_path, BlobInfo};

/// The Cloud Controller's `max_package_size`: an archive that unpacks to
/// more is refused before anything is sent.
pub const ARCHIVE_LIMIT: u64 = 1 << 30;

/// The entries one app uploads. Borrowed from the snapshot where they are
/// its own, owned where the paths change (a folder) or the bytes are new
/// (an archive, whose scratch directory lives as long as this).
pub struct AppBits<'a> {
    borrowed: Vec<&'a SnapshotEntry>,
    owned: Vec<SnapshotEntry>,
    _scratch: Option<TempDir>,
}

impl<'a> AppBits<'a> {
    pub async fn gather(
        snapshot: &'a Snapshot,
        plan: &DeployPlan,
        source: &AppSource,
        profile: &IgnoreProfile,
    ) -> Result<AppBits<'a>, DeployError> {
        let bits = match source {
            AppSource::Folder(prefix) if prefix.is_empty() => AppBits {
                borrowed: snapshot
                    .entries
                    .iter()
                    .filter(|e| !plan.is_deploy_metadata(e))
                    .collect(),
                owned: Vec::new(),
                _scratch: None,
            },
            AppSource::Folder(prefix) => AppBits {
                borrowed: Vec::new(),
                owned: folder_entries(snapshot, prefix, profile),
                _scratch: None,
            },
            AppSource::Archive(path) => {
                let archive = snapshot
                    .find(path)
                    .and_then(|e| e.file())
                    .map(|f| f.path())
                    .ok_or_else(|| {
                        DeployError::InvalidSpec(format!("{path} is no longer in the app folder"))
                    })?;
                let name = path.clone();
                let (owned, scratch) = tokio::task::spawn_blocking(move || unpack(&name, &archive))
                    .await
                    .map_err(|err| DeployError::Io(io::Error::other(err.to_string())))??;
                AppBits {
                    borrowed: Vec::new(),
                    owned,
                    _scratch: Some(scratch),
                }
            }
            AppSource::Docker(_) => AppBits {
                borrowed: Vec::new(),
                owned: Vec::new(),
                _scratch: None,
            },
        };
        let has_content = bits
            .entries()
            .iter()
            .any(|e| !matches!(e.kind, EntryKind::Dir));
        if !has_content {
            return Err(DeployError::InvalidSpec(match source {
                AppSource::Folder(prefix) if prefix.is_empty() => {
                    "the app folder has no files to upload besides its spec".into()
                }
                AppSource::Folder(prefix) => format!("{prefix}/ has no files to upload"),
                AppSource::Archive(path) => format!("the archive {path} holds no files"),
                AppSource::Docker(_) => unreachable!("a docker app uploads no bits"),
            }));
        }
        Ok(bits)
    }

    pub fn entries(&self) -> Vec<&SnapshotEntry> {
        if self.owned.is_empty() {
            self.borrowed.clone()
        } else {
            self.owned.iter().collect()
        }
    }
}

/// The entries under `prefix/`, re-rooted there and filtered by the
/// folder's own `.cfignore` and `.pushfsignore`, as `cf push -p prefix`
/// would read them (the app folder's rules have already applied).
fn folder_entries(
    snapshot: &Snapshot,
    prefix: &str,
    profile: &IgnoreProfile,
) -> Vec<SnapshotEntry> {
    let under = format!("{prefix}/");
    let read_root = |name: &str| snapshot.read(&format!("{under}{name}")).ok().flatten();
    let rules = IgnoreRules::new(profile, read_root);
    snapshot
        .entries
        .iter()
        .filter_map(|e| {
            let path = e.path.strip_prefix(&under)?;
            let is_dir = matches!(e.kind, EntryKind::Dir);
            let metadata = !is_dir && super::plan::is_cf_metadata(path);
            if metadata || rules.is_ignored(path, is_dir) {
                return None;
            }
            Some(SnapshotEntry {
                path: path.to_string(),
                ..e.clone()
            })
        })
        .collect()
}

/// Unpacks a zip archive into a scratch directory, hashing each file as
/// it is written. Entries that would land outside (absolute, `..`) and
/// archives that unpack to more than [`ARCHIVE_LIMIT`] are refused.
fn unpack(name: &str, archive: &Path) -> Result<(Vec<SnapshotEntry>, TempDir), DeployError> {
    let invalid = |why: String| DeployError::InvalidSpec(format!("the archive {name} {why}"));
    let file = File::open(archive)?;
    let mtime = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|err| invalid(format!("is not a readable zip: {err}")))?;
    let scratch = tempfile::Builder::new()
        .prefix("pushfs-archive-")
        .tempdir()?;
    // The unpacked files are named by content, as in the store, so an entry
    // finds its bytes the same way a snapshot's does.
    let objects: Arc<Path> = scratch.path().join("objects").into();
    let mut entries = Vec::with_capacity(zip.len());
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|err| invalid(format!("has an unreadable entry: {err}")))?;
        let Some(path) = entry.enclosed_name() else {
            return Err(invalid(format!(
                "has an entry that would land outside the app: {:?}",
                entry.name()
            )));
        };
        let path = path.to_string_lossy().trim_end_matches('/').to_string();
        if path.is_empty() {
            continue;
        }
        let unix = entry.unix_mode();
        let is_link = unix.is_some_and(|m| m & 0o170000 == 0o120000);
        if entry.is_dir() {
            entries.push(SnapshotEntry {
                path,
                mode: unix.map(|m| m & 0o7777).unwrap_or(0o755),
                kind: EntryKind::Dir,
                mtime,
            });
            continue;
        }
        total = total.saturating_add(entry.size());
        if total > ARCHIVE_LIMIT {
            return Err(invalid(format!(
                "unpacks to more than {ARCHIVE_LIMIT} bytes, the Cloud Controller's package limit"
            )));
        }
        if is_link {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|err| invalid(format!("has an unreadable link {path}: {err}")))?;
            entries.push(SnapshotEntry {
                path,
                mode: 0o777,
                kind: EntryKind::Symlink { target },
                mtime,
            });
            continue;
        }
        let out = scratch.path().join(format!("{i}"));
        let blob = copy_hashed(&mut entry, &out, ARCHIVE_LIMIT)
            .and_then(|blob| {
                let named = object_path(&objects, &blob.sha256);
                std::fs::create_dir_all(named.parent().unwrap_or(&objects))?;
                std::fs::rename(&out, &named)?;
                BlobId::from_info(&blob).ok_or_else(|| io::Error::other("bad digest"))
            })
            .map_err(|err| invalid(format!("entry {path} cannot be unpacked: {err}")))?;
        entries.push(SnapshotEntry {
            path,
            mode: unix.map(|m| m & 0o7777).unwrap_or(0o644),
            kind: EntryKind::File(FileContent {
                blob,
                objects: objects.clone(),
                inode: None,
            }),
            mtime,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);
    Ok((entries, scratch))
}

/// Copies at most `limit` bytes into `out`, with their SHA-256 and SHA-1.
fn copy_hashed(from: &mut impl Read, out: &PathBuf, limit: u64) -> io::Result<BlobInfo> {
    let mut file = File::create(out)?;
    let (mut sha256, mut sha1) = (Sha256::new(), Sha1::new());
    let mut buf = vec![0u8; 1 << 16];
    let mut size: u64 = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(io::Error::other("larger than its header says"));
        }
        sha256.update(&buf[..n]);
        sha1.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    Ok(BlobInfo {
        sha256: hex::encode(sha256.finalize()),
        sha1: hex::encode(sha1.finalize()),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            if name.ends_with('/') {
                zip.add_directory(*name, SimpleFileOptions::default())
                    .unwrap();
            } else {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(bytes).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn an_archive_unpacks_to_hashed_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("app.jar");
        std::fs::write(
            &path,
            jar(&[
                ("META-INF/", b""),
                ("META-INF/MANIFEST.MF", b"Main: x\n"),
                ("a.class", b"cafe"),
            ]),
        )
        .unwrap();
        let (entries, scratch) = unpack("app.jar", &path).unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["META-INF", "META-INF/MANIFEST.MF", "a.class"]);
        let class = entries[2].file().unwrap();
        assert_eq!(class.blob.size, 4);
        assert_eq!(class.blob.sha1_hex(), hex::encode(Sha1::digest(b"cafe")));
        assert_eq!(std::fs::read(class.path()).unwrap(), b"cafe");
        assert!(class.path().starts_with(scratch.path()));
    }

    #[test]
    fn an_entry_climbing_out_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("evil.zip");
        std::fs::write(&path, jar(&[("../../etc/passwd", b"x")])).unwrap();
        let err = unpack("evil.zip", &path).unwrap_err().to_string();
        assert!(err.contains("outside the app"), "{err}");
        std::fs::write(&path, b"PK\x03\x04 not really").unwrap();
        let err = unpack("evil.zip", &path).unwrap_err().to_string();
        assert!(err.contains("not a readable zip"), "{err}");
    }
}

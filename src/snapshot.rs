//! An immutable copy of an app's manifest: what one deploy packages.
//!
//! Entries point at blobs in the content store, which never change, so a
//! deploy can read them while the user goes on editing the folder.
//!
//! A snapshot of a million files is a million entries, so an entry is kept
//! small: digests as bytes rather than hex, the blob's path derived from a
//! directory all entries share, and one list shared (`Arc`) by every stage
//! of the deploy instead of a copy per stage.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::ignore::IgnoreRules;
use crate::kind::{BackendKind, IgnoreProfile};
use crate::store::{blob_name, object_path, parse_blob_name, BlobInfo, ContentStore};

/// The most pushfs reads into memory of a spec, manifest or ignore file.
pub const SPEC_LIMIT: u64 = 1 << 20;

/// Why a spec or manifest of a snapshot could not be read. The first two
/// are the user's to fix in the folder, not I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum SpecReadError {
    #[error("{path} is {size} bytes; a spec or manifest may have at most {SPEC_LIMIT} (1 MiB)")]
    TooBig { path: String, size: u64 },
    /// `why` names the ignore file, its line and the pattern.
    #[error("{path} is excluded from the app by {why}; pushfs reads only what it packages")]
    Excluded { path: String, why: String },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Whether a link at `path` (relative to the app root) pointing at
/// `target` resolves outside the app.
fn leaves_the_app(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    // The link's directory, then each step of the target.
    let mut depth = path.matches('/').count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Drops a UTF-8 byte-order mark.
fn without_bom(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    bytes
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The app's directory name.
    pub app: String,
    pub backend: BackendKind,
    /// Sorted by path; ignored files already removed. Shared, so a package
    /// plan can own it without a copy.
    pub entries: Arc<Vec<SnapshotEntry>>,
    /// What the ignore rules removed, sorted by path: with `entries`, the
    /// folder as the tree held it (what a rollback returns to).
    pub ignored: Arc<Vec<SnapshotEntry>>,
    /// Lowercase hex SHA-256 over the entries: decides whether anything changed.
    pub digest: String,
    /// Files at the app root that the ignore rules excluded, with the rule:
    /// a spec excluded this way is reported as such, not as missing.
    pub excluded_at_root: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// Relative to the app root, `/`-separated, no leading `/`.
    pub path: String,
    /// Permission bits (`0o755`), without the file type.
    pub mode: u32,
    pub kind: EntryKind,
    /// When the entry was last modified. Travels in the CF zip, as the cf
    /// CLI writes it; never part of the digest, so a `touch` deploys nothing.
    pub mtime: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File(FileContent),
    Dir,
    Symlink { target: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub blob: BlobId,
    /// The directory holding the blob under its content address (see
    /// [`object_path`]); one allocation shared by every entry.
    pub objects: Arc<Path>,
    /// The inode, for a file with several names (hard links): packages
    /// that can say so store the content once.
    pub inode: Option<u64>,
}

impl FileContent {
    /// Absolute path of the immutable blob holding the bytes.
    pub fn path(&self) -> PathBuf {
        object_path(&self.objects, &self.blob.sha256_hex())
    }
}

/// A blob by its digests, as bytes: about 64 bytes where [`BlobInfo`]'s
/// hex strings and their allocations take about 200.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId {
    pub sha256: [u8; 32],
    /// Named by its sparse address (`<hex>.sparse`, `store/sparse.rs`).
    pub sparse: bool,
    /// `None` for a sparse blob, whose SHA-1 is computed only when a
    /// backend needs it ([`BlobInfo::real_sha1`]).
    pub sha1: Option<[u8; 20]>,
    pub size: u64,
}

impl BlobId {
    /// `None` if a digest is not hex of the right length.
    pub fn from_info(info: &BlobInfo) -> Option<BlobId> {
        let (sha256, sparse) = parse_blob_name(&info.sha256)?;
        let sha1 = match info.sha1.as_str() {
            "" if sparse => None,
            sha1 => {
                let mut bytes = [0; 20];
                hex::decode_to_slice(sha1, &mut bytes).ok()?;
                Some(bytes)
            }
        };
        Some(BlobId {
            sha256,
            sparse,
            sha1,
            size: info.size,
        })
    }

    /// The blob's name in the store: lowercase hex SHA-256 (with
    /// `.sparse` for a sparse address).
    pub fn sha256_hex(&self) -> String {
        blob_name(&self.sha256, self.sparse)
    }

    /// Lowercase hex SHA-1 (Cloud Foundry fingerprints); empty when not
    /// computed yet (a sparse blob).
    pub fn sha1_hex(&self) -> String {
        self.sha1.map(hex::encode).unwrap_or_default()
    }

    /// The key a deploy pins the blob by: its digest and its form.
    pub fn pin_key(&self) -> [u8; 33] {
        let mut key = [0; 33];
        key[..32].copy_from_slice(&self.sha256);
        key[32] = u8::from(self.sparse);
        key
    }

    pub fn to_info(&self) -> BlobInfo {
        BlobInfo {
            sha256: self.sha256_hex(),
            sha1: self.sha1_hex(),
            size: self.size,
        }
    }
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobId({}, {} bytes)", self.sha256_hex(), self.size)
    }
}

impl SnapshotEntry {
    pub fn file(&self) -> Option<&FileContent> {
        match &self.kind {
            EntryKind::File(content) => Some(content),
            _ => None,
        }
    }
}

impl Snapshot {
    /// Sorts, applies the ignore rules and digests. `entries` must not
    /// contain the status directory's files. The list is taken, not
    /// copied: the ignored entries move out of it and the rest stays.
    pub fn build(
        app: String,
        backend: BackendKind,
        mut entries: Vec<SnapshotEntry>,
        profile: &IgnoreProfile,
    ) -> Snapshot {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let read_root = |name: &str| {
            find_in(&entries, name)
                .and_then(|e| e.file())
                .filter(|f| f.blob.size <= SPEC_LIMIT)
                .and_then(|f| fs::read(f.path()).ok())
                .map(without_bom)
        };
        let rules = IgnoreRules::new(profile, read_root);
        let excluded_at_root = entries
            .iter()
            .filter(|e| !e.path.contains('/') && e.file().is_some())
            .filter_map(|e| Some((e.path.clone(), rules.why_ignored(&e.path, false)?)))
            .collect();
        let mut ignored = Vec::new();
        entries.retain(|e| {
            let out = rules.is_ignored(&e.path, matches!(e.kind, EntryKind::Dir));
            if out {
                ignored.push(e.clone());
            }
            !out
        });
        let digest = digest(&entries);
        Snapshot {
            app,
            backend,
            entries: Arc::new(entries),
            ignored: Arc::new(ignored),
            digest,
            excluded_at_root,
        }
    }

    /// The folder as the tree held it, before the ignore rules: the
    /// packaged entries, then the ignored ones.
    pub fn folder(&self) -> impl Iterator<Item = &SnapshotEntry> {
        self.entries.iter().chain(self.ignored.iter())
    }

    /// Imports a real directory into the store and snapshots it (tests, tools).
    pub fn from_dir(
        dir: &Path,
        backend: BackendKind,
        profile: &IgnoreProfile,
        store: &ContentStore,
    ) -> io::Result<Snapshot> {
        let mut entries = Vec::new();
        let objects: Arc<Path> = store.objects_dir().into();
        walk(dir, dir, store, &objects, &mut entries)?;
        let app = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Snapshot::build(app, backend, entries, profile))
    }

    pub fn find(&self, path: &str) -> Option<&SnapshotEntry> {
        find_in(&self.entries, path)
    }

    /// Reads a spec or manifest of the snapshot: `Ok(None)` if absent. One
    /// bigger than [`SPEC_LIMIT`] is refused before it is read, and a UTF-8
    /// byte-order mark (as some editors write) is dropped.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SpecReadError> {
        match self.find(path).and_then(|e| e.file()) {
            Some(content) if content.blob.size > SPEC_LIMIT => Err(SpecReadError::TooBig {
                path: path.to_string(),
                size: content.blob.size,
            }),
            Some(content) => match fs::read(content.path()) {
                Ok(bytes) => Ok(Some(without_bom(bytes))),
                Err(source) => Err(SpecReadError::Io {
                    path: path.to_string(),
                    source,
                }),
            },
            None => match self.excluded_at_root.iter().find(|(p, _)| p == path) {
                Some((_, why)) => Err(SpecReadError::Excluded {
                    path: path.to_string(),
                    why: why.clone(),
                }),
                None => Ok(None),
            },
        }
    }

    /// Symlinks whose target lies outside the app (absolute, or climbing
    /// above its root), as `path -> target`. They travel as links; pushfs
    /// never reads their targets, but the user should know.
    pub fn links_leaving_the_app(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Symlink { target } if leaves_the_app(&e.path, target) => {
                    Some(format!("{} -> {target}", e.path))
                }
                _ => None,
            })
            .collect()
    }

    /// The regular files, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&SnapshotEntry, &FileContent)> {
        self.entries.iter().filter_map(|e| e.file().map(|f| (e, f)))
    }
}

/// The entry at `path` of a list sorted by path.
fn find_in<'a>(entries: &'a [SnapshotEntry], path: &str) -> Option<&'a SnapshotEntry> {
    entries
        .binary_search_by(|e| e.path.as_str().cmp(path))
        .ok()
        .map(|i| &entries[i])
}

fn walk(
    root: &Path,
    dir: &Path,
    store: &ContentStore,
    objects: &Arc<Path>,
    out: &mut Vec<SnapshotEntry>,
) -> io::Result<()> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        let meta = fs::symlink_metadata(&path)?;
        let rel = path
            .strip_prefix(root)
            .expect("walk stays under root")
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        let kind = if meta.is_dir() {
            walk(root, &path, store, objects, out)?;
            EntryKind::Dir
        } else if meta.file_type().is_symlink() {
            EntryKind::Symlink {
                target: fs::read_link(&path)?.to_string_lossy().into_owned(),
            }
        } else {
            let blob = store.import_file(&path)?;
            let blob = BlobId::from_info(&blob)
                .ok_or_else(|| io::Error::other("the store named a blob by a bad digest"))?;
            EntryKind::File(FileContent {
                blob,
                objects: objects.clone(),
                inode: (meta.nlink() > 1).then(|| meta.ino()),
            })
        };
        out.push(SnapshotEntry {
            path: rel,
            mode,
            kind,
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(())
}

/// SHA-256 over what a package depends on: path, type, mode and content.
/// Hard links count too: the second name of an inode is a link to the first.
fn digest(entries: &[SnapshotEntry]) -> String {
    let mut hasher = Sha256::new();
    let mut first_names: HashMap<u64, &str> = HashMap::new();
    let mut sha256 = [0u8; 64];
    for entry in entries {
        let (tag, content) = match &entry.kind {
            EntryKind::File(FileContent {
                inode: Some(inode), ..
            }) if first_names.contains_key(inode) => ("H", first_names[inode]),
            EntryKind::File(f) => {
                if let Some(inode) = f.inode {
                    first_names.insert(inode, entry.path.as_str());
                }
                hex::encode_to_slice(f.blob.sha256, &mut sha256).expect("64 hex digits");
                ("F", std::str::from_utf8(&sha256).expect("hex is ASCII"))
            }
            EntryKind::Dir => ("D", ""),
            EntryKind::Symlink { target } => ("L", target.as_str()),
        };
        // NUL separators: paths and targets cannot contain NUL.
        hasher.update(format!(
            "{tag}\0{:o}\0{}\0{content}\0",
            entry.mode, entry.path
        ));
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn make_app(dir: &Path) {
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("spec.json"), "{}").unwrap();
        fs::write(dir.join("src/main.py"), "print(1)").unwrap();
        fs::write(dir.join("src/.main.py.swp"), "junk").unwrap();
        symlink("src/main.py", dir.join("link")).unwrap();
    }

    #[test]
    fn from_dir_is_sorted_filtered_and_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let app = tmp.path().join("app");
        make_app(&app);
        let profile = IgnoreProfile::default();
        let a = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        let paths: Vec<_> = a.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["link", "spec.json", "src", "src/main.py"]);
        assert_eq!(a.read("spec.json").unwrap().unwrap(), b"{}");
        assert!(a.read("missing").unwrap().is_none());

        let b = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        assert_eq!(a.digest, b.digest);
        fs::write(app.join("src/main.py"), "print(2)").unwrap();
        let c = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn a_spec_is_read_without_its_bom_and_a_huge_one_is_refused_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let app = tmp.path().join("app");
        fs::create_dir_all(&app).unwrap();
        fs::write(app.join("spec.json"), b"\xEF\xBB\xBF{\"a\":1}").unwrap();
        fs::write(app.join("big.json"), vec![b' '; SPEC_LIMIT as usize + 1]).unwrap();
        let profile = IgnoreProfile::default();
        let snap = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        assert_eq!(snap.read("spec.json").unwrap().unwrap(), b"{\"a\":1}");
        let err = snap.read("big.json").unwrap_err();
        assert!(
            err.to_string().contains(
                "big.json is 1048577 bytes; a spec or manifest may have at most 1048576 (1 MiB)"
            ),
            "{err}"
        );
    }

    #[test]
    fn links_that_leave_the_app_are_found() {
        for (path, target, leaves) in [
            ("link", "src/main.py", false),
            ("a/link", "../b", false),
            ("a/link", "../../etc/passwd", true),
            ("link", "/etc/passwd", true),
            ("link", "..", true),
            ("a/b/link", "./../c/../../d", false),
        ] {
            assert_eq!(leaves_the_app(path, target), leaves, "{path} -> {target}");
        }
    }

    #[test]
    fn mode_changes_change_the_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let app = tmp.path().join("app");
        make_app(&app);
        let profile = IgnoreProfile::default();
        let a = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        fs::set_permissions(app.join("spec.json"), fs::Permissions::from_mode(0o600)).unwrap();
        let b = Snapshot::from_dir(&app, BackendKind::Cf, &profile, &store).unwrap();
        assert_ne!(a.digest, b.digest);
    }
}

//! Deterministic tar archives of a snapshot, written to any `io::Write`.
//!
//! The same tree always gives the same bytes, so the server's checksum of
//! the archive only changes when the app does: entries are sorted by path,
//! directories and symlinks are kept, and every header carries a fixed
//! mtime, uid/gid 0 and empty owner names. Only the permission bits come
//! from the snapshot. Headers are GNU; paths or link targets longer than
//! the 100-byte header field use GNU long-name entries (`././@LongLink`).
//! A file with several names (hard links) is stored once, under the first
//! of its names in the archive; the others are hard-link entries to it.
//!
//! A package is a plan ([`TarPackage`]) that owns what it needs (the
//! snapshot's shared list and which of its entries go in, never a copy of
//! them), so it can be moved onto a blocking thread and written into a pipe
//! while the upload streams; [`TarPackage::size`] knows the archive's length without reading
//! any file, for a `Content-Length` ahead of the bytes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use tar::{EntryType, Header};

use crate::snapshot::{EntryKind, Snapshot, SnapshotEntry};
use crate::store::BlobReader;

/// The mtime of every entry: the constant `tar`'s own deterministic mode
/// uses (2006-07-24), because some tools mishandle a zero timestamp.
pub const FIXED_MTIME: u64 = 1_153_704_088;

/// One entry of a planned archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarItem {
    /// Relative, `/`-separated, no leading `/` or `./`.
    pub path: String,
    /// Permission bits only.
    pub mode: u32,
    pub body: TarBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarBody {
    Dir,
    Symlink {
        target: String,
    },
    /// A regular file read from an immutable blob of exactly `size` bytes.
    Blob {
        path: PathBuf,
        size: u64,
        /// The file's inode when it has several names.
        inode: Option<u64>,
    },
    /// A regular file generated in memory (a rewritten manifest).
    Bytes(Vec<u8>),
}

impl TarBody {
    fn data_len(&self) -> u64 {
        match self {
            TarBody::Blob { size, .. } => *size,
            TarBody::Bytes(bytes) => bytes.len() as u64,
            TarBody::Dir | TarBody::Symlink { .. } => 0,
        }
    }
}

/// The entries of an archive: a snapshot's, picked and perhaps re-rooted
/// under a directory, plus entries added one by one, which replace a
/// snapshot entry of the same path. The snapshot's list is shared, not
/// copied: a million-file package costs an index per entry until its items
/// are made, one at a time, as the archive is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarPackage {
    from_snapshot: Option<SnapshotPart>,
    /// Sorted by path, unique.
    added: Vec<TarItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapshotPart {
    entries: Arc<Vec<SnapshotEntry>>,
    /// Indices into `entries` of what the package carries, ascending (so in
    /// path order).
    picked: Vec<u32>,
    /// The directory the entries are stored under (`app` for `app/…`).
    under: Option<String>,
}

impl SnapshotPart {
    fn path_of(&self, entry: &SnapshotEntry) -> String {
        match &self.under {
            Some(dir) => format!("{dir}/{}", entry.path),
            None => entry.path.clone(),
        }
    }

    fn items(&self) -> impl Iterator<Item = TarItem> + '_ {
        self.picked.iter().map(|&i| {
            let entry = &self.entries[i as usize];
            TarItem::from_entry(self.path_of(entry), entry)
        })
    }

    fn get(&self, path: &str) -> Option<TarItem> {
        let own = match &self.under {
            Some(dir) => path.strip_prefix(dir.as_str())?.strip_prefix('/')?,
            None => path,
        };
        let at = self
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(own))
            .ok()?;
        self.picked.binary_search(&(at as u32)).ok()?;
        Some(TarItem::from_entry(path.to_string(), &self.entries[at]))
    }
}

impl TarPackage {
    pub fn new() -> Self {
        TarPackage::default()
    }

    /// Every entry of `snapshot` that `keep` accepts, under the same path.
    pub fn from_snapshot(snapshot: &Snapshot, keep: impl Fn(&SnapshotEntry) -> bool) -> Self {
        Self::picked(snapshot, None, keep)
    }

    /// Every entry of `snapshot` that `keep` accepts, stored under `dir/`.
    pub fn from_snapshot_under(
        snapshot: &Snapshot,
        dir: &str,
        keep: impl Fn(&SnapshotEntry) -> bool,
    ) -> Self {
        Self::picked(snapshot, Some(dir.to_string()), keep)
    }

    fn picked(
        snapshot: &Snapshot,
        under: Option<String>,
        keep: impl Fn(&SnapshotEntry) -> bool,
    ) -> Self {
        let picked = (0..snapshot.entries.len())
            .filter(|&i| keep(&snapshot.entries[i]))
            .map(|i| u32::try_from(i).expect("fewer than 4 billion entries"))
            .collect();
        TarPackage {
            from_snapshot: Some(SnapshotPart {
                entries: snapshot.entries.clone(),
                picked,
                under,
            }),
            added: Vec::new(),
        }
    }

    /// Adds `item`, replacing an entry with the same path.
    pub fn insert(&mut self, item: TarItem) {
        match self
            .added
            .binary_search_by(|i| i.path.as_str().cmp(&item.path))
        {
            Ok(at) => self.added[at] = item,
            Err(at) => self.added.insert(at, item),
        }
    }

    /// The entries in archive order, each made as it is asked for.
    pub fn items(&self) -> impl Iterator<Item = TarItem> + '_ {
        let base = self.from_snapshot.iter().flat_map(SnapshotPart::items);
        Merged {
            base: base.peekable(),
            added: self.added.iter().peekable(),
        }
    }

    /// The entry stored under `path`.
    pub fn get(&self, path: &str) -> Option<TarItem> {
        if let Ok(at) = self.added.binary_search_by(|i| i.path.as_str().cmp(path)) {
            return Some(self.added[at].clone());
        }
        self.from_snapshot.as_ref()?.get(path)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// How many entries the archive holds.
    pub fn len(&self) -> usize {
        self.items().count()
    }

    pub fn is_empty(&self) -> bool {
        self.items().next().is_none()
    }

    /// Bytes of regular-file content, before headers and padding.
    pub fn content_bytes(&self) -> u64 {
        self.items().map(|i| i.body.data_len()).sum()
    }

    /// Writes the archive to `out` and returns its length in bytes.
    pub fn write(&self, out: impl Write) -> io::Result<u64> {
        self.write_with(out, false)
    }

    /// The exact length [`TarPackage::write`] will produce. Runs the same
    /// writer with zeros in place of file contents, so no blob is read.
    pub fn size(&self) -> io::Result<u64> {
        self.write_with(io::sink(), true)
    }

    fn write_with(&self, out: impl Write, zeros: bool) -> io::Result<u64> {
        let mut builder = tar::Builder::new(CountingWriter {
            inner: out,
            count: 0,
        });
        let mut first_names: HashMap<u64, String> = HashMap::new();
        for item in self.items() {
            if let TarBody::Blob {
                inode: Some(inode), ..
            } = item.body
            {
                if let Some(first) = first_names.get(&inode) {
                    append_hard_link(&mut builder, &item, first)?;
                    continue;
                }
                first_names.insert(inode, item.path.clone());
            }
            append(&mut builder, &item, zeros)?;
        }
        let mut counted = builder.into_inner()?;
        counted.flush()?;
        Ok(counted.count)
    }
}

/// The snapshot's items and the added ones, merged by path; an added item
/// replaces a snapshot item of the same path.
struct Merged<'a, B: Iterator<Item = TarItem>> {
    base: std::iter::Peekable<B>,
    added: std::iter::Peekable<std::slice::Iter<'a, TarItem>>,
}

impl<B: Iterator<Item = TarItem>> Iterator for Merged<'_, B> {
    type Item = TarItem;

    fn next(&mut self) -> Option<TarItem> {
        let order = match (self.base.peek(), self.added.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(b), Some(a)) => b.path.cmp(&a.path),
        };
        match order {
            std::cmp::Ordering::Less => self.base.next(),
            std::cmp::Ordering::Equal => {
                self.base.next();
                self.added.next().cloned()
            }
            std::cmp::Ordering::Greater => self.added.next().cloned(),
        }
    }
}

impl TarItem {
    /// `entry`'s type, mode and content, stored under `path`.
    pub fn from_entry(path: String, entry: &SnapshotEntry) -> Self {
        let body = match &entry.kind {
            EntryKind::Dir => TarBody::Dir,
            EntryKind::Symlink { target } => TarBody::Symlink {
                target: target.clone(),
            },
            EntryKind::File(content) => TarBody::Blob {
                path: content.path(),
                size: content.blob.size,
                inode: content.inode,
            },
        };
        TarItem {
            path,
            mode: entry.mode & 0o7777,
            body,
        }
    }
}

/// Writes every entry `keep` accepts of `snapshot`, as they are, to `out`.
/// Returns the archive's length in bytes.
pub fn write_tar(
    snapshot: &Snapshot,
    keep: impl Fn(&SnapshotEntry) -> bool,
    out: impl Write,
) -> io::Result<u64> {
    TarPackage::from_snapshot(snapshot, keep).write(out)
}

fn header_for(item: &TarItem) -> Header {
    let mut header = Header::new_gnu();
    let kind = match item.body {
        TarBody::Dir => EntryType::Directory,
        TarBody::Symlink { .. } => EntryType::Symlink,
        TarBody::Blob { .. } | TarBody::Bytes(_) => EntryType::Regular,
    };
    header.set_entry_type(kind);
    header.set_mode(item.mode & 0o7777);
    header.set_size(item.body.data_len());
    header.set_mtime(FIXED_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append<W: Write>(builder: &mut tar::Builder<W>, item: &TarItem, zeros: bool) -> io::Result<()> {
    let mut header = header_for(item);
    let path = item.path.as_str();
    match &item.body {
        TarBody::Dir => builder.append_data(&mut header, path, io::empty()),
        TarBody::Symlink { target } => builder.append_link(&mut header, path, target),
        TarBody::Bytes(bytes) => builder.append_data(&mut header, path, bytes.as_slice()),
        TarBody::Blob { size, .. } if zeros => {
            builder.append_data(&mut header, path, io::repeat(0).take(*size))
        }
        TarBody::Blob {
            path: blob, size, ..
        } => {
            // Holes come as zeros made in memory, not read from the disk.
            let file = BlobReader::open(blob).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot read {path} from the store: {err}"),
                )
            })?;
            let exact = ExactReader {
                inner: file.take(*size),
                remaining: *size,
                name: path,
            };
            builder.append_data(&mut header, path, exact)
        }
    }
}

/// A second name of a file already in the archive.
fn append_hard_link<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &TarItem,
    first: &str,
) -> io::Result<()> {
    let mut header = header_for(item);
    header.set_entry_type(EntryType::Link);
    header.set_size(0);
    builder.append_link(&mut header, &item.path, first)
}

/// Fails if the blob holds fewer bytes than its header announced: `tar`
/// pads by what it copied, so a short blob would silently corrupt the archive.
struct ExactReader<'a, R> {
    inner: R,
    remaining: u64,
    name: &'a str,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than recorded in the store", self.name),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{BackendKind, IgnoreProfile};
    use crate::store::ContentStore;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;
    use std::process::Command;

    fn long_path() -> String {
        let path = format!(
            "{}/{}/{}.txt",
            "d".repeat(60),
            "e".repeat(60),
            "f".repeat(24)
        );
        assert_eq!(path.len(), 150);
        path
    }

    fn make_tree(dir: &Path) {
        fs::create_dir_all(dir.join("app/bin")).unwrap();
        fs::write(dir.join("manifest.json"), "{}").unwrap();
        fs::write(dir.join("app/main.py"), "print('hi')\n").unwrap();
        fs::write(dir.join("app/bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
        fs::set_permissions(
            dir.join("app/bin/run.sh"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        fs::write(dir.join("app/empty"), "").unwrap();
        symlink("main.py", dir.join("app/link.py")).unwrap();
        let long = dir.join(long_path());
        fs::create_dir_all(long.parent().unwrap()).unwrap();
        fs::write(&long, vec![7u8; 1000]).unwrap();
    }

    fn snapshot_of(dir: &Path, store: &ContentStore) -> Snapshot {
        Snapshot::from_dir(dir, BackendKind::Bytenite, &IgnoreProfile::default(), store).unwrap()
    }

    fn tar_of(snapshot: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        let n = write_tar(snapshot, |_| true, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    #[test]
    fn same_tree_gives_identical_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        make_tree(&a);
        make_tree(&b);
        // Different mtimes on the source files must not matter.
        let bin = b.join("app/bin/run.sh");
        let f = fs::File::options().write(true).open(&bin).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let first = tar_of(&snapshot_of(&a, &store));
        let second = tar_of(&snapshot_of(&b, &store));
        assert_eq!(first, second);
        assert_eq!(first.len() % 512, 0);

        fs::write(b.join("app/main.py"), "print('changed')\n").unwrap();
        assert_ne!(first, tar_of(&snapshot_of(&b, &store)));
    }

    #[test]
    fn round_trip_keeps_modes_symlinks_and_long_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("app");
        make_tree(&dir);
        let bytes = tar_of(&snapshot_of(&dir, &store));

        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let header = entry.header().clone();
            assert_eq!(header.mtime().unwrap(), FIXED_MTIME);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            match path.as_str() {
                "app/bin/run.sh" => {
                    assert_eq!(header.mode().unwrap(), 0o750);
                    assert_eq!(content, b"#!/bin/sh\necho run\n");
                }
                "app/link.py" => {
                    assert_eq!(header.entry_type(), EntryType::Symlink);
                    assert_eq!(
                        entry.link_name().unwrap().unwrap().to_str(),
                        Some("main.py")
                    );
                }
                "app" => assert_eq!(header.entry_type(), EntryType::Directory),
                p if p == long_path() => assert_eq!(content, vec![7u8; 1000]),
                _ => {}
            }
            seen.push(path);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "entries are in path order");
        for want in [
            "app",
            "app/bin",
            "app/bin/run.sh",
            "app/empty",
            "app/link.py",
            "manifest.json",
        ] {
            assert!(
                seen.iter().any(|p| p == want),
                "{want} missing from {seen:?}"
            );
        }
        assert!(seen.contains(&long_path()));
    }

    #[test]
    fn long_symlink_targets_survive() {
        let mut package = TarPackage::new();
        let target = "t/".repeat(80) + "end";
        package.insert(TarItem {
            path: "link".into(),
            mode: 0o777,
            body: TarBody::Symlink {
                target: target.clone(),
            },
        });
        let mut out = Vec::new();
        package.write(&mut out).unwrap();
        let mut archive = tar::Archive::new(out.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            entry.link_name().unwrap().unwrap().to_str(),
            Some(target.as_str())
        );
    }

    #[test]
    fn size_matches_written_length_without_reading_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("app");
        make_tree(&dir);
        let package = TarPackage::from_snapshot(&snapshot_of(&dir, &store), |_| true);
        let mut out = Vec::new();
        assert_eq!(package.size().unwrap(), package.write(&mut out).unwrap());
        assert_eq!(package.size().unwrap(), out.len() as u64);
    }

    #[test]
    fn inserted_items_replace_and_sort() {
        let mut package = TarPackage::new();
        for path in ["b", "a", "c", "a"] {
            package.insert(TarItem {
                path: path.into(),
                mode: 0o644,
                body: TarBody::Bytes(path.as_bytes().to_vec()),
            });
        }
        let paths: Vec<_> = package.items().map(|i| i.path).collect();
        assert_eq!(paths, ["a", "b", "c"]);
        assert!(package.contains("b"));
        assert_eq!(package.content_bytes(), 3);
    }

    #[test]
    fn a_truncated_blob_is_an_error_not_a_corrupt_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let blob = tmp.path().join("blob");
        fs::write(&blob, b"short").unwrap();
        let mut package = TarPackage::new();
        package.insert(TarItem {
            path: "f".into(),
            mode: 0o644,
            body: TarBody::Blob {
                path: blob,
                size: 100,
                inode: None,
            },
        });
        let err = package.write(io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_hard_linked_file_is_stored_once_and_unpacks_as_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("app");
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::write(dir.join("lib/data.bin"), vec![9u8; 5000]).unwrap();
        fs::hard_link(dir.join("lib/data.bin"), dir.join("same.bin")).unwrap();
        let snapshot = snapshot_of(&dir, &store);
        let package = TarPackage::from_snapshot(&snapshot, |_| true);
        let bytes = tar_of(&snapshot);
        assert_eq!(package.size().unwrap(), bytes.len() as u64);
        assert!(bytes.len() < 2 * 5000, "the content is stored once");

        let mut archive = tar::Archive::new(bytes.as_slice());
        let links: Vec<(String, EntryType, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    link,
                )
            })
            .filter(|(p, _, _)| p.ends_with(".bin"))
            .collect();
        assert_eq!(
            links,
            [
                ("lib/data.bin".into(), EntryType::Regular, None),
                (
                    "same.bin".into(),
                    EntryType::Link,
                    Some("lib/data.bin".into())
                ),
            ]
        );
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(tmp.path().join("a.tar"), &bytes).unwrap();
        let status = Command::new("tar")
            .arg("-xf")
            .arg(tmp.path().join("a.tar"))
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (
            fs::metadata(out.join("lib/data.bin")).unwrap(),
            fs::metadata(out.join("same.bin")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(fs::read(out.join("same.bin")).unwrap(), vec![9u8; 5000]);
    }

    #[test]
    fn system_tar_lists_the_archive() {
        assert!(
            Command::new("tar").arg("--version").output().is_ok(),
            "this test needs GNU tar on PATH (scripts/test.sh installs it)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("app");
        make_tree(&dir);
        let file = tmp.path().join("out.tar");
        fs::write(&file, tar_of(&snapshot_of(&dir, &store))).unwrap();
        let listing = Command::new("tar").arg("-tvf").arg(&file).output().unwrap();
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        let text = String::from_utf8(listing.stdout).unwrap();
        assert!(text.contains(&long_path()), "{text}");
        assert!(text.contains("app/link.py -> main.py"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("-rwxr-x---") && l.ends_with("app/bin/run.sh")),
            "{text}"
        );

        let out = tmp.path().join("x");
        fs::create_dir(&out).unwrap();
        let extract = Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            extract.status.success(),
            "{}",
            String::from_utf8_lossy(&extract.stderr)
        );
        assert_eq!(fs::read(out.join(long_path())).unwrap(), vec![7u8; 1000]);
        assert_eq!(
            fs::read_link(out.join("app/link.py")).unwrap(),
            Path::new("main.py")
        );
    }
}

//! Immutable blobs under `objects/ab/cdef…`, and the temp files that become them.
//!
//! A file open for writing lives in `tmp/`; on release it is hashed (SHA-256
//! and SHA-1 in one pass, or only its data for a file with holes, see
//! `sparse.rs`) and linked into `objects/` unless that blob already exists.
//! Blobs never change after that, so packaging can read them while the user
//! keeps editing.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::lost_found::{self, SetAside};
use crate::private_files::{create_private_dir_all, open_nofollow, private_file_options};

/// What the store knows of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobInfo {
    /// The blob's name: lowercase hex SHA-256 of the content, or for a file
    /// stored sparse, `<hex>.sparse` (see `store/sparse.rs`).
    pub sha256: String,
    /// Lowercase hex SHA-1 (Cloud Foundry fingerprints); empty for a sparse
    /// blob, whose SHA-1 is computed when a backend asks
    /// ([`BlobInfo::real_sha1`]).
    pub sha1: String,
    pub size: u64,
}

impl BlobInfo {
    /// Whether the blob is named by its sparse form.
    pub fn is_sparse(&self) -> bool {
        super::sparse::is_sparse_name(&self.sha256)
    }

    /// The SHA-1 of the real content: stored for a dense blob, read with
    /// the holes made in memory for a sparse one at `path`.
    pub fn real_sha1(&self, path: &Path) -> io::Result<String> {
        if self.sha1.is_empty() && self.is_sparse() {
            super::sparse::real_sha1(path)
        } else {
            Ok(self.sha1.clone())
        }
    }
}

#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
    objects_made: FanOut,
    tmp_made: FanOut,
    next_temp: AtomicU64,
}

/// A blob's file under an objects directory: fanned out by the first two
/// hex digits of its SHA-256, so no directory holds millions of names.
pub fn object_path(objects: &Path, sha256: &str) -> PathBuf {
    let (prefix, rest) = sha256.split_at(2.min(sha256.len()));
    objects.join(prefix).join(rest)
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`. Temp files left
    /// by a previous run stay until [`ContentStore::set_aside_temp`], so the
    /// tree can first recover the ones its manifests name.
    pub fn open(root: &Path) -> io::Result<Self> {
        create_private_dir_all(&root.join("objects"))?;
        create_private_dir_all(&root.join("tmp"))?;
        Ok(ContentStore {
            objects_made: FanOut::default(),
            tmp_made: FanOut::default(),
            root: root.to_path_buf(),
            next_temp: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this SHA-256 lives (it may not exist).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        object_path(&self.objects_dir(), sha256)
    }

    /// Where the blobs live: `objects/ab/cdef…` under the store's root.
    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn has_blob(&self, sha256: &str) -> bool {
        self.blob_path(sha256).exists()
    }

    /// Empties `tmp/` after recovery at start-up. A temp file no inode
    /// names may hold the only copy of acknowledged bytes (the engine's log
    /// lost the inode), so it goes to lost+found like an unnamed blob;
    /// one whose bytes the store holds under a live name, or none, is
    /// deleted.
    pub fn set_aside_temp(&self, live: &HashSet<String>) -> io::Result<SetAside> {
        let tmp = self.root.join("tmp");
        let mut done = SetAside::default();
        for sub in fs::read_dir(&tmp)? {
            let sub = sub?;
            if !sub.file_type()?.is_dir() {
                continue;
            }
            for temp in fs::read_dir(sub.path())? {
                let temp = temp?;
                if temp.file_type()?.is_file() {
                    self.set_aside(&temp.path(), None, live, &mut done)?;
                }
            }
        }
        fs::remove_dir_all(&tmp)?;
        self.tmp_made.forget();
        create_private_dir_all(&tmp)?;
        Ok(done)
    }

    /// Creates an empty temp file for content about to be written.
    pub fn new_temp(&self) -> io::Result<(PathBuf, File)> {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        // Fan out by the counter so no directory grows huge.
        let dir = self
            .tmp_made
            .ensure(&self.root.join("tmp"), (n % 256) as u8)?;
        let path = dir.join(format!("{}-{n}", std::process::id()));
        // 0600: the temp file becomes the blob by rename, mode and all.
        let file = private_file_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    /// Creates a temp file holding a copy of an existing blob, for a write
    /// that does not truncate (append, random write, truncate to a size).
    /// A sparse blob's holes stay holes in the copy.
    pub fn temp_copy_of(&self, sha256: &str) -> io::Result<(PathBuf, File)> {
        // The blob first: a missing one leaves no empty temp file behind.
        let mut blob = open_nofollow(&self.blob_path(sha256))?;
        let (path, mut file) = self.new_temp()?;
        let copied = if super::sparse::is_sparse_name(sha256) {
            super::sparse::copy_keeping_holes(&blob, &file)
        } else {
            io::copy(&mut blob, &mut file).map(drop)
        };
        if let Err(err) = copied {
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Ok((path, file))
    }

    /// Hashes a finished temp file and moves it into the store. The temp file
    /// is gone afterwards, whether its blob was new or already present.
    pub fn seal(&self, temp: &Path) -> io::Result<BlobInfo> {
        let info = hash_file(temp)?;
        self.adopt(temp, &info)?;
        Ok(info)
    }

    /// Moves an already hashed temp file into the store under `info`, or
    /// drops it if that blob exists. Not fsynced here: a process crash loses
    /// nothing (the page cache survives it); a user's fsync() is honoured on
    /// the temp file before it gets here.
    pub fn adopt(&self, temp: &Path, info: &BlobInfo) -> io::Result<()> {
        let dest = self.blob_path(&info.sha256);
        if dest.exists() {
            fs::remove_file(temp)?;
        } else {
            let prefix = u8::from_str_radix(&info.sha256[..2], 16).map_err(io::Error::other)?;
            self.objects_made
                .ensure(&self.root.join("objects"), prefix)?;
            fs::rename(temp, &dest)?;
        }
        Ok(())
    }

    /// Gives a hashed temp file its content address by a hard link, so the
    /// temp file stays until the caller has recorded the blob and removes
    /// it: a crash at any point leaves the bytes under a name the metadata
    /// knows. `durable` also syncs the new directory entry (for files the
    /// writer fsynced). An existing blob is left as it is. Returns whether
    /// the blob is new.
    pub fn link_in(&self, temp: &Path, info: &BlobInfo, durable: bool) -> io::Result<bool> {
        let dest = self.blob_path(&info.sha256);
        let prefix = u8::from_str_radix(&info.sha256[..2], 16).map_err(io::Error::other)?;
        let dir = self
            .objects_made
            .ensure(&self.root.join("objects"), prefix)?;
        match fs::hard_link(temp, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(true)
    }

    /// Deletes a blob nothing refers to any more. A failure is logged: the
    /// sweep at the next mount gets another go.
    pub fn remove_blob(&self, sha256: &str) {
        match fs::remove_file(self.blob_path(sha256)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(%err, blob = sha256, "cannot delete an unreferenced blob"),
        }
    }

    /// Syncs the directory holding a temp file, so an fsynced file's name
    /// survives power loss too.
    pub fn sync_temp_dir(&self, temp: &Path) -> io::Result<()> {
        match temp.parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }

    /// Stores bytes directly (small files, tests).
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<BlobInfo> {
        let (path, mut file) = self.new_temp()?;
        file.write_all(bytes)?;
        drop(file);
        self.seal(&path)
    }

    /// Copies an outside file into the store.
    pub fn import_file(&self, source: &Path) -> io::Result<BlobInfo> {
        let (path, mut file) = self.new_temp()?;
        io::copy(&mut File::open(source)?, &mut file)?;
        drop(file);
        self.seal(&path)
    }

    /// Moves every blob whose SHA-256 is not in `live` to lost+found: at
    /// mount, a blob nothing names may be a file a damaged database
    /// forgot, so it is never deleted here. Call only when no snapshot is
    /// being packaged.
    pub fn set_aside_unreferenced(&self, live: &HashSet<String>) -> io::Result<SetAside> {
        let mut done = SetAside::default();
        let objects = self.root.join("objects");
        for prefix in fs::read_dir(&objects)? {
            let prefix = prefix?;
            // Only what pushfs made: a symlinked prefix or blob is another
            // place on disk, whose files are not ours to move.
            if !prefix.file_type()?.is_dir() {
                continue;
            }
            let prefix_name = prefix.file_name().to_string_lossy().into_owned();
            for blob in fs::read_dir(prefix.path())? {
                let blob = blob?;
                if !blob.file_type()?.is_file() {
                    continue;
                }
                let name = format!("{prefix_name}{}", blob.file_name().to_string_lossy());
                if !live.contains(&name) {
                    self.set_aside(&blob.path(), Some(name), live, &mut done)?;
                }
            }
        }
        Ok(done)
    }

    /// Moves one unnamed file to lost+found under its SHA-256, or deletes
    /// it if that loses nothing. `named` is its content address, if the
    /// file is a blob; it is trusted only for files the store named.
    fn set_aside(
        &self,
        file: &Path,
        named: Option<String>,
        live: &HashSet<String>,
        done: &mut SetAside,
    ) -> io::Result<()> {
        let len = fs::symlink_metadata(file)?.len();
        let sha256 = match named {
            Some(sha256) if len > 0 => sha256,
            _ if len == 0 => String::new(),
            _ => hash_file(file)?.sha256,
        };
        if len == 0 || live.contains(&sha256) {
            fs::remove_file(file)?;
            done.dropped += 1;
        } else {
            lost_found::move_in(&self.root, file, &sha256)?;
            done.moved += 1;
        }
        Ok(())
    }

    /// Puts a blob from lost+found back under its content address. The
    /// bytes are hashed first: a file whose name lies stays where it is.
    pub fn restore_from_lost_found(&self, file: &Path, sha256: &str) -> io::Result<bool> {
        if hash_file(file)?.sha256 != sha256 {
            return Ok(false);
        }
        let prefix = u8::from_str_radix(&sha256[..2], 16).map_err(io::Error::other)?;
        self.objects_made
            .ensure(&self.root.join("objects"), prefix)?;
        let dest = self.blob_path(sha256);
        if dest.exists() {
            fs::remove_file(file)?;
        } else {
            fs::rename(file, dest)?;
        }
        Ok(true)
    }
}

/// Which of a directory's 256 two-hex-digit subdirectories exist, so each
/// is created once rather than checked on every file.
#[derive(Debug)]
struct FanOut {
    made: [AtomicBool; 256],
}

impl Default for FanOut {
    fn default() -> Self {
        FanOut {
            made: std::array::from_fn(|_| AtomicBool::new(false)),
        }
    }
}

impl FanOut {
    fn ensure(&self, dir: &Path, index: u8) -> io::Result<PathBuf> {
        let sub = dir.join(format!("{index:02x}"));
        if !self.made[usize::from(index)].load(Ordering::Acquire) {
            create_private_dir_all(&sub)?;
            self.made[usize::from(index)].store(true, Ordering::Release);
        }
        Ok(sub)
    }

    fn forget(&self) {
        for flag in &self.made {
            flag.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    /// One read buffer per hashing thread: a fresh 1 MiB buffer per small
    /// file cost more than hashing it.
    static HASH_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
}

/// SHA-256 and SHA-1 of a file in one pass, or for a file with enough
/// holes its sparse address, which reads only its data.
pub fn hash_file(path: &Path) -> io::Result<BlobInfo> {
    hash_open_file(&File::open(path)?)
}

/// As [`hash_file`], through a file already open for reading: the sealer
/// hashes each temp file through the handle it was written by, which saves
/// an open and a close per file. Reads by position, so the handle's offset
/// is left alone.
pub fn hash_open_file(file: &File) -> io::Result<BlobInfo> {
    HASH_BUFFER.with(|buf| hash_open_with(file, &mut buf.borrow_mut()))
}

fn hash_open_with(file: &File, buf: &mut [u8]) -> io::Result<BlobInfo> {
    let meta = file.metadata()?;
    if super::sparse::looks_sparse(&meta) {
        return super::sparse::hash_sparse(file, meta.len(), buf);
    }
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut size = 0u64;
    loop {
        let n = super::read_full_at(file, buf, size)?;
        sha256.update(&buf[..n]);
        sha1.update(&buf[..n]);
        size += n as u64;
        // Short only at the end: no extra read to learn it.
        if n < buf.len() {
            break;
        }
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

    #[test]
    fn same_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let a = store.put_bytes(b"hello").unwrap();
        let b = store.put_bytes(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(a.sha1, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
        assert_eq!(fs::read(store.blob_path(&a.sha256)).unwrap(), b"hello");
        let blobs: Vec<_> = fs::read_dir(dir.path().join("objects/2c"))
            .unwrap()
            .collect();
        assert_eq!(blobs.len(), 1);
    }

    #[test]
    fn temp_files_vanish_after_seal() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (path, mut file) = store.new_temp().unwrap();
        file.write_all(b"x").unwrap();
        drop(file);
        store.seal(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn the_sweep_moves_only_regular_files_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let objects = dir.path().join("objects");
        fs::create_dir_all(objects.join("cd")).unwrap();
        fs::write(outside.path().join("00"), "theirs").unwrap();
        fs::write(outside.path().join("11"), "theirs too").unwrap();
        std::os::unix::fs::symlink(outside.path(), objects.join("ab")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("11"), objects.join("cd/11")).unwrap();
        let done = store.set_aside_unreferenced(&HashSet::new()).unwrap();
        assert_eq!(done, SetAside::default());
        assert_eq!(fs::read(outside.path().join("00")).unwrap(), b"theirs");
        assert_eq!(fs::read(outside.path().join("11")).unwrap(), b"theirs too");
    }

    #[test]
    fn unreferenced_blobs_go_to_lost_found_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let keep = store.put_bytes(b"keep").unwrap();
        let lost = store.put_bytes(b"lost").unwrap();
        let empty = store.put_bytes(b"").unwrap();
        let live = HashSet::from([keep.sha256.clone()]);
        let done = store.set_aside_unreferenced(&live).unwrap();
        assert_eq!(
            done,
            SetAside {
                moved: 1,
                dropped: 1
            }
        );
        assert!(store.has_blob(&keep.sha256));
        assert!(!store.has_blob(&lost.sha256));
        assert!(!store.has_blob(&empty.sha256), "no bytes, nothing lost");
        let found = lost_found::entries(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, lost.sha256);
        assert_eq!(fs::read(&found[0].1).unwrap(), b"lost");
        assert!(store
            .restore_from_lost_found(&found[0].1, &lost.sha256)
            .unwrap());
        assert_eq!(fs::read(store.blob_path(&lost.sha256)).unwrap(), b"lost");
        assert!(lost_found::entries(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_sparse_blob_goes_to_lost_found_and_comes_back_by_its_sparse_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (temp, file) = store.new_temp().unwrap();
        file.set_len(8 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, b"data", 4 << 20).unwrap();
        drop(file);
        let sparse = store.seal(&temp).unwrap();
        assert!(sparse.is_sparse(), "{}", sparse.sha256);
        store.set_aside_unreferenced(&HashSet::new()).unwrap();
        let found = lost_found::entries(dir.path()).unwrap();
        assert_eq!(found.len(), 1, "fsck must list a sparse blob too");
        assert_eq!(found[0].0, sparse.sha256);
        assert!(store
            .restore_from_lost_found(&found[0].1, &sparse.sha256)
            .unwrap());
        assert!(store.has_blob(&sparse.sha256));
    }

    #[test]
    fn a_lost_found_file_whose_name_lies_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let real = store.put_bytes(b"real").unwrap();
        let liar = dir.path().join("liar");
        fs::write(&liar, b"not real").unwrap();
        assert!(!store.restore_from_lost_found(&liar, &real.sha256).unwrap());
        assert!(liar.exists());
    }

    #[test]
    fn unnamed_temp_files_go_to_lost_found_unless_stored_already() {
        let dir = tempfile::tempdir().unwrap();
        let (only_copy, duplicate) = {
            let store = ContentStore::open(dir.path()).unwrap();
            let (a, mut fa) = store.new_temp().unwrap();
            fa.write_all(b"acknowledged bytes").unwrap();
            let (b, mut fb) = store.new_temp().unwrap();
            fb.write_all(b"stored").unwrap();
            store.new_temp().unwrap();
            (a, b)
        };
        let store = ContentStore::open(dir.path()).unwrap();
        assert!(only_copy.exists(), "kept for recovery until set aside");
        // As if an earlier seal had stored these bytes already.
        let stored = hash_file(&duplicate).unwrap().sha256;
        let done = store.set_aside_temp(&HashSet::from([stored])).unwrap();
        assert_eq!(
            done,
            SetAside {
                moved: 1,
                dropped: 2
            }
        );
        assert!(!only_copy.exists() && !duplicate.exists());
        let found = lost_found::entries(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(fs::read(&found[0].1).unwrap(), b"acknowledged bytes");
    }
}

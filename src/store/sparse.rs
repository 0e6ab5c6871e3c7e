//! Files with holes: finding their data, naming them without reading the
//! holes, copying them hole for hole, and reading them with the holes'
//! zeros made in memory.
//!
//! Hashing a 1 TB file that holds one written block would read 1 TB of
//! zeros the kernel makes up, so a file with enough unallocated bytes
//! ([`looks_sparse`]) gets a different content address: the SHA-256 of a
//! canonical encoding of its size and non-zero blocks ([`hash_sparse`]),
//! written `<hex>.sparse` so it can never be taken for a dense file's
//! SHA-256 (whose name is 64 hex digits and nothing else). Its SHA-1 over
//! the real content is left empty and computed only by a backend that
//! needs it ([`real_sha1`]).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::blobs::BlobInfo;

/// Ends the name of every blob stored in its sparse form.
pub const SPARSE_SUFFIX: &str = ".sparse";

/// A file is stored sparse when at least this many of its bytes have no
/// disk block: below that, holes save little and every ordinary file
/// keeps the dense path (one read pass, SHA-256 and SHA-1 together).
const MIN_UNALLOCATED: u64 = 1 << 20;

/// The unit of the sparse encoding: blocks of zeros are left out, so the
/// address does not depend on where the file system happened to allocate.
const BLOCK: u64 = 4096;

/// Separates the sparse encoding from any other SHA-256 input.
const DOMAIN: &[u8] = b"pushfs sparse file v1\0";

/// Whether a file with this metadata is stored in the sparse form.
pub fn looks_sparse(meta: &Metadata) -> bool {
    let allocated = meta.blocks().saturating_mul(512);
    meta.len().saturating_sub(allocated) >= MIN_UNALLOCATED
}

/// Whether a blob name is a sparse file's address.
pub fn is_sparse_name(name: &str) -> bool {
    name.ends_with(SPARSE_SUFFIX)
}

/// A blob's name as bytes: its 32-byte digest and whether it is the
/// sparse form. `None` for anything else.
pub fn parse_blob_name(name: &str) -> Option<([u8; 32], bool)> {
    let (hex_name, sparse) = match name.strip_suffix(SPARSE_SUFFIX) {
        Some(hex_name) => (hex_name, true),
        None => (name, false),
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_name, &mut digest).ok()?;
    Some((digest, sparse))
}

/// The store's name of a blob: lowercase hex, with `.sparse` for the
/// sparse form.
pub fn blob_name(digest: &[u8; 32], sparse: bool) -> String {
    let hex_name = hex::encode(digest);
    if sparse {
        format!("{hex_name}{SPARSE_SUFFIX}")
    } else {
        hex_name
    }
}

/// `lseek(2)` with `SEEK_DATA` or `SEEK_HOLE`; `None` past the last data
/// (`ENXIO`).
pub fn seek(file: &File, offset: u64, whence: i32) -> io::Result<Option<u64>> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::ENXIO))?;
    // SAFETY: a plain call on a descriptor `file` owns; every read of it
    // is positional, so moving its offset disturbs nothing.
    let at = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    if at < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(err),
        };
    }
    Ok(Some(at as u64))
}

/// The byte ranges of `file` that hold data, in order, below `size`.
pub fn data_extents(file: &File, size: u64) -> io::Result<Vec<Range<u64>>> {
    let mut extents = Vec::new();
    let mut at = 0;
    while at < size {
        let Some(start) = seek(file, at, libc::SEEK_DATA)? else {
            break;
        };
        if start >= size {
            break;
        }
        let end = seek(file, start, libc::SEEK_HOLE)?
            .unwrap_or(size)
            .min(size);
        extents.push(start..end);
        at = end;
    }
    Ok(extents)
}

/// The sparse content address of an open file of `size` bytes: SHA-256
/// over the domain tag, the size, and for every 4 KiB block that is not all
/// zeros its offset and bytes (the last block may be short; the size says
/// how short). Only the data extents are read.
pub fn hash_sparse(file: &File, size: u64, buf: &mut [u8]) -> io::Result<BlobInfo> {
    let mut sha256 = Sha256::new();
    sha256.update(DOMAIN);
    sha256.update(size.to_be_bytes());
    let chunk = (buf.len() as u64 / BLOCK * BLOCK).max(BLOCK) as usize;
    for extent in data_extents(file, size)? {
        // Whole blocks, so the encoding is the same however the extents fall.
        let mut at = extent.start / BLOCK * BLOCK;
        let end = extent.end.div_ceil(BLOCK).saturating_mul(BLOCK).min(size);
        while at < end {
            let want = chunk.min((end - at) as usize);
            let got = read_full_at(file, &mut buf[..want], at)?;
            for (i, block) in buf[..got].chunks(BLOCK as usize).enumerate() {
                if block.iter().any(|&b| b != 0) {
                    sha256.update((at + i as u64 * BLOCK).to_be_bytes());
                    sha256.update(block);
                }
            }
            at += got as u64;
            if got < want {
                // Truncated by a writer that came meanwhile: this address
                // is stale, and the seal drops it (the file's generation
                // moved), as it drops a dense hash of a moving file.
                break;
            }
        }
    }
    Ok(BlobInfo {
        sha256: blob_name(&sha256.finalize().into(), true),
        sha1: String::new(),
        size,
    })
}

/// Fills `buf` from `offset`, short only at end of file; the count read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Copies `from` into the empty `to` extent by extent, so holes stay holes.
pub fn copy_keeping_holes(from: &File, to: &File) -> io::Result<()> {
    let size = from.metadata()?.len();
    to.set_len(size)?;
    for extent in data_extents(from, size)? {
        let mut src = extent.start as libc::loff_t;
        let mut dst = src;
        let mut left = (extent.end - extent.start) as usize;
        while left > 0 {
            // SAFETY: both descriptors are owned by the `File`s, and the
            // offsets are plain integers the call updates.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    &mut src,
                    to.as_raw_fd(),
                    &mut dst,
                    left,
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its size",
                ));
            }
            left -= n as usize;
        }
    }
    Ok(())
}

/// Reads a blob front to back, making the zeros of its holes in memory
/// instead of asking the disk for them.
pub struct BlobReader {
    file: File,
    size: u64,
    /// Data extents still ahead, in order; empty for a dense blob, which
    /// is read as it is.
    extents: std::collections::VecDeque<Range<u64>>,
    sparse: bool,
    at: u64,
}

impl BlobReader {
    pub fn open(path: &Path) -> io::Result<BlobReader> {
        BlobReader::new(File::open(path)?)
    }

    pub fn new(file: File) -> io::Result<BlobReader> {
        let meta = file.metadata()?;
        let size = meta.len();
        let sparse = looks_sparse(&meta);
        let extents = if sparse {
            data_extents(&file, size)?.into()
        } else {
            Default::default()
        };
        Ok(BlobReader {
            file,
            size,
            extents,
            sparse,
            at: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.sparse {
            let n = self.file.read_at(buf, self.at)?;
            self.at += n as u64;
            return Ok(n);
        }
        while self.extents.front().is_some_and(|e| e.end <= self.at) {
            self.extents.pop_front();
        }
        let left = self.size.saturating_sub(self.at);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = match self.extents.front() {
            Some(data) if data.start <= self.at => {
                let want = buf.len().min((data.end - self.at) as usize);
                self.file.read_at(&mut buf[..want], self.at)?
            }
            next => {
                let hole_end = next.map_or(self.size, |e| e.start);
                let n = buf.len().min((hole_end - self.at) as usize);
                buf[..n].fill(0);
                n
            }
        };
        self.at += n as u64;
        Ok(n)
    }
}

/// SHA-1 of a blob's real content (holes as zeros), for a sparse blob whose
/// SHA-1 was not computed at seal.
pub fn real_sha1(path: &Path) -> io::Result<String> {
    let mut reader = BlobReader::open(path)?;
    let mut sha1 = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha1.update(&buf[..n]);
    }
    Ok(hex::encode(sha1.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sparse_file(dir: &Path, name: &str, size: u64, writes: &[(u64, &[u8])]) -> File {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .unwrap();
        file.set_len(size).unwrap();
        for (at, bytes) in writes {
            file.write_all_at(bytes, *at).unwrap();
        }
        file
    }

    #[test]
    fn a_file_with_a_big_hole_is_sparse_and_a_written_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let holey = sparse_file(dir.path(), "a", 1 << 30, &[(4096, b"x")]);
        assert!(looks_sparse(&holey.metadata().unwrap()));
        let mut dense = File::create(dir.path().join("b")).unwrap();
        dense.write_all(&vec![7u8; 3 << 20]).unwrap();
        dense.sync_all().unwrap();
        assert!(!looks_sparse(&dense.metadata().unwrap()));
    }

    #[test]
    fn the_sparse_address_depends_on_content_not_on_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let a = sparse_file(dir.path(), "a", 1 << 30, &[(1 << 20, b"hello")]);
        // The same bytes, with a block of written zeros before them.
        let b = sparse_file(
            dir.path(),
            "b",
            1 << 30,
            &[((1 << 20) - 4096, &[0u8; 4096]), (1 << 20, b"hello")],
        );
        let c = sparse_file(dir.path(), "c", 1 << 30, &[(1 << 20, b"hellp")]);
        let d = sparse_file(dir.path(), "d", (1 << 30) + 1, &[(1 << 20, b"hello")]);
        let mut name = |f: &File| hash_sparse(f, f.metadata().unwrap().len(), &mut buf).unwrap();
        let (a, b, c, d) = (name(&a), name(&b), name(&c), name(&d));
        assert_eq!(a, b);
        assert_ne!(a.sha256, c.sha256);
        assert_ne!(a.sha256, d.sha256);
        assert!(is_sparse_name(&a.sha256));
        assert_eq!(a.sha256.len(), 64 + SPARSE_SUFFIX.len());
        assert_eq!(a.size, 1 << 30);
    }

    #[test]
    fn reading_makes_the_holes_zeros_and_copies_keep_them() {
        let dir = tempfile::tempdir().unwrap();
        let size = (64 << 20) + 5;
        let from = sparse_file(
            dir.path(),
            "a",
            size,
            &[(3, b"abc"), (40 << 20, b"middle"), (size - 2, b"z")],
        );
        let to = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("b"))
            .unwrap();
        copy_keeping_holes(&from, &to).unwrap();
        let meta = to.metadata().unwrap();
        assert_eq!(meta.len(), size);
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        for file in [from, to] {
            let mut reader = BlobReader::new(file).unwrap();
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            let mut expected = vec![0u8; size as usize];
            expected[3..6].copy_from_slice(b"abc");
            expected[40 << 20..(40 << 20) + 6].copy_from_slice(b"middle");
            expected[size as usize - 2] = b'z';
            assert!(all == expected, "content differs");
            assert_eq!(
                real_sha1(&dir.path().join("a")).unwrap(),
                hex::encode(Sha1::digest(&expected))
            );
        }
    }
}

//! Deterministic zip archives: the `application` part of a Cloud Foundry
//! bits upload.
//!
//! The same entries give byte-identical archives: entries sorted by path,
//! a fixed Deflate level. Each entry carries its mtime, as the cf CLI writes
//! it: the DOS time (UTC, two-second steps) plus the extended-timestamp
//! field (0x5455) with the exact second, which Info-ZIP's unzip restores.
//! Static servers derive `Last-Modified` and `ETag` from it.
//! Unix permissions go into the external attributes (the Cloud Controller
//! unzips with Info-ZIP, which restores them), directories end in `/`, and a
//! symlink is a link entry whose content is its target, as the cf CLI
//! writes them. The zip crate stores directory and symlink entries
//! uncompressed; they are empty or tiny, and the server accepts both.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

use zip::write::FullFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::progress::{ByteCounter, CountingReader};
use crate::snapshot::{EntryKind, SnapshotEntry};
use crate::store::BlobReader;

/// Deflate level 6 is flate2's default; naming it keeps archives stable even
/// if the crate's default changes, and keeps the zip crate off Zopfli.
const DEFLATE_LEVEL: i64 = 6;

/// Entries at least this big need Zip64 fields.
const ZIP64_THRESHOLD: u64 = 0xFFFF_FFFF;

#[derive(Debug, Error)]
pub enum ZipWriteError {
    #[error("cannot read {path} for the zip: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the zip: {0}")]
    Write(#[from] io::Error),
    #[error("cannot write the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

impl From<ZipWriteError> for io::Error {
    fn from(err: ZipWriteError) -> io::Error {
        match err {
            ZipWriteError::Read { source, .. } => source,
            ZipWriteError::Write(err) => err,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// What went into an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Lowercase hex SHA-256 of the archive's bytes.
    pub sha256: String,
    /// Archive size in bytes.
    pub size: u64,
    /// Regular files in the archive.
    pub files: usize,
    /// All entries: files, directories and symlinks.
    pub entries: usize,
}

/// Writes `entries` (any order; they are sorted here) into a zip on `out`,
/// adding the file content it reads to `read`. Returns `out` positioned at
/// the end of the archive.
pub fn write_zip<'a, W: Write + Seek>(
    entries: impl IntoIterator<Item = &'a SnapshotEntry>,
    out: W,
    read: &ByteCounter,
) -> Result<W, ZipWriteError> {
    let mut sorted: Vec<&SnapshotEntry> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut zip = ZipWriter::new(out);
    for entry in sorted {
        let options = FullFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .unix_permissions(entry.mode);
        let options = with_mtime(options, entry.mtime)?;
        match &entry.kind {
            EntryKind::Dir => zip.add_directory(format!("{}/", entry.path), options)?,
            EntryKind::Symlink { target } => zip.add_symlink(&entry.path, target, options)?,
            EntryKind::File(content) => {
                let options = options.large_file(content.blob.size >= ZIP64_THRESHOLD);
                zip.start_file(&entry.path, options)?;
                // Holes come as zeros made in memory, not read from the disk.
                let path = content.path();
                let blob = BlobReader::open(&path).map_err(|source| ZipWriteError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mut blob = CountingReader::new(blob, read.clone());
                io::copy(&mut blob, &mut zip)
                    .map_err(|source| ZipWriteError::Read { path, source })?;
            }
        }
    }
    Ok(zip.finish()?)
}

/// `options` dated `mtime`: the DOS field, and the extended timestamp in
/// the local and central headers (flags 1: mtime only). Times outside the
/// DOS range (before 1980, after 2107) keep the DOS default and the exact
/// extended field where it fits in 32 bits.
fn with_mtime(
    options: FullFileOptions<'static>,
    mtime: SystemTime,
) -> Result<FullFileOptions<'static>, ZipWriteError> {
    let secs = match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    };
    let mut options = options.last_modified_time(dos_time(secs).unwrap_or_default());
    if let Ok(unix) = i32::try_from(secs) {
        let mut field = vec![1u8];
        field.extend_from_slice(&unix.to_le_bytes());
        options.add_extra_data(0x5455, field.into_boxed_slice(), false)?;
    }
    Ok(options)
}

/// The DOS date and time (UTC) of a Unix time, if it is representable.
fn dos_time(secs: i64) -> Option<DateTime> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let year = u16::try_from(year).ok()?;
    DateTime::from_date_and_time(
        year,
        month,
        day,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
    .ok()
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 to (y, m, d).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes the zip into an unnamed temp file in `dir` (on disk, so memory
/// does not grow with the app) and hashes it; `read` counts the file
/// content read, as [`write_zip`]. The file comes back rewound, ready to
/// stream; it disappears when closed.
pub fn write_zip_to_temp<'a>(
    entries: impl IntoIterator<Item = &'a SnapshotEntry>,
    dir: &Path,
    read: &ByteCounter,
) -> Result<(File, ZipSummary), ZipWriteError> {
    let entries: Vec<&SnapshotEntry> = entries.into_iter().collect();
    let files = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)))
        .count();
    let count = entries.len();
    let mut file = write_zip(entries, tempfile::tempfile_in(dir)?, read)?;
    let size = file.stream_position()?;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok((
        file,
        ZipSummary {
            sha256: hex::encode(hasher.finalize()),
            size,
            files,
            entries: count,
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::process::Command;

    use super::*;
    use crate::kind::{BackendKind, IgnoreProfile};
    use crate::snapshot::Snapshot;
    use crate::store::ContentStore;

    /// A tree with a nested file, an empty dir, an executable, a symlink
    /// and an empty file, imported into a store.
    fn snapshot(tmp: &Path) -> Snapshot {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let app = tmp.join("app");
        std::fs::create_dir_all(app.join("src/deep")).unwrap();
        std::fs::create_dir_all(app.join("e")).unwrap();
        std::fs::write(app.join("src/deep/main.py"), "print('hi')\n".repeat(100)).unwrap();
        std::fs::write(
            app.join("run.sh"),
            "#!/bin/sh\nexec python3 src/deep/main.py\n",
        )
        .unwrap();
        std::fs::set_permissions(app.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(app.join("z"), "").unwrap();
        std::fs::set_permissions(app.join("z"), std::fs::Permissions::from_mode(0o600)).unwrap();
        symlink("run.sh", app.join("l")).unwrap();
        let store = ContentStore::open(&tmp.join("store")).unwrap();
        let mut snap =
            Snapshot::from_dir(&app, BackendKind::Cf, &IgnoreProfile::default(), &store).unwrap();
        // Two imports must not differ by the second they were written in.
        for entry in std::sync::Arc::make_mut(&mut snap.entries) {
            entry.mtime = mtime();
        }
        snap
    }

    /// 2026-05-03 03:09:37 UTC.
    fn mtime() -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(1_777_777_777)
    }

    fn zip_bytes(entries: &[SnapshotEntry]) -> Vec<u8> {
        write_zip(entries, Cursor::new(Vec::new()), &ByteCounter::new())
            .unwrap()
            .into_inner()
    }

    #[test]
    fn same_entries_give_the_same_bytes_in_any_order() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = snapshot(tmp.path());
        let a = zip_bytes(&snap.entries);
        let mut reversed = snap.entries.to_vec();
        reversed.reverse();
        let b = zip_bytes(&reversed);
        assert_eq!(a, b);
        // A second import of the same tree (fresh store) is identical too.
        let tmp2 = tempfile::tempdir().unwrap();
        assert_eq!(a, zip_bytes(&snapshot(tmp2.path()).entries));
    }

    #[test]
    fn entries_carry_names_modes_kinds_and_content() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = snapshot(tmp.path());
        let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes(&snap.entries))).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        assert_eq!(
            names,
            [
                "e/",
                "l",
                "run.sh",
                "src/",
                "src/deep/",
                "src/deep/main.py",
                "z"
            ]
        );
        let mode = |archive: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str| {
            archive.by_name(name).unwrap().unix_mode().unwrap()
        };
        assert_eq!(mode(&mut archive, "e/"), 0o040755);
        assert_eq!(mode(&mut archive, "run.sh"), 0o100755);
        assert_eq!(mode(&mut archive, "z"), 0o100600);
        assert_eq!(
            mode(&mut archive, "l") & 0o170000,
            0o120000,
            "a symlink entry"
        );
        assert!(archive.by_name("e/").unwrap().is_dir());

        let mut main = archive.by_name("src/deep/main.py").unwrap();
        assert_eq!(main.compression(), CompressionMethod::Deflated);
        assert!(
            main.compressed_size() < main.size(),
            "deflate actually compressed"
        );
        let mut text = String::new();
        main.read_to_string(&mut text).unwrap();
        assert_eq!(text, "print('hi')\n".repeat(100));
        drop(main);

        let mut link = archive.by_name("l").unwrap();
        let mut target = String::new();
        link.read_to_string(&mut target).unwrap();
        assert_eq!(target, "run.sh");
        drop(link);

        for i in 0..archive.len() {
            let entry = archive.by_index(i).unwrap();
            let t = entry.last_modified().unwrap();
            assert_eq!(
                (
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
                (2026, 5, 3, 3, 9, 36),
                "{}: the DOS time, in two-second steps",
                entry.name()
            );
        }
    }

    #[test]
    fn temp_file_holds_the_archive_and_its_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = snapshot(tmp.path());
        let read = ByteCounter::new();
        let (mut file, summary) =
            write_zip_to_temp(snap.entries.iter(), tmp.path(), &read).unwrap();
        let content: u64 = snap.files().map(|(_, f)| f.blob.size).sum();
        assert_eq!(
            read.get(),
            content,
            "every byte of file content is counted once"
        );
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, zip_bytes(&snap.entries));
        assert_eq!(summary.size, bytes.len() as u64);
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(summary.files, 3);
        assert_eq!(summary.entries, 7);
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            2,
            "only app/ and store/, no named temp file: {leftovers:?}"
        );
    }

    #[test]
    fn info_zip_reads_the_archive() {
        let unzip = Path::new("/usr/bin/unzip");
        assert!(
            unzip.exists(),
            "this test needs Info-ZIP's /usr/bin/unzip (scripts/test.sh installs it)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let snap = snapshot(tmp.path());
        let zip_path = tmp.path().join("app.zip");
        std::fs::write(&zip_path, zip_bytes(&snap.entries)).unwrap();

        let listing = Command::new(unzip)
            .arg("-Z")
            .arg(&zip_path)
            .output()
            .unwrap();
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8(listing.stdout).unwrap();
        let line = |name: &str| {
            listing
                .lines()
                .find(|l| l.split_whitespace().last() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing from:\n{listing}"))
                .to_string()
        };
        assert!(line("run.sh").starts_with("-rwxr-xr-x"), "{listing}");
        assert!(line("z").starts_with("-rw-------"), "{listing}");
        assert!(line("e/").starts_with("drwxr-xr-x"), "{listing}");
        assert!(line("l").starts_with("lrwxrwxrwx"), "{listing}");
        assert!(line("src/deep/main.py").contains("defN"), "{listing}");

        let out = tmp.path().join("out");
        let status = Command::new(unzip)
            .arg("-qq")
            .arg(&zip_path)
            .arg("-d")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_link(out.join("l")).unwrap(),
            Path::new("run.sh")
        );
        assert!(out.join("e").is_dir());
        assert_eq!(
            std::fs::read_to_string(out.join("src/deep/main.py")).unwrap(),
            "print('hi')\n".repeat(100)
        );
        use std::os::unix::fs::MetadataExt;
        let restored = std::fs::metadata(out.join("src/deep/main.py")).unwrap();
        assert_eq!(
            restored.mtime(),
            1_777_777_777,
            "unzip restores the exact second from the extended timestamp"
        );
    }

    #[test]
    fn dos_times_are_utc_and_out_of_range_times_fall_back() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = dos_time(1_777_777_777).unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (2026, 5, 3));
        assert!(dos_time(0).is_none(), "1970 is before the DOS epoch");
        let snap_entry = |mtime| SnapshotEntry {
            path: "d".into(),
            mode: 0o755,
            kind: EntryKind::Dir,
            mtime,
        };
        let bytes = zip_bytes(&[snap_entry(UNIX_EPOCH)]);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let t = archive.by_index(0).unwrap().last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
    }
}

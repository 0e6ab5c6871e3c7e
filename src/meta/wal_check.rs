//! Reads SQLite's write-ahead log (`meta.db-wal`) before SQLite does, to
//! tell a log that a crash merely cut short from one that was damaged.
//!
//! SQLite replays the log from the start and stops, silently, at the first
//! frame whose salt or checksum is wrong; every transaction after it is
//! dropped. A torn last transaction is normal (it was never acknowledged),
//! but intact commit frames of the current log generation *after* the
//! break mean acknowledged transactions were lost. Each frame's checksum
//! chains from the previous frame's stored checksum, so a frame past the
//! break can be verified on its own; frames with other salts are leftovers
//! of an earlier generation of the log and are ignored, as SQLite does.
//!
//! The format: <https://www.sqlite.org/fileformat2.html#walformat>.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

const HEADER_LEN: usize = 32;
const FRAME_HEADER_LEN: usize = 24;
const MAGIC_LE: u32 = 0x377f_0682;
const MAGIC_BE: u32 = 0x377f_0683;
const FORMAT_VERSION: u32 = 3_007_000;

/// What reading the log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalScan {
    /// Frames SQLite will replay: up to the last commit before the break.
    pub replayed_frames: u64,
    /// Frames of the current generation in the file.
    pub frames: u64,
    /// Intact committed transactions after the break: SQLite drops them.
    pub lost_commits: u64,
    /// The header itself is damaged: SQLite ignores the whole log.
    pub header_damaged: bool,
}

impl WalScan {
    /// Whether acknowledged transactions are lost if SQLite opens the log.
    pub fn is_damaged(&self) -> bool {
        self.lost_commits > 0 || self.header_damaged
    }
}

struct Header {
    big_endian: bool,
    page_size: usize,
    salts: [u8; 8],
    checksum: (u32, u32),
}

/// Scans the log at `wal`; a missing or empty log is a clean one.
pub fn scan(wal: &Path) -> io::Result<WalScan> {
    let mut file = match File::open(wal) {
        Ok(file) => io::BufReader::with_capacity(1 << 20, file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(WalScan::default()),
        Err(e) => return Err(e),
    };
    let mut raw = [0u8; HEADER_LEN];
    if !read_full(&mut file, &mut raw)? {
        return Ok(WalScan::default());
    }
    let Some(header) = parse_header(&raw) else {
        // SQLite writes the header with the first frame: a log this long
        // with a bad header held frames that it will ignore.
        let len = std::fs::metadata(wal)?.len();
        return Ok(WalScan {
            header_damaged: len > HEADER_LEN as u64,
            ..WalScan::default()
        });
    };
    let mut frame = vec![0u8; FRAME_HEADER_LEN + header.page_size];
    let mut scan = WalScan::default();
    let mut chain = Some(header.checksum);
    let mut previous_stored = header.checksum;
    let mut index = 0u64;
    while read_full(&mut file, &mut frame)? {
        index += 1;
        if frame[8..16] != header.salts {
            break;
        }
        scan.frames = index;
        let stored = (be32(&frame[16..20]), be32(&frame[20..24]));
        let commit = be32(&frame[4..8]) != 0;
        match chain {
            Some(seed) if frame_checksum(&frame, seed, header.big_endian) == stored => {
                chain = Some(stored);
                if commit {
                    scan.replayed_frames = index;
                }
            }
            Some(_) => chain = None,
            None => {
                let intact = frame_checksum(&frame, previous_stored, header.big_endian) == stored;
                if intact && commit {
                    scan.lost_commits += 1;
                }
            }
        }
        previous_stored = stored;
    }
    Ok(scan)
}

/// Rewrites every frame checksum of the log's current generation so that
/// SQLite replays all of them, damaged ones included. For a scratch copy
/// only: what a damaged frame holds is whatever the damage left.
pub fn rechain(wal: &Path) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(wal)?;
    let mut raw = [0u8; HEADER_LEN];
    if !read_full(&mut file, &mut raw)? {
        return Ok(0);
    }
    let header = parse_header(&raw)
        .ok_or_else(|| io::Error::other("the log's header is damaged; nothing to replay"))?;
    let mut frame = vec![0u8; FRAME_HEADER_LEN + header.page_size];
    let mut seed = header.checksum;
    let mut frames = 0u64;
    let mut offset = HEADER_LEN as u64;
    loop {
        file.seek(SeekFrom::Start(offset))?;
        if !read_full(&mut file, &mut frame)? || frame[8..16] != header.salts {
            break;
        }
        seed = frame_checksum(&frame, seed, header.big_endian);
        file.seek(SeekFrom::Start(offset + 16))?;
        file.write_all(&seed.0.to_be_bytes())?;
        file.write_all(&seed.1.to_be_bytes())?;
        frames += 1;
        offset += frame.len() as u64;
    }
    Ok(frames)
}

fn parse_header(raw: &[u8; HEADER_LEN]) -> Option<Header> {
    let magic = be32(&raw[0..4]);
    let big_endian = match magic {
        MAGIC_LE => false,
        MAGIC_BE => true,
        _ => return None,
    };
    if be32(&raw[4..8]) != FORMAT_VERSION {
        return None;
    }
    let page_size = match be32(&raw[8..12]) {
        1 => 65536,
        n if (512..=32768).contains(&n) && n.is_power_of_two() => n as usize,
        _ => return None,
    };
    let checksum = (be32(&raw[24..28]), be32(&raw[28..32]));
    if checksum_words(&raw[..24], (0, 0), big_endian) != checksum {
        return None;
    }
    let mut salts = [0u8; 8];
    salts.copy_from_slice(&raw[16..24]);
    Some(Header {
        big_endian,
        page_size,
        salts,
        checksum,
    })
}

/// A frame's cumulative checksum: its header's first 8 bytes, then the page.
fn frame_checksum(frame: &[u8], seed: (u32, u32), big_endian: bool) -> (u32, u32) {
    let partial = checksum_words(&frame[..8], seed, big_endian);
    checksum_words(&frame[FRAME_HEADER_LEN..], partial, big_endian)
}

/// SQLite's WAL checksum over 32-bit words in the log's byte order.
fn checksum_words(data: &[u8], seed: (u32, u32), big_endian: bool) -> (u32, u32) {
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let (mut s0, mut s1) = seed;
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Fills `buf`; false at a clean end of file or a short last piece.
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A database whose log holds `commits` transactions no checkpoint has
    /// folded in, left as a crash would leave it (the connection leaked).
    fn crashed_db(dir: &Path, commits: usize) -> std::path::PathBuf {
        let db = dir.join("t.db");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER, pad TEXT)")
            .unwrap();
        for n in 0..commits {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                (n as i64, "x".repeat(3000)),
            )
            .unwrap();
        }
        std::mem::forget(conn);
        dir.join("t.db-wal")
    }

    fn count(db: &Path) -> i64 {
        let conn = Connection::open(db).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// A copy of the crashed database and its log, as SQLite would see them.
    fn copy_db(dir: &Path, name: &str) -> std::path::PathBuf {
        let db = dir.join(name);
        std::fs::copy(dir.join("t.db"), &db).unwrap();
        std::fs::copy(dir.join("t.db-wal"), dir.join(format!("{name}-wal"))).unwrap();
        db
    }

    fn flip(wal: &Path, offset: u64) {
        let mut file = OpenOptions::new().read(true).write(true).open(wal).unwrap();
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.read_exact(&mut byte).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&[byte[0] ^ 0xff]).unwrap();
    }

    #[test]
    fn an_intact_log_is_replayed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let wal = crashed_db(dir.path(), 20);
        let scan = scan(&wal).unwrap();
        assert!(!scan.is_damaged(), "{scan:?}");
        assert_eq!(scan.replayed_frames, scan.frames);
        assert!(scan.frames >= 20);
        assert_eq!(count(&copy_db(dir.path(), "a.db")), 20);
    }

    #[test]
    fn a_cut_tail_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let wal = crashed_db(dir.path(), 20);
        let len = std::fs::metadata(&wal).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&wal)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        let scan = scan(&wal).unwrap();
        assert!(!scan.is_damaged(), "{scan:?}");
    }

    #[test]
    fn a_garbled_frame_is_found_and_rechaining_replays_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let wal = crashed_db(dir.path(), 40);
        let page = 4096u64;
        // A byte of the tenth frame's stored checksum: SQLite stops there.
        flip(
            &wal,
            HEADER_LEN as u64 + 9 * (FRAME_HEADER_LEN as u64 + page) + 17,
        );
        let found = scan(&wal).unwrap();
        assert!(found.is_damaged(), "{found:?}");
        assert!(found.replayed_frames < 10);
        assert!(found.lost_commits >= 20, "{found:?}");
        assert!(
            count(&copy_db(dir.path(), "a.db")) < 10,
            "SQLite drops the rest"
        );
        let salvage = copy_db(dir.path(), "b.db");
        assert_eq!(rechain(&dir.path().join("b.db-wal")).unwrap(), found.frames);
        assert_eq!(count(&salvage), 40, "every row is back");
    }

    #[test]
    fn a_garbled_header_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let wal = crashed_db(dir.path(), 5);
        flip(&wal, 13);
        assert!(scan(&wal).unwrap().header_damaged);
    }
}

//! Synthetic metadata workload: inode records, file names and a deterministic shuffle.

/// Number of parent directories the files are spread over.
pub const PARENT_DIRS: u64 = 50;
/// First parent directory inode (1 is the root).
const FIRST_DIR_INO: u64 = 2;
/// First file inode; everything below is reserved for directories.
const FIRST_FILE_INO: u64 = 1_000;

/// One inode row, the same for both engines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub kind: u8,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub nlink: u32,
    /// Content hash as 64 hex chars, empty until the file is sealed.
    pub blob: String,
}

/// Fixed-width part of [`Inode::encode`]: kind, perm, uid, gid, size, mtime, ctime, nlink.
const FIXED_LEN: usize = 1 + 4 + 4 + 4 + 8 + 8 + 8 + 4;

impl Inode {
    /// A fresh, unsealed regular file as `create` would insert it.
    pub fn new_file(op: u64) -> Self {
        let now = 1_700_000_000_000_000_000 + op as i64;
        Inode {
            kind: 1,
            perm: 0o644,
            uid: 1000,
            gid: 1000,
            size: 0,
            mtime_ns: now,
            ctime_ns: now,
            nlink: 1,
            blob: String::new(),
        }
    }

    /// Little-endian binary layout used as the redb value (the blob hex string is kept as text,
    /// so both engines store the same payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.blob.len());
        out.push(self.kind);
        out.extend_from_slice(&self.perm.to_le_bytes());
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.extend_from_slice(&self.gid.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.ctime_ns.to_le_bytes());
        out.extend_from_slice(&self.nlink.to_le_bytes());
        out.extend_from_slice(self.blob.as_bytes());
        out
    }

    /// Inverse of [`Inode::encode`]; `None` on a malformed record.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < FIXED_LEN {
            return None;
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let field = &bytes[at..at + n];
            at += n;
            field
        };
        let kind = take(1)[0];
        let perm = u32::from_le_bytes(take(4).try_into().ok()?);
        let uid = u32::from_le_bytes(take(4).try_into().ok()?);
        let gid = u32::from_le_bytes(take(4).try_into().ok()?);
        let size = u64::from_le_bytes(take(8).try_into().ok()?);
        let mtime_ns = i64::from_le_bytes(take(8).try_into().ok()?);
        let ctime_ns = i64::from_le_bytes(take(8).try_into().ok()?);
        let nlink = u32::from_le_bytes(take(4).try_into().ok()?);
        let blob = std::str::from_utf8(&bytes[FIXED_LEN..]).ok()?.to_owned();
        Some(Inode {
            kind,
            perm,
            uid,
            gid,
            size,
            mtime_ns,
            ctime_ns,
            nlink,
            blob,
        })
    }
}

/// Inode number of the file created by operation `op`.
pub fn file_ino(op: u64) -> u64 {
    FIRST_FILE_INO + op
}

/// Parent directory the file of operation `op` is created in.
pub fn parent_of(op: u64) -> u64 {
    FIRST_DIR_INO + op % PARENT_DIRS
}

/// Name the file of operation `op` is created under (`f00001`, ...).
pub fn created_name(op: u64) -> String {
    format!("f{:05}", op + 1)
}

/// Parent directory the file of operation `op` is renamed into (always a different directory).
pub fn renamed_parent(op: u64) -> u64 {
    FIRST_DIR_INO + (op + 1) % PARENT_DIRS
}

/// Name the file of operation `op` is renamed to.
pub fn renamed_name(op: u64) -> String {
    format!("r{:05}", op + 1)
}

/// Size recorded by `seal` for the file of operation `op`.
pub fn sealed_size(op: u64) -> u64 {
    4096 + op * 17
}

/// A deterministic 64-hex-char content hash for the file of operation `op`.
pub fn blob_hash(op: u64) -> String {
    let mut state = op ^ 0x5eed_f00d_cafe_d00d;
    (0..4)
        .map(|_| format!("{:016x}", splitmix64(&mut state)))
        .collect()
}

/// `0..n` in a deterministic pseudo-random order (Fisher-Yates over splitmix64).
pub fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut state = seed;
    for i in (1..order.len()).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

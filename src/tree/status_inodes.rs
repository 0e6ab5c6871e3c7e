//! Inode numbers of the virtual `.pushfs/` entries: derived from the app
//! root's inode, so they need no table and never collide with stored inodes.

use super::node::Ino;
use super::status_files::StatusFile;

/// Stored inode numbers stay far below this bit.
const STATUS_BIT: Ino = 1 << 62;
/// Slots per app: the directory and up to 31 files.
const SLOT_BITS: u32 = 5;

/// A virtual entry: an app's `.pushfs/` directory or one of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusInode {
    Dir { root: Ino },
    File { root: Ino, file: StatusFile },
}

impl StatusInode {
    pub fn dir_ino(root: Ino) -> Ino {
        STATUS_BIT | (root << SLOT_BITS)
    }

    pub fn file_ino(root: Ino, file: StatusFile) -> Ino {
        let index = StatusFile::ALL
            .iter()
            .position(|f| *f == file)
            .expect("every status file is listed");
        Self::dir_ino(root) + 1 + index as Ino
    }

    pub fn ino(self) -> Ino {
        match self {
            StatusInode::Dir { root } => Self::dir_ino(root),
            StatusInode::File { root, file } => Self::file_ino(root, file),
        }
    }

    pub fn decode(ino: Ino) -> Option<StatusInode> {
        if ino & STATUS_BIT == 0 {
            return None;
        }
        let slot = (ino & ((1 << SLOT_BITS) - 1)) as usize;
        let root = (ino & !STATUS_BIT) >> SLOT_BITS;
        match slot {
            0 => Some(StatusInode::Dir { root }),
            n => StatusFile::ALL
                .get(n - 1)
                .map(|file| StatusInode::File { root, file: *file }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_stay_apart() {
        const _: () = assert!(StatusFile::ALL.len() < (1 << SLOT_BITS));
        for root in [2, 77, 1 << 40] {
            let dir = StatusInode::Dir { root };
            assert_eq!(StatusInode::decode(dir.ino()), Some(dir));
            for file in StatusFile::ALL {
                let f = StatusInode::File { root, file };
                assert_eq!(StatusInode::decode(f.ino()), Some(f));
            }
        }
        assert_eq!(StatusInode::decode(12345), None);
    }
}

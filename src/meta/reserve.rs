//! Room kept on the state disk, so that deleting still works when it is
//! full: every change, a delete included, is a commit that needs a little
//! space in the write-ahead log. A commit that finds the disk full releases
//! the reserve and tries once more; the reserve comes back once commits
//! free space again.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::private_files::private_file_options;

/// Enough for thousands of deletes.
const RESERVE_BYTES: i64 = 4 << 20;
pub const RESERVE_FILE: &str = "meta.reserve";

#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    held: AtomicBool,
}

impl Reserve {
    pub fn new(path: PathBuf) -> Reserve {
        let reserve = Reserve {
            path,
            held: AtomicBool::new(false),
        };
        reserve.restore();
        reserve
    }

    /// Gives the room back to the disk. Returns whether there was any.
    pub fn release(&self) -> bool {
        if !self.held.swap(false, Ordering::SeqCst) {
            return false;
        }
        tracing::warn!("the state disk is full; using the space kept for deletes");
        fs::remove_file(&self.path).is_ok()
    }

    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Takes the room again, if the disk has it.
    pub fn restore(&self) {
        if self.is_held() {
            return;
        }
        let taken = private_file_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .and_then(|file| {
                // SAFETY: a valid descriptor we own; posix_fallocate has no other inputs.
                match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, RESERVE_BYTES) } {
                    0 => Ok(()),
                    code => Err(std::io::Error::from_raw_os_error(code)),
                }
            });
        match taken {
            Ok(()) => self.held.store(true, Ordering::SeqCst),
            Err(_) => {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_takes_its_room_and_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::new(dir.path().join(RESERVE_FILE));
        assert!(reserve.is_held());
        let file = dir.path().join(RESERVE_FILE);
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&file).unwrap().blocks() * 512 >= RESERVE_BYTES as u64);
        assert!(reserve.release());
        assert!(!file.exists());
        assert!(!reserve.release(), "released once");
        reserve.restore();
        assert!(reserve.is_held());
    }
}

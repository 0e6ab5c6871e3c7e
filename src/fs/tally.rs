//! How many requests of each kind the kernel sent: round trips are what a
//! small file costs, so the log says at unmount how many each kind took.

use std::sync::atomic::{AtomicU64, Ordering};

/// The operations counted, in the order the summary prints them.
const OPS: &[&str] = &[
    "lookup",
    "forget",
    "getattr",
    "setattr",
    "readlink",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "symlink",
    "rename",
    "link",
    "open",
    "read",
    "write",
    "flush",
    "release",
    "fsync",
    "opendir",
    "readdir",
    "releasedir",
    "fsyncdir",
    "statfs",
    "create",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "fallocate",
];

pub struct Tally {
    counts: Vec<AtomicU64>,
    /// Requests whose name is not in `OPS`.
    other: AtomicU64,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            counts: OPS.iter().map(|_| AtomicU64::new(0)).collect(),
            other: AtomicU64::new(0),
        }
    }

    pub fn count(&self, op: &str) {
        let slot = match OPS.iter().position(|o| *o == op) {
            Some(i) => &self.counts[i],
            None => &self.other,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// `op=n` for every operation that was asked at least once.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = OPS
            .iter()
            .zip(&self.counts)
            .map(|(op, n)| (op, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .map(|(op, n)| format!("{op}={n}"))
            .collect();
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            parts.push(format!("other={other}"));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_operation_and_lists_only_those_asked() {
        let tally = Tally::new();
        assert_eq!(tally.summary(), "none");
        for op in ["create", "lookup", "create", "ioctl"] {
            tally.count(op);
        }
        assert_eq!(tally.summary(), "lookup=1 create=2 other=1");
    }
}

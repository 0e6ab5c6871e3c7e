//! `pushfs unmount MOUNTPOINT`: stops the process that serves a mount the
//! way Ctrl-C does (it waits for open files, stops deploys so they resume
//! at the next mount, records a clean stop), and waits for it to exit.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::fs::mount::{detach, inspect, pushfs_mounts, MountPointState};

#[derive(Debug, Error)]
pub enum UnmountError {
    #[error("{0} is not a pushfs mount")]
    NotMounted(PathBuf),
    #[error("pushfs (pid {pid}) still serves {path} after {waited:?}; files may still be open there (`fuser -vm {path}` lists them)")]
    StillRunning {
        pid: u32,
        path: PathBuf,
        waited: Duration,
    },
    #[error("cannot stop pushfs (pid {pid}): {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `stop` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The serving processes exited.
    Exited(Vec<u32>),
    /// No serving process was found (another namespace, or it died); the
    /// mount was detached.
    Detached,
}

/// The pushfs processes serving `mountpoint`: their command line is
/// `pushfs mount|demo … MOUNTPOINT …`.
pub fn owners(mountpoint: &Path) -> Vec<u32> {
    let wanted = [
        mountpoint.to_path_buf(),
        mountpoint
            .canonicalize()
            .unwrap_or_else(|_| mountpoint.to_path_buf()),
    ];
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            let is_pushfs = args.first().is_some_and(|a| {
                Path::new(std::ffi::OsStr::from_bytes(a)).file_name() == Some("pushfs".as_ref())
            });
            let serves = args.get(1).is_some_and(|a| *a == b"mount" || *a == b"demo");
            is_pushfs
                && serves
                && args.iter().skip(2).any(|a| {
                    wanted
                        .iter()
                        .any(|w| w.as_os_str().as_encoded_bytes() == *a)
                })
        })
        .collect();
    pids.sort();
    pids
}

/// Stops whatever serves `mountpoint` and waits up to `limit` for it.
pub fn stop(mountpoint: &Path, limit: Duration) -> Result<Stopped, UnmountError> {
    let canonical = mountpoint
        .canonicalize()
        .unwrap_or_else(|_| mountpoint.to_path_buf());
    let state = inspect(mountpoint);
    let ours = pushfs_mounts()
        .iter()
        .any(|m| Path::new(m) == canonical || Path::new(m) == mountpoint);
    if !ours && state != MountPointState::Stale {
        return Err(UnmountError::NotMounted(mountpoint.to_path_buf()));
    }
    let pids = owners(mountpoint);
    if pids.is_empty() {
        detach(mountpoint).map_err(|source| UnmountError::Unmount {
            path: mountpoint.to_path_buf(),
            source,
        })?;
        return Ok(Stopped::Detached);
    }
    for pid in &pids {
        // SAFETY: kill has no memory inputs.
        if unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) } != 0 {
            return Err(UnmountError::Signal {
                pid: *pid,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    let deadline = Instant::now() + limit;
    for pid in &pids {
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid) {
            if Instant::now() >= deadline {
                return Err(UnmountError::StillRunning {
                    pid: *pid,
                    path: mountpoint.to_path_buf(),
                    waited: limit,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(Stopped::Exited(pids))
}

/// An exited child of someone else's that nobody reaped yet.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_not_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            stop(dir.path(), Duration::from_secs(1)),
            Err(UnmountError::NotMounted(_))
        ));
        assert!(owners(dir.path()).is_empty());
    }
}

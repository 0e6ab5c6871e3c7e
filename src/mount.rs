//! A running pushfs: store, tree, deployer and FUSE session wired together,
//! started by `pushfs mount`/`demo` and by the tests, stopped cleanly.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::BackgroundSession;
use thiserror::Error;
use tokio::runtime::Handle;

use crate::backend;
use crate::config::Config;
use crate::deploy::{DeploySettings, Deployer};
use crate::fs::mount::{self as fuse_mount, MountPointState};
use crate::private_files;
use crate::state_dir::{check_database, lock as lock_state_dir, StateDirError};
use crate::store::ContentStore;
use crate::tree::Tree;

/// How long a stop waits for the kernel's RELEASE of files closed just before it.
const LATE_RELEASE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum MountError {
    #[error(
        "{0} is a stale pushfs mount left by a process that died; clear it with: umount -l {0}"
    )]
    StaleMount(PathBuf),
    #[error(
        "{0} is already a mount point; unmount it first (umount {0}) or pick another directory"
    )]
    AlreadyMounted(PathBuf),
    #[error("mount point {0} does not exist; create it with: mkdir -p {0}")]
    MissingMountPoint(PathBuf),
    #[error("mount point {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("state directory {0} is used by another running pushfs; stop it or pass --state-dir")]
    StateDirBusy(PathBuf),
    #[error("refusing state directory {path}: {source}")]
    UnsafeStateDir {
        path: PathBuf,
        source: private_files::UnsafeEntry,
    },
    #[error("cannot prepare state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] StateDirError),
    #[error("cannot open the metadata in {path}: {source}")]
    Metadata {
        path: PathBuf,
        source: crate::tree::TreeError,
    },
    #[error("cannot mount {path}: {source} (is /dev/fuse available, and are you root or is fusermount3 installed?)")]
    Fuse {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Mounted {
    pub mountpoint: PathBuf,
    pub tree: Arc<Tree>,
    deployer: Arc<Deployer>,
    session: Option<BackgroundSession>,
    /// How FUSE requests reach pushfs: /dev/fuse or io_uring.
    transport: fuser::Transport,
    _lock: File,
}

impl Mounted {
    pub fn start(
        config: &Config,
        mountpoint: &Path,
        runtime: Handle,
    ) -> Result<Mounted, MountError> {
        Self::start_with(config, mountpoint, runtime, clients(config))
    }

    /// Like [`Mounted::start`], with the given backend clients (tests use scripted ones).
    pub fn start_with(
        config: &Config,
        mountpoint: &Path,
        runtime: Handle,
        backends: Vec<Arc<dyn backend::Backend>>,
    ) -> Result<Mounted, MountError> {
        let mountpoint = mountpoint.to_path_buf();
        match fuse_mount::inspect(&mountpoint) {
            MountPointState::Free => {}
            MountPointState::Stale => return Err(MountError::StaleMount(mountpoint)),
            MountPointState::Mounted => return Err(MountError::AlreadyMounted(mountpoint)),
            MountPointState::Missing => return Err(MountError::MissingMountPoint(mountpoint)),
            MountPointState::NotADirectory => return Err(MountError::NotADirectory(mountpoint)),
        }
        let state_dir = config.state_dir.clone();
        let io_err = |source| MountError::StateDir {
            path: state_dir.clone(),
            source,
        };
        private_files::create_private_dir_all(&state_dir).map_err(io_err)?;
        let lock = lock_state_dir(&state_dir).map_err(io_err)?;
        let lock = lock.ok_or_else(|| MountError::StateDirBusy(state_dir.clone()))?;
        private_files::refuse_unsafe_entries(&state_dir).map_err(|source| {
            MountError::UnsafeStateDir {
                path: state_dir.clone(),
                source,
            }
        })?;
        private_files::make_state_dir_private(&state_dir).map_err(io_err)?;
        check_database(&state_dir, config.new_state)?;
        let store = Arc::new(ContentStore::open(&state_dir).map_err(io_err)?);
        let settings = DeploySettings {
            settle: config.settle,
            retry: config.retry,
            state_dir: state_dir.clone(),
            history_keep: config.history_keep,
        };
        let deployer = Deployer::new(runtime, backends, settings);
        // SAFETY: getuid/getgid cannot fail.
        let owner = unsafe { (libc::getuid(), libc::getgid()) };
        let tree = Tree::load(&state_dir, store, deployer.clone(), owner).map_err(|err| {
            MountError::Metadata {
                path: state_dir.clone(),
                source: err,
            }
        })?;
        deployer.start(&tree);
        let (session, transport) = fuse_mount::spawn(
            tree.clone(),
            &mountpoint,
            config.allow_other,
            config.passthrough,
            config.io_uring,
        )
        .map_err(|source| {
            deployer.shutdown();
            MountError::Fuse {
                path: mountpoint.clone(),
                source,
            }
        })?;
        tracing::info!(mountpoint = %mountpoint.display(), state_dir = %state_dir.display(), "mounted");
        Ok(Mounted {
            mountpoint,
            tree,
            deployer,
            session: Some(session),
            transport,
            _lock: lock,
        })
    }

    /// How FUSE requests reach this mount.
    pub fn transport(&self) -> &fuser::Transport {
        &self.transport
    }

    /// Unmounts, stops deploys (they resume on the next mount) and saves everything.
    pub fn unmount(mut self) {
        self.stop();
    }

    /// Whether the kernel ended the FUSE session (an external `umount`,
    /// `fusermount3 -u`, or a broken connection).
    pub fn session_ended(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.guard.is_finished())
    }

    /// Handles open on files of the mount; a clean stop waits for none.
    pub fn open_handles(&self) -> usize {
        self.tree.open_handles()
    }

    /// Winds down after the kernel ended the session: deploys stop (they
    /// resume on the next mount) and the stop is recorded as clean. Returns
    /// how the session ended: `Ok` for an unmount, the error otherwise.
    pub fn finish_after_session_end(mut self) -> std::io::Result<()> {
        self.deployer.shutdown();
        let ended = match self.session.take() {
            Some(session) => session.join(),
            None => Ok(()),
        };
        self.record_clean_stop();
        ended
    }

    fn stop(&mut self) {
        self.deployer.shutdown();
        self.wait_for_late_releases();
        if let Some(session) = self.session.take() {
            if let Err(err) = session.umount_and_join() {
                // Busy (a file still open): detach it, so no dead mount is
                // left behind and nothing can be written under it.
                tracing::warn!(%err, "unmount reported an error; detaching the mount lazily");
                if let Err(err) = fuse_mount::detach(&self.mountpoint) {
                    tracing::error!(%err, "cannot detach; clear it with: umount -l {}", self.mountpoint.display());
                }
            }
        }
        self.record_clean_stop();
    }

    /// The kernel sends RELEASE after `close` has returned to the writer,
    /// and an unmount drops the requests it still has queued: a file
    /// closed just before the unmount would stay open to pushfs, and the
    /// stop would not count as clean. A file left open on purpose only
    /// costs this bounded wait.
    fn wait_for_late_releases(&self) {
        let deadline = std::time::Instant::now() + LATE_RELEASE_WAIT;
        while self.open_handles() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn record_clean_stop(&self) {
        if let Err(err) = self.tree.shutdown() {
            tracing::error!(%err, "cannot record the clean stop; the next mount treats it as unclean");
        }
        tracing::info!(mountpoint = %self.mountpoint.display(), "unmounted");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.is_some() {
            self.stop();
        }
    }
}

/// The client for each backend, from the configuration.
fn clients(config: &Config) -> Vec<Arc<dyn backend::Backend>> {
    vec![
        Arc::new(backend::bytenite::ByteniteClient::new(&config.bytenite)),
        Arc::new(backend::flux::FluxClient::new(&config.flux)),
        Arc::new(backend::cf::CfClient::new(&config.cf)),
    ]
}

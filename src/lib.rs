//! pushfs: a FUSE filesystem that deploys an app when a folder is copied into it.
//!
//! Data flows one way: kernel → [`fs`] → [`tree`]/[`store`] → snapshot →
//! [`package`] → [`backend`] → status. See `docs/architecture.md` for the shape.

pub mod backend;
pub mod config;
pub mod deploy;
pub mod emulator;
pub mod env;
pub mod fs;
pub mod fsck;
pub mod fstab;
pub mod ignore;
pub mod kind;
pub mod meta;
pub mod mount;
pub mod package;
pub mod pay_code;
pub mod printable;
pub mod private_files;
pub mod progress;
pub mod snapshot;
pub mod spec_json;
pub mod state_dir;
pub mod status_report;
pub mod status_watch;
pub mod store;
pub mod tree;
pub mod unmount;

//! A state directory someone tampered with: pushfs runs as root, so a
//! symlink planted among its files must not make it delete, grow or read
//! what the link names, and an entry another user owns (who could swap it
//! for a link) is refused too.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::TestMount;
use pushfs::mount::{MountError, Mounted};

/// A state directory a clean mount made, unmounted; `plant` then edits it
/// and the next mount must refuse it with a message containing `named`.
fn refused_after(plant: impl FnOnce(&Path, &Path), named: &str) -> tempfile::TempDir {
    let mut t = TestMount::with_backends(vec![]);
    t.unmount();
    let outside = tempfile::tempdir().unwrap();
    plant(&t.config.state_dir, outside.path());
    let started = Mounted::start_with(&t.config, &t.mnt(), t.runtime.handle().clone(), vec![]);
    match started {
        Err(err @ MountError::UnsafeStateDir { .. }) => {
            let message = err.to_string();
            assert!(message.contains(named), "{message} names {named}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(mounted) => {
            mounted.unmount();
            panic!("a tampered state directory was mounted");
        }
    }
    outside
}

#[test]
fn a_symlinked_blob_directory_is_refused_and_its_target_kept() {
    let victim = "ab".to_string() + &"0".repeat(62);
    let outside = refused_after(
        |state, outside| {
            fs::write(outside.join(&victim[2..]), "someone else's file").unwrap();
            let _ = fs::remove_dir_all(state.join("objects/ab"));
            fs::create_dir_all(state.join("objects")).unwrap();
            symlink(outside, state.join("objects/ab")).unwrap();
        },
        "objects/ab is a symlink",
    );
    assert_eq!(
        fs::read_to_string(outside.path().join(&victim[2..])).unwrap(),
        "someone else's file"
    );
}

#[test]
fn a_symlinked_reserve_is_refused_and_its_target_not_grown() {
    let outside = refused_after(
        |state, outside| {
            fs::write(outside.join("victim"), "").unwrap();
            fs::remove_file(state.join("meta.reserve")).unwrap();
            symlink(outside.join("victim"), state.join("meta.reserve")).unwrap();
        },
        "meta.reserve is a symlink",
    );
    assert_eq!(
        fs::metadata(outside.path().join("victim")).unwrap().len(),
        0
    );
}

#[test]
fn an_entry_another_user_owns_is_refused() {
    refused_after(
        |state, _| {
            let tmp = std::ffi::CString::new(state.join("tmp").to_str().unwrap()).unwrap();
            // SAFETY: a valid C string; chown has no other inputs.
            assert_eq!(unsafe { libc::chown(tmp.as_ptr(), 65534, 65534) }, 0);
        },
        "tmp belongs to uid 65534",
    );
}

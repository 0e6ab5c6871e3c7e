//! Extended attributes on a real mount: `setfattr`/`getfattr` and the raw
//! calls, kept across a remount, carried by `rsync -aX` and
//! `cp -a --preserve=all`, root's namespaces refused to a second user, and
//! never a reason to deploy.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

use common::scripted::scripted_set;
use common::{other_user, run, status, wait, TestMount, OTHER_USER};

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn c_name(name: &str) -> CString {
    CString::new(name).unwrap()
}

fn errno_of(rc: isize) -> std::io::Result<usize> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// `setxattr(2)` with its flags.
fn set(path: &Path, name: &str, value: &[u8], flags: i32) -> std::io::Result<()> {
    let (path, name) = (c_path(path), c_name(name));
    // SAFETY: valid C strings, and a value pointer with its length.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    errno_of(rc as isize).map(|_| ())
}

/// `getxattr(2)` into a buffer of `size` bytes (0: the size probe).
fn get_sized(path: &Path, name: &str, size: usize) -> std::io::Result<(usize, Vec<u8>)> {
    let (path, name) = (c_path(path), c_name(name));
    let mut buf = vec![0u8; size];
    // SAFETY: valid C strings, and a buffer of `size` bytes.
    let rc = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), size) };
    let n = errno_of(rc)?;
    buf.truncate(n.min(size));
    Ok((n, buf))
}

/// A value, asked for as programs do: its size first.
fn get(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let (size, _) = get_sized(path, name, 0)?;
    Ok(get_sized(path, name, size)?.1)
}

/// `listxattr(2)`, size first, as a sorted list.
fn list(path: &Path) -> Vec<String> {
    let cpath = c_path(path);
    // SAFETY: a valid C string; a null buffer of size 0 asks for the size.
    let size =
        errno_of(unsafe { libc::listxattr(cpath.as_ptr(), std::ptr::null_mut(), 0) }).unwrap();
    let mut buf = vec![0u8; size];
    // SAFETY: a buffer of `size` bytes.
    let n = errno_of(unsafe { libc::listxattr(cpath.as_ptr(), buf.as_mut_ptr().cast(), size) })
        .unwrap();
    let mut names: Vec<String> = buf[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8(n.to_vec()).unwrap())
        .collect();
    names.sort();
    names
}

/// An ACL as `setfacl` sends it (the kernel checks the format before we
/// see it): version 2, then user::rw- group::r-- other::r--.
fn minimal_acl() -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 6u16), (0x04, 4), (0x20, 4)] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(u32::MAX.to_le_bytes());
    }
    acl
}

fn code(result: std::io::Result<impl std::fmt::Debug>) -> i32 {
    result.expect_err("must fail").raw_os_error().unwrap()
}

#[test]
fn setfattr_and_getfattr_work_and_the_attributes_survive_a_remount() {
    let (backend, all) = scripted_set();
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "attrs");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("f"), "content").unwrap();
    fs::write(app.join("spec.json"), "{}").unwrap();
    fs::hard_link(app.join("f"), app.join("g")).unwrap();
    assert_eq!(wait(&app), "deployed");
    let deploys = backend.deploys();

    run(Command::new("setfattr")
        .args(["-n", "user.origin", "-v", "build-42"])
        .arg(app.join("f")));
    run(Command::new("setfattr")
        .args(["-n", "user.dir", "-v", "yes"])
        .arg(&app));
    let dumped = run(Command::new("getfattr")
        .args(["-d", "--absolute-names"])
        .arg(app.join("g")));
    assert!(
        dumped.contains("user.origin=\"build-42\""),
        "a hard link shares the inode's attributes: {dumped}"
    );
    assert_eq!(
        status(&app, "state"),
        "deployed",
        "an attribute is not in the package: no deploy"
    );

    // The raw calls: the size probe, a short buffer, XATTR_CREATE and
    // XATTR_REPLACE, removal, and Linux's limits.
    let f = app.join("f");
    assert_eq!(get_sized(&f, "user.origin", 0).unwrap().0, 8);
    assert_eq!(code(get_sized(&f, "user.origin", 4)), libc::ERANGE);
    assert_eq!(
        code(set(&f, "user.origin", b"x", libc::XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        code(set(&f, "user.none", b"x", libc::XATTR_REPLACE)),
        libc::ENODATA
    );
    set(&f, "user.empty", b"", libc::XATTR_CREATE).unwrap();
    assert_eq!(get(&f, "user.empty").unwrap(), b"");
    assert_eq!(list(&f), ["user.empty", "user.origin"]);
    run(Command::new("setfattr").args(["-x", "user.empty"]).arg(&f));
    assert_eq!(code(get(&f, "user.empty")), libc::ENODATA);
    let long = format!("user.{}", "n".repeat(251));
    assert_eq!(code(set(&f, &long, b"x", 0)), libc::ERANGE);
    set(&f, &long[..255], b"x", 0).unwrap();
    assert_eq!(code(set(&f, "user.big", &vec![1; 65537], 0)), libc::E2BIG);
    set(&f, "user.big", &vec![1; 65536], 0).unwrap();
    assert_eq!(get(&f, "user.big").unwrap().len(), 65536);
    // ACLs are not kept (cp and rsync fall back to the mode bits); status
    // files take no attributes.
    assert_eq!(
        code(set(&f, "system.posix_acl_access", &minimal_acl(), 0)),
        libc::EOPNOTSUPP
    );
    let ctl = app.join(".pushfs/ctl");
    assert_eq!(code(set(&ctl, "user.x", b"x", 0)), libc::EOPNOTSUPP);
    assert_eq!(code(get(&ctl, "user.x")), libc::ENODATA);
    assert!(list(&ctl).is_empty());
    assert_eq!(status(&app, "state"), "deployed");
    assert_eq!(backend.deploys(), deploys);

    t.remount();
    assert_eq!(get(&app.join("g"), "user.origin").unwrap(), b"build-42");
    assert_eq!(get(&app, "user.dir").unwrap(), b"yes");
    assert_eq!(get(&f, "user.big").unwrap(), vec![1; 65536]);
    // The control: a change the package does carry goes pending at once.
    fs::write(app.join("new.txt"), "new").unwrap();
    assert_ne!(status(&app, "state"), "deployed");
}

/// A source tree on the local disk with attributes on a file, a nested
/// file and a directory.
fn tree_with_attributes(root: &Path) {
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join("sub/b.bin"), vec![9u8; 100_000]).unwrap();
    set(&root.join("a.txt"), "user.mime_type", b"text/plain", 0).unwrap();
    set(&root.join("sub/b.bin"), "user.checksum", &[0, 1, 2, 255], 0).unwrap();
    set(&root.join("sub"), "user.role", b"assets", 0).unwrap();
}

fn assert_carried(copy: &Path) {
    assert_eq!(
        get(&copy.join("a.txt"), "user.mime_type").unwrap(),
        b"text/plain"
    );
    assert_eq!(
        get(&copy.join("sub/b.bin"), "user.checksum").unwrap(),
        [0, 1, 2, 255]
    );
    assert_eq!(get(&copy.join("sub"), "user.role").unwrap(), b"assets");
    assert_eq!(
        fs::read(copy.join("sub/b.bin")).unwrap(),
        vec![9u8; 100_000]
    );
}

#[test]
fn rsync_ax_and_cp_a_preserve_all_carry_the_attributes() {
    let t = TestMount::with_backends(scripted_set().1);
    let src = t.scratch("src");
    tree_with_attributes(&src);

    let rsynced = t.app("cf", "rsynced");
    run(Command::new("rsync")
        .arg("-aX")
        .arg(format!("{}/", src.display()))
        .arg(&rsynced));
    assert_carried(&rsynced);

    let copied = t.app("cf", "copied");
    run(Command::new("cp")
        .arg("-a")
        .arg("--preserve=all")
        .arg(&src)
        .arg(&copied));
    assert_carried(&copied);

    // And back out of the mount: the attributes read back as written.
    let back = t.scratch("back");
    run(Command::new("rsync")
        .arg("-aX")
        .arg(format!("{}/", rsynced.display()))
        .arg(&back));
    assert_carried(&back);
}

/// Runs `program args` as the second user.
fn as_other(program: &str, args: &[&str], path: &Path) -> Output {
    let (uid, gid) = other_user();
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program)
        .args(args)
        .arg(path)
        .output()
        .expect("setpriv runs")
}

#[test]
fn trusted_and_security_attributes_are_roots() {
    let t = TestMount::with_backends_and(scripted_set().1, |config| config.allow_other = true);
    fs::set_permissions(
        t.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let app = t.app("cf", "shared");
    fs::create_dir(&app).unwrap();
    let f = app.join("f");
    fs::write(&f, "x").unwrap();
    fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    set(&f, "trusted.root_only", b"1", 0).unwrap();
    set(&f, "security.root_set", b"2", 0).unwrap();

    // The control: the second user can write the file's user.* attributes.
    let out = as_other("setfattr", &["-n", "user.mine", "-v", "1"], &f);
    assert!(
        out.status.success(),
        "{OTHER_USER} sets user.*: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["trusted.theirs", "security.theirs"] {
        let out = as_other("setfattr", &["-n", name, "-v", "1"], &f);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("Operation not permitted"),
            "{name} by {OTHER_USER}: {stderr}"
        );
    }
    // trusted.* is not even listed for them, as on ext4; security.* is.
    let out = as_other("getfattr", &["-d", "-m", "-", "--absolute-names"], &f);
    let dumped = String::from_utf8_lossy(&out.stdout);
    assert!(dumped.contains("user.mine"), "{dumped}");
    assert!(dumped.contains("security.root_set"), "{dumped}");
    assert!(!dumped.contains("trusted"), "{dumped}");
    assert_eq!(
        list(&f),
        ["security.root_set", "trusted.root_only", "user.mine"],
        "root sees them all"
    );
}

//! What real tools need from the mount: cp, rsync, tar, sed -i, vim, git,
//! editor saves, truncation, random writes, renames, links, statfs.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::scripted::scripted_set;
use common::{have, run, wait, write_tree, TestMount};

fn mount() -> TestMount {
    TestMount::with_backends(scripted_set().1)
}

fn app_dir(t: &TestMount, name: &str) -> std::path::PathBuf {
    let app = t.app("cf", name);
    fs::create_dir(&app).unwrap();
    app
}

#[test]
fn cp_r_of_a_few_hundred_files_is_byte_identical() {
    let t = mount();
    let src = t.scratch("tree");
    write_tree(&src, 400);
    fs::write(src.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(t.mnt().join("cf")));
    run(Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(t.app("cf", "tree")));
}

#[test]
fn editor_style_save_replaces_the_file_atomically() {
    let t = mount();
    let app = app_dir(&t, "edit");
    fs::write(app.join("config.txt"), "old").unwrap();
    fs::write(app.join(".config.txt.tmp"), "new").unwrap();
    fs::rename(app.join(".config.txt.tmp"), app.join("config.txt")).unwrap();
    assert_eq!(fs::read_to_string(app.join("config.txt")).unwrap(), "new");
    assert!(!app.join(".config.txt.tmp").exists());
}

#[test]
fn rsync_a_keeps_content_modes_and_times() {
    if !have("rsync") {
        panic!("rsync is required (apt-get install rsync)");
    }
    let t = mount();
    let src = t.scratch("site");
    write_tree(&src, 120);
    fs::set_permissions(src.join("d0/e0/f0.txt"), fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::symlink("d0/e0/f0.txt", src.join("link")).unwrap();
    let dest = t.app("cf", "site");
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(&dest));
    run(Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(&src)
        .arg(&dest));
    let (a, b) = (
        fs::metadata(src.join("d1/e1/f1.txt")).unwrap(),
        fs::metadata(dest.join("d1/e1/f1.txt")).unwrap(),
    );
    assert_eq!(a.mtime(), b.mtime());
    assert_eq!(
        fs::metadata(dest.join("d0/e0/f0.txt")).unwrap().mode() & 0o777,
        0o751
    );
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        Path::new("d0/e0/f0.txt")
    );
    // A second rsync with a change and --delete: only the app's own files are touched.
    fs::write(src.join("d2/e2/f2.txt"), "changed").unwrap();
    fs::remove_file(src.join("d3/e0/f3.txt")).unwrap();
    run(Command::new("rsync")
        .arg("-a")
        .arg("--delete")
        .arg(format!("{}/", src.display()))
        .arg(&dest));
    run(Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(&src)
        .arg(&dest));
}

#[test]
fn tar_x_unpacks_into_the_mount() {
    let t = mount();
    let src = t.scratch("pkg");
    write_tree(&src, 60);
    let tarball = t.dir.path().join("pkg.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(src.parent().unwrap())
        .arg("-cf")
        .arg(&tarball)
        .arg("pkg"));
    run(Command::new("tar")
        .arg("-C")
        .arg(t.mnt().join("cf"))
        .arg("-xf")
        .arg(&tarball));
    run(Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(t.app("cf", "pkg")));
}

#[test]
fn sed_i_edits_in_place() {
    let t = mount();
    let app = app_dir(&t, "sed");
    fs::write(app.join("app.conf"), "port=80\nname=x\n").unwrap();
    run(Command::new("sed")
        .arg("-i")
        .arg("s/80/8080/")
        .arg(app.join("app.conf")));
    assert_eq!(
        fs::read_to_string(app.join("app.conf")).unwrap(),
        "port=8080\nname=x\n"
    );
    let leftovers: Vec<_> = fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "sed's temp file is gone: {leftovers:?}");
}

#[test]
fn vim_saves_with_swap_and_backup_files() {
    if !have("vim") {
        panic!("vim is required (apt-get install vim)");
    }
    let t = mount();
    let app = app_dir(&t, "vim");
    fs::write(app.join("main.py"), "print('a')\n").unwrap();
    for backupcopy in ["yes", "no"] {
        run(Command::new("vim")
            .args(["-u", "NONE", "-i", "NONE", "-N", "-E", "-s"])
            .arg("-c")
            .arg(format!(
                "set swapfile backup writebackup backupcopy={backupcopy} directory=. backupdir=."
            ))
            .args(["-c", "normal Goprint('b')", "-c", "wq"])
            .arg(app.join("main.py")));
    }
    assert_eq!(
        fs::read_to_string(app.join("main.py")).unwrap(),
        "print('a')\nprint('b')\nprint('b')\n"
    );
    let names: Vec<String> = fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".swp")),
        "swap file removed: {names:?}"
    );
}

#[test]
fn git_clone_of_a_local_repo_works_and_is_clean() {
    let t = mount();
    let repo = t.scratch("repo");
    write_tree(&repo, 30);
    let git = |dir: &Path, args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args))
    };
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    let dest = t.app("cf", "cloned");
    run(Command::new("git")
        .arg("clone")
        .arg("-q")
        .arg(&repo)
        .arg(&dest));
    assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    git(&dest, &["fsck", "--no-progress"]);
}

#[test]
fn truncate_random_writes_and_append() {
    let t = mount();
    let app = app_dir(&t, "io");
    let path = app.join("data.bin");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.write_all(&[1u8; 10_000]).unwrap();
    f.write_all_at(b"XY", 5_000).unwrap();
    f.write_all_at(b"END", 20_000).unwrap();
    f.set_len(20_002).unwrap();
    drop(f);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 20_002);
    assert_eq!(&bytes[5_000..5_002], b"XY");
    assert_eq!(bytes[15_000], 0, "the hole reads as zeros");
    assert_eq!(&bytes[20_000..], b"EN");

    // Reopen a sealed file: append, then random write, then truncate by path.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"++").unwrap();
    drop(f);
    assert_eq!(fs::metadata(&path).unwrap().len(), 20_004);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"Z", 0).unwrap();
    drop(f);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 3) }, 0);
    let mut s = Vec::new();
    fs::File::open(&path).unwrap().read_to_end(&mut s).unwrap();
    assert_eq!(s, [b'Z', 1, 1]);

    // O_TRUNC on a sealed file, and a read through the same descriptor.
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(b"fresh").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "fresh");
    f.sync_all().unwrap();
}

#[test]
fn renames_unlinks_and_directories() {
    let t = mount();
    let app = app_dir(&t, "ns");
    fs::create_dir_all(app.join("a/b")).unwrap();
    fs::write(app.join("a/b/f"), "f").unwrap();
    fs::rename(app.join("a"), app.join("c")).unwrap();
    assert_eq!(fs::read_to_string(app.join("c/b/f")).unwrap(), "f");
    let err = fs::remove_dir(app.join("c")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
    // Into its own subdirectory: refused.
    assert_eq!(
        fs::rename(app.join("c"), app.join("c/b/x"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    // A directory over an empty one.
    fs::create_dir(app.join("empty")).unwrap();
    fs::rename(app.join("c/b"), app.join("empty")).unwrap();
    assert_eq!(fs::read_to_string(app.join("empty/f")).unwrap(), "f");

    // An open file that is unlinked stays readable through its descriptor.
    fs::write(app.join("gone"), "still here").unwrap();
    let mut f = fs::File::open(app.join("gone")).unwrap();
    fs::remove_file(app.join("gone")).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here");
    assert_eq!(
        fs::metadata(app.join("gone")).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Hard links share content and attributes inside an app; symlinks work.
    fs::hard_link(app.join("empty/f"), app.join("h")).unwrap();
    let (f, h) = (
        fs::metadata(app.join("empty/f")).unwrap(),
        fs::metadata(app.join("h")).unwrap(),
    );
    assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
    fs::write(app.join("h"), "through the link").unwrap();
    assert_eq!(
        fs::read_to_string(app.join("empty/f")).unwrap(),
        "through the link"
    );
    fs::remove_file(app.join("h")).unwrap();
    assert_eq!(fs::metadata(app.join("empty/f")).unwrap().nlink(), 1);
    std::os::unix::fs::symlink("empty/f", app.join("s")).unwrap();
    assert_eq!(
        fs::read_to_string(app.join("s")).unwrap(),
        "through the link"
    );

    // The app directory itself can be renamed, and removed with rm -r.
    fs::rename(&app, t.app("cf", "ns2")).unwrap();
    run(Command::new("rm").arg("-r").arg(t.app("cf", "ns2")));
    assert!(!t.app("cf", "ns2").exists());
}

#[test]
fn the_top_two_levels_have_rules() {
    let t = mount();
    let names: Vec<String> = fs::read_dir(t.mnt())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    for b in ["bytenite", "flux", "cf"] {
        assert!(names.contains(&b.to_string()));
    }
    assert_eq!(
        fs::create_dir(t.mnt().join("other"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EPERM)
    );
    assert_eq!(
        fs::write(t.mnt().join("cf/loose.txt"), "x")
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EPERM)
    );
    fs::create_dir(t.app("cf", "a")).unwrap();
    // Moving an app to another backend is a copy (mv falls back on EXDEV).
    assert_eq!(
        fs::rename(t.app("cf", "a"), t.app("flux", "a"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EXDEV)
    );
    run(Command::new("mv")
        .arg(t.app("cf", "a"))
        .arg(t.mnt().join("flux")));
    assert!(t.app("flux", "a").is_dir());
    // statfs answers (df needs it).
    run(Command::new("df").arg(t.mnt()));
}

#[test]
fn a_deploy_sees_what_tools_wrote() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let src = t.scratch("full");
    write_tree(&src, 50);
    fs::write(src.join("spec.json"), "{}").unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(t.mnt().join("cf")));
    let app = t.app("cf", "full");
    assert_eq!(wait(&app), "deployed");
    run(Command::new("sed")
        .arg("-i")
        .arg("s/file/FILE/")
        .arg(app.join("d0/e0/f0.txt")));
    assert_eq!(wait(&app), "deployed");
    assert_eq!(
        backend.last().read("d0/e0/f0.txt").unwrap().unwrap(),
        b"FILE 0\n"
    );
}

#[test]
fn readers_and_writers_of_one_file_agree_whatever_their_io_mode() {
    let t = mount();
    let app = app_dir(&t, "modes");
    let path = app.join("shared.txt");
    // A new file (written by the kernel straight to disk) read through a second descriptor.
    let mut writer = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    writer.write_all(b"first").unwrap();
    writer.flush().unwrap();
    let mut s = String::new();
    fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "first");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        5,
        "the size is right while it is written"
    );
    drop(writer);

    // A reader holds the sealed file open; a writer comes along; a new reader sees the new bytes.
    let mut old_reader = fs::File::open(&path).unwrap();
    let writer = OpenOptions::new().write(true).open(&path).unwrap();
    writer.write_all_at(b"FIRST", 0).unwrap();
    let mut s = String::new();
    fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "FIRST");
    drop(writer);
    let mut s = String::new();
    old_reader.read_to_string(&mut s).unwrap();
    assert_eq!(s.len(), 5);
    let mut s = String::new();
    fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "FIRST");
}

#[test]
fn cp_p_keeps_modification_times_of_copied_files() {
    let t = mount();
    let src = t.scratch("dated");
    fs::write(src.join("old.txt"), vec![b'x'; 300_000]).unwrap();
    run(Command::new("touch")
        .arg("-d")
        .arg("2001-02-03 04:05:06")
        .arg(src.join("old.txt")));
    run(Command::new("cp")
        .arg("-p")
        .arg(src.join("old.txt"))
        .arg(app_dir(&t, "dated")));
    let copied = fs::metadata(t.app("cf", "dated").join("old.txt")).unwrap();
    assert_eq!(
        copied.mtime(),
        fs::metadata(src.join("old.txt")).unwrap().mtime()
    );
    assert_eq!(copied.len(), 300_000);
}

#[test]
fn hard_links_work_for_cp_al_and_survive_a_remount() {
    let mut t = mount();
    let app = app_dir(&t, "links");
    write_tree(&app.join("src"), 40);
    run(Command::new("cp")
        .arg("-al")
        .arg(app.join("src"))
        .arg(app.join("copy")));
    let (a, b) = (app.join("src/d0/e0/f0.txt"), app.join("copy/d0/e0/f0.txt"));
    let ino = fs::metadata(&a).unwrap().ino();
    assert_eq!(fs::metadata(&b).unwrap().ino(), ino);
    assert_eq!(fs::metadata(&a).unwrap().nlink(), 2);

    // Another app is another package: links stop at its edge.
    let other = app_dir(&t, "elsewhere");
    let err = fs::hard_link(&a, other.join("f")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
    // Directories cannot be linked.
    let err = fs::hard_link(app.join("src"), app.join("dirlink")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));

    t.remount();
    assert_eq!(fs::metadata(&b).unwrap().ino(), ino);
    assert_eq!(fs::metadata(&a).unwrap().nlink(), 2);
    fs::remove_file(&a).unwrap();
    assert_eq!(fs::read_to_string(&b).unwrap(), "file 0\n");
    assert_eq!(fs::metadata(&b).unwrap().nlink(), 1);
}

/// `renameat2(2)` on two paths of the mount, as `mv --exchange` calls it.
fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(from.as_os_str().as_bytes()).unwrap();
    let to = CString::new(to.as_os_str().as_bytes()).unwrap();
    // SAFETY: two valid NUL-terminated paths, relative to nothing.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn rename_exchange_swaps_two_names_atomically_within_an_app() {
    let t = mount();
    let app = app_dir(&t, "swap");
    fs::create_dir_all(app.join("releases/v1")).unwrap();
    fs::create_dir_all(app.join("live")).unwrap();
    fs::write(app.join("live/index.html"), "old").unwrap();
    fs::write(app.join("releases/v1/index.html"), "new").unwrap();
    fs::write(app.join("a.txt"), "a").unwrap();
    fs::write(app.join("b.txt"), "b").unwrap();

    renameat2(
        &app.join("a.txt"),
        &app.join("b.txt"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(app.join("a.txt")).unwrap(), "b");
    assert_eq!(fs::read_to_string(app.join("b.txt")).unwrap(), "a");

    // Directories in different parents, the atomic-swap deploy idiom.
    let links = |p: &Path| fs::metadata(p).unwrap().nlink();
    let (releases, root) = (links(&app.join("releases")), links(&app));
    renameat2(
        &app.join("releases/v1"),
        &app.join("live"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(app.join("live/index.html")).unwrap(),
        "new"
    );
    assert_eq!(
        fs::read_to_string(app.join("releases/v1/index.html")).unwrap(),
        "old"
    );
    assert_eq!(
        (links(&app.join("releases")), links(&app)),
        (releases, root)
    );

    // A file and a directory swap too; a name that is not there is ENOENT;
    // a directory cannot swap with its own child.
    renameat2(&app.join("a.txt"), &app.join("live"), libc::RENAME_EXCHANGE).unwrap();
    assert!(app.join("a.txt").is_dir() && app.join("live").is_file());
    let err = renameat2(&app.join("nope"), &app.join("b.txt"), libc::RENAME_EXCHANGE).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let err = renameat2(
        &app.join("releases"),
        &app.join("releases/v1"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));

    // Across apps it is EXDEV, as a rename is.
    let other = app_dir(&t, "other");
    fs::write(other.join("c.txt"), "c").unwrap();
    let err = renameat2(
        &other.join("c.txt"),
        &app.join("b.txt"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EXDEV));

    // What deploys is the swapped tree.
    fs::write(app.join("spec.json"), r#"{"guid":"g-1"}"#).unwrap();
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn a_reader_sees_what_another_process_wrote_and_closed() {
    let t = mount();
    let app = app_dir(&t, "coherent");
    let path = app.join("log.txt");
    fs::write(&path, "one\n").unwrap();
    let mut reader = fs::File::open(&path).unwrap();
    let mut first = String::new();
    reader.read_to_string(&mut first).unwrap();
    assert_eq!(first, "one\n");

    // Another process appends and closes; the open reader reads on.
    let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
    writer.write_all(b"two\n").unwrap();
    drop(writer);
    let mut more = String::new();
    reader.read_to_string(&mut more).unwrap();
    assert_eq!(
        more, "two\n",
        "read at the old end finds the appended bytes"
    );
    assert_eq!(reader.metadata().unwrap().len(), 8, "fstat and read agree");

    // A same-size rewrite in the middle, after the seal: no stale page.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let writer = OpenOptions::new().write(true).open(&path).unwrap();
    writer.write_all_at(b"ONE", 0).unwrap();
    drop(writer);
    let mut again = vec![0u8; 8];
    reader.read_exact_at(&mut again, 0).unwrap();
    assert_eq!(again, b"ONE\ntwo\n");
}

fn tail_follows(t: &TestMount, name: &str, extra: &[&str]) {
    let app = app_dir(t, name);
    let path = app.join("server.log");
    fs::write(&path, "started\n").unwrap();
    let mut tail = Command::new("tail")
        .args(extra)
        .arg("-f")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut seen = String::new();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(seen.clone());
        }
    });
    let until = |want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(seen) if seen.contains(want) => return,
                Ok(_) => {}
                Err(_) => panic!("tail {extra:?} never printed {want:?}"),
            }
        }
    };
    until("started");
    for line in ["request 1\n", "request 2\n"] {
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        writer.write_all(line.as_bytes()).unwrap();
        drop(writer);
        until(line.trim());
    }
    let _ = tail.kill();
    let _ = tail.wait();
}

#[test]
fn tail_f_prints_appended_lines_with_inotify_and_by_polling() {
    let t = mount();
    tail_follows(&t, "tail-inotify", &[]);
    tail_follows(&t, "tail-polling", &["---disable-inotify", "-s", "0.1"]);
}

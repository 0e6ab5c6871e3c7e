//! The tree without a kernel: random sequences of namespace and I/O
//! operations, compared step by step with a plain in-memory model.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use status_files::StatusFile;

/// Records what the tree tells the deploy layer about recovery.
#[derive(Default)]
struct Hooks {
    notes: parking_lot::Mutex<Vec<String>>,
    held: parking_lot::Mutex<Vec<String>>,
}

impl DeployHooks for Hooks {
    fn app_created(&self, _: &AppId, _: BackendKind, _: &str) {}
    fn app_changed(&self, _: &AppId) {}
    fn app_renamed(&self, _: &AppId, _: &str) {}
    fn app_note(&self, _: &AppId, message: &str) {
        self.notes.lock().push(message.to_string());
    }
    fn app_held(&self, _: &AppId, reason: &str) {
        self.held.lock().push(reason.to_string());
    }
    fn app_removed(&self, _: &AppId) {}
    fn command(&self, _: &AppId, _: CtlCommand) {}
    fn command_refused(&self, _: &AppId, message: &str) {
        self.notes.lock().push(message.to_string());
    }
    fn app_rolled_back(&self, _: &AppId, rollback: &RolledBack) {
        self.notes
            .lock()
            .push(format!("rolled back to {}", rollback.to));
    }
    fn ignore_profile(&self, _: BackendKind) -> crate::kind::IgnoreProfile {
        crate::kind::IgnoreProfile::default()
    }
    fn status_file(&self, _: &AppId, file: StatusFile) -> Vec<u8> {
        format!("{}\n", file.name()).into_bytes()
    }
    fn wait(&self, _: &AppId, done: Box<dyn FnOnce(Vec<u8>) + Send>) {
        done(b"idle\n".to_vec())
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    /// `None` only while restarting.
    tree: Option<Arc<Tree>>,
    hooks: Arc<Hooks>,
    app: Ino,
}

fn load(dir: &std::path::Path) -> (Arc<Tree>, Arc<Hooks>) {
    let store = Arc::new(ContentStore::open(dir).unwrap());
    let hooks = Arc::new(Hooks::default());
    let tree = Tree::load(dir, store, hooks.clone(), (0, 0)).unwrap();
    (tree, hooks)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (tree, hooks) = load(dir.path());
    let cf = tree.lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    let app = tree
        .mkdir(cf, OsStr::new("app"), creator(0o755))
        .unwrap()
        .ino;
    Fixture {
        dir,
        tree: Some(tree),
        hooks,
        app,
    }
}

impl Fixture {
    /// Stops the tree, cleanly or as `kill -9` would (nothing flushed,
    /// nothing recorded), and starts it again on the same state directory.
    fn restart(&mut self, clean: bool) {
        let old = self.tree.take().expect("running");
        if clean {
            old.shutdown().unwrap();
        }
        drop(old);
        let (tree, hooks) = load(self.dir.path());
        self.tree = Some(tree);
        self.hooks = hooks;
    }

    fn tree(&self) -> &Arc<Tree> {
        self.tree.as_ref().expect("running")
    }

    fn app_id(&self) -> AppId {
        let apps = self.tree().apps();
        let app = apps.iter().find(|(_, _, name)| name == "app");
        app.expect("the fixture's app").0.clone()
    }
}

fn creator(mode: u32) -> Creator {
    Creator {
        uid: 0,
        gid: 0,
        mode,
        umask: 0o022,
    }
}

/// What a path shows: a directory, or a file's bytes and link count.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Dir,
    File(Vec<u8>, u32),
}

/// The reference: names point at directories or at file identities, so
/// hard links share their bytes.
#[derive(Debug, Clone, Default)]
struct RefModel {
    names: BTreeMap<String, Node>,
    files: std::collections::HashMap<u32, Vec<u8>>,
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File(u32),
}

impl RefModel {
    fn view(&self) -> BTreeMap<String, Model> {
        self.names
            .iter()
            .map(|(path, node)| {
                let model = match node {
                    Node::Dir => Model::Dir,
                    Node::File(id) => {
                        let links = self
                            .names
                            .values()
                            .filter(|n| **n == Node::File(*id))
                            .count();
                        Model::File(self.files[id].clone(), links as u32)
                    }
                };
                (path.clone(), model)
            })
            .collect()
    }

    fn file_mut(&mut self, path: &str) -> Option<&mut Vec<u8>> {
        match self.names.get(path) {
            Some(Node::File(id)) => self.files.get_mut(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create(String, Vec<u8>),
    Mkdir(String),
    Write(String, u16, Vec<u8>),
    Truncate(String, u16),
    Unlink(String),
    Rmdir(String),
    Rename(String, String),
    /// `renameat2(RENAME_EXCHANGE)`.
    Exchange(String, String),
    Link(String, String),
    /// `kill -9` and a new mount on the same state directory.
    Crash,
    /// Unmount and mount again.
    Restart,
}

fn path() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["a", "b", "c"]);
    prop::collection::vec(name, 1..=3).prop_map(|parts| parts.join("/"))
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (path(), bytes.clone()).prop_map(|(p, b)| Op::Create(p, b)),
        path().prop_map(Op::Mkdir),
        (path(), 0u16..100, bytes).prop_map(|(p, o, b)| Op::Write(p, o, b)),
        (path(), 0u16..100).prop_map(|(p, s)| Op::Truncate(p, s)),
        path().prop_map(Op::Unlink),
        path().prop_map(Op::Rmdir),
        (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        (path(), path()).prop_map(|(a, b)| Op::Exchange(a, b)),
        (path(), path()).prop_map(|(a, b)| Op::Link(a, b)),
        Just(Op::Crash),
        Just(Op::Restart),
    ]
}

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn name_of(p: &str) -> &str {
    p.rsplit_once('/').map_or(p, |(_, name)| name)
}

impl Fixture {
    fn resolve(&self, p: &str) -> TreeResult<Ino> {
        let mut ino = self.app;
        if p.is_empty() {
            return Ok(ino);
        }
        for part in p.split('/') {
            ino = self.tree().lookup(ino, OsStr::new(part))?.ino;
        }
        Ok(ino)
    }

    fn read_all(&self, ino: Ino) -> Vec<u8> {
        let opened = self.tree().open(ino, libc::O_RDONLY).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        self.tree().read(
            opened.fh,
            0,
            1 << 20,
            Box::new(move |r| tx.send(r.unwrap()).unwrap()),
        );
        let bytes = rx.recv().unwrap();
        self.tree().release(ino, opened.fh).unwrap();
        bytes
    }

    fn apply(&mut self, op: &Op) -> TreeResult<()> {
        match op {
            Op::Create(p, bytes) => {
                let parent = self.resolve(parent_of(p))?;
                let (attr, opened) =
                    self.tree()
                        .create(parent, OsStr::new(name_of(p)), creator(0o644))?;
                self.tree().write(attr.ino, opened.fh, 0, bytes)?;
                self.tree().release(attr.ino, opened.fh)
            }
            Op::Mkdir(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree()
                    .mkdir(parent, OsStr::new(name_of(p)), creator(0o755))
                    .map(|_| ())
            }
            Op::Write(p, offset, bytes) => {
                let ino = self.resolve(p)?;
                let opened = self.tree().open(ino, libc::O_WRONLY)?;
                let r = self.tree().write(ino, opened.fh, u64::from(*offset), bytes);
                self.tree().release(ino, opened.fh)?;
                r.map(|_| ())
            }
            Op::Truncate(p, size) => {
                let ino = self.resolve(p)?;
                let set = SetAttr {
                    size: Some(u64::from(*size)),
                    ..Default::default()
                };
                self.tree().setattr(ino, set).map(|_| ())
            }
            Op::Unlink(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree().unlink(parent, OsStr::new(name_of(p)))
            }
            Op::Rmdir(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree().rmdir(parent, OsStr::new(name_of(p)))
            }
            Op::Rename(a, b) => {
                let pa = self.resolve(parent_of(a))?;
                let pb = self.resolve(parent_of(b))?;
                self.tree()
                    .rename(pa, OsStr::new(name_of(a)), pb, OsStr::new(name_of(b)), 0)
            }
            Op::Exchange(a, b) => {
                let pa = self.resolve(parent_of(a))?;
                let pb = self.resolve(parent_of(b))?;
                self.tree().rename(
                    pa,
                    OsStr::new(name_of(a)),
                    pb,
                    OsStr::new(name_of(b)),
                    libc::RENAME_EXCHANGE,
                )
            }
            Op::Link(a, b) => {
                let ino = self.resolve(a)?;
                let pb = self.resolve(parent_of(b))?;
                self.tree()
                    .link(ino, pb, OsStr::new(name_of(b)))
                    .map(|_| ())
            }
            Op::Crash => {
                self.restart(false);
                Ok(())
            }
            Op::Restart => {
                self.restart(true);
                Ok(())
            }
        }
    }

    /// The whole app as a model, read through the tree's public calls.
    fn observe(&self) -> BTreeMap<String, Model> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(String::new(), self.app)];
        while let Some((prefix, ino)) = stack.pop() {
            let fh = self.tree().opendir(ino).unwrap();
            for entry in self.tree().readdir(fh, 2).unwrap() {
                let name = entry.name.to_string_lossy();
                let p = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                };
                match entry.kind {
                    FileKind::Dir => {
                        out.insert(p.clone(), Model::Dir);
                        stack.push((p, entry.ino));
                    }
                    _ => {
                        let attr = self.tree().getattr(entry.ino).unwrap();
                        let bytes = self.read_all(entry.ino);
                        assert_eq!(attr.size as usize, bytes.len());
                        out.insert(p, Model::File(bytes, attr.nlink));
                    }
                }
            }
            self.tree().releasedir(fh);
        }
        out
    }
}

/// Applies `op` to the model: `false` if the real call must fail.
fn model_apply(m: &mut RefModel, op: &Op) -> bool {
    let parent_is_dir = |m: &RefModel, p: &str| {
        let parent = parent_of(p);
        parent.is_empty() || m.names.get(parent) == Some(&Node::Dir)
    };
    let under = |p: &str, k: &str| k.starts_with(&format!("{p}/"));
    match op {
        Op::Create(p, bytes) if parent_is_dir(m, p) && !m.names.contains_key(p) => {
            m.next += 1;
            m.files.insert(m.next, bytes.clone());
            m.names.insert(p.clone(), Node::File(m.next));
            true
        }
        Op::Mkdir(p) if parent_is_dir(m, p) && !m.names.contains_key(p) => {
            m.names.insert(p.clone(), Node::Dir);
            true
        }
        Op::Write(p, offset, bytes) => match m.file_mut(p) {
            Some(_) if bytes.is_empty() => true,
            Some(data) => {
                let end = *offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[*offset as usize..end].copy_from_slice(bytes);
                true
            }
            None => false,
        },
        Op::Truncate(p, size) => match m.file_mut(p) {
            Some(data) => {
                data.resize(*size as usize, 0);
                true
            }
            None => false,
        },
        Op::Unlink(p) => {
            matches!(m.names.get(p), Some(Node::File(_))) && m.names.remove(p).is_some()
        }
        Op::Rmdir(p) => {
            let empty = !m.names.keys().any(|k| under(p, k));
            m.names.get(p) == Some(&Node::Dir) && empty && m.names.remove(p).is_some()
        }
        Op::Link(a, b) => match m.names.get(a).copied() {
            Some(Node::File(id)) if parent_is_dir(m, b) && !m.names.contains_key(b) => {
                m.names.insert(b.clone(), Node::File(id));
                true
            }
            _ => false,
        },
        Op::Rename(a, b) => {
            let Some(src) = m.names.get(a).copied() else {
                return false;
            };
            if !parent_is_dir(m, b) {
                return false;
            }
            if a == b || m.names.get(b) == Some(&src) && src != Node::Dir {
                return true;
            }
            let is_dir = src == Node::Dir;
            if is_dir && under(a, b) {
                return false;
            }
            match m.names.get(b) {
                Some(Node::Dir) if !is_dir => return false,
                Some(Node::File(_)) if is_dir => return false,
                Some(Node::Dir) if m.names.keys().any(|k| under(b, k)) => return false,
                _ => {}
            }
            let moved: Vec<(String, Node)> = m
                .names
                .iter()
                .filter(|(k, _)| *k == a || under(a, k))
                .map(|(k, v)| (format!("{b}{}", &k[a.len()..]), *v))
                .collect();
            m.names.retain(|k, _| k != a && !under(a, k));
            m.names.remove(b);
            m.names.extend(moved);
            true
        }
        Op::Exchange(a, b) => {
            let (Some(one), Some(other)) = (m.names.get(a).copied(), m.names.get(b).copied())
            else {
                return false;
            };
            if a == b || one == other && one != Node::Dir {
                return true;
            }
            if under(a, b) || under(b, a) {
                return false;
            }
            let swapped: Vec<(String, Node)> = m
                .names
                .iter()
                .filter_map(|(k, v)| {
                    if k == a || under(a, k) {
                        Some((format!("{b}{}", &k[a.len()..]), *v))
                    } else if k == b || under(b, k) {
                        Some((format!("{a}{}", &k[b.len()..]), *v))
                    } else {
                        None
                    }
                })
                .collect();
            let _ = (one, other);
            m.names
                .retain(|k, _| !(k == a || under(a, k) || k == b || under(b, k)));
            m.names.extend(swapped);
            true
        }
        Op::Crash | Op::Restart => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut f = fixture();
        let mut model = RefModel::default();
        for op in &ops {
            let expect_ok = model_apply(&mut model, op);
            let got = f.apply(op);
            prop_assert_eq!(got.is_ok(), expect_ok, "{:?} gave {:?}", op, got.err());
            prop_assert_eq!(f.observe(), model.view(), "after {:?}", op);
        }
        // And a snapshot agrees with what reads returned, once sealed.
        f.tree().drain_seals();
        let (_, entries, _, _pins) = f.tree().snapshot_entries(&f.app_id()).unwrap();
        prop_assert_eq!(entries.len(), model.names.len());
    }
}

fn sample_tree(f: &mut Fixture) {
    for op in [
        Op::Mkdir("a".into()),
        Op::Create("a/b".into(), b"bee".to_vec()),
        Op::Create("c".into(), b"sea".to_vec()),
        Op::Rename("c".into(), "a/c".into()),
        Op::Link("a/b".into(), "d".into()),
    ] {
        f.apply(&op).unwrap();
    }
}

#[test]
fn a_restored_tree_is_the_same_tree() {
    let mut f = fixture();
    sample_tree(&mut f);
    let before = f.observe();
    f.restart(true);
    assert_eq!(f.observe(), before);
    assert!(f.hooks.held.lock().is_empty(), "a clean stop holds nothing");
    f.restart(false);
    assert_eq!(f.observe(), before);
    assert!(
        f.hooks.held.lock().is_empty(),
        "the crashed run changed nothing, so nothing is held"
    );
}

#[test]
fn an_app_changed_before_an_unclean_stop_comes_back_held() {
    let mut f = fixture();
    f.apply(&Op::Create("x".into(), b"1".to_vec())).unwrap();
    f.restart(false);
    assert_eq!(
        f.hooks.held.lock().as_slice(),
        [recovery::HELD_AFTER_CRASH.to_string()]
    );
}

/// The probe's mixed tree: files rewritten in place (O_TRUNC, writes),
/// then creates, then `kill -9`. The first change recorded the mark, so
/// the app comes back held, whatever kind of change came first.
#[test]
fn an_overwrite_before_an_unclean_stop_comes_back_held() {
    let mut f = fixture();
    f.apply(&Op::Create("old".into(), b"v1".to_vec())).unwrap();
    f.restart(true);
    assert!(f.hooks.held.lock().is_empty());
    let tree = f.tree().clone();
    let ino = f.resolve("old").unwrap();
    let opened = tree.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    tree.write(ino, opened.fh, 0, b"v2").unwrap();
    tree.release(ino, opened.fh).unwrap();
    tree.drain_seals();
    f.apply(&Op::Create("new".into(), b"v2".to_vec())).unwrap();
    drop(tree);
    f.restart(false);
    assert_eq!(
        f.hooks.held.lock().as_slice(),
        [recovery::HELD_AFTER_CRASH.to_string()]
    );
}

#[test]
fn a_file_open_when_pushfs_dies_keeps_the_bytes_that_reached_its_temp_file() {
    let mut f = fixture();
    let tree = f.tree().clone();
    let (attr, opened) = tree.create(f.app, OsStr::new("x"), creator(0o644)).unwrap();
    tree.write(attr.ino, opened.fh, 0, b"partial").unwrap();
    drop(tree);
    f.restart(false);
    let ino = f.resolve("x").unwrap();
    assert_eq!(f.read_all(ino), b"partial");
    let notes = f.hooks.notes.lock().clone();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("recovered x") && n.contains("7 bytes")),
        "{notes:?}"
    );
}

#[test]
fn a_file_being_written_is_named_not_snapshotted_until_sealed() {
    let f = fixture();
    let (attr, opened) = f
        .tree()
        .create(f.app, OsStr::new("x"), creator(0o644))
        .unwrap();
    f.tree().write(attr.ino, opened.fh, 0, b"partial").unwrap();
    let app = f.app_id();
    let writing = |f: &Fixture| {
        f.tree()
            .readiness(&app, &["spec.json"])
            .unwrap()
            .being_written
    };
    assert_eq!(writing(&f), ["x"]);
    let (_, entries, being_written, _pins) = f.tree().snapshot_entries(&app).unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(being_written, ["x"], "named, so the deploy can wait for it");
    f.tree().release(attr.ino, opened.fh).unwrap();
    f.tree().drain_seals();
    assert!(writing(&f).is_empty());
    let (_, entries, _, _pins) = f.tree().snapshot_entries(&app).unwrap();
    assert_eq!(entries.len(), 1);
}

#[test]
fn space_comes_back_when_the_last_name_goes() {
    let mut f = fixture();
    f.apply(&Op::Create("one".into(), b"shared bytes".to_vec()))
        .unwrap();
    f.apply(&Op::Link("one".into(), "two".into())).unwrap();
    f.apply(&Op::Create("copy".into(), b"shared bytes".to_vec()))
        .unwrap();
    f.tree().drain_seals();
    let blob = f.tree().store().put_bytes(b"shared bytes").unwrap();
    let stored = |f: &Fixture| f.tree().store().has_blob(&blob.sha256);
    f.apply(&Op::Unlink("one".into())).unwrap();
    f.apply(&Op::Unlink("copy".into())).unwrap();
    assert!(stored(&f), "`two` still names it");
    // A deploy packaging the blob keeps it until it is done.
    let (_, _, _, pins) = f.tree().snapshot_entries(&f.app_id()).unwrap();
    f.apply(&Op::Unlink("two".into())).unwrap();
    assert!(stored(&f), "pinned by the deploy");
    drop(pins);
    assert!(!stored(&f), "freed while mounted, when the deploy let go");
}

#[test]
fn rewriting_a_file_frees_its_old_content() {
    let mut f = fixture();
    f.apply(&Op::Create("big".into(), vec![7; 4000])).unwrap();
    f.tree().drain_seals();
    let old = f.tree().store().put_bytes(&[7; 4000]).unwrap();
    f.apply(&Op::Truncate("big".into(), 10)).unwrap();
    f.tree().drain_seals();
    assert!(!f.tree().store().has_blob(&old.sha256));
    f.apply(&Op::Write("big".into(), 0, b"new".to_vec()))
        .unwrap();
    f.tree().drain_seals();
    let (inodes, blobs) = f.tree().meta().read().unwrap().counts().unwrap();
    assert_eq!(blobs, 1, "only the current content is kept");
    assert!(inodes >= 6, "root, three backends, the app, the file");
}

#[test]
fn hard_links_share_content_and_stay_inside_their_app() {
    let mut f = fixture();
    f.apply(&Op::Mkdir("d".into())).unwrap();
    f.apply(&Op::Create("a".into(), b"same".to_vec())).unwrap();
    f.apply(&Op::Link("a".into(), "d/b".into())).unwrap();
    let a = f.resolve("a").unwrap();
    assert_eq!(f.tree().getattr(a).unwrap().nlink, 2);
    assert_eq!(f.resolve("d/b").unwrap(), a);
    assert!(matches!(
        f.apply(&Op::Link("d".into(), "e".into())),
        Err(TreeError::HardLinkToDirectory)
    ));
    let cf = f.tree().lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    let other = f
        .tree()
        .mkdir(cf, OsStr::new("other"), creator(0o755))
        .unwrap()
        .ino;
    assert!(matches!(
        f.tree().link(a, other, OsStr::new("a")),
        Err(TreeError::CrossAppLink)
    ));
    f.tree().drain_seals();
    let (_, entries, _, _pins) = f.tree().snapshot_entries(&f.app_id()).unwrap();
    let inodes: Vec<_> = entries
        .iter()
        .filter_map(|e| e.file().map(|c| c.inode))
        .collect();
    assert_eq!(inodes, [Some(a), Some(a)], "both names carry the inode");
}

#[test]
fn chown_to_nobody_in_particular_leaves_ctime_alone() {
    let mut f = fixture();
    f.apply(&Op::Create("x".into(), b"x".to_vec())).unwrap();
    f.tree().drain_seals();
    let ino = f.resolve("x").unwrap();
    let before = f.tree().getattr(ino).unwrap();
    let after = f.tree().setattr(ino, SetAttr::default()).unwrap();
    assert_eq!(before.ctime, after.ctime);
}

#[test]
fn apps_saved_by_an_earlier_pushfs_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let blob = store.put_bytes(b"print(1)").unwrap();
    let app_dir = dir.path().join("apps/old-id");
    std::fs::create_dir_all(&app_dir).unwrap();
    let meta = r#""perm":420,"uid":0,"gid":0,"mtime":[1,2]"#;
    let manifest = format!(
        r#"{{"format":1,"id":"old-id","backend":"cf","name":"legacy",
            "root":{{{meta}}},
            "entries":[{{"path":"src",{meta},"kind":{{"type":"dir"}}}},
                       {{"path":"src/main.py",{meta},"kind":{{"type":"file","sha256":"{}","sha1":"{}","size":8}}}}]}}"#,
        blob.sha256, blob.sha1
    );
    std::fs::write(app_dir.join("manifest.json"), manifest).unwrap();
    let (tree, _) = load(dir.path());
    let apps = tree.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(
        (apps[0].0 .0.as_str(), apps[0].2.as_str()),
        ("old-id", "legacy")
    );
    let (_, entries, _, _pins) = tree.snapshot_entries(&apps[0].0).unwrap();
    let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["src", "src/main.py"]);
    assert!(app_dir.join("manifest.json.imported").exists());
    assert!(
        tree.store().has_blob(&blob.sha256),
        "kept: the engine names it"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Records a successful deploy of the app as it is now; returns its digest.
fn record_deployed(f: &Fixture, keep: usize) -> String {
    f.tree().drain_seals();
    let app = f.app_id();
    let (name, entries, _, _pins) = f.tree().snapshot_entries(&app).unwrap();
    let profile = crate::kind::IgnoreProfile::default();
    let digest = crate::snapshot::Snapshot::build(name, BackendKind::Cf, &entries, &profile).digest;
    let record = DeployRecord {
        outcome: "deployed",
        digest: &digest,
        server: Some("revision=1"),
        folder: Some(&entries),
    };
    f.tree().record_deploy(&app, record, keep).unwrap();
    digest
}

/// Writes a line to the app's `.pushfs/ctl`, as `echo` would.
fn ctl(f: &Fixture, line: &str) -> TreeResult<u32> {
    let status = f.tree().lookup(f.app, OsStr::new(".pushfs")).unwrap().ino;
    let ctl = f.tree().lookup(status, OsStr::new("ctl")).unwrap().ino;
    let opened = f.tree().open(ctl, libc::O_WRONLY).unwrap();
    let written = f.tree().write(ctl, opened.fh, 0, line.as_bytes());
    f.tree().release(ctl, opened.fh).unwrap();
    written
}

fn history(f: &Fixture) -> String {
    String::from_utf8(f.tree().history_text(&f.app_id()).unwrap()).unwrap()
}

#[test]
fn a_rollback_puts_the_folder_back_and_can_itself_be_undone() {
    let mut f = fixture();
    sample_tree(&mut f);
    f.apply(&Op::Create("big".into(), vec![9; 5000])).unwrap();
    let first = f.observe();
    let first_digest = record_deployed(&f, 10);
    for op in [
        Op::Write("a/b".into(), 0, b"BEE, changed".to_vec()),
        Op::Create("new".into(), b"new file".to_vec()),
        Op::Unlink("big".into()),
        Op::Mkdir("e".into()),
        Op::Create("e/f".into(), b"deep".to_vec()),
    ] {
        f.apply(&op).unwrap();
    }
    f.tree().drain_seals();
    let second = f.observe();
    assert_ne!(first, second);

    ctl(&f, &format!("rollback {}\n", &first_digest[..8])).unwrap();
    assert_eq!(
        f.observe(),
        first,
        "the folder is the deployed tree again, hard link and all"
    );
    let lines = history(&f);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(&format!(" deployed  {first_digest} revision=1 kept")),
        "{lines:?}"
    );
    let replaced: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        (replaced[1], replaced[4]),
        ("replaced", "kept"),
        "{lines:?}"
    );
    assert!(f
        .hooks
        .notes
        .lock()
        .contains(&format!("rolled back to {first_digest}")));

    // The replaced tree is kept: rolling back to it undoes the rollback.
    ctl(&f, &format!("rollback {}", &replaced[2][..6])).unwrap();
    assert_eq!(f.observe(), second);
    // And all of it survives a crash: the kept blobs are counted at mount.
    f.restart(false);
    ctl(&f, &format!("rollback {}", &first_digest[..8])).unwrap();
    assert_eq!(f.observe(), first);
}

#[test]
fn a_rollback_says_why_it_cannot_be_done() {
    let mut f = fixture();
    f.apply(&Op::Create("x".into(), b"1".to_vec())).unwrap();
    let digest = record_deployed(&f, 10);
    assert!(matches!(
        ctl(&f, "rollback zz12"),
        Err(TreeError::BadDigestPrefix)
    ));
    assert!(matches!(
        ctl(&f, "rollback abc"),
        Err(TreeError::BadDigestPrefix)
    ));
    let other = if digest.starts_with("0000") {
        "1111"
    } else {
        "0000"
    };
    assert!(matches!(
        ctl(&f, &format!("rollback {other}")),
        Err(TreeError::NoKeptTree(_))
    ));
    let notes = f.hooks.notes.lock().clone();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("no kept tree") && n.contains(other)),
        "{notes:?}"
    );
    // A file open for writing would lose its bytes: refused.
    let (attr, opened) = f
        .tree()
        .create(f.app, OsStr::new("open"), creator(0o644))
        .unwrap();
    assert!(matches!(
        ctl(&f, &format!("rollback {}", &digest[..8])),
        Err(TreeError::AppBusy)
    ));
    f.tree().release(attr.ino, opened.fh).unwrap();
    ctl(&f, &format!("rollback {}", &digest[..8])).unwrap();
    assert!(
        f.resolve("open").is_err(),
        "the folder is the deployed tree"
    );
}

#[test]
fn kept_trees_hold_their_blobs_until_they_age_out() {
    let mut f = fixture();
    let has = |f: &Fixture, bytes: &[u8]| f.tree().store().has_blob(&sha256_hex(bytes));
    f.apply(&Op::Create("v".into(), b"version one".to_vec()))
        .unwrap();
    record_deployed(&f, 2);
    f.apply(&Op::Unlink("v".into())).unwrap();
    f.apply(&Op::Create("v".into(), b"version two".to_vec()))
        .unwrap();
    record_deployed(&f, 2);
    assert!(
        has(&f, b"version one"),
        "kept for a rollback though no file names it"
    );
    f.restart(true);
    assert!(
        has(&f, b"version one"),
        "the sweep at mount counts kept trees"
    );
    f.apply(&Op::Unlink("v".into())).unwrap();
    f.apply(&Op::Create("v".into(), b"version three".to_vec()))
        .unwrap();
    record_deployed(&f, 2);
    assert!(
        !has(&f, b"version one"),
        "the oldest of three trees goes with keep = 2"
    );
    assert!(has(&f, b"version two"));
    let kept = history(&f).lines().filter(|l| l.ends_with(" kept")).count();
    assert_eq!(kept, 2, "{}", history(&f));
}

#[test]
fn removing_an_app_frees_its_kept_trees() {
    let mut f = fixture();
    f.apply(&Op::Create("x".into(), b"only in the history".to_vec()))
        .unwrap();
    record_deployed(&f, 10);
    f.apply(&Op::Unlink("x".into())).unwrap();
    let sha = sha256_hex(b"only in the history");
    assert!(f.tree().store().has_blob(&sha));
    let cf = f.tree().lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    f.tree().rmdir(cf, OsStr::new("app")).unwrap();
    assert!(!f.tree().store().has_blob(&sha));
}

#[test]
fn a_truncate_racing_the_seal_never_leaves_a_blob_that_disagrees_with_its_size() {
    let mut f = fixture();
    for round in 0..300 {
        let name = format!("f{round}");
        f.apply(&Op::Create(name.clone(), vec![7; 4096])).unwrap();
        // The seal of the closed file runs on its thread while this truncates.
        f.apply(&Op::Truncate(name.clone(), 16)).unwrap();
        f.tree().drain_seals();
        let ino = f.resolve(&name).unwrap();
        let attr = f.tree().getattr(ino).unwrap();
        let bytes = f.read_all(ino);
        assert_eq!((attr.size, bytes.len()), (16, 16), "round {round}");
        let row = f.tree().meta().read().unwrap().inode(ino).unwrap().unwrap();
        let blob = row.blob.expect("sealed");
        let stored = std::fs::read(f.tree().store().blob_path(&blob.sha256)).unwrap();
        assert_eq!(
            sha256_hex(&stored),
            blob.sha256,
            "round {round}: the blob is its name"
        );
    }
}

/// 200,000 creates in a row, with no pause for SQLite to start its log
/// over: the log stays within its bound plus one transaction.
#[test]
fn the_metadata_log_stays_bounded_under_a_stream_of_creates() {
    let f = fixture();
    let wal = f.dir.path().join("meta.db-wal");
    let bound = crate::meta::WAL_BOUND + (1 << 20);
    let mut largest = 0;
    let mut dir = f.app;
    for i in 0..200_000u32 {
        if i % 1000 == 0 {
            let name = format!("d{i}");
            dir = f
                .tree()
                .mkdir(f.app, OsStr::new(&name), creator(0o755))
                .unwrap()
                .ino;
        }
        let name = format!("f{i}");
        f.tree()
            .mknod(dir, OsStr::new(&name), creator(0o644))
            .unwrap();
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(largest <= bound, "the log reached {largest} bytes");
    eprintln!("largest log: {largest} bytes");
}

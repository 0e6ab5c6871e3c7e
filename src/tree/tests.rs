//! The tree without a kernel: random sequences of namespace and I/O
//! operations, compared step by step with a plain in-memory model.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::deploy::status::AppStatus;

struct NoHooks;

impl DeployHooks for NoHooks {
    fn app_created(&self, _: &AppId, _: BackendKind, _: &str) {}
    fn app_changed(&self, _: &AppId) {}
    fn app_renamed(&self, _: &AppId, _: &str) {}
    fn app_removed(&self, _: &AppId) {}
    fn command(&self, _: &AppId, _: CtlCommand) {}
    fn status_file(&self, _: &AppId, file: StatusFile) -> Vec<u8> {
        file.render(&AppStatus::new("t", BackendKind::Cf), &[])
    }
    fn wait(&self, _: &AppId, done: Box<dyn FnOnce(Vec<u8>) + Send>) {
        done(b"idle\n".to_vec())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    tree: Arc<Tree>,
    app: Ino,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ContentStore::open(dir.path()).unwrap());
    let tree = Tree::load(dir.path(), store, Arc::new(NoHooks), (0, 0)).unwrap();
    let cf = tree.lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    let app = tree
        .mkdir(cf, OsStr::new("app"), creator(0o755))
        .unwrap()
        .ino;
    Fixture {
        _dir: dir,
        tree,
        app,
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Dir,
    File(Vec<u8>),
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
            ino = self.tree.lookup(ino, OsStr::new(part))?.ino;
        }
        Ok(ino)
    }

    fn read_all(&self, ino: Ino) -> Vec<u8> {
        let opened = self.tree.open(ino, libc::O_RDONLY).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        self.tree.read(
            opened.fh,
            0,
            1 << 20,
            Box::new(move |r| tx.send(r.unwrap()).unwrap()),
        );
        let bytes = rx.recv().unwrap();
        self.tree.release(ino, opened.fh).unwrap();
        bytes
    }

    fn apply(&self, op: &Op) -> TreeResult<()> {
        match op {
            Op::Create(p, bytes) => {
                let parent = self.resolve(parent_of(p))?;
                let (attr, opened) =
                    self.tree
                        .create(parent, OsStr::new(name_of(p)), creator(0o644))?;
                self.tree.write(attr.ino, opened.fh, 0, bytes)?;
                self.tree.release(attr.ino, opened.fh)
            }
            Op::Mkdir(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree
                    .mkdir(parent, OsStr::new(name_of(p)), creator(0o755))
                    .map(|_| ())
            }
            Op::Write(p, offset, bytes) => {
                let ino = self.resolve(p)?;
                let opened = self.tree.open(ino, libc::O_WRONLY)?;
                let r = self.tree.write(ino, opened.fh, u64::from(*offset), bytes);
                self.tree.release(ino, opened.fh)?;
                r.map(|_| ())
            }
            Op::Truncate(p, size) => {
                let ino = self.resolve(p)?;
                let set = SetAttr {
                    size: Some(u64::from(*size)),
                    ..Default::default()
                };
                self.tree.setattr(ino, set).map(|_| ())
            }
            Op::Unlink(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree.unlink(parent, OsStr::new(name_of(p)))
            }
            Op::Rmdir(p) => {
                let parent = self.resolve(parent_of(p))?;
                self.tree.rmdir(parent, OsStr::new(name_of(p)))
            }
            Op::Rename(a, b) => {
                let pa = self.resolve(parent_of(a))?;
                let pb = self.resolve(parent_of(b))?;
                self.tree
                    .rename(pa, OsStr::new(name_of(a)), pb, OsStr::new(name_of(b)), 0)
            }
        }
    }

    /// The whole app as a model, read through the tree's public calls.
    fn observe(&self) -> BTreeMap<String, Model> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(String::new(), self.app)];
        while let Some((prefix, ino)) = stack.pop() {
            let fh = self.tree.opendir(ino).unwrap();
            for entry in self.tree.readdir(fh, 2).unwrap() {
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
                        assert_eq!(
                            self.tree.getattr(entry.ino).unwrap().size as usize,
                            self.read_all(entry.ino).len()
                        );
                        out.insert(p, Model::File(self.read_all(entry.ino)));
                    }
                }
            }
            self.tree.releasedir(fh);
        }
        out
    }
}

/// Applies `op` to the model: `false` if the real call must fail.
fn model_apply(m: &mut BTreeMap<String, Model>, op: &Op) -> bool {
    let parent_is_dir = |m: &BTreeMap<String, Model>, p: &str| {
        let parent = parent_of(p);
        parent.is_empty() || m.get(parent) == Some(&Model::Dir)
    };
    match op {
        Op::Create(p, _) | Op::Mkdir(p) if parent_is_dir(m, p) && !m.contains_key(p) => {
            let node = match op {
                Op::Create(_, bytes) => Model::File(bytes.clone()),
                _ => Model::Dir,
            };
            m.insert(p.clone(), node);
            true
        }
        Op::Write(p, offset, bytes) => match m.get_mut(p) {
            Some(Model::File(_)) if bytes.is_empty() => true,
            Some(Model::File(data)) => {
                let end = *offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[*offset as usize..end].copy_from_slice(bytes);
                true
            }
            _ => false,
        },
        Op::Truncate(p, size) => match m.get_mut(p) {
            Some(Model::File(data)) => {
                data.resize(*size as usize, 0);
                true
            }
            _ => false,
        },
        Op::Unlink(p) => {
            m.get(p).is_some_and(|n| matches!(n, Model::File(_))) && m.remove(p).is_some()
        }
        Op::Rmdir(p) => {
            let empty = !m.keys().any(|k| k.starts_with(&format!("{p}/")));
            m.get(p) == Some(&Model::Dir) && empty && m.remove(p).is_some()
        }
        Op::Rename(a, b) => {
            let Some(src) = m.get(a).cloned() else {
                return false;
            };
            if !parent_is_dir(m, b) {
                return false;
            }
            if a == b {
                return true;
            }
            let is_dir = src == Model::Dir;
            if is_dir && b.starts_with(&format!("{a}/")) {
                return false;
            }
            match m.get(b) {
                Some(Model::Dir) if !is_dir => return false,
                Some(Model::File(_)) if is_dir => return false,
                Some(Model::Dir) if m.keys().any(|k| k.starts_with(&format!("{b}/"))) => {
                    return false
                }
                _ => {}
            }
            let moved: Vec<(String, Model)> = m
                .iter()
                .filter(|(k, _)| *k == a || k.starts_with(&format!("{a}/")))
                .map(|(k, v)| (format!("{b}{}", &k[a.len()..]), v.clone()))
                .collect();
            m.retain(|k, _| k != a && !k.starts_with(&format!("{a}/")));
            m.remove(b);
            m.extend(moved);
            true
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let f = fixture();
        let mut model = BTreeMap::new();
        for op in &ops {
            let expect_ok = model_apply(&mut model, op);
            let got = f.apply(op);
            prop_assert_eq!(got.is_ok(), expect_ok, "{:?} gave {:?}", op, got.err());
            prop_assert_eq!(f.observe(), model.clone(), "after {:?}", op);
        }
        // And a snapshot agrees with what reads returned.
        let (_, entries) = f.tree.snapshot_entries(&f.tree.apps()[0].0).unwrap();
        prop_assert_eq!(entries.len(), model.len());
    }
}

#[test]
fn a_restored_tree_is_the_same_tree() {
    let f = fixture();
    for op in [
        Op::Mkdir("a".into()),
        Op::Create("a/b".into(), b"bee".to_vec()),
        Op::Create("c".into(), b"sea".to_vec()),
        Op::Rename("c".into(), "a/c".into()),
    ] {
        f.apply(&op).unwrap();
    }
    let before = f.observe();
    f.tree.save_changed().unwrap();
    let dir = f._dir.path().to_path_buf();
    let store = Arc::new(ContentStore::open(&dir).unwrap());
    let restored = Tree::load(&dir, store, Arc::new(NoHooks), (0, 0)).unwrap();
    let cf = restored.lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    let app = restored.lookup(cf, OsStr::new("app")).unwrap().ino;
    let again = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        tree: restored,
        app,
    };
    assert_eq!(again.observe(), before);
}

#[test]
fn a_file_being_written_is_not_snapshotted_until_released() {
    let f = fixture();
    let (attr, opened) = f
        .tree
        .create(f.app, OsStr::new("x"), creator(0o644))
        .unwrap();
    f.tree.write(attr.ino, opened.fh, 0, b"partial").unwrap();
    let app = f.tree.apps()[0].0.clone();
    assert_eq!(
        f.tree
            .readiness(&app, &["spec.json"])
            .unwrap()
            .files_being_written,
        1
    );
    assert!(f.tree.snapshot_entries(&app).is_none());
    f.tree.release(attr.ino, opened.fh).unwrap();
    assert_eq!(
        f.tree
            .readiness(&app, &["spec.json"])
            .unwrap()
            .files_being_written,
        0
    );
    let (_, entries) = f.tree.snapshot_entries(&app).unwrap();
    assert_eq!(entries.len(), 1);
}

#[test]
fn blobs_nothing_refers_to_are_collected_at_the_next_start() {
    let f = fixture();
    f.apply(&Op::Create("keep".into(), b"kept bytes".to_vec()))
        .unwrap();
    f.apply(&Op::Create("gone".into(), b"dropped bytes".to_vec()))
        .unwrap();
    let gone = f.tree.store().put_bytes(b"dropped bytes").unwrap();
    let kept = f.tree.store().put_bytes(b"kept bytes").unwrap();
    f.apply(&Op::Unlink("gone".into())).unwrap();
    f.tree.save_changed().unwrap();
    assert!(
        f.tree.store().has_blob(&gone.sha256),
        "still there until the next start"
    );
    let dir = f._dir.path().to_path_buf();
    let store = Arc::new(ContentStore::open(&dir).unwrap());
    Tree::load(&dir, store.clone(), Arc::new(NoHooks), (0, 0)).unwrap();
    assert!(!store.has_blob(&gone.sha256));
    assert!(store.has_blob(&kept.sha256));
}

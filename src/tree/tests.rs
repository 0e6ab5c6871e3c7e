//! The tree without a kernel: random sequences of namespace and I/O
//! operations, compared step by step with a plain in-memory model.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use status_files::StatusFile;

/// Records what the tree tells the deploy layer about recovery.
#[derive(Default)]
struct Hooks {
    notes: parking_lot::Mutex<Vec<String>>,
    held: parking_lot::Mutex<Vec<String>>,
    /// How many times an app's settle timer restarted.
    changed: std::sync::atomic::AtomicUsize,
}

impl DeployHooks for Hooks {
    fn app_created(&self, _: &AppId, _: BackendKind, _: &str) {}
    fn app_changed(&self, _: &AppId) {
        self.changed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
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

/// Extended attributes by name.
type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

/// What a path shows: a directory, or a file's bytes and link count, each
/// with its extended attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Dir(Xattrs),
    File(Vec<u8>, u32, Xattrs),
}

/// The reference: names point at directory or file identities, so hard
/// links share their bytes and attributes.
#[derive(Debug, Clone, Default)]
struct RefModel {
    names: BTreeMap<String, Node>,
    files: std::collections::HashMap<u32, Vec<u8>>,
    xattrs: std::collections::HashMap<u32, Xattrs>,
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(u32),
}

impl Node {
    fn id(self) -> u32 {
        match self {
            Node::Dir(id) | Node::File(id) => id,
        }
    }

    fn is_dir(self) -> bool {
        matches!(self, Node::Dir(_))
    }
}

impl RefModel {
    fn view(&self) -> BTreeMap<String, Model> {
        self.names
            .iter()
            .map(|(path, node)| {
                let xattrs = self.xattrs.get(&node.id()).cloned().unwrap_or_default();
                let model = match node {
                    Node::Dir(_) => Model::Dir(xattrs),
                    Node::File(id) => {
                        let links = self
                            .names
                            .values()
                            .filter(|n| **n == Node::File(*id))
                            .count();
                        Model::File(self.files[id].clone(), links as u32, xattrs)
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
    /// `setxattr` of `user.a` or `user.b`, with its flags.
    SetXattr(String, u8, Vec<u8>, i32),
    RemoveXattr(String, u8),
    /// `fallocate(mode, offset, len)` through a handle open for writing.
    Fallocate(String, i32, u16, u16),
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
        (path(), 0u16..100, bytes.clone()).prop_map(|(p, o, b)| Op::Write(p, o, b)),
        (path(), 0u16..100).prop_map(|(p, s)| Op::Truncate(p, s)),
        path().prop_map(Op::Unlink),
        path().prop_map(Op::Rmdir),
        (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        (path(), path()).prop_map(|(a, b)| Op::Exchange(a, b)),
        (path(), path()).prop_map(|(a, b)| Op::Link(a, b)),
        (busy_path(), 0u8..3, bytes, xattr_flags())
            .prop_map(|(p, n, v, f)| Op::SetXattr(p, n, v, f)),
        (busy_path(), 0u8..3).prop_map(|(p, n)| Op::RemoveXattr(p, n)),
        (busy_path(), fallocate_mode(), 0u16..100, 0u16..100)
            .prop_map(|(p, m, o, l)| Op::Fallocate(p, m, o, l)),
        Just(Op::Crash),
        Just(Op::Restart),
    ]
}

/// Mostly a top-level name, which some earlier create or mkdir likely
/// made: an operation on a path nothing made tests little.
fn busy_path() -> impl Strategy<Value = String> {
    let top = prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from);
    prop_oneof![2 => top, 1 => path()]
}

fn xattr_flags() -> impl Strategy<Value = i32> {
    prop::sample::select(vec![0, libc::XATTR_CREATE, libc::XATTR_REPLACE])
}

/// The three supported modes, and one that is refused.
fn fallocate_mode() -> impl Strategy<Value = i32> {
    prop::sample::select(vec![
        0,
        libc::FALLOC_FL_KEEP_SIZE,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        libc::FALLOC_FL_ZERO_RANGE,
    ])
}

/// Two user attributes, and one in `security.`, which getxattr answers
/// without the engine until one exists (a restart must remember it).
fn xattr_name(n: u8) -> Vec<u8> {
    ["user.a", "user.b", "security.c"][usize::from(n % 3)]
        .as_bytes()
        .to_vec()
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
            Op::SetXattr(p, n, value, flags) => {
                let ino = self.resolve(p)?;
                let name = xattr_name(*n);
                self.tree()
                    .setxattr(ino, OsStr::from_bytes(&name), value, *flags, 0)
            }
            Op::RemoveXattr(p, n) => {
                let ino = self.resolve(p)?;
                let name = xattr_name(*n);
                self.tree().removexattr(ino, OsStr::from_bytes(&name), 0)
            }
            Op::Fallocate(p, mode, offset, len) => {
                let ino = self.resolve(p)?;
                let opened = self.tree().open(ino, libc::O_WRONLY)?;
                let r =
                    self.tree()
                        .fallocate(opened.fh, u64::from(*offset), u64::from(*len), *mode);
                self.tree().release(ino, opened.fh)?;
                r
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

    /// An inode's attributes, asked as `getfattr -d` asks: each size first.
    fn xattrs_of(&self, ino: Ino) -> Xattrs {
        let tree = self.tree();
        let mut out = Xattrs::new();
        let XattrReply::Size(size) = tree.listxattr(ino, 0, 0).unwrap() else {
            panic!("a size probe answers a size");
        };
        if size == 0 {
            return out;
        }
        let XattrReply::Data(list) = tree.listxattr(ino, size, 0).unwrap() else {
            panic!("a list that fits is the list");
        };
        assert_eq!(list.last(), Some(&0), "each name ends with a NUL");
        for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = OsStr::from_bytes(name);
            let XattrReply::Size(len) = tree.getxattr(ino, name, 0, 0).unwrap() else {
                panic!("a size probe answers a size");
            };
            let value = match len {
                0 => Vec::new(),
                len => match tree.getxattr(ino, name, len, 0).unwrap() {
                    XattrReply::Data(value) => value,
                    other => panic!("{other:?}"),
                },
            };
            out.insert(name.as_bytes().to_vec(), value);
        }
        out
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
                        out.insert(p.clone(), Model::Dir(self.xattrs_of(entry.ino)));
                        stack.push((p, entry.ino));
                    }
                    _ => {
                        let attr = self.tree().getattr(entry.ino).unwrap();
                        let bytes = self.read_all(entry.ino);
                        assert_eq!(attr.size as usize, bytes.len());
                        let xattrs = self.xattrs_of(entry.ino);
                        out.insert(p, Model::File(bytes, attr.nlink, xattrs));
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
        parent.is_empty() || m.names.get(parent).is_some_and(|n| n.is_dir())
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
            m.next += 1;
            m.names.insert(p.clone(), Node::Dir(m.next));
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
            m.names.get(p).is_some_and(|n| n.is_dir()) && empty && m.names.remove(p).is_some()
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
            if a == b || m.names.get(b) == Some(&src) && !src.is_dir() {
                return true;
            }
            let is_dir = src.is_dir();
            if is_dir && under(a, b) {
                return false;
            }
            match m.names.get(b) {
                Some(Node::Dir(_)) if !is_dir => return false,
                Some(Node::File(_)) if is_dir => return false,
                Some(Node::Dir(_)) if m.names.keys().any(|k| under(b, k)) => return false,
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
            if a == b || one == other && !one.is_dir() {
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
        Op::SetXattr(p, n, value, flags) => {
            let Some(node) = m.names.get(p).copied() else {
                return false;
            };
            let attrs = m.xattrs.entry(node.id()).or_default();
            let exists = attrs.contains_key(&xattr_name(*n));
            if flags & libc::XATTR_CREATE != 0 && exists
                || flags & libc::XATTR_REPLACE != 0 && !exists
            {
                return false;
            }
            attrs.insert(xattr_name(*n), value.clone());
            true
        }
        Op::RemoveXattr(p, n) => match m.names.get(p).copied() {
            Some(node) => m
                .xattrs
                .entry(node.id())
                .or_default()
                .remove(&xattr_name(*n))
                .is_some(),
            None => false,
        },
        Op::Fallocate(p, mode, offset, len) => {
            let Some(data) = m.file_mut(p) else {
                return false;
            };
            let (offset, end) = (*offset as usize, *offset as usize + *len as usize);
            const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            match *mode {
                // fallocate(2): a zero length is EINVAL.
                _ if *len == 0 => false,
                0 => {
                    if data.len() < end {
                        data.resize(end, 0);
                    }
                    true
                }
                libc::FALLOC_FL_KEEP_SIZE => true,
                PUNCH => {
                    let end = end.min(data.len());
                    if offset < end {
                        data[offset..end].fill(0);
                    }
                    true
                }
                _ => false,
            }
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
    let snapshot = crate::snapshot::Snapshot::build(name, BackendKind::Cf, entries, &profile);
    let digest = snapshot.digest.clone();
    let record = DeployRecord {
        outcome: "deployed",
        digest: &digest,
        server: Some("revision=1"),
        folder: Some(&snapshot),
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

fn xattr(f: &Fixture, ino: Ino, name: &str, uid: u32) -> TreeResult<Vec<u8>> {
    match f.tree().getxattr(ino, OsStr::new(name), 1 << 16, uid)? {
        XattrReply::Data(value) => Ok(value),
        other => panic!("{other:?}"),
    }
}

fn names(f: &Fixture, ino: Ino, uid: u32) -> Vec<String> {
    match f.tree().listxattr(ino, 1 << 16, uid).unwrap() {
        XattrReply::Data(list) => list
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8(n.to_vec()).unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn changes(f: &Fixture) -> usize {
    f.hooks.changed.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn an_xattr_belongs_to_the_inode_moves_ctime_and_deploys_nothing() {
    let mut f = fixture();
    f.apply(&Op::Create("a".into(), b"x".to_vec())).unwrap();
    f.apply(&Op::Link("a".into(), "b".into())).unwrap();
    f.tree().drain_seals();
    let ino = f.resolve("a").unwrap();
    let (before, changed) = (f.tree().getattr(ino).unwrap(), changes(&f));
    std::thread::sleep(std::time::Duration::from_millis(5));
    let set = |name: &str, value: &[u8], flags| {
        f.tree().setxattr(ino, OsStr::new(name), value, flags, 1000)
    };
    set("user.k", b"v1", libc::XATTR_CREATE).unwrap();
    let after = f.tree().getattr(ino).unwrap();
    assert!(after.ctime > before.ctime, "ctime moves");
    assert_eq!(after.mtime, before.mtime, "mtime stays");
    assert_eq!(changes(&f), changed, "no settle timer restarts: no deploy");
    // The other name is the same inode.
    assert_eq!(
        xattr(&f, f.resolve("b").unwrap(), "user.k", 1000).unwrap(),
        b"v1"
    );
    assert!(matches!(
        set("user.k", b"v2", libc::XATTR_CREATE),
        Err(TreeError::XattrExists)
    ));
    assert!(matches!(
        set("user.new", b"v", libc::XATTR_REPLACE),
        Err(TreeError::NoXattr)
    ));
    set("user.k", b"v2", libc::XATTR_REPLACE).unwrap();
    assert_eq!(xattr(&f, ino, "user.k", 1000).unwrap(), b"v2");
    let remove = |name: &str| f.tree().removexattr(ino, OsStr::new(name), 1000);
    remove("user.k").unwrap();
    assert!(matches!(remove("user.k"), Err(TreeError::NoXattr)));
    assert!(matches!(
        xattr(&f, ino, "user.k", 1000),
        Err(TreeError::NoXattr)
    ));
    // A short buffer is ERANGE, the size probe says how much is needed.
    set("user.k", b"12345", 0).unwrap();
    assert!(matches!(
        f.tree().getxattr(ino, OsStr::new("user.k"), 4, 0),
        Err(TreeError::XattrBufferTooSmall)
    ));
    assert!(matches!(
        f.tree().listxattr(ino, 5, 0),
        Err(TreeError::XattrBufferTooSmall)
    ));
    assert_eq!(f.tree().listxattr(ino, 0, 0).unwrap(), XattrReply::Size(7));
    // Kept across a clean restart and a crash.
    f.restart(true);
    f.restart(false);
    assert_eq!(xattr(&f, ino, "user.k", 1000).unwrap(), b"12345");
    // The last name goes, and the attribute with it.
    f.apply(&Op::Unlink("a".into())).unwrap();
    assert_eq!(f.tree().meta().read().unwrap().xattr_count().unwrap(), 1);
    f.apply(&Op::Unlink("b".into())).unwrap();
    assert_eq!(f.tree().meta().read().unwrap().xattr_count().unwrap(), 0);
}

#[test]
fn xattrs_answer_as_ext4_answers_a_user() {
    let f = fixture();
    let (attr, opened) = f
        .tree()
        .create(f.app, OsStr::new("f"), creator(0o644))
        .unwrap();
    let ino = attr.ino;
    let set =
        |name: &str, value: &[u8], uid| f.tree().setxattr(ino, OsStr::new(name), value, 0, uid);
    // Set while the file is being written, which keeps its inode.
    set("user.plain", b"1", 1000).unwrap();
    f.tree().release(ino, opened.fh).unwrap();
    f.tree().drain_seals();
    assert_eq!(xattr(&f, ino, "user.plain", 0).unwrap(), b"1");
    // trusted.* and security.* are root's; a user does not even see trusted.* names.
    for name in ["trusted.t", "security.s"] {
        assert!(matches!(
            set(name, b"x", 1000),
            Err(TreeError::XattrNeedsPrivilege)
        ));
        set(name, b"x", 0).unwrap();
    }
    assert_eq!(names(&f, ino, 0), ["security.s", "trusted.t", "user.plain"]);
    assert_eq!(names(&f, ino, 1000), ["security.s", "user.plain"]);
    assert!(matches!(
        xattr(&f, ino, "trusted.t", 1000),
        Err(TreeError::NoXattr)
    ));
    assert_eq!(xattr(&f, ino, "security.s", 1000).unwrap(), b"x");
    assert!(matches!(
        f.tree().removexattr(ino, OsStr::new("trusted.t"), 1000),
        Err(TreeError::XattrNeedsPrivilege)
    ));
    // ACLs and unknown namespaces are not supported; limits are Linux's.
    for name in ["system.posix_acl_access", "weird.name"] {
        assert!(matches!(
            set(name, b"x", 0),
            Err(TreeError::XattrNamespaceUnsupported)
        ));
    }
    let long = format!("user.{}", "n".repeat(251));
    assert!(matches!(
        set(&long, b"x", 0),
        Err(TreeError::XattrNameTooLong)
    ));
    set(&long[..255], b"x", 0).unwrap();
    assert!(matches!(
        set("user.big", &vec![0; 65537], 0),
        Err(TreeError::XattrValueTooBig)
    ));
    set("user.big", &vec![0; 65536], 0).unwrap();
    // A file's names must fit in one listxattr answer (64 KiB).
    let full = (0..300)
        .map(|i| set(&format!("user.{i:0>250}"), b"", 0))
        .find_map(Result::err);
    assert!(matches!(full, Some(TreeError::XattrListFull)), "{full:?}");
    // Symlinks take no user.* attributes, as the kernel rules.
    let link = f
        .tree()
        .symlink(f.app, OsStr::new("l"), OsStr::new("f"), 0, 0)
        .unwrap()
        .ino;
    assert!(matches!(
        f.tree().setxattr(link, OsStr::new("user.x"), b"", 0, 0),
        Err(TreeError::UserXattrOnlyOnFilesAndDirs)
    ));
    // Status files hold none and take none.
    let status = f.tree().lookup(f.app, OsStr::new(".pushfs")).unwrap().ino;
    let ctl = f.tree().lookup(status, OsStr::new("ctl")).unwrap().ino;
    for ino in [status, ctl] {
        assert!(matches!(
            f.tree().setxattr(ino, OsStr::new("user.x"), b"", 0, 0),
            Err(TreeError::NotSupportedOnStatusFiles)
        ));
        assert!(matches!(
            f.tree().getxattr(ino, OsStr::new("user.x"), 0, 0),
            Err(TreeError::NoXattr)
        ));
        assert_eq!(f.tree().listxattr(ino, 0, 0).unwrap(), XattrReply::Size(0));
    }
    // Directories, the app's root included, take them.
    f.tree()
        .setxattr(f.app, OsStr::new("user.d"), b"dir", 0, 0)
        .unwrap();
    assert_eq!(xattr(&f, f.app, "user.d", 0).unwrap(), b"dir");
}

#[test]
fn a_rollback_and_removing_an_app_leave_no_xattr_rows() {
    let mut f = fixture();
    f.apply(&Op::Create("x".into(), b"1".to_vec())).unwrap();
    let digest = record_deployed(&f, 10);
    let count = |f: &Fixture| f.tree().meta().read().unwrap().xattr_count().unwrap();
    let x = f.resolve("x").unwrap();
    f.tree()
        .setxattr(x, OsStr::new("user.a"), b"1", 0, 0)
        .unwrap();
    // An attribute alone changes no digest, so nothing would be rolled back.
    f.apply(&Op::Create("y".into(), b"2".to_vec())).unwrap();
    f.tree().drain_seals();
    ctl(&f, &format!("rollback {}", &digest[..8])).unwrap();
    assert!(f.resolve("y").is_err(), "rolled back");
    assert_eq!(
        count(&f),
        0,
        "the rolled-back inode took its attributes along"
    );
    let x = f.resolve("x").unwrap();
    f.tree()
        .setxattr(x, OsStr::new("user.a"), b"1", 0, 0)
        .unwrap();
    f.tree()
        .setxattr(f.app, OsStr::new("user.b"), b"1", 0, 0)
        .unwrap();
    f.apply(&Op::Unlink("x".into())).unwrap();
    let cf = f.tree().lookup(ROOT_INO, OsStr::new("cf")).unwrap().ino;
    f.tree().rmdir(cf, OsStr::new("app")).unwrap();
    assert_eq!(count(&f), 0);
}

#[test]
fn fallocate_grows_keeps_and_punches_the_file_being_written() {
    let f = fixture();
    let tree = f.tree();
    let (attr, opened) = tree.create(f.app, OsStr::new("f"), creator(0o644)).unwrap();
    let ino = attr.ino;
    tree.write(ino, opened.fh, 0, &[7; 3000]).unwrap();
    let changed = changes(&f);
    tree.fallocate(opened.fh, 0, 10 << 20, 0).unwrap();
    assert_eq!(tree.getattr(ino).unwrap().size, 10 << 20);
    assert!(
        changes(&f) > changed,
        "a size change restarts the settle timer"
    );
    tree.fallocate(opened.fh, 10 << 20, 1 << 20, libc::FALLOC_FL_KEEP_SIZE)
        .unwrap();
    assert_eq!(tree.getattr(ino).unwrap().size, 10 << 20);
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    tree.fallocate(opened.fh, 1000, 1000, punch).unwrap();
    for refused in [libc::FALLOC_FL_PUNCH_HOLE, libc::FALLOC_FL_ZERO_RANGE] {
        assert!(matches!(
            tree.fallocate(opened.fh, 0, 10, refused),
            Err(TreeError::FallocateModeUnsupported)
        ));
    }
    tree.release(ino, opened.fh).unwrap();
    tree.drain_seals();
    let bytes = f.read_all(ino);
    assert_eq!(bytes.len(), 1 << 20, "read_all reads the first MiB");
    assert_eq!(&bytes[..1000], &[7; 1000]);
    assert_eq!(&bytes[1000..2000], &[0; 1000]);
    assert_eq!(&bytes[2000..3000], &[7; 1000]);
    assert!(bytes[3000..].iter().all(|b| *b == 0));
    let row = tree.meta().read().unwrap().inode(ino).unwrap().unwrap();
    assert_eq!(row.blob.expect("sealed").size, 10 << 20);
    // A reader's handle cannot allocate.
    let reader = tree.open(ino, libc::O_RDONLY).unwrap();
    assert!(matches!(
        tree.fallocate(reader.fh, 0, 10, 0),
        Err(TreeError::BadHandle)
    ));
    tree.release(ino, reader.fh).unwrap();
}

//! Namespace operations: lookup, create, mkdir, unlink, rmdir, rename,
//! symlink, setattr. Each edits the in-memory tree and marks the app changed.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

use super::content::OpenFile;
use super::handles::{Handle, Opened};
use super::node::{Content, DirRole, Meta, Node, NodeKind};
use super::status_files::StatusFile;
use super::{
    is_status_dir_name, utf8_name, AppEntry, AppId, Attr, CtlCommand, Ino, Tree, TreeError,
    TreeResult, TreeState,
};
use crate::backend::BackendKind;

/// A setattr request; `None` leaves the attribute alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
    pub fh: Option<u64>,
}

/// Who is creating a node, and with which mode.
#[derive(Debug, Clone, Copy)]
pub struct Creator {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub umask: u32,
}

impl Creator {
    fn meta(&self) -> Meta {
        Meta::new(
            ((self.mode & !self.umask) & 0o7777) as u16,
            self.uid,
            self.gid,
        )
    }
}

/// Where a new entry may go, by the role of its parent directory.
enum Place {
    /// Inside an app: any file type.
    InApp,
    /// Directly in a backend directory: only a new app.
    Backend(BackendKind),
}

impl Tree {
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> TreeResult<Attr> {
        if name.len() > 255 {
            return Err(TreeError::NameTooLong);
        }
        let mut state = self.state.lock();
        let ino = state.child(parent, name)?;
        let attr = self.attr_of(&state, ino)?;
        state.node_mut(ino)?.lookups += 1;
        Ok(attr)
    }

    pub fn forget(&self, ino: Ino, count: u64) {
        let mut state = self.state.lock();
        if let Some(node) = state.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(count);
        }
        state.reap(ino);
    }

    pub fn getattr(&self, ino: Ino) -> TreeResult<Attr> {
        let state = self.state.lock();
        self.attr_of(&state, ino)
    }

    pub fn readlink(&self, ino: Ino) -> TreeResult<OsString> {
        let state = self.state.lock();
        match &state.node(ino)?.kind {
            NodeKind::Symlink { target } => Ok(target.clone()),
            _ => Err(TreeError::InvalidArgument),
        }
    }

    pub fn mkdir(&self, parent: Ino, name: &OsStr, creator: Creator) -> TreeResult<Attr> {
        let name = utf8_name(name)?;
        let mut state = self.state.lock();
        let place = state.place_for(parent, name)?;
        let meta = creator.meta();
        let ino = match place {
            Place::Backend(backend) => {
                let (app, ino) = state.add_app(parent, name, backend, meta, None);
                self.hooks.app_created(&app, backend, name);
                self.unsaved.lock().insert(app);
                ino
            }
            Place::InApp => {
                let kind = NodeKind::Dir {
                    children: BTreeMap::new(),
                    role: DirRole::App,
                };
                let ino = state.add_child(parent, name, kind, meta);
                self.changed(&state, ino);
                ino
            }
        };
        let attr = self.attr_of(&state, ino)?;
        state.node_mut(ino)?.lookups += 1;
        Ok(attr)
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        parent: Ino,
        name: &OsStr,
        creator: Creator,
    ) -> TreeResult<(Attr, Opened)> {
        let name = utf8_name(name)?;
        let (path, file) = self.store.new_temp()?;
        let open = Arc::new(OpenFile::new(path, file));
        open.attach();
        let mut state = self.state.lock();
        self.require_in_app(&state, parent, name)?;
        let content = Content::Open(open.clone());
        let ino = state.add_child(parent, name, NodeKind::File { content }, creator.meta());
        let node = state.node_mut(ino)?;
        node.lookups += 1;
        node.open_handles += 1;
        let attr = self.attr_of(&state, ino)?;
        self.changed(&state, ino);
        drop(state);
        let fh = self.handles.insert(Handle::File {
            open: Some(open.clone()),
            blob: None,
            writable: true,
        });
        Ok((
            attr,
            Opened {
                fh,
                direct_io: false,
                backing: Some(open),
            },
        ))
    }

    /// mknod: only regular files are deployable.
    pub fn mknod(&self, parent: Ino, name: &OsStr, creator: Creator) -> TreeResult<Attr> {
        if creator.mode & libc::S_IFMT != libc::S_IFREG && creator.mode & libc::S_IFMT != 0 {
            return Err(TreeError::UnsupportedFileType);
        }
        let name = utf8_name(name)?;
        let empty = self.store.put_bytes(b"")?;
        let mut state = self.state.lock();
        self.require_in_app(&state, parent, name)?;
        let content = Content::Blob(empty);
        let ino = state.add_child(parent, name, NodeKind::File { content }, creator.meta());
        state.node_mut(ino)?.lookups += 1;
        self.changed(&state, ino);
        self.attr_of(&state, ino)
    }

    pub fn symlink(
        &self,
        parent: Ino,
        name: &OsStr,
        target: &OsStr,
        uid: u32,
        gid: u32,
    ) -> TreeResult<Attr> {
        let name = utf8_name(name)?;
        let target = target.to_str().ok_or(TreeError::InvalidArgument)?;
        let mut state = self.state.lock();
        self.require_in_app(&state, parent, name)?;
        let kind = NodeKind::Symlink {
            target: OsString::from(target),
        };
        let ino = state.add_child(parent, name, kind, Meta::new(0o777, uid, gid));
        state.node_mut(ino)?.lookups += 1;
        self.changed(&state, ino);
        self.attr_of(&state, ino)
    }

    pub fn unlink(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        let mut state = self.state.lock();
        let ino = state.child(parent, name)?;
        match &state.node(ino)?.kind {
            NodeKind::Dir { .. } | NodeKind::StatusDir { .. } => return Err(TreeError::IsDir),
            NodeKind::StatusFile { .. } => return Err(TreeError::StatusFileReadOnly),
            _ => {}
        }
        self.changed(&state, parent);
        state.detach(parent, name, ino);
        Ok(())
    }

    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        let mut state = self.state.lock();
        let ino = state.child(parent, name)?;
        let node = state.node(ino)?;
        match (&node.kind, state.node(parent)?.role()) {
            (NodeKind::StatusDir { .. }, _) => return Err(TreeError::StatusFileReadOnly),
            (NodeKind::Dir { .. }, Some(DirRole::Root)) => return Err(TreeError::TopLevelIsFixed),
            (NodeKind::Dir { children, .. }, _) if !children.is_empty() => {
                return Err(TreeError::NotEmpty)
            }
            (NodeKind::Dir { .. }, _) => {}
            _ => return Err(TreeError::NotDir),
        }
        if state.is_app_root(ino) {
            let app = state.app_of(ino).ok_or(TreeError::NotFound)?;
            state.remove_app(&app);
            self.unsaved.lock().remove(&app);
            drop(state);
            self.hooks.app_removed(&app);
            crate::store::manifest::remove_app(&self.state_dir, &app.0)?;
            return Ok(());
        }
        self.changed(&state, parent);
        state.detach(parent, name, ino);
        Ok(())
    }

    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        flags: u32,
    ) -> TreeResult<()> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(TreeError::InvalidArgument);
        }
        let new_name_str = utf8_name(new_name)?;
        let mut state = self.state.lock();
        let ino = state.child(parent, name)?;
        if matches!(
            state.node(ino)?.kind,
            NodeKind::StatusDir { .. } | NodeKind::StatusFile { .. }
        ) {
            return Err(TreeError::StatusFileReadOnly);
        }
        let is_dir = state.node(ino)?.role().is_some();
        let source_role = state.node(parent)?.role();
        let target_role = match &state.node(new_parent)?.kind {
            NodeKind::Dir { role, .. } => *role,
            NodeKind::StatusDir { .. } => return Err(TreeError::StatusFileReadOnly),
            _ => return Err(TreeError::NotDir),
        };
        match (source_role, target_role) {
            (Some(DirRole::Root), _) | (_, DirRole::Root) => {
                return Err(TreeError::TopLevelIsFixed)
            }
            // An app directory renamed within its backend: the app keeps its identity.
            (Some(DirRole::Backend(_)), DirRole::Backend(_)) if parent == new_parent => {}
            (Some(DirRole::Backend(_)), _) | (_, DirRole::Backend(_)) => {
                return Err(TreeError::CrossAppRename)
            }
            _ => {}
        }
        if target_role == DirRole::App
            && state.is_app_root(new_parent)
            && is_status_dir_name(new_name)
        {
            return Err(TreeError::StatusFileReadOnly);
        }
        if is_dir && state.is_ancestor(ino, new_parent) {
            return Err(TreeError::InvalidArgument);
        }
        let existing = state
            .node(new_parent)?
            .children()
            .and_then(|c| c.get(new_name).copied());
        if let Some(target) = existing {
            if target == ino {
                return Ok(());
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(TreeError::Exists);
            }
            match (&state.node(target)?.kind, is_dir) {
                (NodeKind::Dir { children, .. }, true) if !children.is_empty() => {
                    return Err(TreeError::NotEmpty)
                }
                (NodeKind::Dir { .. }, true) => {}
                (NodeKind::Dir { .. }, false) => return Err(TreeError::IsDir),
                (_, true) => return Err(TreeError::NotDir),
                _ => {}
            }
            if state.is_app_root(target) {
                let app = state.app_of(target).ok_or(TreeError::NotFound)?;
                state.remove_app(&app);
                self.hooks.app_removed(&app);
                let _ = crate::store::manifest::remove_app(&self.state_dir, &app.0);
            } else {
                state.detach(new_parent, new_name, target);
            }
        }
        self.changed(&state, parent);
        let name = name.to_os_string();
        state
            .node_mut(parent)?
            .children_mut()
            .expect("parent is a dir")
            .remove(&name);
        state
            .node_mut(new_parent)?
            .children_mut()
            .expect("checked above")
            .insert(new_name.to_os_string(), ino);
        let node = state.node_mut(ino)?;
        node.parent = new_parent;
        node.name = new_name.to_os_string();
        node.meta.ctime = SystemTime::now();
        if let Some(DirRole::Backend(_)) = source_role {
            if let Some(app) = state.app_of(ino) {
                self.hooks.app_renamed(&app, new_name_str);
                self.unsaved.lock().insert(app);
            }
        }
        self.changed(&state, ino);
        Ok(())
    }

    pub fn setattr(&self, ino: Ino, set: SetAttr) -> TreeResult<Attr> {
        if let Some(size) = set.size {
            self.truncate(ino, size, set.fh)?;
        }
        let mut state = self.state.lock();
        let node = state.node_mut(ino)?;
        match &node.kind {
            NodeKind::StatusFile {
                app,
                file: StatusFile::Ctl,
            } => {
                // `touch .pushfs/ctl` forces a deploy; the truncation of `echo deploy > ctl` does not.
                if set.size.is_none() && (set.mtime.is_some() || set.atime.is_some()) {
                    let app = app.clone();
                    drop(state);
                    self.hooks.command(&app, CtlCommand::Deploy);
                    state = self.state.lock();
                }
                return self.attr_of(&state, ino);
            }
            NodeKind::StatusFile { .. } | NodeKind::StatusDir { .. } => {
                return Err(TreeError::StatusFileReadOnly)
            }
            _ => {}
        }
        let now = SystemTime::now();
        if let Some(mode) = set.mode {
            node.meta.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = set.uid {
            node.meta.uid = uid;
        }
        if let Some(gid) = set.gid {
            node.meta.gid = gid;
        }
        if let NodeKind::File {
            content: Content::Open(open),
        } = &node.kind
        {
            if set.atime.is_some() || set.mtime.is_some() {
                open.set_times(set.atime, set.mtime)?;
            }
        }
        if let Some(atime) = set.atime {
            node.meta.atime = atime;
        }
        if let Some(mtime) = set.mtime {
            node.meta.mtime = mtime;
        } else if set.size.is_some() {
            node.meta.mtime = now;
        }
        node.meta.ctime = now;
        self.changed(&state, ino);
        self.attr_of(&state, ino)
    }

    /// Sets a regular file's size, through its write handle if it has one.
    fn truncate(&self, ino: Ino, size: u64, fh: Option<u64>) -> TreeResult<()> {
        if let Some(Handle::File {
            open: Some(open), ..
        }) = fh.and_then(|fh| self.handles.get(fh).ok()).as_deref()
        {
            return Ok(open.truncate(size)?);
        }
        let blob = {
            let state = self.state.lock();
            match &state.node(ino)?.kind {
                NodeKind::File {
                    content: Content::Open(open),
                } => return Ok(open.truncate(size)?),
                NodeKind::File {
                    content: Content::Blob(blob),
                } => blob.clone(),
                NodeKind::Dir { .. } => return Err(TreeError::IsDir),
                NodeKind::StatusFile {
                    file: StatusFile::Ctl,
                    ..
                } => return Ok(()),
                NodeKind::StatusFile { .. } | NodeKind::StatusDir { .. } => {
                    return Err(TreeError::StatusFileReadOnly)
                }
                NodeKind::Symlink { .. } => return Err(TreeError::InvalidArgument),
            }
        };
        if blob.size == size {
            return Ok(());
        }
        // Copying a big blob happens outside the lock; install only if
        // nobody replaced the content meanwhile.
        let (temp, file) = if size == 0 {
            self.store.new_temp()?
        } else {
            self.store.temp_copy_of(&blob.sha256)?
        };
        file.set_len(size)?;
        drop(file);
        let info = self.store.seal(&temp)?;
        let mut state = self.state.lock();
        if let NodeKind::File { content } = &mut state.node_mut(ino)?.kind {
            if matches!(content, Content::Blob(b) if *b == blob) {
                *content = Content::Blob(info);
            }
        }
        Ok(())
    }

    /// Rejects a new non-directory entry anywhere but inside an app.
    fn require_in_app(&self, state: &TreeState, parent: Ino, name: &str) -> TreeResult<()> {
        match state.place_for(parent, name)? {
            Place::InApp => Ok(()),
            Place::Backend(_) => Err(TreeError::OnlyAppDirectoriesHere),
        }
    }
}

impl TreeState {
    /// Resolves `name` in `parent`, including the virtual `.pushfs/` entries.
    pub(super) fn child(&self, parent: Ino, name: &OsStr) -> TreeResult<Ino> {
        let node = self.node(parent)?;
        match &node.kind {
            NodeKind::Dir { children, .. } => {
                if is_status_dir_name(name) && self.is_app_root(parent) {
                    let app = self.app_of(parent).ok_or(TreeError::NotFound)?;
                    return Ok(self.apps[&app].status_dir);
                }
                children.get(name).copied().ok_or(TreeError::NotFound)
            }
            NodeKind::StatusDir { app } => {
                let file = name
                    .to_str()
                    .and_then(StatusFile::from_name)
                    .ok_or(TreeError::NotFound)?;
                let index = StatusFile::ALL
                    .iter()
                    .position(|f| *f == file)
                    .expect("listed");
                Ok(self.apps[app].status_dir + 1 + index as Ino)
            }
            _ => Err(TreeError::NotDir),
        }
    }

    /// Checks that `name` can be created in `parent`, and what it becomes.
    fn place_for(&self, parent: Ino, name: &str) -> TreeResult<Place> {
        let node = self.node(parent)?;
        let place = match &node.kind {
            NodeKind::Dir {
                role: DirRole::Root,
                ..
            } => return Err(TreeError::TopLevelIsFixed),
            NodeKind::Dir {
                role: DirRole::Backend(b),
                ..
            } => Place::Backend(*b),
            NodeKind::Dir { .. } => Place::InApp,
            NodeKind::StatusDir { .. } => return Err(TreeError::StatusFileReadOnly),
            _ => return Err(TreeError::NotDir),
        };
        let exists = node
            .children()
            .is_some_and(|c| c.contains_key(OsStr::new(name)))
            || (is_status_dir_name(OsStr::new(name)) && self.is_app_root(parent));
        if exists {
            return Err(TreeError::Exists);
        }
        Ok(place)
    }

    pub(super) fn add_child(&mut self, parent: Ino, name: &str, kind: NodeKind, meta: Meta) -> Ino {
        let ino = self.alloc();
        self.nodes
            .insert(ino, Node::attached(parent, name, kind, meta));
        let parent_node = self
            .nodes
            .get_mut(&parent)
            .expect("parent checked by caller");
        parent_node
            .children_mut()
            .expect("parent is a directory")
            .insert(OsString::from(name), ino);
        parent_node.meta.touch_content();
        ino
    }

    /// Adds an app directory and its `.pushfs/` files. `id` is given when
    /// restoring from disk, and made up for a new app.
    pub(super) fn add_app(
        &mut self,
        backend_dir: Ino,
        name: &str,
        backend: BackendKind,
        meta: Meta,
        id: Option<AppId>,
    ) -> (AppId, Ino) {
        let kind = NodeKind::Dir {
            children: BTreeMap::new(),
            role: DirRole::App,
        };
        let root = self.add_child(backend_dir, name, kind, meta);
        let app = id.unwrap_or_else(|| AppId(uuid::Uuid::new_v4().to_string()));
        let status_dir = self.alloc();
        let status_meta = Meta::new(0o555, meta.uid, meta.gid);
        let dir_node = Node::attached(
            root,
            crate::package::ignore::STATUS_DIR,
            NodeKind::StatusDir { app: app.clone() },
            status_meta,
        );
        self.nodes.insert(status_dir, dir_node);
        for file in StatusFile::ALL {
            let ino = self.alloc();
            let kind = NodeKind::StatusFile {
                app: app.clone(),
                file,
            };
            let file_meta = Meta::new(file.perm(), meta.uid, meta.gid);
            self.nodes.insert(
                ino,
                Node::attached(status_dir, file.name(), kind, file_meta),
            );
        }
        self.apps.insert(
            app.clone(),
            AppEntry {
                root,
                status_dir,
                backend,
            },
        );
        (app, root)
    }

    /// Removes an (empty) app directory and its status files.
    fn remove_app(&mut self, app: &AppId) {
        let Some(entry) = self.apps.remove(app) else {
            return;
        };
        let root = &self.nodes[&entry.root];
        let (parent, name) = (root.parent, root.name.clone());
        self.detach(parent, &name, entry.root);
        for ino in entry.status_dir..=entry.status_dir + StatusFile::ALL.len() as Ino {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.detached = true;
            }
            self.reap(ino);
        }
    }

    /// Unlinks `ino` from `parent`; it lives on while the kernel or a handle refers to it.
    pub(super) fn detach(&mut self, parent: Ino, name: &OsStr, ino: Ino) {
        if let Some(parent_node) = self.nodes.get_mut(&parent) {
            if let Some(children) = parent_node.children_mut() {
                children.remove(name);
            }
            parent_node.meta.touch_content();
        }
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.detached = true;
            node.meta.ctime = SystemTime::now();
        }
        self.reap(ino);
    }

    /// Whether `ancestor` is `ino` or above it.
    fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.nodes.get(&ino) {
                Some(node) if node.parent != ino => ino = node.parent,
                _ => return false,
            }
        }
    }
}

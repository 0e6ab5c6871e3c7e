//! Namespace operations: lookup, create, mkdir, link, unlink, rmdir,
//! rename, symlink, setattr. Each is one engine transaction, committed
//! before it returns; the app's settle timer restarts after the commit.

use std::collections::hash_map::Entry;
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;

use super::content::{OpenFile, OpenInode};
use super::handles::{Handle, Opened};
use super::node::DirRole;
use super::status_files::StatusFile;
use super::status_inodes::StatusInode;
use super::{
    is_app_root, is_status_dir_name, utf8_name, AppEntry, AppId, Attr, CtlCommand, Ino, Tree,
    TreeError, TreeResult, ROOT_INO,
};
use crate::kind::BackendKind;
use crate::meta::{InodeKind, InodeRow, NewInode, Txn};

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

impl SetAttr {
    /// Whether anything is to change (`chown(f, -1, -1)` changes nothing,
    /// not even ctime).
    fn changes_anything(&self) -> bool {
        self.mode.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.size.is_some()
            || self.atime.is_some()
            || self.mtime.is_some()
    }
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
    fn perm(&self) -> u16 {
        ((self.mode & !self.umask) & 0o7777) as u16
    }

    fn new_inode(&self, kind: InodeKind, parent: &InodeRow) -> NewInode {
        NewInode {
            kind,
            parent: parent.ino,
            app: parent.app,
            perm: self.perm(),
            uid: self.uid,
            gid: self.gid,
            blob: None,
            temp: None,
            target: None,
        }
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
        if let Some(status) = StatusInode::decode(parent) {
            let StatusInode::Dir { root } = status else {
                return Err(TreeError::NotDir);
            };
            let file = name
                .to_str()
                .and_then(StatusFile::from_name)
                .ok_or(TreeError::NotFound)?;
            return self.status_attr(StatusInode::File { root, file });
        }
        let txn = self.meta.read()?;
        let parent_row = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if parent_row.kind != InodeKind::Dir {
            return Err(TreeError::NotDir);
        }
        if is_status_dir_name(name) && is_app_root(&parent_row) {
            drop(txn);
            return self.status_attr(StatusInode::Dir { root: parent });
        }
        let name = name.to_str().ok_or(TreeError::NotFound)?;
        let row = txn.lookup_row(parent, name)?.ok_or(TreeError::NotFound)?;
        self.attr_of_row(&txn, &row)
    }

    /// Whether the kernel may remember for a while that `name` is absent
    /// from `parent`. A name in a folder appears only through a request
    /// the kernel itself sees, or through a rollback, which tells the
    /// kernel (`KernelCache::forget_entries`). Not so for `.pushfs` and
    /// what is in it: no request names them; they are answered from the
    /// folder's role and the deploy's state.
    pub fn absence_is_cacheable(&self, parent: Ino, name: &OsStr) -> bool {
        StatusInode::decode(parent).is_none() && !is_status_dir_name(name)
    }

    /// The kernel dropped its references. Inodes are freed by their link
    /// count and open handles, not by lookups, so there is nothing to do.
    pub fn forget(&self, _ino: Ino, _count: u64) {}

    pub fn getattr(&self, ino: Ino) -> TreeResult<Attr> {
        if let Some(status) = StatusInode::decode(ino) {
            return self.status_attr(status);
        }
        self.attr(ino)
    }

    pub fn readlink(&self, ino: Ino) -> TreeResult<std::ffi::OsString> {
        if StatusInode::decode(ino).is_some() {
            return Err(TreeError::InvalidArgument);
        }
        let row = self.meta.read()?.inode(ino)?.ok_or(TreeError::NotFound)?;
        match (row.kind, row.target) {
            (InodeKind::Symlink, Some(target)) => Ok(target.into()),
            _ => Err(TreeError::InvalidArgument),
        }
    }

    pub fn mkdir(&self, parent: Ino, name: &OsStr, creator: Creator) -> TreeResult<Attr> {
        let name = utf8_name(name)?;
        let mut txn = self.meta.begin()?;
        let (mut parent_row, place) = self.place_for(&txn, parent, name)?;
        let mut new_app = None;
        let ino = match place {
            Place::Backend(backend) => {
                let ino = txn.insert_inode(&creator.new_inode(InodeKind::Dir, &parent_row))?;
                let mut row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
                row.app = Some(ino);
                txn.update_attrs(&row)?;
                let id = AppId(uuid::Uuid::new_v4().to_string());
                txn.insert_app(&id.0, backend.dir_name(), ino, self.run)?;
                new_app = Some((id, backend));
                ino
            }
            Place::InApp => {
                let ino = txn.insert_inode(&creator.new_inode(InodeKind::Dir, &parent_row))?;
                self.mark(&mut txn, parent_row.app)?;
                ino
            }
        };
        txn.insert_dentry(parent, name, ino)?;
        parent_row.nlink += 1;
        touch_dir(&mut txn, &mut parent_row)?;
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        txn.commit()?;
        match new_app {
            Some((id, backend)) => {
                self.apps.lock().insert(
                    ino,
                    AppEntry {
                        id: id.clone(),
                        backend,
                    },
                );
                self.marked.lock().insert(ino);
                self.hooks.app_created(&id, backend, name);
            }
            None => self.notify(parent_row.app),
        }
        self.attr(row.ino)
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
        let open = Arc::new(OpenFile::new(path.clone(), file));
        let result = self.create_recorded(parent, name, creator, &open);
        if result.is_err() {
            open.remove_temp();
        }
        let (row, app) = result?;
        open.attach();
        let fh = self.handles.insert(Handle::File {
            app,
            open: Some(open.clone()),
            blob: None,
            ino: row.ino,
            writable: true,
        });
        self.notify(app);
        // The row in hand: no second query. The engine's lock is still
        // what attr_of_row asks for, though nothing can seal the file
        // while its creator holds it open.
        let attr = {
            let held = self.meta.read()?;
            self.attr_of_row(&held, &row)?
        };
        Ok((
            attr,
            Opened {
                fh,
                direct_io: false,
                backing: Some(open),
            },
        ))
    }

    fn create_recorded(
        &self,
        parent: Ino,
        name: &str,
        creator: Creator,
        open: &Arc<OpenFile>,
    ) -> TreeResult<(InodeRow, Option<Ino>)> {
        let mut txn = self.meta.begin()?;
        let mut parent_row = self.require_in_app(&txn, parent, name)?;
        let mut new = creator.new_inode(InodeKind::File, &parent_row);
        new.temp = Some(open.temp.clone());
        let row = txn.insert_inode_row(&new)?;
        let ino = row.ino;
        txn.insert_dentry(parent, name, ino)?;
        touch_dir(&mut txn, &mut parent_row)?;
        self.mark(&mut txn, parent_row.app)?;
        // Registered before the commit, under the engine's lock: nobody can
        // see the new inode without its temp file.
        let mut open_table = self.open.lock();
        open_table.insert(
            ino,
            OpenInode {
                app: parent_row.app,
                handles: 1,
                writing: Some(open.clone()),
                orphan: false,
                sealed: None,
            },
        );
        if let Err(err) = txn.commit() {
            open_table.remove(&ino);
            return Err(err.into());
        }
        Ok((row, parent_row.app))
    }

    /// mknod: only regular files are deployable.
    pub fn mknod(&self, parent: Ino, name: &OsStr, creator: Creator) -> TreeResult<Attr> {
        if creator.mode & libc::S_IFMT != libc::S_IFREG && creator.mode & libc::S_IFMT != 0 {
            return Err(TreeError::UnsupportedFileType);
        }
        let name = utf8_name(name)?;
        let mut txn = self.meta.begin()?;
        let mut parent_row = self.require_in_app(&txn, parent, name)?;
        // Stored under the engine's lock, so no commit can free it meanwhile.
        let empty = self.store.put_bytes(b"")?;
        let mut new = creator.new_inode(InodeKind::File, &parent_row);
        new.blob = Some(empty);
        let ino = txn.insert_inode(&new)?;
        txn.insert_dentry(parent, name, ino)?;
        touch_dir(&mut txn, &mut parent_row)?;
        self.mark(&mut txn, parent_row.app)?;
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        txn.commit()?;
        self.notify(parent_row.app);
        self.attr(row.ino)
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
        let mut txn = self.meta.begin()?;
        let mut parent_row = self.require_in_app(&txn, parent, name)?;
        let creator = Creator {
            uid,
            gid,
            mode: 0o777,
            umask: 0,
        };
        let mut new = creator.new_inode(InodeKind::Symlink, &parent_row);
        new.target = Some(target.to_string());
        let ino = txn.insert_inode(&new)?;
        txn.insert_dentry(parent, name, ino)?;
        touch_dir(&mut txn, &mut parent_row)?;
        self.mark(&mut txn, parent_row.app)?;
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        txn.commit()?;
        self.notify(parent_row.app);
        self.attr(row.ino)
    }

    /// A hard link: a second name for a file or symlink of the same app.
    pub fn link(&self, ino: Ino, new_parent: Ino, new_name: &OsStr) -> TreeResult<Attr> {
        if StatusInode::decode(ino).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let new_name = utf8_name(new_name)?;
        let mut txn = self.meta.begin()?;
        let mut row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        if row.kind == InodeKind::Dir {
            return Err(TreeError::HardLinkToDirectory);
        }
        let mut parent_row = self.require_in_app(&txn, new_parent, new_name)?;
        if parent_row.app != row.app {
            return Err(TreeError::CrossAppLink);
        }
        txn.insert_dentry(new_parent, new_name, ino)?;
        row.nlink += 1;
        row.ctime = SystemTime::now();
        txn.update_attrs(&row)?;
        touch_dir(&mut txn, &mut parent_row)?;
        self.mark(&mut txn, row.app)?;
        txn.commit()?;
        self.notify(row.app);
        self.attr(row.ino)
    }

    /// Removes a name. On a full state disk it may use the engine's
    /// reserve: deleting is how the user makes room.
    pub fn unlink(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        self.freeing_space(|| self.unlink_once(parent, name))
    }

    fn unlink_once(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        if StatusInode::decode(parent).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let mut txn = self.meta.begin()?;
        let mut parent_row = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if is_status_dir_name(name) && is_app_root(&parent_row) {
            return Err(TreeError::IsDir);
        }
        let name = name.to_str().ok_or(TreeError::NotFound)?;
        let row = txn.lookup_row(parent, name)?.ok_or(TreeError::NotFound)?;
        if row.kind == InodeKind::Dir {
            return Err(TreeError::IsDir);
        }
        txn.delete_dentry(parent, name)?;
        let freed = self.drop_link(&mut txn, row)?;
        touch_dir(&mut txn, &mut parent_row)?;
        self.mark(&mut txn, parent_row.app)?;
        self.commit_freeing(txn, freed)?;
        self.notify(parent_row.app);
        Ok(())
    }

    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        self.freeing_space(|| self.rmdir_once(parent, name))
    }

    fn rmdir_once(&self, parent: Ino, name: &OsStr) -> TreeResult<()> {
        if StatusInode::decode(parent).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let mut txn = self.meta.begin()?;
        let mut parent_row = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if is_status_dir_name(name) && is_app_root(&parent_row) {
            return Err(TreeError::StatusFileReadOnly);
        }
        let name = name.to_str().ok_or(TreeError::NotFound)?;
        let row = txn.lookup_row(parent, name)?.ok_or(TreeError::NotFound)?;
        if row.kind != InodeKind::Dir {
            return Err(TreeError::NotDir);
        }
        if self.role(&parent_row) == DirRole::Root {
            return Err(TreeError::TopLevelIsFixed);
        }
        if txn.has_children(row.ino)? {
            return Err(TreeError::NotEmpty);
        }
        txn.delete_dentry(parent, name)?;
        txn.delete_inode(&row)?;
        parent_row.nlink = parent_row.nlink.saturating_sub(1);
        touch_dir(&mut txn, &mut parent_row)?;
        let removed_app = is_app_root(&row);
        if removed_app {
            txn.delete_app(row.ino)?;
        } else {
            self.mark(&mut txn, parent_row.app)?;
        }
        txn.commit()?;
        if removed_app {
            self.forget_app(row.ino);
        } else {
            self.notify(parent_row.app);
        }
        Ok(())
    }

    /// Renames; like [`Tree::unlink`], may use the reserve on a full disk
    /// (an editor's save renames over the old file, freeing it).
    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        flags: u32,
    ) -> TreeResult<()> {
        self.freeing_space(|| self.rename_once(parent, name, new_parent, new_name, flags))
    }

    fn rename_once(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        flags: u32,
    ) -> TreeResult<()> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(TreeError::InvalidArgument);
            }
            return self.exchange_once(parent, name, new_parent, new_name);
        }
        if StatusInode::decode(parent).is_some() || StatusInode::decode(new_parent).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let new_name_str = utf8_name(new_name)?;
        let mut txn = self.meta.begin()?;
        let source_dir = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if is_status_dir_name(name) && is_app_root(&source_dir) {
            return Err(TreeError::StatusFileReadOnly);
        }
        let name = name.to_str().ok_or(TreeError::NotFound)?;
        let mut row = txn.lookup_row(parent, name)?.ok_or(TreeError::NotFound)?;
        let target_dir = txn.inode(new_parent)?.ok_or(TreeError::NotFound)?;
        if target_dir.kind != InodeKind::Dir {
            return Err(TreeError::NotDir);
        }
        let is_dir = row.kind == InodeKind::Dir;
        let (source_role, target_role) = (self.role(&source_dir), self.role(&target_dir));
        match (source_role, target_role) {
            (DirRole::Root, _) | (_, DirRole::Root) => return Err(TreeError::TopLevelIsFixed),
            // An app directory renamed within its backend: the app keeps its identity.
            (DirRole::Backend(_), DirRole::Backend(_)) if parent == new_parent => {}
            (DirRole::Backend(_), _) | (_, DirRole::Backend(_)) => {
                return Err(TreeError::CrossAppRename)
            }
            _ => {}
        }
        let cross_app = source_dir.app != target_dir.app;
        if cross_app && !is_dir && row.nlink > 1 {
            // Its other names would stay in the old app.
            return Err(TreeError::CrossAppLink);
        }
        if is_app_root(&target_dir) && is_status_dir_name(new_name) {
            return Err(TreeError::StatusFileReadOnly);
        }
        if is_dir && is_ancestor(&txn, row.ino, new_parent)? {
            return Err(TreeError::InvalidArgument);
        }
        let mut removed_app = None;
        let mut replaced_dir = false;
        let mut freed = None;
        if let Some(existing) = txn.lookup_row(new_parent, new_name_str)? {
            if existing.ino == row.ino {
                return Ok(());
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(TreeError::Exists);
            }
            match (existing.kind == InodeKind::Dir, is_dir) {
                (true, true) if txn.has_children(existing.ino)? => return Err(TreeError::NotEmpty),
                (true, false) => return Err(TreeError::IsDir),
                (false, true) => return Err(TreeError::NotDir),
                _ => {}
            }
            txn.delete_dentry(new_parent, new_name_str)?;
            if existing.kind == InodeKind::Dir {
                replaced_dir = true;
                txn.delete_inode(&existing)?;
                if is_app_root(&existing) {
                    txn.delete_app(existing.ino)?;
                    removed_app = Some(existing.ino);
                }
            } else {
                freed = self.drop_link(&mut txn, existing.clone())?;
            }
        }
        txn.delete_dentry(parent, name)?;
        txn.insert_dentry(new_parent, new_name_str, row.ino)?;
        let now = SystemTime::now();
        row.parent = new_parent;
        row.ctime = now;
        txn.update_attrs(&row)?;
        if cross_app {
            txn.set_app_of_subtree(row.ino, target_dir.app)?;
            if let Some(open) = self.open.lock().get_mut(&row.ino) {
                open.app = target_dir.app;
            }
        }
        // Both directories changed (one row if they are the same): a moved
        // directory's `..` and a replaced directory change their link counts.
        let moved_dir = i64::from(is_dir && parent != new_parent);
        let mut source_dir = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        let mut source_delta = -moved_dir;
        let target_delta = moved_dir - i64::from(replaced_dir);
        if parent == new_parent {
            source_delta += target_delta;
        }
        source_dir.nlink = (i64::from(source_dir.nlink) + source_delta).max(2) as u32;
        touch_dir(&mut txn, &mut source_dir)?;
        if parent != new_parent {
            let mut target_dir = txn.inode(new_parent)?.ok_or(TreeError::NotFound)?;
            target_dir.nlink = (i64::from(target_dir.nlink) + target_delta).max(2) as u32;
            touch_dir(&mut txn, &mut target_dir)?;
        }
        self.mark(&mut txn, source_dir.app)?;
        self.mark(&mut txn, target_dir.app)?;
        self.commit_freeing(txn, freed)?;
        if let Some(root) = removed_app {
            self.forget_app(root);
        }
        if matches!(source_role, DirRole::Backend(_)) {
            if let Some(id) = self.app_id(row.ino) {
                self.hooks.app_renamed(&id, new_name_str);
            }
            self.notify(Some(row.ino));
        }
        self.notify(source_dir.app);
        if cross_app {
            self.notify(target_dir.app);
        }
        Ok(())
    }

    /// `renameat2(RENAME_EXCHANGE)`: two existing names swap what they
    /// point at, atomically, within one app (`mv --exchange`, atomic-swap
    /// deploy tools). Between apps it is `EXDEV`, as a rename would be.
    fn exchange_once(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
    ) -> TreeResult<()> {
        if StatusInode::decode(parent).is_some() || StatusInode::decode(new_parent).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let (name, new_name) = (utf8_name(name)?, utf8_name(new_name)?);
        let mut txn = self.meta.begin()?;
        let source_dir = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        let target_dir = txn.inode(new_parent)?.ok_or(TreeError::NotFound)?;
        for (dir, entry) in [(&source_dir, name), (&target_dir, new_name)] {
            if is_app_root(dir) && is_status_dir_name(OsStr::new(entry)) {
                return Err(TreeError::StatusFileReadOnly);
            }
        }
        match (self.role(&source_dir), self.role(&target_dir)) {
            (DirRole::Root, _) | (_, DirRole::Root) => return Err(TreeError::TopLevelIsFixed),
            (DirRole::Backend(_), _) | (_, DirRole::Backend(_)) => {
                return Err(TreeError::CrossAppRename)
            }
            _ => {}
        }
        if source_dir.app != target_dir.app {
            return Err(TreeError::CrossAppRename);
        }
        let mut one = txn.lookup_row(parent, name)?.ok_or(TreeError::NotFound)?;
        let mut other = txn
            .lookup_row(new_parent, new_name)?
            .ok_or(TreeError::NotFound)?;
        if one.ino == other.ino {
            return Ok(());
        }
        let (one_dir, other_dir) = (one.kind == InodeKind::Dir, other.kind == InodeKind::Dir);
        // Neither may end up inside itself.
        if (one_dir && is_ancestor(&txn, one.ino, new_parent)?)
            || (other_dir && is_ancestor(&txn, other.ino, parent)?)
        {
            return Err(TreeError::InvalidArgument);
        }
        txn.delete_dentry(parent, name)?;
        txn.delete_dentry(new_parent, new_name)?;
        txn.insert_dentry(parent, name, other.ino)?;
        txn.insert_dentry(new_parent, new_name, one.ino)?;
        let now = SystemTime::now();
        for (row, dir) in [(&mut one, new_parent), (&mut other, parent)] {
            row.parent = dir;
            row.ctime = now;
            txn.update_attrs(row)?;
        }
        // A directory that changes parent moves its `..` with it.
        let shift = i64::from(other_dir) - i64::from(one_dir);
        let mut source_dir = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if parent != new_parent {
            source_dir.nlink = (i64::from(source_dir.nlink) + shift).max(2) as u32;
        }
        touch_dir(&mut txn, &mut source_dir)?;
        if parent != new_parent {
            let mut target_dir = txn.inode(new_parent)?.ok_or(TreeError::NotFound)?;
            target_dir.nlink = (i64::from(target_dir.nlink) - shift).max(2) as u32;
            touch_dir(&mut txn, &mut target_dir)?;
        }
        self.mark(&mut txn, source_dir.app)?;
        self.commit_freeing(txn, None)?;
        self.notify(source_dir.app);
        Ok(())
    }

    pub fn setattr(&self, ino: Ino, set: SetAttr) -> TreeResult<Attr> {
        if let Some(status) = StatusInode::decode(ino) {
            let StatusInode::File {
                root,
                file: StatusFile::Ctl,
            } = status
            else {
                return Err(TreeError::StatusFileReadOnly);
            };
            // `touch .pushfs/ctl` forces a deploy; the truncation of `echo deploy > ctl` does not.
            if set.size.is_none() && (set.mtime.is_some() || set.atime.is_some()) {
                if let Some(app) = self.app_id(root) {
                    self.hooks.command(&app, CtlCommand::Deploy);
                }
            }
            return self.status_attr(status);
        }
        if let Some(size) = set.size {
            self.truncate(ino, size, set.fh)?;
        }
        let mut txn = self.meta.begin()?;
        let mut row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        if !set.changes_anything() {
            return self.attr_of_row(&txn, &row);
        }
        let now = SystemTime::now();
        if let Some(mode) = set.mode {
            row.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = set.uid {
            row.uid = uid;
        }
        if let Some(gid) = set.gid {
            row.gid = gid;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let writing = self.open.lock().get(&ino).and_then(|o| o.writing.clone());
            if let Some(open) = writing {
                open.set_times(set.atime, set.mtime)?;
            }
        }
        if let Some(atime) = set.atime {
            row.atime = atime;
        }
        if let Some(mtime) = set.mtime {
            row.mtime = mtime;
        } else if set.size.is_some() {
            row.mtime = now;
        }
        row.ctime = now;
        txn.update_attrs(&row)?;
        self.mark(&mut txn, row.app)?;
        // The row as stored (the transaction's own change: no query), and
        // taken before the commit, while the engine is still held: once it
        // is free, a seal can land and make the row stale (an empty size
        // for a file whose bytes were just sealed).
        let stored = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        let attr = self.attr_of_row(&txn, &stored)?;
        txn.commit()?;
        self.notify(row.app);
        Ok(attr)
    }

    /// Sets a regular file's size, through its temp file if it is being
    /// written, else by sealing a resized copy of its blob.
    fn truncate(&self, ino: Ino, size: u64, fh: Option<u64>) -> TreeResult<()> {
        if let Some(Handle::File {
            open: Some(open), ..
        }) = fh.and_then(|fh| self.handles.get(fh).ok()).as_deref()
        {
            return Ok(open.truncate(size)?);
        }
        {
            // Under the lock: the sealer checks that a file is unchanged
            // since it was hashed and links its temp file in under the same
            // lock, so a truncate lands before that check or after the seal
            // (then on the sealed content, below), never in between.
            let open = self.open.lock();
            if let Some(writing) = open.get(&ino).and_then(|o| o.writing.as_ref()) {
                return Ok(writing.truncate(size)?);
            }
        }
        let row = self.meta.read()?.inode(ino)?.ok_or(TreeError::NotFound)?;
        let blob = match (row.kind, &row.blob) {
            (InodeKind::Dir, _) => return Err(TreeError::IsDir),
            (InodeKind::Symlink, _) => return Err(TreeError::InvalidArgument),
            (InodeKind::File, Some(blob)) => blob.clone(),
            (InodeKind::File, None) => return Err(TreeError::NotFound),
        };
        if blob.size == size {
            return Ok(());
        }
        // The copy of a big blob happens outside the engine's lock; it is
        // installed only if nobody replaced the content meanwhile.
        let (temp, file) = if size == 0 {
            self.store.new_temp()?
        } else {
            self.store.temp_copy_of(&blob.sha256)?
        };
        file.set_len(size)?;
        let resized = Arc::new(OpenFile::new(temp, file));
        let hashed = super::sealer::Hashed::of(ino, resized.clone());
        let result = hashed.map_err(TreeError::from).and_then(|hashed| {
            let mut txn = self.meta.begin()?;
            let current = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
            let untouched = current.blob.as_ref() == Some(&blob)
                && current.temp.is_none()
                && self
                    .open
                    .lock()
                    .get(&ino)
                    .is_none_or(|o| o.writing.is_none());
            if untouched {
                if resized.link_in(&self.store, &hashed.info)? {
                    txn.linked_blob(&hashed.info.sha256);
                }
                let now = SystemTime::now();
                txn.seal(ino, &hashed.info, now, now)?;
                txn.commit()?;
            }
            Ok(())
        });
        resized.remove_temp();
        result
    }

    /// Runs `op` again with the engine's reserve released if the state disk
    /// was full: an operation that frees space must not fail for lack of it.
    fn freeing_space(&self, op: impl Fn() -> TreeResult<()>) -> TreeResult<()> {
        match op() {
            Err(err) if err.is_disk_full() && self.meta.release_reserve() => op(),
            other => other,
        }
    }

    /// Drops one link of a file. With none left it is freed, or, while a
    /// handle is open, kept as an orphan until the last one closes. A file
    /// closed but not sealed yet goes now with its temp file: returned, so
    /// that its in-memory entry goes once the transaction commits.
    pub(super) fn drop_link(&self, txn: &mut Txn, mut row: InodeRow) -> TreeResult<Option<Ino>> {
        row.nlink = row.nlink.saturating_sub(1);
        row.ctime = SystemTime::now();
        if row.nlink > 0 {
            txn.update_attrs(&row)?;
            return Ok(None);
        }
        let mut open = self.open.lock();
        if let Some(entry) = open.get_mut(&row.ino) {
            // Orphans are never sealed, so the sealer leaves this one alone.
            entry.orphan = true;
            if entry.handles > 0 {
                txn.update_attrs(&row)?;
                return Ok(None);
            }
            txn.delete_inode(&row)?;
            return Ok(Some(row.ino));
        }
        drop(open);
        txn.delete_inode(&row)?;
        Ok(None)
    }

    /// Commits a transaction that freed `freed` (see [`Tree::drop_link`]).
    pub(super) fn commit_freeing(
        &self,
        txn: Txn,
        freed: impl IntoIterator<Item = Ino>,
    ) -> TreeResult<()> {
        let committed = txn.commit();
        let mut open = self.open.lock();
        for ino in freed {
            match committed {
                Ok(()) => {
                    open.remove(&ino);
                }
                Err(_) => {
                    if let Some(entry) = open.get_mut(&ino) {
                        entry.orphan = false;
                    }
                }
            }
        }
        Ok(committed?)
    }

    /// The app directory is gone: forget it here and in the deploy layer.
    fn forget_app(&self, root: Ino) {
        let entry = self.apps.lock().remove(root);
        self.marked.lock().remove(&root);
        if let Some(entry) = entry {
            self.hooks.app_removed(&entry.id);
        }
    }

    /// Rejects a new non-directory entry anywhere but inside an app.
    fn require_in_app(&self, txn: &Txn, parent: Ino, name: &str) -> TreeResult<InodeRow> {
        match self.place_for(txn, parent, name)? {
            (row, Place::InApp) => Ok(row),
            (_, Place::Backend(_)) => Err(TreeError::OnlyAppDirectoriesHere),
        }
    }

    /// Checks that `name` can be created in `parent`, and what it becomes.
    fn place_for(&self, txn: &Txn, parent: Ino, name: &str) -> TreeResult<(InodeRow, Place)> {
        if StatusInode::decode(parent).is_some() {
            return Err(TreeError::StatusFileReadOnly);
        }
        let row = txn.inode(parent)?.ok_or(TreeError::NotFound)?;
        if row.kind != InodeKind::Dir {
            return Err(TreeError::NotDir);
        }
        let place = match self.role(&row) {
            DirRole::Root => return Err(TreeError::TopLevelIsFixed),
            DirRole::Backend(b) => Place::Backend(b),
            DirRole::App => Place::InApp,
        };
        if txn.lookup(parent, name)?.is_some()
            || (is_status_dir_name(OsStr::new(name)) && is_app_root(&row))
        {
            return Err(TreeError::Exists);
        }
        Ok((row, place))
    }

    /// Registers a handle on `ino`; the entry lives while handles or a
    /// temp file do.
    pub(super) fn open_entry<R>(
        &self,
        ino: Ino,
        app: Option<Ino>,
        with: impl FnOnce(&mut OpenInode) -> R,
    ) -> R {
        let mut open = self.open.lock();
        let entry = match open.entry(ino) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(OpenInode {
                app,
                handles: 0,
                writing: None,
                orphan: false,
                sealed: None,
            }),
        };
        with(entry)
    }
}

/// A directory's content changed: mtime and ctime move.
pub(super) fn touch_dir(txn: &mut Txn, row: &mut InodeRow) -> TreeResult<()> {
    let now = SystemTime::now();
    row.mtime = now;
    row.ctime = now;
    Ok(txn.update_attrs(row)?)
}

/// Whether `ancestor` is `ino` or above it.
fn is_ancestor(txn: &Txn, ancestor: Ino, mut ino: Ino) -> TreeResult<bool> {
    loop {
        if ino == ancestor {
            return Ok(true);
        }
        if ino == ROOT_INO {
            return Ok(false);
        }
        match txn.inode(ino)? {
            Some(row) if row.parent != ino => ino = row.parent,
            _ => return Ok(false),
        }
    }
}

//! pushfs patch: one session thread at a time reads /dev/fuse.
//!
//! With every thread blocked in `read`, each request wakes one of them, and
//! on a virtual machine (or a CPU in a deep idle state) that wake-up costs
//! more than a small request itself. Here only the holder of the reader role
//! waits in the kernel; the others park in user space. The holder answers
//! the requests it reads itself, so a stream of small requests (`tar x`,
//! `cp -r`) moves from thread to thread not at all, and it polls for the
//! next request a short while before it blocks, so a request that follows
//! its predecessor closely needs no wake-up either.
//!
//! A request that may take long (data I/O, fsync, locks, a truncate) hands
//! the role to a parked thread before it runs, and so does any thread about
//! to send the kernel a notification: an invalidation can wait for a request
//! the kernel has queued, which only a reader can fetch.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::time::Duration;

use crate::OpenAccMode;
use crate::ll::Operation;

/// How long the reader polls for a next request before it blocks. Long
/// enough to cover a caller's turnaround between two system calls (tens of
/// microseconds), short enough that an idle mount costs nothing measurable.
pub(crate) const POLL_BEFORE_BLOCKING: Duration = Duration::from_micros(100);

#[derive(Debug, Default)]
struct RoleState {
    held: bool,
    closed: bool,
}

/// The right to read the next request, shared by a session's threads.
#[derive(Debug, Default)]
pub(crate) struct ReaderRole {
    state: Mutex<RoleState>,
    parked: Condvar,
}

thread_local! {
    /// The role this thread holds, if any.
    static HELD: RefCell<Option<Arc<ReaderRole>>> = const { RefCell::new(None) };
}

impl ReaderRole {
    /// Waits until the role is free and takes it; false once the session
    /// has ended.
    pub(crate) fn take(self: &Arc<Self>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.held && !state.closed {
            state = self.parked.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.held = true;
        HELD.with(|held| *held.borrow_mut() = Some(self.clone()));
        true
    }

    /// Ends the session for every thread, parked or not.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.parked.notify_all();
        HELD.with(|held| held.borrow_mut().take());
    }

    fn give_up(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held = false;
        self.parked.notify_one();
    }
}

/// Whether this thread still holds the reader role (a request it served
/// may have handed it on).
pub(crate) fn holds_role() -> bool {
    HELD.with(|held| held.borrow().is_some())
}

/// Hands the reader role to a parked thread if this thread holds it; a
/// no-op anywhere else. Call before anything that may block on the kernel
/// or on slow I/O while serving a request.
pub fn step_aside() {
    if let Some(role) = HELD.with(|held| held.borrow_mut().take()) {
        role.give_up();
    }
}

/// Whether serving `op` may take long: data I/O (a read of a sealed file
/// goes to disk), fsync, locks, ioctls, a truncate or an open for writing
/// (either may copy a whole file), and anything not known to be quick.
pub(crate) fn may_block(op: &Operation<'_>) -> bool {
    match op {
        Operation::SetAttr(attr) => attr.size().is_some(),
        Operation::Open(open) => open.flags().acc_mode() != OpenAccMode::O_RDONLY,
        Operation::Lookup(_)
        | Operation::Forget(_)
        | Operation::BatchForget(_)
        | Operation::GetAttr(_)
        | Operation::ReadLink(_)
        | Operation::SymLink(_)
        | Operation::MkNod(_)
        | Operation::MkDir(_)
        | Operation::Unlink(_)
        | Operation::RmDir(_)
        | Operation::Rename(_)
        | Operation::Rename2(_)
        | Operation::Link(_)
        | Operation::StatFs(_)
        | Operation::Flush(_)
        | Operation::Release(_)
        | Operation::OpenDir(_)
        | Operation::ReadDir(_)
        | Operation::ReadDirPlus(_)
        | Operation::ReleaseDir(_)
        | Operation::Create(_)
        | Operation::Access(_)
        | Operation::SetXAttr(_)
        | Operation::GetXAttr(_)
        | Operation::ListXAttr(_)
        | Operation::RemoveXAttr(_)
        | Operation::Interrupt(_)
        | Operation::Lseek(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_stepping_aside_frees_the_role() {
        let role = Arc::new(ReaderRole::default());
        assert!(role.take());
        assert!(holds_role());
        let other = role.clone();
        let waiter = std::thread::spawn(move || {
            let took = other.take();
            let held = holds_role();
            step_aside();
            (took, held)
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a second thread took a held role");
        step_aside();
        assert!(!holds_role());
        assert_eq!(waiter.join().unwrap(), (true, true));
    }

    #[test]
    fn closing_wakes_parked_threads_and_refuses_the_role() {
        let role = Arc::new(ReaderRole::default());
        assert!(role.take());
        let other = role.clone();
        let waiter = std::thread::spawn(move || other.take());
        std::thread::sleep(Duration::from_millis(20));
        role.close();
        assert!(!waiter.join().unwrap());
        assert!(!role.take());
    }

    #[test]
    fn stepping_aside_without_the_role_changes_nothing() {
        let role = Arc::new(ReaderRole::default());
        step_aside();
        assert!(role.take());
        step_aside();
        assert!(role.take());
    }
}

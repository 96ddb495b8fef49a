//! `worker_connections`: the free connection slots of a worker and its open
//! connections, swept for timeouts and evicted (the one waiting longest for a
//! request) when a new client arrives at the cap.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::sync::Notify;

use crate::downstream::state::ConnState;

/// `worker_connections`: free connection slots of this worker, and the open
/// connections (to evict the one waiting longest for a request when full).
pub(super) struct Slots {
    pub(super) free: Cell<usize>,
    pub(super) freed: Notify,
    pub(super) open: RefCell<Vec<std::rc::Weak<ConnState>>>,
}

impl Slots {
    pub(super) fn register(&self, conn: &Rc<ConnState>, cap: usize) {
        let mut open = self.open.borrow_mut();
        if open.len() >= cap.saturating_mul(2).max(16) {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push(Rc::downgrade(conn));
    }

    /// Applies the timeouts of every open connection (see `ConnState::sweep`).
    pub(super) fn sweep(&self, now: std::time::Instant) {
        let mut open = self.open.borrow_mut();
        open.retain(|w| match w.upgrade() {
            Some(conn) => {
                if conn.sweep(now) {
                    conn.evict();
                }
                true
            }
            None => false,
        });
    }

    /// Tells the connection idle (waiting for a request head) for the longest
    /// time to close. False when every connection is busy with a request.
    pub(super) fn evict_longest_waiting(&self) -> bool {
        let mut open = self.open.borrow_mut();
        open.retain(|w| w.strong_count() > 0);
        let oldest = open
            .iter()
            .filter_map(std::rc::Weak::upgrade)
            .filter_map(|c| c.waiting_since.get().map(|t| (t, c)))
            .min_by_key(|(t, _)| *t);
        match oldest {
            Some((_, conn)) => {
                conn.evict();
                true
            }
            None => false,
        }
    }
}

/// Gives the slot back when the connection ends, however it ends.
pub(super) struct SlotGuard(pub(super) Rc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.free.set(self.0.free.get() + 1);
        self.0.freed.notify_one();
    }
}

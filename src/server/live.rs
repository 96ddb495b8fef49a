//! The configuration being served, as the controller and the resolver thread
//! share it: a reload replaces it whole; a DNS change of one upstream's peers
//! ([`resolver_hook`]) replaces that upstream only, without reading the file or
//! touching a listener. Either way every worker gets the new state through its
//! control channel (the same `Reload` message, with nothing to open or close)
//! and builds it on its own thread; the peers that stay keep their passive
//! health and idle connections (`PeerSet::adopt`), their check state and
//! counters (`UpstreamStats::carrying`), and the checker restarts where their
//! checks were. The mutex is taken by these two writers only, never on the
//! request path.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::listen::ListenGroup;
use super::{Reload, WorkerMsg, RELOAD_WAIT};
use crate::access::zones::AccessState;
use crate::config::{Config, UpstreamConf};
use crate::log::AccessLogs;
use crate::upstream::check::Checker;
use crate::upstream::dns::OnChange;
use crate::upstream::stats::HealthTable;

/// What is being served.
pub(super) struct Live {
    pub(super) config: Arc<Config>,
    pub(super) health: Arc<HealthTable>,
    /// `None` when no upstream has `check`.
    pub(super) checker: Option<Checker>,
    pub(super) logs: Arc<AccessLogs>,
    pub(super) groups: Arc<Vec<ListenGroup>>,
    /// Limit tables and `stub_status` counters, shared by the workers.
    pub(super) access: Arc<AccessState>,
}

pub(super) type Shared = Arc<Mutex<Live>>;

/// The live state (a panic elsewhere while it was held leaves it usable: every
/// write to it is a whole-field assignment).
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, Live> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    /// Stops the checker of the old state and starts one for `config`, which
    /// reads `health` (a kept peer's checks go on from its published state).
    pub(super) fn restart_checker(&mut self, config: &Config, health: &HealthTable) {
        if let Some(old) = self.checker.take() {
            old.stop();
        }
        self.checker = match Checker::start(config, health) {
            Ok(checker) => checker,
            Err(e) => {
                tracing::error!("cannot start the health checks of the new configuration: {e}");
                None
            }
        };
    }
}

/// Sends each worker its `Reload` (`make(w)` for worker `w`) and waits until
/// every one has switched (or [`RELOAD_WAIT`]).
pub(super) fn switch_workers(
    controls: &[mpsc::UnboundedSender<WorkerMsg>],
    mut make: impl FnMut(usize) -> Reload,
) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut sent = 0;
    for (w, control) in controls.iter().enumerate() {
        let msg = WorkerMsg::Reload {
            next: make(w),
            done: done_tx.clone(),
        };
        if control.send(msg).is_ok() {
            sent += 1;
        }
    }
    drop(done_tx);
    for _ in 0..sent {
        if done_rx.recv_timeout(RELOAD_WAIT).is_err() {
            tracing::error!("a worker did not take the new configuration in time");
            break;
        }
    }
}

/// What the resolver thread calls when a DNS change gives upstream `u` new
/// peers.
pub(super) fn resolver_hook(
    shared: Shared,
    controls: Vec<mpsc::UnboundedSender<WorkerMsg>>,
) -> OnChange {
    Box::new(move |u, conf| peers_changed(&shared, &controls, u, conf))
}

fn peers_changed(
    shared: &Shared,
    controls: &[mpsc::UnboundedSender<WorkerMsg>],
    u: usize,
    upstream: UpstreamConf,
) {
    let mut live = lock(shared);
    let Some(previous) = live.config.http.upstreams.get(u).cloned() else {
        return;
    };
    if previous.name != upstream.name {
        return;
    }
    let health = Arc::new(live.health.replacing(u, &upstream, &previous));
    let mut config = (*live.config).clone();
    if let Some(slot) = config.http.upstreams.get_mut(u) {
        *slot = Arc::new(upstream);
    }
    let config = Arc::new(config);
    live.restart_checker(&config, &health);
    switch_workers(controls, |_| Reload {
        config: Arc::clone(&config),
        health: Arc::clone(&health),
        logs: Arc::clone(&live.logs),
        access: Arc::clone(&live.access),
        groups: Arc::clone(&live.groups),
        open: Vec::new(),
        close: Vec::new(),
    });
    live.config = config;
    live.health = health;
}

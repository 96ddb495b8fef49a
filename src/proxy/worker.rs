//! The per-thread state of one configuration: the router, one [`PeerSet`]
//! per upstream (balancer, passive health, keep-alive pool, sticky index),
//! the shared health table and access logs. A reload builds a new one that
//! adopts what did not change ([`Worker::build`]). Single-threaded: `Rc`,
//! `RefCell` and `Cell`, no locks on the request path. The request path
//! itself is [`crate::proxy::handler`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::access::zones::{AccessState, CountGuard};
use crate::config::Config;
use crate::files::cache::FileCache;
use crate::log::AccessLogs;
use crate::proxy::route::Router;
use crate::upstream::client::Transport;
use crate::upstream::dns::Lookups;
use crate::upstream::peers::PeerSet;
use crate::upstream::stats::HealthTable;

/// The per-thread state: the configuration, the router, and one [`PeerSet`] per
/// upstream (balancer, health, keep-alive pool, sticky index).
pub struct Worker {
    pub(super) config: Arc<Config>,
    pub(super) router: Router,
    /// Shared with the previous worker state of the thread for the upstreams a
    /// reload left unchanged (balancer, health, pool and all).
    pub(super) upstreams: Vec<Rc<PeerSet<Transport>>>,
    /// Active-check state and counters shared with the checker, the other
    /// workers and the status page.
    pub(super) health: Arc<HealthTable>,
    /// Connections accepted so far by this worker (`$connection`).
    pub(super) connections: Cell<u64>,
    /// The access logs of this configuration.
    pub(super) logs: Arc<AccessLogs>,
    /// Request and connection limit tables and `stub_status` counters, shared
    /// by every worker thread.
    pub(super) access: Arc<AccessState>,
    /// The resolvers of `proxy_pass` with variables, made at first use.
    pub(super) dns: Lookups,
    /// This worker's store of each `open_file_cache` (by the directive's
    /// token), made at first use.
    file_caches: RefCell<Vec<FileCacheSlot>>,
}

impl Worker {
    /// The state of one worker for `config`, reading (and counting into)
    /// `health` (the table the active checker writes) and writing `logs`. After a
    /// reload, `previous` is the thread's state for the old configuration:
    /// upstreams whose definition did not change keep their peer state (balancer
    /// position, passive health, idle connections; `health` was made with
    /// [`HealthTable::reusing`] so their shared figures are the same objects), and
    /// `$connection` keeps counting.
    pub fn build(
        config: Arc<Config>,
        health: Arc<HealthTable>,
        logs: Arc<AccessLogs>,
        access: Arc<AccessState>,
        previous: Option<&Worker>,
    ) -> Worker {
        let upstreams = config
            .http
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let stats = health.upstream(i);
                let kept = previous.and_then(|p| {
                    p.upstreams.iter().find(|set| {
                        set.conf().name == u.name
                            && *set.conf() == **u
                            && stats.is_some_and(|st| Arc::ptr_eq(st, set.stats()))
                    })
                });
                match kept {
                    Some(set) => Rc::clone(set),
                    None => {
                        let set = match stats {
                            Some(stats) => PeerSet::with_stats(Arc::clone(u), Arc::clone(stats)),
                            None => PeerSet::new(Arc::clone(u)),
                        };
                        // A changed upstream of the same name (a reload, or
                        // a DNS change of its peers): the peers it still has
                        // keep their passive health and idle connections.
                        if let Some(old) = previous
                            .and_then(|p| p.upstreams.iter().find(|s| s.conf().name == u.name))
                        {
                            set.adopt(old, Instant::now());
                        }
                        Rc::new(set)
                    }
                }
            })
            .collect();
        Worker {
            router: Router::new(&config),
            config,
            upstreams,
            health,
            connections: Cell::new(previous.map_or(0, |p| p.connections.get())),
            logs,
            access,
            dns: Lookups::default(),
            file_caches: RefCell::default(),
        }
    }

    /// Counts an accepted client connection for `stub_status` until the guard
    /// is dropped.
    pub fn count_connection(&self) -> CountGuard {
        self.access.counters().connection()
    }

    /// A serial number for a new connection (`$connection`).
    pub fn next_connection(&self) -> u64 {
        let n = self.connections.get() + 1;
        self.connections.set(n);
        n
    }
}

/// An `open_file_cache`'s token and this worker's store for it.
type FileCacheSlot = (Arc<()>, Rc<RefCell<FileCache>>);

impl Worker {
    /// This worker's store for the `open_file_cache` whose token is `token`.
    pub(super) fn file_cache(&self, token: &Arc<()>) -> Rc<RefCell<FileCache>> {
        let mut all = self.file_caches.borrow_mut();
        if let Some((_, store)) = all.iter().find(|(t, _)| Arc::ptr_eq(t, token)) {
            return Rc::clone(store);
        }
        let store = Rc::new(RefCell::new(FileCache::default()));
        all.push((Arc::clone(token), Rc::clone(&store)));
        store
    }
}

//! One worker thread: its runtime, the worker state of the current
//! configuration (swapped on reload), its accept loops, the sweeper timer
//! (timeouts, idle buffers), and graceful drain.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

use super::listen::{connection_settings, h2_settings, ListenGroup};
use super::slots::{SlotGuard, Slots};
use super::{Reload, WorkerMsg};

use crate::access::zones::{AccessState, CountGuard};
use crate::config::Config;
use crate::downstream::h2;
use crate::downstream::state::{ConnState, Signal};
use crate::downstream::tls::{self, Accepted};
use crate::log::AccessLogs;
use crate::proxy::worker::Worker;
use crate::upstream::stats::HealthTable;

/// Everything a worker thread starts with.
pub(super) struct WorkerStart {
    pub(super) config: Arc<Config>,
    pub(super) health: Arc<HealthTable>,
    pub(super) logs: Arc<AccessLogs>,
    pub(super) access: Arc<AccessState>,
    pub(super) groups: Arc<Vec<ListenGroup>>,
    pub(super) listeners: Vec<(ListenGroup, std::net::TcpListener)>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) control: mpsc::UnboundedReceiver<WorkerMsg>,
}

/// The state of one worker thread, shared by its tasks.
pub(super) struct WorkerThread {
    /// The worker state of the current configuration. Each request takes the
    /// `Rc` it finds here (a `RefCell` borrow: no lock) and keeps it until it
    /// is done, so a reload never changes a request half way.
    current: RefCell<Rc<Worker>>,
    /// The listen addresses of the current configuration, with their
    /// connection settings.
    groups: RefCell<Arc<Vec<ListenGroup>>>,
    slots: Rc<Slots>,
    cap: usize,
    /// The accept loop of each listen address.
    accepting: RefCell<Vec<(SocketAddr, tokio::task::JoinHandle<()>)>>,
    /// Set to make every connection finish its request and close (new ones
    /// too, should one be accepted meanwhile).
    draining: Cell<bool>,
}

impl WorkerThread {
    fn worker(&self) -> Rc<Worker> {
        Rc::clone(&self.current.borrow())
    }

    /// The connection settings of `configured` in the current configuration.
    fn group(&self, configured: SocketAddr) -> Option<ListenGroup> {
        self.groups
            .borrow()
            .iter()
            .find(|g| g.configured == configured)
            .cloned()
    }

    fn listen(self: &Rc<Self>, configured: SocketAddr, listener: std::net::TcpListener) {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot register listener {configured}: {e}");
                return;
            }
        };
        let task = tokio::task::spawn_local(accept_loop(listener, configured, Rc::clone(self)));
        self.accepting.borrow_mut().push((configured, task));
    }

    /// Stops accepting on `configured` (the listening socket closes).
    fn unlisten(&self, configured: SocketAddr) {
        self.accepting.borrow_mut().retain(|(addr, task)| {
            if *addr == configured {
                task.abort();
                false
            } else {
                true
            }
        });
    }

    fn reload(self: &Rc<Self>, next: Reload) {
        let Reload {
            config,
            health,
            logs,
            access,
            groups,
            open,
            close,
        } = next;
        let next = Worker::build(config, health, logs, access, Some(&self.current.borrow()));
        *self.current.borrow_mut() = Rc::new(next);
        *self.groups.borrow_mut() = groups;
        for addr in close {
            self.unlisten(addr);
        }
        for (group, listener) in open {
            self.listen(group.configured, listener);
        }
    }

    /// Graceful stop: closes the listeners, asks every connection to finish,
    /// waits for them until `deadline` (or a fast stop).
    async fn drain(&self, deadline: std::time::Instant, stop: &mut watch::Receiver<bool>) {
        for (_, task) in self.accepting.borrow_mut().drain(..) {
            task.abort();
        }
        self.draining.set(true);
        for conn in self
            .slots
            .open
            .borrow()
            .iter()
            .filter_map(std::rc::Weak::upgrade)
        {
            conn.drain();
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        while self.slots.free.get() < self.cap {
            let freed = self.slots.freed.notified();
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        "graceful stop: {} connections still open at the deadline",
                        self.cap - self.slots.free.get()
                    );
                    return;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

pub(super) fn worker_main(start: WorkerStart) {
    let WorkerStart {
        config,
        health,
        logs,
        access,
        groups,
        listeners,
        mut stop,
        mut control,
    } = start;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start a worker runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let cap = config.main.worker_connections.max(1);
        let slots = Rc::new(Slots {
            free: Cell::new(cap),
            freed: Notify::new(),
            open: RefCell::new(Vec::new()),
        });
        let thread = Rc::new(WorkerThread {
            current: RefCell::new(Rc::new(Worker::build(config, health, logs, access, None))),
            groups: RefCell::new(groups),
            slots: Rc::clone(&slots),
            cap,
            accepting: RefCell::new(Vec::new()),
            draining: Cell::new(false),
        });
        for (group, listener) in listeners {
            thread.listen(group.configured, listener);
        }
        // One timer per worker enforces client_header_timeout, keepalive_timeout,
        // send_timeout and proxy_read_timeout for every connection: no timer per request.
        tokio::task::spawn_local({
            let slots = Rc::clone(&slots);
            async move {
                let mut tick = tokio::time::interval(SWEEP_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    slots.sweep(std::time::Instant::now());
                }
            }
        });
        // Until told to stop (or the controller is gone).
        while !*stop.borrow() {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                msg = control.recv() => match msg {
                    None => break,
                    Some(WorkerMsg::Reload { next, done }) => {
                        thread.reload(next);
                        let _ = done.send(());
                    }
                    Some(WorkerMsg::Quit { deadline }) => {
                        thread.drain(deadline, &mut stop).await;
                        break;
                    }
                },
            }
        }
    });
}

/// Accepts the clients of one listen address and spawns each connection's
/// coroutine, within `worker_connections`.
pub(super) async fn accept_loop(
    listener: TcpListener,
    configured: SocketAddr,
    thread: Rc<WorkerThread>,
) {
    let local = listener.local_addr().ok();
    let slots = Rc::clone(&thread.slots);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::error!("accept() failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // At the cap, a new client makes the connection idle the longest (keep-alive
        // or slow header) close; when all are busy it waits for one to end, and
        // the clients after it wait in the listen backlog.
        while slots.free.get() == 0 {
            let freed = slots.freed.notified();
            slots.evict_longest_waiting();
            freed.await;
        }
        // The settings of the configuration current at accept time.
        let Some(group) = thread.group(configured) else {
            continue;
        };
        let settings = connection_settings(&group.connection);
        let _ = stream.set_nodelay(true);
        slots.free.set(slots.free.get() - 1);
        let guard = SlotGuard(Rc::clone(&slots));
        let counted = thread.worker().count_connection();
        let info = Rc::new(ConnState::new(
            remote,
            stream
                .local_addr()
                .ok()
                .or(local)
                .unwrap_or(group.configured),
            group.configured,
            group.connection.keepalive_requests,
            thread.worker().next_connection(),
            group.connection.client_header_timeout,
            group.connection.keepalive_timeout,
            group.connection.send_timeout,
        ));
        slots.register(&info, thread.cap);
        if thread.draining.get() {
            info.drain();
        }
        let per_request = Rc::clone(&thread);
        // The configuration current when each request arrives.
        let handler = move || per_request.worker();
        // An HTTP/2 stream's own state is swept as a connection's is.
        let register = {
            let slots = Rc::clone(&slots);
            let cap = thread.cap;
            move |stream: &Rc<ConnState>| slots.register(stream, cap)
        };
        let http2 = group.http2;
        match group.tls {
            None => {
                let conn = h2::serve_plain(
                    stream.into(),
                    Rc::clone(&info),
                    settings,
                    http2,
                    handler,
                    register,
                );
                spawn_connection(conn, info, (guard, counted), remote);
            }
            Some(sites) => {
                let state = Rc::clone(&info);
                // The handshake's state lives in a box only while it runs.
                let conn = async move {
                    let timeout = sites.handshake_timeout();
                    let mut connection = None;
                    let choose = |sni: Option<&str>| {
                        let chosen = sites.choose(sni);
                        connection = Some(chosen.connection);
                        (chosen.tls, chosen.h2)
                    };
                    let accepted = Box::pin(tls::accept(stream, choose, timeout)).await;
                    // The server the SNI name chose gives the connection its
                    // settings, as nginx.
                    let (settings, http2) = match &connection {
                        Some(conn) => {
                            state.adopt_limits(
                                conn.keepalive_requests,
                                conn.client_header_timeout,
                                conn.keepalive_timeout,
                                conn.send_timeout,
                            );
                            (connection_settings(conn), http2.map(|_| h2_settings(conn)))
                        }
                        None => (settings, http2),
                    };
                    let stream = match accepted {
                        None => return,
                        Some(Accepted::Tls(stream, facts)) => {
                            state.set_tls(facts);
                            stream
                        }
                        Some(Accepted::PlainHttp(stream)) => {
                            state.set_plain_on_tls();
                            stream
                        }
                    };
                    h2::serve_tls(stream, state, settings, http2, handler, register).await
                };
                spawn_connection(conn, info, (guard, counted), remote);
            }
        }
    }
}

/// Runs one connection's coroutine until it ends or the worker evicts it.
fn spawn_connection(
    conn: impl Future<Output = ()> + 'static,
    info: Rc<ConnState>,
    // The worker-connection slot and the `stub_status` count, both given
    // back when the connection ends.
    guard: (SlotGuard, CountGuard),
    remote: SocketAddr,
) {
    tokio::task::spawn_local(async move {
        let mut conn = std::pin::pin!(conn);
        // An eviction drops the connection at once; a drain is seen by
        // the connection itself (closes when idle or after its response).
        let evicted = std::future::poll_fn(|cx| {
            if info.poll_signal(cx) == Signal::Evict {
                return Poll::Ready(true);
            }
            conn.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if evicted {
            tracing::info!("closing idle connection from {remote}");
        }
        drop(guard);
    });
}

/// How often a worker checks its connections' timeouts: the precision of
/// `client_header_timeout`, `keepalive_timeout` and `proxy_read_timeout`.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

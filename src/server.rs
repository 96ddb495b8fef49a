//! Listeners, worker threads, the accept loop, connection caps and shutdown.
//!
//! Every distinct `listen` address of every `server` is bound once per worker
//! thread (`worker_processes`) with `SO_REUSEPORT`, so the kernel spreads
//! connections over the workers. Each worker runs its own current-thread tokio
//! runtime with a `LocalSet` and owns its state (pools, balancer, health: see
//! [`crate::proxy::worker::Worker`]); nothing is shared between workers on the
//! request path but the relaxed-atomic `upstream::stats::HealthTable`, which the
//! active checker (`upstream::check`, its own thread) writes. A listen address with port 0 is bound once to learn the port the
//! kernel chose and then bound again on that port for the other workers.
//!
//! Connection limits live here too: `worker_connections` (at the cap a new client
//! makes the connection idle the longest close; busy ones are never closed), and
//! one sweeper timer per worker that enforces `client_header_timeout`,
//! `keepalive_timeout`, `send_timeout` and `proxy_read_timeout` for all its
//! connections (see `ConnState::sweep`), so no request arms a timer of its own.
//!
//! [`run_with`] is the blocking entry point of the binary: it obeys the signals
//! of [`crate::process`] (SIGHUP reload, SIGUSR1 reopen, SIGQUIT graceful stop,
//! SIGTERM/SIGINT fast stop). [`Proxy::start`] starts the same thing in-process
//! and hands back the bound addresses and a handle to reload, reopen the logs,
//! and stop gracefully or at once (tests, embedding).
//!
//! Reload: each worker thread keeps the worker state ([`Worker`]) of the current
//! configuration in a `RefCell<Rc<Worker>>`; a request clones the `Rc` when it
//! arrives and keeps it to the end, so a reload (a message to each worker
//! thread, which builds the new state on its own thread) swaps configurations
//! between requests without a lock on the request path. Listening sockets of
//! addresses that stay configured are never closed; new addresses are bound by
//! the controller before anything changes (a bind failure aborts the reload),
//! removed ones are closed by stopping their accept loops. Upstreams whose
//! definition did not change keep their peer state ([`Worker::build`]).
//!
//! Graceful stop: the accept loops stop (listeners close), every connection is
//! told to finish its request and close (idle keep-alive connections close at
//! once), and the worker ends when the last
//! connection has gone or at the deadline.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

use crate::config::{Config, ConnectionConf, WorkerProcesses};
use crate::downstream::conn::{self, Settings};
use crate::downstream::state::{ConnState, Signal};
use crate::http1::request::Limits;
use crate::log::{AccessLogs, ErrorLog};
use crate::process::{Control, ControlSignals, PidFile};
use crate::proxy::worker::Worker;
use crate::upstream::check::Checker;
use crate::upstream::stats::HealthTable;

/// One distinct listening address and the connection settings of its default
/// server.
#[derive(Debug, Clone)]
struct ListenGroup {
    /// The address as configured (what routing matches against).
    configured: SocketAddr,
    backlog: i32,
    connection: ConnectionConf,
}

/// The distinct listen addresses of `config`, in file order. Connection-level
/// settings come from the address's `default_server`, else its first server (as
/// nginx does before it knows the Host).
fn listen_groups(config: &Config) -> Vec<ListenGroup> {
    let mut groups: Vec<(ListenGroup, bool)> = Vec::new();
    for server in &config.http.servers {
        for listen in &server.listens {
            match groups.iter_mut().find(|(g, _)| g.configured == listen.addr) {
                Some((group, has_default)) => {
                    if listen.default_server && !*has_default {
                        group.connection = server.connection.clone();
                        *has_default = true;
                    }
                    group.backlog = group.backlog.max(listen.backlog);
                }
                None => groups.push((
                    ListenGroup {
                        configured: listen.addr,
                        backlog: listen.backlog,
                        connection: server.connection.clone(),
                    },
                    listen.default_server,
                )),
            }
        }
    }
    groups.into_iter().map(|(g, _)| g).collect()
}

/// A non-blocking listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`.
fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.max(1))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn worker_count(config: &Config) -> usize {
    match config.main.worker_processes {
        WorkerProcesses::Count(n) => n.max(1),
        WorkerProcesses::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Binds `group` once per worker: the first socket learns the port when the
/// configured one is 0, the others bind that port (`SO_REUSEPORT`).
fn bind_group(
    group: &ListenGroup,
    workers: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind(group.configured, group.backlog).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("bind() to {} failed ({e})", group.configured),
        )
    })?;
    let actual = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(bind(actual, group.backlog).map_err(|e| {
            std::io::Error::new(e.kind(), format!("bind() to {actual} failed ({e})"))
        })?);
    }
    Ok((actual, sockets))
}

/// What the controller tells a worker thread.
enum WorkerMsg {
    /// Serve a new configuration: listen on `open` (this worker's sockets for
    /// the new addresses), stop listening on `close`, then acknowledge.
    Reload {
        config: Arc<Config>,
        health: Arc<HealthTable>,
        logs: Arc<AccessLogs>,
        groups: Arc<Vec<ListenGroup>>,
        open: Vec<(ListenGroup, std::net::TcpListener)>,
        close: Vec<SocketAddr>,
        done: std::sync::mpsc::Sender<()>,
    },
    /// Graceful stop: close the listeners, let every connection finish its
    /// request (idle ones close at once), and end by `deadline` at the latest.
    Quit { deadline: std::time::Instant },
}

/// The proxy, started in-process.
pub struct Proxy;

impl Proxy {
    /// Binds every listen address (port 0 allowed), opens the access logs and
    /// starts the worker threads. Returns once every socket is listening.
    pub fn start(config: Config) -> std::io::Result<RunningProxy> {
        let config = Arc::new(config);
        let groups = listen_groups(&config);
        if groups.is_empty() {
            return Err(std::io::Error::other("no listen address configured"));
        }
        let logs = Arc::new(AccessLogs::open(&config).map_err(std::io::Error::other)?);
        let workers = worker_count(&config);
        // sockets[w]: the sockets of worker w, one per group.
        let mut sockets: Vec<Vec<(ListenGroup, std::net::TcpListener)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(groups.len());
        for group in &groups {
            let (actual, per_worker) = bind_group(group, workers)?;
            bound.push((group.configured, actual));
            for (list, socket) in sockets.iter_mut().zip(per_worker) {
                list.push((group.clone(), socket));
            }
        }
        // Active checks run on their own thread; workers read what they write.
        let health = Arc::new(HealthTable::new(&config));
        let checker = Checker::start(&config, &health)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let groups = Arc::new(groups);
        let mut threads = Vec::with_capacity(workers);
        let mut controls = Vec::with_capacity(workers);
        for (w, listeners) in sockets.into_iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            controls.push(tx);
            let start = WorkerStart {
                config: Arc::clone(&config),
                health: Arc::clone(&health),
                logs: Arc::clone(&logs),
                groups: Arc::clone(&groups),
                listeners,
                stop: stop_rx.clone(),
                control: rx,
            };
            let handle = std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker_main(start))?;
            threads.push(handle);
        }
        Ok(RunningProxy {
            bound,
            stop: stop_tx,
            threads,
            health,
            checker,
            controls,
            config,
            logs,
        })
    }
}

/// A running in-process proxy. Dropping it shuts it down.
pub struct RunningProxy {
    bound: Vec<(SocketAddr, SocketAddr)>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    health: Arc<HealthTable>,
    /// `None` when no upstream has `check`.
    checker: Option<Checker>,
    controls: Vec<mpsc::UnboundedSender<WorkerMsg>>,
    config: Arc<Config>,
    logs: Arc<AccessLogs>,
}

/// How long a reload waits for the workers to switch.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

impl RunningProxy {
    /// The bound address of the first listen address.
    pub fn addr(&self) -> SocketAddr {
        self.bound
            .first()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |b| b.1)
    }

    /// Every distinct listen address: (as configured, as bound).
    pub fn addrs(&self) -> &[(SocketAddr, SocketAddr)] {
        &self.bound
    }

    /// The bound address of the `listen` configured as `configured`.
    pub fn bound(&self, configured: SocketAddr) -> Option<SocketAddr> {
        self.bound.iter().find(|b| b.0 == configured).map(|b| b.1)
    }

    /// The active-check state and counters of every upstream (what the
    /// `check_status` page shows).
    pub fn health(&self) -> &Arc<HealthTable> {
        &self.health
    }

    /// The configuration being served.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The access logs of the configuration being served.
    pub fn logs(&self) -> &Arc<AccessLogs> {
        &self.logs
    }

    /// Serves `config` from now on (SIGHUP). New addresses are bound and the
    /// access logs opened first: if any of that fails nothing changes and the
    /// error is returned. Then every worker switches (requests in flight finish
    /// on the old configuration; the next request of a kept-alive connection
    /// uses the new one), listeners on addresses still configured stay open,
    /// removed ones close. Returns once every worker has switched.
    /// `worker_processes` and `worker_connections` apply at start only.
    pub fn reload(&mut self, config: Config) -> Result<(), String> {
        let config = Arc::new(config);
        let groups = listen_groups(&config);
        if groups.is_empty() {
            return Err("no listen address configured".into());
        }
        let workers = self.controls.len();
        if worker_count(&config) != workers {
            tracing::warn!("\"worker_processes\" changed: still {workers} workers until a restart");
        }
        if config.main.worker_connections != self.config.main.worker_connections {
            tracing::warn!("\"worker_connections\" changed: applies after a restart");
        }
        if config.main.worker_rlimit_nofile != self.config.main.worker_rlimit_nofile {
            tracing::warn!("\"worker_rlimit_nofile\" changed: applies after a restart");
        }
        let pid_path = |c: &Config| {
            c.main
                .pid
                .as_deref()
                .map(|p| crate::log::resolve_path(&c.file, p))
        };
        if pid_path(&config) != pid_path(&self.config) {
            tracing::warn!("\"pid\" changed: the running proxy keeps its pid file until a restart");
        }
        let mut open: Vec<Vec<(ListenGroup, std::net::TcpListener)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(groups.len());
        for group in &groups {
            if let Some(kept) = self.bound.iter().find(|b| b.0 == group.configured) {
                bound.push(*kept);
                continue;
            }
            let (actual, per_worker) = bind_group(group, workers).map_err(|e| e.to_string())?;
            bound.push((group.configured, actual));
            for (list, socket) in open.iter_mut().zip(per_worker) {
                list.push((group.clone(), socket));
            }
        }
        let close: Vec<SocketAddr> = self
            .bound
            .iter()
            .map(|b| b.0)
            .filter(|addr| !groups.iter().any(|g| g.configured == *addr))
            .collect();
        let logs = Arc::new(AccessLogs::open_reusing(&config, Some(&self.logs))?);
        // Upstreams left unchanged keep their check state and counters; the
        // checker restarts on the new peer list.
        let health = Arc::new(HealthTable::reusing(&config, &self.config, &self.health));
        if let Some(old) = self.checker.take() {
            old.stop();
        }
        self.checker = match Checker::start(&config, &health) {
            Ok(checker) => checker,
            Err(e) => {
                tracing::error!("cannot start the health checks of the new configuration: {e}");
                None
            }
        };
        let groups = Arc::new(groups);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut sent = 0;
        for (control, open) in self.controls.iter().zip(open) {
            let msg = WorkerMsg::Reload {
                config: Arc::clone(&config),
                health: Arc::clone(&health),
                logs: Arc::clone(&logs),
                groups: Arc::clone(&groups),
                open,
                close: close.clone(),
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
        for (configured, actual) in &bound {
            if !self.bound.iter().any(|b| b.0 == *configured) {
                tracing::info!("listening on {actual} (configured {configured})");
            }
        }
        for addr in &close {
            tracing::info!("no longer listening on {addr}");
        }
        self.bound = bound;
        self.config = config;
        self.health = health;
        self.logs = logs;
        Ok(())
    }

    /// Reopens the access log files (SIGUSR1); returns the errors.
    pub fn reopen_logs(&self) -> Vec<String> {
        self.logs.reopen()
    }

    /// Graceful stop (SIGQUIT): closes the listeners, lets the requests in flight
    /// finish (idle connections close at once) for up to `grace`, then joins the
    /// workers and writes out the access logs.
    pub fn quit(mut self, grace: Duration) {
        self.begin_quit(grace);
        self.join();
    }

    /// Starts a graceful stop without waiting for it (see [`RunningProxy::quit`]):
    /// [`RunningProxy::is_stopped`] tells when the workers are done, and
    /// [`RunningProxy::shutdown`] still cuts it short.
    pub fn begin_quit(&self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        for control in &self.controls {
            let _ = control.send(WorkerMsg::Quit { deadline });
        }
    }

    /// True once every worker thread has ended.
    pub fn is_stopped(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Stops accepting, drops every connection and joins the worker threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(checker) = self.checker.take() {
            checker.stop();
        }
        let _ = self.stop.send(true);
        self.join();
    }

    fn join(&mut self) {
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
        self.logs.flush();
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// How long a graceful stop (SIGQUIT) lets requests in flight run.
pub const GRACEFUL_STOP: Duration = Duration::from_secs(30);

/// Runs the proxy with `config` until SIGINT or SIGTERM. Blocks the calling thread.
/// Writes the `pid` file once listening and removes it at exit.
pub fn run(config: Config) -> std::io::Result<()> {
    run_with(config, None)
}

/// Runs the proxy with `config` and obeys signals ([`crate::process::Control`])
/// until stopped: SIGHUP re-reads `config.file` and reloads (a configuration that
/// does not load is logged and changes nothing), SIGUSR1 reopens the logs (the
/// access logs, and `error_log` when given), SIGQUIT stops gracefully (up to
/// [`GRACEFUL_STOP`]), SIGTERM/SIGINT stop at once. Writes the `pid` file once
/// listening and removes it at exit. Blocks the calling thread.
pub fn run_with(config: Config, error_log: Option<ErrorLog>) -> std::io::Result<()> {
    let file = config.file.clone();
    let pid_path = config.main.pid.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signals are caught from here on (before the pid file tells `-s` about us).
    let mut signals = rt.block_on(async { ControlSignals::new() })?;
    let mut running = Proxy::start(config)?;
    for (configured, actual) in running.addrs() {
        tracing::info!("listening on {actual} (configured {configured})");
    }
    let pid_file = match &pid_path {
        Some(path) => Some(PidFile::create(path).map_err(std::io::Error::other)?),
        None => None,
    };
    loop {
        match rt.block_on(signals.recv()) {
            Control::Reload => {
                tracing::info!("reloading the configuration from {}", file.display());
                match crate::config::load(&file) {
                    Ok((config, warnings)) => {
                        for warning in &warnings {
                            tracing::warn!("{warning}");
                        }
                        let wanted_error_log = config.main.error_log.clone();
                        match running.reload(config) {
                            Ok(()) => {
                                if let Some(log) = &error_log {
                                    if let Err(e) = log.reconfigure(&wanted_error_log) {
                                        tracing::error!("{e}");
                                    }
                                }
                                tracing::info!("configuration reloaded");
                            }
                            Err(e) => tracing::error!(
                                "reload failed, keeping the running configuration: {e}"
                            ),
                        }
                    }
                    Err(e) => {
                        tracing::error!("reload failed, keeping the running configuration: {e}")
                    }
                }
            }
            Control::Reopen => {
                for e in running.reopen_logs() {
                    tracing::error!("{e}");
                }
                if let Some(log) = &error_log {
                    if let Err(e) = log.reopen() {
                        tracing::error!("{e}");
                    }
                }
                tracing::info!("log files reopened");
            }
            Control::Quit => {
                tracing::info!("gracefully shutting down");
                running.begin_quit(GRACEFUL_STOP);
                // As nginx: a stop signal during a graceful stop cuts it short.
                rt.block_on(async {
                    loop {
                        tokio::select! {
                            control = signals.recv() => {
                                if control == Control::Stop {
                                    tracing::info!("fast stop requested during the graceful stop");
                                    break;
                                }
                            }
                            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                                if running.is_stopped() {
                                    break;
                                }
                            }
                        }
                    }
                });
                running.shutdown();
                break;
            }
            Control::Stop => {
                tracing::info!("shutting down");
                running.shutdown();
                break;
            }
        }
    }
    drop(pid_file);
    tracing::info!("exit");
    Ok(())
}

/// Everything a worker thread starts with.
struct WorkerStart {
    config: Arc<Config>,
    health: Arc<HealthTable>,
    logs: Arc<AccessLogs>,
    groups: Arc<Vec<ListenGroup>>,
    listeners: Vec<(ListenGroup, std::net::TcpListener)>,
    stop: watch::Receiver<bool>,
    control: mpsc::UnboundedReceiver<WorkerMsg>,
}

/// The state of one worker thread, shared by its tasks.
struct WorkerThread {
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

    fn reload(
        self: &Rc<Self>,
        config: Arc<Config>,
        health: Arc<HealthTable>,
        logs: Arc<AccessLogs>,
        groups: Arc<Vec<ListenGroup>>,
        open: Vec<(ListenGroup, std::net::TcpListener)>,
        close: Vec<SocketAddr>,
    ) {
        let next = Worker::build(config, health, logs, Some(&self.current.borrow()));
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

fn worker_main(start: WorkerStart) {
    let WorkerStart {
        config,
        health,
        logs,
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
            current: RefCell::new(Rc::new(Worker::build(config, health, logs, None))),
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
                    Some(WorkerMsg::Reload { config, health, logs, groups, open, close, done }) => {
                        thread.reload(config, health, logs, groups, open, close);
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

/// `worker_connections`: free connection slots of this worker, and the open
/// connections (to evict the one waiting longest for a request when full).
struct Slots {
    free: Cell<usize>,
    freed: Notify,
    open: RefCell<Vec<std::rc::Weak<ConnState>>>,
}

impl Slots {
    fn register(&self, conn: &Rc<ConnState>, cap: usize) {
        let mut open = self.open.borrow_mut();
        if open.len() >= cap.saturating_mul(2).max(16) {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push(Rc::downgrade(conn));
    }

    /// Applies the timeouts of every open connection (see `ConnState::sweep`).
    fn sweep(&self, now: std::time::Instant) {
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
    fn evict_longest_waiting(&self) -> bool {
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
struct SlotGuard(Rc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.free.set(self.0.free.get() + 1);
        self.0.freed.notify_one();
    }
}

async fn accept_loop(listener: TcpListener, configured: SocketAddr, thread: Rc<WorkerThread>) {
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
        let info = Rc::new(ConnState::new(
            remote,
            stream
                .local_addr()
                .ok()
                .or(local)
                .unwrap_or(group.configured),
            group.configured,
            group.connection.keepalive_requests,
            group.connection.large_client_header_buffers.1,
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
        let conn = conn::serve(stream, Rc::clone(&info), settings, move || {
            per_request.worker()
        });
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
}

/// How often a worker checks its connections' timeouts: the precision of
/// `client_header_timeout`, `keepalive_timeout` and `proxy_read_timeout`.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The client connection settings of one listen address. Header and idle
/// timeouts are the worker sweeper's job (one timer per worker, none per
/// request).
fn connection_settings(conn: &ConnectionConf) -> Settings {
    let (count, size) = conn.large_client_header_buffers;
    Settings {
        limits: Limits::new(count, size),
        keep_alive: !conn.keepalive_timeout.is_zero() && conn.keepalive_requests > 0,
    }
}

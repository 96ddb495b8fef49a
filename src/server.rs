//! Listeners, worker threads, the accept loop, connection caps and shutdown.
//!
//! Every distinct `listen` address of every `server` is bound once per worker
//! thread (`worker_processes`) with `SO_REUSEPORT`, so the kernel spreads
//! connections over the workers. Each worker runs its own current-thread tokio
//! runtime with a `LocalSet` and owns its state (pools, balancer, health: see
//! [`crate::proxy::forward::Worker`]); nothing is shared between workers on the
//! request path. A listen address with port 0 is bound once to learn the port the
//! kernel chose and then bound again on that port for the other workers.
//!
//! [`run`] is the blocking entry point of the binary (stops on SIGINT/SIGTERM);
//! [`Proxy::start`] starts the same thing in-process and hands back the bound
//! addresses and a shutdown handle (tests, embedding).

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::config::{Config, ConnectionConf, WorkerProcesses};
use crate::proxy::forward::{ConnInfo, Worker};

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

/// The proxy, started in-process.
pub struct Proxy;

impl Proxy {
    /// Binds every listen address (port 0 allowed) and starts the worker threads.
    /// Returns once every socket is listening.
    pub fn start(config: Config) -> std::io::Result<RunningProxy> {
        let config = Arc::new(config);
        let groups = listen_groups(&config);
        if groups.is_empty() {
            return Err(std::io::Error::other("no listen address configured"));
        }
        let workers = worker_count(&config);
        // sockets[w][g]: the socket of group g for worker w.
        let mut sockets: Vec<Vec<std::net::TcpListener>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(groups.len());
        for group in &groups {
            let first = bind(group.configured, group.backlog).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("bind() to {} failed ({e})", group.configured),
                )
            })?;
            let actual = first.local_addr()?;
            bound.push((group.configured, actual));
            let mut per_worker = vec![first];
            for _ in 1..workers {
                per_worker.push(bind(actual, group.backlog)?);
            }
            for (w, socket) in per_worker.into_iter().enumerate() {
                if let Some(list) = sockets.get_mut(w) {
                    list.push(socket);
                }
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let groups = Arc::new(groups);
        let mut threads = Vec::with_capacity(workers);
        for (w, listeners) in sockets.into_iter().enumerate() {
            let config = Arc::clone(&config);
            let groups = Arc::clone(&groups);
            let stop = stop_rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker_main(config, groups, listeners, stop))?;
            threads.push(handle);
        }
        Ok(RunningProxy {
            bound,
            stop: stop_tx,
            threads,
        })
    }
}

/// A running in-process proxy. Dropping it shuts it down.
pub struct RunningProxy {
    bound: Vec<(SocketAddr, SocketAddr)>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

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

    /// Stops accepting, drops every connection and joins the worker threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Runs the proxy with `config` until SIGINT or SIGTERM. Blocks the calling thread.
/// Writes the `pid` file once listening and removes it at exit.
pub fn run(config: Config) -> std::io::Result<()> {
    let pid_file = config.main.pid.clone();
    let running = Proxy::start(config)?;
    for (configured, actual) in running.addrs() {
        tracing::info!("listening on {actual} (configured {configured})");
    }
    if let Some(path) = &pid_file {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("open() \"{}\" failed ({e})", path.display()),
            )
        })?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let waited = rt.block_on(wait_for_signal());
    tracing::info!("shutting down");
    running.shutdown();
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    waited
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

fn worker_main(
    config: Arc<Config>,
    groups: Arc<Vec<ListenGroup>>,
    listeners: Vec<std::net::TcpListener>,
    mut stop: watch::Receiver<bool>,
) {
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
        let worker = Rc::new(Worker::new(Arc::clone(&config)));
        let slots = Rc::new(Slots {
            free: Cell::new(config.main.worker_connections.max(1)),
            freed: Notify::new(),
            open: std::cell::RefCell::new(Vec::new()),
        });
        for (group, std_listener) in groups.iter().zip(listeners) {
            let listener = match TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("cannot register listener {}: {e}", group.configured);
                    continue;
                }
            };
            tokio::task::spawn_local(accept_loop(
                listener,
                group.clone(),
                Rc::clone(&worker),
                Rc::clone(&slots),
                config.main.worker_connections.max(1),
            ));
        }
        // One timer per worker enforces client_header_timeout, keepalive_timeout
        // and proxy_read_timeout for every connection: no timer per request.
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
            if stop.changed().await.is_err() {
                break;
            }
        }
    });
}

/// `worker_connections`: free connection slots of this worker, and the open
/// connections (to evict the one waiting longest for a request when full).
struct Slots {
    free: Cell<usize>,
    freed: Notify,
    open: std::cell::RefCell<Vec<std::rc::Weak<ConnInfo>>>,
}

impl Slots {
    fn register(&self, conn: &Rc<ConnInfo>, cap: usize) {
        let mut open = self.open.borrow_mut();
        if open.len() >= cap.saturating_mul(2).max(16) {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push(Rc::downgrade(conn));
    }

    /// Applies the timeouts of every open connection (see `ConnInfo::sweep`).
    fn sweep(&self, now: std::time::Instant) {
        let mut open = self.open.borrow_mut();
        open.retain(|w| match w.upgrade() {
            Some(conn) => {
                if conn.sweep(now) {
                    conn.evict.notify_one();
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
                conn.evict.notify_one();
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

async fn accept_loop(
    listener: TcpListener,
    group: ListenGroup,
    worker: Rc<Worker>,
    slots: Rc<Slots>,
    cap: usize,
) {
    let local = listener.local_addr().ok();
    let builder = server_builder(&group.connection);
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
        let _ = stream.set_nodelay(true);
        slots.free.set(slots.free.get() - 1);
        let guard = SlotGuard(Rc::clone(&slots));
        let info = Rc::new(ConnInfo::new(
            remote,
            stream
                .local_addr()
                .ok()
                .or(local)
                .unwrap_or(group.configured),
            group.configured,
            group.connection.keepalive_requests,
            group.connection.large_client_header_buffers.1,
            worker.next_connection(),
            group.connection.client_header_timeout,
            idle_timeout(&group.connection),
        ));
        slots.register(&info, cap);
        let evict_info = Rc::clone(&info);
        let worker = Rc::clone(&worker);
        let service = service_fn(move |req: Request<Incoming>| {
            let worker = Rc::clone(&worker);
            let info = Rc::clone(&info);
            async move { Ok::<_, Infallible>(worker.handle(&info, req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::task::spawn_local(async move {
            tokio::select! {
                ended = conn => {
                    if let Err(e) = ended {
                        tracing::debug!("client connection from {remote} ended: {e}");
                    }
                }
                _ = evict_info.evict.notified() => {
                    tracing::info!("worker_connections reached: closing idle connection from {remote}");
                }
            }
            drop(guard);
        });
    }
}

/// How often a worker checks its connections' timeouts: the precision of
/// `client_header_timeout`, `keepalive_timeout` and `proxy_read_timeout`.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The idle limit of a kept-alive connection (`keepalive_timeout`; zero when
/// keep-alive is off, where hyper closes the connection itself).
fn idle_timeout(conn: &ConnectionConf) -> Duration {
    conn.keepalive_timeout
}

/// The hyper server settings of one listen address.
fn server_builder(conn: &ConnectionConf) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    let keepalive = !conn.keepalive_timeout.is_zero() && conn.keepalive_requests > 0;
    let (count, size) = conn.large_client_header_buffers;
    // Header and idle timeouts are the worker sweeper's job (one timer per
    // worker instead of hyper's timer per request).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(keepalive)
        .writev(false)
        .half_close(false)
        .max_buf_size(count.saturating_mul(size).max(8192));
    builder
}

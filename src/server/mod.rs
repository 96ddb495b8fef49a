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

mod listen;
mod live;
mod slots;
mod tls;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use listen::{bind_group, listen_groups, worker_count, ListenGroup};
use live::{lock, resolver_hook, switch_workers, Live, Shared};
use worker::{worker_main, WorkerStart};

use crate::access::zones::AccessState;
use crate::config::Config;
use crate::log::{AccessLogs, ErrorLog};
use crate::process::{Control, ControlSignals, PidFile};
use crate::upstream::check::Checker;
use crate::upstream::dns::Resolver;
use crate::upstream::stats::HealthTable;

/// A worker thread's share of a reload.
struct Reload {
    config: Arc<Config>,
    health: Arc<HealthTable>,
    logs: Arc<AccessLogs>,
    access: Arc<AccessState>,
    groups: Arc<Vec<ListenGroup>>,
    /// This worker's sockets for the new addresses.
    open: Vec<(ListenGroup, std::net::TcpListener)>,
    /// The addresses no longer listened on.
    close: Vec<SocketAddr>,
}

/// What the controller tells a worker thread.
enum WorkerMsg {
    /// Serve a new configuration: listen on `open` (this worker's sockets for
    /// the new addresses), stop listening on `close`, then acknowledge.
    Reload {
        next: Reload,
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
        let mut config = config;
        // Names resolved at run time get their first answers before anything
        // serves.
        let prepared = Resolver::prepare(&mut config)?;
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
        let access = Arc::new(AccessState::new(&config));
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
                access: Arc::clone(&access),
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
        let live: Shared = Arc::new(std::sync::Mutex::new(Live {
            config,
            health,
            checker,
            logs,
            groups,
            access,
        }));
        let resolver = match prepared {
            Some(p) => Some(p.spawn(resolver_hook(Arc::clone(&live), controls.clone()))?),
            None => None,
        };
        Ok(RunningProxy {
            bound,
            stop: stop_tx,
            threads,
            controls,
            live,
            resolver,
        })
    }
}

/// A running in-process proxy. Dropping it shuts it down.
pub struct RunningProxy {
    bound: Vec<(SocketAddr, SocketAddr)>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    controls: Vec<mpsc::UnboundedSender<WorkerMsg>>,
    /// What is served: the configuration, health table, checker and logs
    /// (shared with the resolver thread, which changes resolved peers).
    live: Shared,
    /// `None` when no upstream resolves names at run time.
    resolver: Option<Resolver>,
}

/// How long a reload waits for the workers to switch.
pub(super) const RELOAD_WAIT: Duration = Duration::from_secs(10);

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
    pub fn health(&self) -> Arc<HealthTable> {
        Arc::clone(&lock(&self.live).health)
    }

    /// The configuration being served (with the peers names resolve to now).
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&lock(&self.live).config)
    }

    /// The access logs of the configuration being served.
    pub fn logs(&self) -> Arc<AccessLogs> {
        Arc::clone(&lock(&self.live).logs)
    }

    /// Serves `config` from now on (SIGHUP). New addresses are bound and the
    /// access logs opened first: if any of that fails nothing changes and the
    /// error is returned. Then every worker switches (requests in flight finish
    /// on the old configuration; the next request of a kept-alive connection
    /// uses the new one), listeners on addresses still configured stay open,
    /// removed ones close. Returns once every worker has switched.
    /// `worker_processes` and `worker_connections` apply at start only.
    pub fn reload(&mut self, config: Config) -> Result<(), String> {
        let mut config = config;
        let current = self.config();
        let groups = listen_groups(&config);
        if groups.is_empty() {
            return Err("no listen address configured".into());
        }
        let workers = self.controls.len();
        if worker_count(&config) != workers {
            tracing::warn!("\"worker_processes\" changed: still {workers} workers until a restart");
        }
        if config.main.worker_connections != current.main.worker_connections {
            tracing::warn!("\"worker_connections\" changed: applies after a restart");
        }
        if config.main.worker_rlimit_nofile != current.main.worker_rlimit_nofile {
            tracing::warn!("\"worker_rlimit_nofile\" changed: applies after a restart");
        }
        let pid_path = |c: &Config| c.main.pid.as_deref().map(|p| c.resolve_path(p));
        if pid_path(&config) != pid_path(&current) {
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
        let logs = Arc::new(AccessLogs::open_reusing(&config, Some(&self.logs()))?);
        // The old resolver stops (before the live state is locked: it may be
        // waiting for it), the new one answers its names before the switch.
        if let Some(old) = self.resolver.take() {
            old.stop();
        }
        let prepared = match Resolver::prepare(&mut config) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot start resolving the names of the new configuration: {e}");
                None
            }
        };
        let config = Arc::new(config);
        let mut live = lock(&self.live);
        // Upstreams left unchanged keep their check state and counters; the
        // checker restarts on the new peer list.
        let health = Arc::new(HealthTable::reusing(&config, &live.config, &live.health));
        live.restart_checker(&config, &health);
        // Limit tables whose zone did not change, and the status counters, stay.
        let access = Arc::new(AccessState::reusing(&config, &live.access));
        let groups = Arc::new(groups);
        let mut open = open.into_iter();
        switch_workers(&self.controls, |_| Reload {
            config: Arc::clone(&config),
            health: Arc::clone(&health),
            logs: Arc::clone(&logs),
            access: Arc::clone(&access),
            groups: Arc::clone(&groups),
            open: open.next().unwrap_or_default(),
            close: close.clone(),
        });
        for (configured, actual) in &bound {
            if !self.bound.iter().any(|b| b.0 == *configured) {
                tracing::info!("listening on {actual} (configured {configured})");
            }
        }
        for addr in &close {
            tracing::info!("no longer listening on {addr}");
        }
        self.bound = bound;
        live.config = config;
        live.health = health;
        live.logs = logs;
        live.groups = groups;
        live.access = access;
        drop(live);
        if let Some(p) = prepared {
            match p.spawn(resolver_hook(Arc::clone(&self.live), self.controls.clone())) {
                Ok(resolver) => self.resolver = Some(resolver),
                Err(e) => tracing::error!("cannot start the resolver: {e}"),
            }
        }
        Ok(())
    }

    /// Reopens the access log files (SIGUSR1); returns the errors.
    pub fn reopen_logs(&self) -> Vec<String> {
        self.logs().reopen()
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
        let now = std::time::Instant::now();
        let deadline = now.checked_add(grace).unwrap_or(now + GRACEFUL_STOP);
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
        if let Some(resolver) = self.resolver.take() {
            resolver.stop();
        }
        let checker = lock(&self.live).checker.take();
        if let Some(checker) = checker {
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
        self.logs().flush();
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// How long a graceful stop lets requests run under `config`:
/// `worker_shutdown_timeout`, `0` meaning no limit as in nginx (a year here),
/// else [`GRACEFUL_STOP`].
fn shutdown_grace(config: &Config) -> Duration {
    match config.main.worker_shutdown_timeout {
        Some(t) if t.is_zero() => Duration::from_secs(365 * 24 * 3600),
        Some(t) => t,
        None => GRACEFUL_STOP,
    }
}

/// How long a graceful stop (SIGQUIT) lets requests in flight run, unless
/// `worker_shutdown_timeout` says.
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
    let options = config.options.clone();
    let pid_path = config.main.pid.clone();
    // `worker_shutdown_timeout`, as the running configuration says.
    let mut grace = shutdown_grace(&config);
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
                match crate::config::load_with(&file, &options) {
                    Ok((config, warnings)) => {
                        for warning in &warnings {
                            tracing::warn!("{warning}");
                        }
                        let wanted_error_log = config.main.error_log.clone();
                        let wanted_grace = shutdown_grace(&config);
                        match running.reload(config) {
                            Ok(()) => {
                                grace = wanted_grace;
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
                running.begin_quit(grace);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn worker_shutdown_timeout_sets_the_grace_and_zero_is_no_limit() {
        let grace = |main: &str| {
            let text = format!("{main}\nevents {{}}\nhttp {{ }}\n");
            let (c, _) = crate::config::load_str(&text, std::path::Path::new("/t.conf")).unwrap();
            shutdown_grace(&c)
        };
        assert_eq!(grace(""), GRACEFUL_STOP);
        assert_eq!(grace("worker_shutdown_timeout 5s;"), Duration::from_secs(5));
        assert!(grace("worker_shutdown_timeout 0;") >= Duration::from_secs(365 * 24 * 3600));
    }
}

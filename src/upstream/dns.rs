//! The resolver thread: asks the configured DNS servers (never the system's)
//! for every `server NAME resolve` name, again when the answer's TTL (or the
//! resolver's `valid=`) runs out, and hands each change of an upstream's peers
//! to its owner. The DNS protocol is hickory-resolver's; the peer-set change is
//! [`Resolved::answer`] (pure); this file is the thin loop between them.
//!
//! [`Resolver::prepare`] first resolves every name once, before the proxy serves
//! (each lookup bounded by `resolver_timeout`), so a configuration starts with
//! its peers; then [`Prepared::spawn`] starts one thread with a current-thread tokio runtime runs one task
//! per name. Lookups that fail keep the name's peers and are retried after
//! `valid=` or 10 seconds (nginx); a name that does not exist has no peers.
//!
//! [`Lookups`] serves the names a request needs (`proxy_pass` with variables
//! whose host no upstream names) through the same lookup, per worker thread.

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, ResolverConf, UpstreamConf};
use crate::upstream::background::Background;
use crate::upstream::resolved::{Answer, Resolved};

/// Told the index of an upstream in `HttpConf::upstreams` and its new definition
/// (the same but for its peers) each time a name's answer changes them.
pub type OnChange = Box<dyn FnMut(usize, UpstreamConf) + Send>;

/// How long a failed or empty answer is kept without `valid=` (nginx: 10s).
const RETRY: Duration = Duration::from_secs(10);

/// The shortest time between two lookups of a name (a TTL of 0 would spin).
const MIN_TTL: Duration = Duration::from_secs(1);

/// The running resolver of one configuration. Dropping it stops the thread.
pub struct Resolver(Background<oneshot::Sender<()>>);

/// One name to keep resolved.
struct Name {
    upstream: usize,
    template: usize,
    /// Fully qualified (a trailing dot: no search domains).
    host: String,
    resolver: Arc<TokioResolver>,
    conf: ResolverConf,
}

/// A configuration's names, resolved once: [`Prepared::spawn`] keeps them so.
pub struct Prepared {
    rt: OwnedRuntime,
    names: Vec<Name>,
    due: Vec<Instant>,
    states: Vec<(usize, Resolved)>,
    upstreams: Vec<(usize, UpstreamConf)>,
}

impl Resolver {
    /// Resolves every run-time name of `config` once and puts the peers in
    /// `config` (before it serves). `None` when nothing resolves at run time.
    pub fn prepare(config: &mut Config) -> io::Result<Option<Prepared>> {
        let mut states: Vec<(usize, Resolved)> = Vec::new();
        let mut names = Vec::new();
        for (u, upstream) in config.http.upstreams.iter().enumerate() {
            let (Some(state), Some(resolve)) = (Resolved::new(upstream), &upstream.resolve) else {
                continue;
            };
            let resolver = Arc::new(client(&resolve.resolver));
            for (t, template) in resolve.servers.iter().enumerate() {
                let host = template
                    .server
                    .rsplit_once(':')
                    .map_or(template.server.as_str(), |(h, _)| h);
                names.push(Name {
                    upstream: u,
                    template: t,
                    host: if host.ends_with('.') {
                        host.to_string()
                    } else {
                        format!("{host}.")
                    },
                    resolver: Arc::clone(&resolver),
                    conf: resolve.resolver.clone(),
                });
            }
            states.push((u, state));
        }
        if names.is_empty() {
            return Ok(None);
        }
        let rt = OwnedRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        ));
        // The first answers, all at once, before anything serves (on a thread
        // of its own: the caller may be inside a runtime).
        let first_answers = || {
            let Some(rt) = &rt.0 else {
                return Vec::new();
            };
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for (i, name) in names.iter().enumerate() {
                    let resolver = Arc::clone(&name.resolver);
                    let (host, conf) = (name.host.clone(), name.conf.clone());
                    set.spawn(async move { (i, lookup(&resolver, &host, &conf).await) });
                }
                let mut first = vec![(Answer::Failed, RETRY); names.len()];
                while let Some(done) = set.join_next().await {
                    if let Ok((i, result)) = done {
                        if let Some(slot) = first.get_mut(i) {
                            *slot = result;
                        }
                    }
                }
                first
            })
        };
        let first = std::thread::scope(|scope| scope.spawn(first_answers).join())
            .map_err(|_| io::Error::other("the first lookups panicked"))?;
        let mut due = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let (answer, ttl) = first.get(i).cloned().unwrap_or((Answer::Failed, MIN_TTL));
            if let Some((_, state)) = states.iter_mut().find(|(u, _)| *u == name.upstream) {
                state.answer(name.template, &answer);
            }
            due.push(Instant::now() + ttl);
        }
        for (u, state) in &states {
            if let Some(slot) = config.http.upstreams.get_mut(*u) {
                *slot = Arc::new(state.apply(slot));
            }
        }
        let upstreams: Vec<(usize, UpstreamConf)> = states
            .iter()
            .filter_map(|(u, _)| config.http.upstreams.get(*u).map(|c| (*u, (**c).clone())))
            .collect();
        Ok(Some(Prepared {
            rt,
            names,
            due,
            states,
            upstreams,
        }))
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        self.0.stop();
    }
}

impl Prepared {
    /// Starts the thread that keeps the names resolved and calls `on_change`
    /// for every change of an upstream's peers.
    pub fn spawn(self, on_change: OnChange) -> io::Result<Resolver> {
        let Prepared {
            rt,
            names,
            due,
            states,
            upstreams,
        } = self;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("resolver".to_string())
            .spawn(move || {
                if let Some(rt) = &rt.0 {
                    rt.block_on(run(names, due, states, upstreams, on_change, stopped));
                }
            })?;
        Ok(Resolver(Background::new("resolver", stop, thread)))
    }
}

/// The resolver's runtime, which may be dropped anywhere, inside another
/// runtime too (a `Prepared` that a failed start never spawns): it shuts down
/// in the background instead of blocking.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A hickory resolver that asks only `conf.servers`, over UDP (TCP on a
/// truncated answer), for A and/or AAAA records as `ipv4=`/`ipv6=` say.
fn client(conf: &ResolverConf) -> TokioResolver {
    let mut servers = ResolverConfig::new();
    for addr in &conf.servers {
        servers.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
        servers.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = conf.timeout;
    opts.attempts = 1;
    opts.ndots = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ip_strategy = match (conf.ipv4, conf.ipv6) {
        (true, true) => LookupIpStrategy::Ipv4AndIpv6,
        (false, true) => LookupIpStrategy::Ipv6Only,
        _ => LookupIpStrategy::Ipv4Only,
    };
    if let Some(valid) = conf.valid {
        // The cache keeps an answer exactly as long as we do.
        opts.positive_min_ttl = Some(valid);
        opts.positive_max_ttl = Some(valid);
    }
    TokioResolver::builder_with_config(servers, TokioConnectionProvider::default())
        .with_options(opts)
        .build()
}

/// Why a lookup found no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The name does not exist or has no address of the asked kinds.
    NoAddress,
    /// No answer within `resolver_timeout`.
    TimedOut,
    /// Any other failure (server failure, refused, network).
    Failed(String),
}

/// One lookup of `host` (fully qualified) through `resolver`, bounded by
/// `conf.timeout`: the addresses and how long they hold.
async fn ask(
    resolver: &TokioResolver,
    host: &str,
    conf: &ResolverConf,
) -> Result<(Vec<IpAddr>, Duration), Miss> {
    match tokio::time::timeout(conf.timeout, resolver.lookup_ip(host)).await {
        Ok(Ok(found)) => {
            let ttl = conf.valid.unwrap_or_else(|| {
                found
                    .valid_until()
                    .saturating_duration_since(Instant::now())
            });
            let addrs: Vec<IpAddr> = found.iter().collect();
            if addrs.is_empty() {
                return Err(Miss::NoAddress);
            }
            Ok((addrs, ttl))
        }
        Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => Err(Miss::NoAddress),
        Ok(Err(e)) => Err(Miss::Failed(e.to_string())),
        Err(_) => Err(Miss::TimedOut),
    }
}

/// One lookup of `host`: the answer and how long it holds.
async fn lookup(resolver: &TokioResolver, host: &str, conf: &ResolverConf) -> (Answer, Duration) {
    let retry = conf.valid.unwrap_or(RETRY);
    match ask(resolver, host, conf).await {
        Ok((addrs, ttl)) => (Answer::Addrs(addrs), ttl.max(MIN_TTL)),
        Err(Miss::NoAddress) => {
            tracing::warn!("\"{host}\" has no address: its peers are removed");
            (Answer::Addrs(Vec::new()), retry.max(MIN_TTL))
        }
        Err(Miss::Failed(e)) => {
            tracing::error!("\"{host}\" could not be resolved ({e}): its peers are kept");
            (Answer::Failed, retry.max(MIN_TTL))
        }
        Err(Miss::TimedOut) => {
            tracing::error!("\"{host}\" could not be resolved (timed out): its peers are kept");
            (Answer::Failed, retry.max(MIN_TTL))
        }
    }
}

/// The resolvers one worker thread asks for request-time names (`proxy_pass`
/// with variables): one hickory client per distinct `resolver`, made at first
/// use; each keeps its own answer cache (TTL, or `valid=`).
#[derive(Default)]
pub struct Lookups(RefCell<Vec<(ResolverConf, Rc<TokioResolver>)>>);

impl Lookups {
    /// The addresses of `host` through the servers of `conf`.
    pub async fn addresses(&self, conf: &ResolverConf, host: &str) -> Result<Vec<IpAddr>, Miss> {
        let known = self
            .0
            .borrow()
            .iter()
            .find(|(c, _)| c == conf)
            .map(|(_, r)| Rc::clone(r));
        let resolver = known.unwrap_or_else(|| {
            let made = Rc::new(client(conf));
            self.0.borrow_mut().push((conf.clone(), Rc::clone(&made)));
            made
        });
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        ask(&resolver, &fqdn, conf).await.map(|(addrs, _)| addrs)
    }
}

/// The thread's loop: one task per name looks it up when due and reports;
/// each report that changes an upstream's peers goes to `on_change`.
async fn run(
    names: Vec<Name>,
    due: Vec<Instant>,
    mut states: Vec<(usize, Resolved)>,
    mut upstreams: Vec<(usize, UpstreamConf)>,
    mut on_change: OnChange,
    mut stopped: oneshot::Receiver<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize, Answer)>();
    let mut tasks = tokio::task::JoinSet::new();
    for (name, due) in names.into_iter().zip(due) {
        let tx = tx.clone();
        tasks.spawn(async move {
            let mut due = due;
            loop {
                tokio::time::sleep_until(due.into()).await;
                let (answer, ttl) = lookup(&name.resolver, &name.host, &name.conf).await;
                if tx.send((name.upstream, name.template, answer)).is_err() {
                    return;
                }
                due = Instant::now() + ttl;
            }
        });
    }
    drop(tx);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            report = rx.recv() => {
                let Some((u, t, answer)) = report else { break };
                let state = states.iter_mut().find(|(i, _)| *i == u).map(|s| &mut s.1);
                let current = upstreams.iter_mut().find(|(i, _)| *i == u).map(|s| &mut s.1);
                if let (Some(state), Some(current)) = (state, current) {
                    if state.answer(t, &answer) {
                        *current = state.apply(current);
                        tracing::info!(
                            "upstream \"{}\": peers now {:?}",
                            current.name,
                            current.peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
                        );
                        on_change(u, current.clone());
                    }
                }
            }
        }
    }
    tasks.abort_all();
}

//! The peer set of an upstream with `server NAME resolve` lines, as plain data:
//! the fixed peers, then, name by name, the peers its last answer gave.
//! [`Resolved::answer`] is the whole change (old peers + a name's new address
//! list -> new peers); no I/O and no clock, so it is table-tested here, and
//! `upstream::dns` only asks the DNS and hands answers to it.
//!
//! A peer is its address: an address that stays keeps its place among its
//! name's peers, so its name (`IP:PORT`), its sid (md5 of that name) and, in the
//! workers and the checker, its health state stay too; a new address is added
//! after the others of its name (in address order, so a rotating DNS answer
//! changes nothing); a gone address is removed, and its pinned clients follow
//! `fallback` like those of any unknown sid.

use std::net::{IpAddr, SocketAddr};

use crate::config::{PeerConf, ResolveConf, UpstreamConf};

/// What the DNS said about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// These addresses (empty: the name does not exist or has none): the
    /// name's peers become exactly these.
    Addrs(Vec<IpAddr>),
    /// No answer (timeout, server failure): the name's peers stay as they are.
    Failed,
}

/// The run-time peers of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    fixed: Vec<PeerConf>,
    /// The `server NAME resolve` templates (`addr` holds the port).
    templates: Vec<PeerConf>,
    /// The peers of each template, in template order.
    groups: Vec<Vec<PeerConf>>,
}

impl Resolved {
    /// The peers of `upstream` before any answer: its fixed ones. `None` when it
    /// resolves nothing at run time.
    pub fn new(upstream: &UpstreamConf) -> Option<Resolved> {
        let resolve: &ResolveConf = upstream.resolve.as_ref()?;
        let fixed = upstream.peers.get(..resolve.fixed).unwrap_or_default();
        Some(Resolved {
            fixed: fixed.to_vec(),
            templates: resolve.servers.clone(),
            groups: vec![Vec::new(); resolve.servers.len()],
        })
    }

    /// Name `t` (the index of its `server NAME resolve` line) answered
    /// `answer`. Returns true when the peer set changed.
    pub fn answer(&mut self, t: usize, answer: &Answer) -> bool {
        let (Some(template), Some(group), Answer::Addrs(addrs)) =
            (self.templates.get(t), self.groups.get_mut(t), answer)
        else {
            return false;
        };
        let port = template.addr.port();
        let mut wanted: Vec<SocketAddr> =
            addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        wanted.sort();
        wanted.dedup();
        let mut next: Vec<PeerConf> = group
            .iter()
            .filter(|p| wanted.contains(&p.addr))
            .cloned()
            .collect();
        for addr in wanted {
            if !next.iter().any(|p| p.addr == addr) {
                next.push(PeerConf {
                    name: addr.to_string(),
                    addr,
                    ..template.clone()
                });
            }
        }
        if next == *group {
            return false;
        }
        *group = next;
        true
    }

    /// Every peer: the fixed ones, then each name's.
    pub fn peers(&self) -> Vec<PeerConf> {
        self.fixed
            .iter()
            .chain(self.groups.iter().flatten())
            .cloned()
            .collect()
    }

    /// `upstream` with these peers.
    pub fn apply(&self, upstream: &UpstreamConf) -> UpstreamConf {
        UpstreamConf {
            peers: self.peers(),
            ..upstream.clone()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    fn upstream() -> UpstreamConf {
        let src = "http { resolver 127.0.0.1; upstream u { zone u;
            server 127.0.0.1:7000;
            server a.svc:8080 resolve weight=2;
            server b.svc resolve; } }";
        let c = load_str(src, Path::new("/t.conf")).unwrap().0;
        (*c.http.upstreams[0]).clone()
    }

    fn ips(list: &[&str]) -> Answer {
        Answer::Addrs(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn names(r: &Resolved) -> Vec<String> {
        r.peers().into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn answers_add_keep_and_remove_peers() {
        // (name index, answer, changed, peers after)
        let steps: &[(usize, Answer, bool, &[&str])] = &[
            (
                0,
                ips(&["10.0.0.2", "10.0.0.1"]),
                true,
                &["127.0.0.1:7000", "10.0.0.1:8080", "10.0.0.2:8080"],
            ),
            (
                0,
                ips(&["10.0.0.1", "10.0.0.2"]),
                false,
                &["127.0.0.1:7000", "10.0.0.1:8080", "10.0.0.2:8080"],
            ),
            (
                0,
                ips(&["10.0.0.2", "10.0.0.2"]),
                true,
                &["127.0.0.1:7000", "10.0.0.2:8080"],
            ),
            (
                1,
                ips(&["::1", "10.0.0.9"]),
                true,
                &["127.0.0.1:7000", "10.0.0.2:8080", "10.0.0.9:80", "[::1]:80"],
            ),
            (
                0,
                ips(&["10.0.0.3", "10.0.0.2"]),
                true,
                &[
                    "127.0.0.1:7000",
                    "10.0.0.2:8080",
                    "10.0.0.3:8080",
                    "10.0.0.9:80",
                    "[::1]:80",
                ],
            ),
            (
                1,
                Answer::Failed,
                false,
                &[
                    "127.0.0.1:7000",
                    "10.0.0.2:8080",
                    "10.0.0.3:8080",
                    "10.0.0.9:80",
                    "[::1]:80",
                ],
            ),
            (
                1,
                ips(&[]),
                true,
                &["127.0.0.1:7000", "10.0.0.2:8080", "10.0.0.3:8080"],
            ),
            (
                7,
                ips(&["10.0.0.7"]),
                false,
                &["127.0.0.1:7000", "10.0.0.2:8080", "10.0.0.3:8080"],
            ),
        ];
        let u = upstream();
        let mut r = Resolved::new(&u).unwrap();
        assert_eq!(names(&r), ["127.0.0.1:7000"], "before any answer");
        for (i, (t, answer, changed, after)) in steps.iter().enumerate() {
            assert_eq!(r.answer(*t, answer), *changed, "step {i}");
            assert_eq!(names(&r), *after, "step {i}");
        }
        let applied = r.apply(&u);
        assert_eq!(applied.peers[1].weight, 2, "the line's parameters");
        assert_eq!(applied.peers[1].server, "a.svc:8080");
        assert_eq!(applied.resolve, u.resolve);
    }

    #[test]
    fn an_upstream_without_resolve_has_nothing_to_resolve() {
        let c = load_str(
            "http { upstream u { server 127.0.0.1; } }",
            Path::new("/t.conf"),
        )
        .unwrap()
        .0;
        assert_eq!(Resolved::new(&c.http.upstreams[0]), None);
    }
}

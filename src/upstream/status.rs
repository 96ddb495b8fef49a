//! The `check_status` page as pure code: a [`StatusSnapshot`] (plain copies of the
//! figures in `upstream::stats`) in, text out, in Tengine's three formats (html,
//! csv, json, each extended with our columns) and the Prometheus text exposition.
//!
//! Rows are peers, in upstream order then peer order, numbered from 0 across the
//! whole page as Tengine does. The first eight csv columns and the json keys
//! `index upstream name status rise fall type port` are Tengine's, so its existing
//! scrapers keep working; `sid`, `active`, `requests` and the sticky outcomes
//! follow. No I/O: the location handler takes a snapshot, picks the format
//! ([`format_from_query`]) and sends what [`render`] returns.

use std::fmt::Write as _;

use crate::config::StatusFormat;

/// What a peer is doing, as shown on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Takes new sessions.
    Up,
    /// Marked `down` in the configuration or by the active checker.
    Down,
    /// `drain`: serves its pinned sessions only.
    Drain,
}

impl PeerState {
    /// Down wins over drain: a drained peer that fails its checks serves nobody.
    pub fn of(down: bool, drain: bool) -> PeerState {
        if down {
            PeerState::Down
        } else if drain {
            PeerState::Drain
        } else {
            PeerState::Up
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Up => "up",
            PeerState::Down => "down",
            PeerState::Drain => "drain",
        }
    }
}

/// Requests a peer served, by sticky outcome (`$sticky_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StickyCounts {
    pub new: u64,
    pub hit: u64,
    pub expired: u64,
    pub unknown: u64,
    pub fallback: u64,
}

impl StickyCounts {
    /// (label, count) in a fixed order.
    pub fn pairs(&self) -> [(&'static str, u64); 5] {
        [
            ("new", self.new),
            ("hit", self.hit),
            ("expired", self.expired),
            ("unknown", self.unknown),
            ("fallback", self.fallback),
        ]
    }
}

/// One peer's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// `IP:PORT`.
    pub name: String,
    /// The sticky server id; `None` when the upstream has no `session_sticky`.
    pub sid: Option<String>,
    pub state: PeerState,
    /// Consecutive successful / failed active checks.
    pub rise: u32,
    pub fall: u32,
    /// Requests in flight.
    pub active: u64,
    /// Requests sent so far.
    pub requests: u64,
    pub sticky: StickyCounts,
}

/// One upstream's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub name: String,
    /// The active check type (`tcp`, `http`); `None` without `check`.
    pub check: Option<&'static str>,
    /// The `check port=` (0 = the peer's own port).
    pub check_port: u16,
    /// Sticky outcomes of the whole upstream (kept when peers change).
    pub sticky: StickyCounts,
    pub peers: Vec<PeerStatus>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusSnapshot {
    pub upstreams: Vec<UpstreamStatus>,
}

impl StatusSnapshot {
    /// Every peer with its upstream and its page-wide index.
    fn rows(&self) -> impl Iterator<Item = (usize, &UpstreamStatus, &PeerStatus)> {
        self.upstreams
            .iter()
            .flat_map(|u| u.peers.iter().map(move |p| (u, p)))
            .enumerate()
            .map(|(i, (u, p))| (i, u, p))
    }

    fn total(&self) -> usize {
        self.upstreams.iter().map(|u| u.peers.len()).sum()
    }

    fn down(&self) -> usize {
        self.rows()
            .filter(|(_, _, p)| p.state == PeerState::Down)
            .count()
    }
}

/// The format asked for by the query string (`format=html|csv|json|prometheus`,
/// the first `format=` wins), else `default`. An unknown value gives `default`.
pub fn format_from_query(query: Option<&str>, default: StatusFormat) -> StatusFormat {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("format="))
        .and_then(StatusFormat::from_name)
        .unwrap_or(default)
}

/// The `Content-Type` of each format.
pub fn content_type(format: StatusFormat) -> &'static str {
    match format {
        StatusFormat::Html => "text/html; charset=utf-8",
        StatusFormat::Csv => "text/plain; charset=utf-8",
        StatusFormat::Json => "application/json",
        StatusFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
    }
}

/// The page body in `format`.
pub fn render(snapshot: &StatusSnapshot, format: StatusFormat) -> String {
    match format {
        StatusFormat::Html => html(snapshot),
        StatusFormat::Csv => csv(snapshot),
        StatusFormat::Json => json(snapshot),
        StatusFormat::Prometheus => prometheus(snapshot),
    }
}

fn check_type(u: &UpstreamStatus) -> &'static str {
    u.check.unwrap_or("none")
}

pub(crate) fn html_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Tengine's html page: a table with down rows in red (drained rows in yellow).
pub fn html(s: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(512 + 256 * s.total());
    out.push_str(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Upstream status</title>\n</head>\n<body>\n<h1>Upstream status</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>Server number: {}, down: {}</p>",
        s.total(),
        s.down()
    );
    out.push_str(
        "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">\n<tr>\
         <th>Index</th><th>Upstream</th><th>Name</th><th>Status</th>\
         <th>Rise counts</th><th>Fall counts</th><th>Check type</th><th>Check port</th>\
         <th>Sid</th><th>Active</th><th>Requests</th><th>New</th><th>Hit</th>\
         <th>Expired</th><th>Unknown</th><th>Fallback</th></tr>\n",
    );
    for (i, u, p) in s.rows() {
        match p.state {
            PeerState::Up => out.push_str("<tr>"),
            PeerState::Down => out.push_str("<tr bgcolor=\"#FF0000\">"),
            PeerState::Drain => out.push_str("<tr bgcolor=\"#FFFF00\">"),
        }
        let _ = write!(out, "<td>{i}</td><td>");
        html_escape(&u.name, &mut out);
        out.push_str("</td><td>");
        html_escape(&p.name, &mut out);
        let _ = write!(
            out,
            "</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
            p.state.as_str(),
            p.rise,
            p.fall,
            check_type(u),
            u.check_port
        );
        html_escape(p.sid.as_deref().unwrap_or("-"), &mut out);
        let _ = write!(out, "</td><td>{}</td><td>{}</td>", p.active, p.requests);
        for (_, n) in p.sticky.pairs() {
            let _ = write!(out, "<td>{n}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// A csv field: quoted (with `""` for `"`) when it holds `,`, `"` or a line break.
fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// One line per peer, no header (as Tengine):
/// `index,upstream,name,status,rise,fall,type,port,sid,active,requests,new,hit,expired,unknown,fallback`.
pub fn csv(s: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(128 * s.total());
    for (i, u, p) in s.rows() {
        let _ = write!(out, "{i},");
        csv_field(&u.name, &mut out);
        out.push(',');
        csv_field(&p.name, &mut out);
        let _ = write!(
            out,
            ",{},{},{},{},{},",
            p.state.as_str(),
            p.rise,
            p.fall,
            check_type(u),
            u.check_port
        );
        csv_field(p.sid.as_deref().unwrap_or(""), &mut out);
        let _ = write!(out, ",{},{}", p.active, p.requests);
        for (_, n) in p.sticky.pairs() {
            let _ = write!(out, ",{n}");
        }
        out.push('\n');
    }
    out
}

/// A JSON string literal.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Tengine's json (`{"servers": {"total": N, "server": [...]}}`), one peer
/// object per line, with `sid` (null without session_sticky), `active`,
/// `requests` and a `sticky` object added.
pub fn json(s: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(64 + 256 * s.total());
    let _ = write!(
        out,
        "{{\"servers\": {{\n  \"total\": {},\n  \"down\": {},\n  \"server\": [",
        s.total(),
        s.down()
    );
    for (i, u, p) in s.rows() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        let _ = write!(out, "{{\"index\": {i}, \"upstream\": ");
        json_string(&u.name, &mut out);
        out.push_str(", \"name\": ");
        json_string(&p.name, &mut out);
        let _ = write!(
            out,
            ", \"status\": \"{}\", \"rise\": {}, \"fall\": {}, \"type\": \"{}\", \"port\": {}, \"sid\": ",
            p.state.as_str(),
            p.rise,
            p.fall,
            check_type(u),
            u.check_port
        );
        match &p.sid {
            Some(sid) => json_string(sid, &mut out),
            None => out.push_str("null"),
        }
        let _ = write!(
            out,
            ", \"active\": {}, \"requests\": {}, \"sticky\": {{",
            p.active, p.requests
        );
        for (k, (label, n)) in p.sticky.pairs().into_iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "\"{label}\": {n}");
        }
        out.push_str("}}");
    }
    if s.total() > 0 {
        out.push_str("\n  ");
    }
    out.push_str("]\n}}\n");
    out
}

/// A Prometheus label value (`\`, `"` and line feeds escaped).
fn label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn peer_labels(u: &UpstreamStatus, p: &PeerStatus, out: &mut String) {
    out.push_str("upstream=\"");
    label_value(&u.name, out);
    out.push_str("\",peer=\"");
    label_value(&p.name, out);
    out.push('"');
}

/// One metric family: HELP, TYPE, then one sample per peer (or more, via `each`).
fn family(
    out: &mut String,
    s: &StatusSnapshot,
    name: &str,
    kind: &str,
    help: &str,
    each: impl Fn(&UpstreamStatus, &PeerStatus, &mut String),
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    for (_, u, p) in s.rows() {
        each(u, p, out);
    }
}

fn sample(
    out: &mut String,
    name: &str,
    u: &UpstreamStatus,
    p: &PeerStatus,
    extra: &str,
    value: u64,
) {
    out.push_str(name);
    out.push('{');
    peer_labels(u, p, out);
    out.push_str(extra);
    let _ = writeln!(out, "}} {value}");
}

/// The same figures in the Prometheus text exposition format (0.0.4).
pub fn prometheus(s: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(1024 + 1024 * s.total());
    family(
        &mut out,
        s,
        "sticky_proxy_peer_info",
        "gauge",
        "Peer identity: its sticky server id (empty without session_sticky) and check type.",
        |u, p, out| {
            out.push_str("sticky_proxy_peer_info{");
            peer_labels(u, p, out);
            out.push_str(",sid=\"");
            label_value(p.sid.as_deref().unwrap_or(""), out);
            let _ = writeln!(out, "\",check=\"{}\"}} 1", check_type(u));
        },
    );
    family(
        &mut out,
        s,
        "sticky_proxy_peer_state",
        "gauge",
        "1 for the state the peer is in (up, down, drain), 0 for the others.",
        |u, p, out| {
            for state in [PeerState::Up, PeerState::Down, PeerState::Drain] {
                let extra = format!(",state=\"{}\"", state.as_str());
                sample(
                    out,
                    "sticky_proxy_peer_state",
                    u,
                    p,
                    &extra,
                    u64::from(p.state == state),
                );
            }
        },
    );
    family(
        &mut out,
        s,
        "sticky_proxy_peer_check_rise",
        "gauge",
        "Consecutive successful active health checks.",
        |u, p, out| {
            sample(
                out,
                "sticky_proxy_peer_check_rise",
                u,
                p,
                "",
                u64::from(p.rise),
            )
        },
    );
    family(
        &mut out,
        s,
        "sticky_proxy_peer_check_fall",
        "gauge",
        "Consecutive failed active health checks.",
        |u, p, out| {
            sample(
                out,
                "sticky_proxy_peer_check_fall",
                u,
                p,
                "",
                u64::from(p.fall),
            )
        },
    );
    family(
        &mut out,
        s,
        "sticky_proxy_peer_active",
        "gauge",
        "Requests in flight to the peer.",
        |u, p, out| sample(out, "sticky_proxy_peer_active", u, p, "", p.active),
    );
    family(
        &mut out,
        s,
        "sticky_proxy_peer_requests_total",
        "counter",
        "Requests sent to the peer, retries included.",
        |u, p, out| {
            sample(
                out,
                "sticky_proxy_peer_requests_total",
                u,
                p,
                "",
                p.requests,
            )
        },
    );
    let name = "sticky_proxy_upstream_sticky_total";
    let _ = write!(
        out,
        "# HELP {name} Requests by sticky outcome, per upstream (kept when peers come and go: sum it across instances).\n# TYPE {name} counter\n"
    );
    for u in &s.upstreams {
        for (label, n) in u.sticky.pairs() {
            out.push_str("sticky_proxy_upstream_sticky_total{upstream=\"");
            label_value(&u.name, &mut out);
            let _ = writeln!(out, "\",outcome=\"{label}\"}} {n}");
        }
    }
    family(
        &mut out,
        s,
        "sticky_proxy_peer_sticky_total",
        "counter",
        "Requests served by the peer, by sticky outcome.",
        |u, p, out| {
            for (label, n) in p.sticky.pairs() {
                let extra = format!(",outcome=\"{label}\"");
                sample(out, "sticky_proxy_peer_sticky_total", u, p, &extra, n);
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> StatusSnapshot {
        StatusSnapshot {
            upstreams: vec![
                UpstreamStatus {
                    name: "app".into(),
                    check: Some("http"),
                    check_port: 0,
                    sticky: StickyCounts::default(),
                    peers: vec![
                        PeerStatus {
                            name: "127.0.0.1:9000".into(),
                            sid: Some("a".into()),
                            state: PeerState::Up,
                            rise: 3,
                            fall: 0,
                            active: 2,
                            requests: 10,
                            sticky: StickyCounts {
                                new: 1,
                                hit: 7,
                                expired: 0,
                                unknown: 1,
                                fallback: 1,
                            },
                        },
                        PeerStatus {
                            name: "127.0.0.1:9001".into(),
                            sid: Some("b\"<x>".into()),
                            state: PeerState::Down,
                            rise: 0,
                            fall: 5,
                            active: 0,
                            requests: 4,
                            sticky: StickyCounts::default(),
                        },
                    ],
                },
                UpstreamStatus {
                    name: "plain,up".into(),
                    check: None,
                    check_port: 0,
                    sticky: StickyCounts::default(),
                    peers: vec![PeerStatus {
                        name: "[::1]:80".into(),
                        sid: None,
                        state: PeerState::Drain,
                        rise: 0,
                        fall: 0,
                        active: 0,
                        requests: 0,
                        sticky: StickyCounts::default(),
                    }],
                },
            ],
        }
    }

    #[test]
    fn csv_is_tengine_columns_then_ours() {
        assert_eq!(
            csv(&snapshot()),
            "0,app,127.0.0.1:9000,up,3,0,http,0,a,2,10,1,7,0,1,1\n\
             1,app,127.0.0.1:9001,down,0,5,http,0,\"b\"\"<x>\",0,4,0,0,0,0,0\n\
             2,\"plain,up\",[::1]:80,drain,0,0,none,0,,0,0,0,0,0,0,0\n"
        );
        assert_eq!(csv(&StatusSnapshot::default()), "");
    }

    #[test]
    fn json_is_tengine_shape_with_sticky_figures() {
        assert_eq!(
            json(&snapshot()),
            "{\"servers\": {\n  \"total\": 3,\n  \"down\": 1,\n  \"server\": [\n    \
             {\"index\": 0, \"upstream\": \"app\", \"name\": \"127.0.0.1:9000\", \"status\": \"up\", \"rise\": 3, \"fall\": 0, \"type\": \"http\", \"port\": 0, \"sid\": \"a\", \"active\": 2, \"requests\": 10, \"sticky\": {\"new\": 1, \"hit\": 7, \"expired\": 0, \"unknown\": 1, \"fallback\": 1}},\n    \
             {\"index\": 1, \"upstream\": \"app\", \"name\": \"127.0.0.1:9001\", \"status\": \"down\", \"rise\": 0, \"fall\": 5, \"type\": \"http\", \"port\": 0, \"sid\": \"b\\\"<x>\", \"active\": 0, \"requests\": 4, \"sticky\": {\"new\": 0, \"hit\": 0, \"expired\": 0, \"unknown\": 0, \"fallback\": 0}},\n    \
             {\"index\": 2, \"upstream\": \"plain,up\", \"name\": \"[::1]:80\", \"status\": \"drain\", \"rise\": 0, \"fall\": 0, \"type\": \"none\", \"port\": 0, \"sid\": null, \"active\": 0, \"requests\": 0, \"sticky\": {\"new\": 0, \"hit\": 0, \"expired\": 0, \"unknown\": 0, \"fallback\": 0}}\n  \
             ]\n}}\n"
        );
        assert_eq!(
            json(&StatusSnapshot::default()),
            "{\"servers\": {\n  \"total\": 0,\n  \"down\": 0,\n  \"server\": []\n}}\n"
        );
    }

    #[test]
    fn html_escapes_and_colours_rows() {
        let page = html(&snapshot());
        let expected_rows = "<tr><td>0</td><td>app</td><td>127.0.0.1:9000</td><td>up</td><td>3</td><td>0</td><td>http</td><td>0</td><td>a</td><td>2</td><td>10</td><td>1</td><td>7</td><td>0</td><td>1</td><td>1</td></tr>\n\
<tr bgcolor=\"#FF0000\"><td>1</td><td>app</td><td>127.0.0.1:9001</td><td>down</td><td>0</td><td>5</td><td>http</td><td>0</td><td>b&quot;&lt;x&gt;</td><td>0</td><td>4</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>\n\
<tr bgcolor=\"#FFFF00\"><td>2</td><td>plain,up</td><td>[::1]:80</td><td>drain</td><td>0</td><td>0</td><td>none</td><td>0</td><td>-</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>\n";
        let expected = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Upstream status</title>\n</head>\n<body>\n<h1>Upstream status</h1>\n\
<p>Server number: 3, down: 1</p>\n\
<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">\n<tr><th>Index</th><th>Upstream</th><th>Name</th><th>Status</th><th>Rise counts</th><th>Fall counts</th><th>Check type</th><th>Check port</th><th>Sid</th><th>Active</th><th>Requests</th><th>New</th><th>Hit</th><th>Expired</th><th>Unknown</th><th>Fallback</th></tr>\n\
{expected_rows}</table>\n</body>\n</html>\n"
        );
        assert_eq!(page, expected);
    }

    #[test]
    fn prometheus_groups_each_family_and_escapes_labels() {
        let one = StatusSnapshot {
            upstreams: vec![UpstreamStatus {
                name: "a\"b".into(),
                check: Some("tcp"),
                check_port: 8081,
                sticky: StickyCounts {
                    hit: 12,
                    fallback: 3,
                    ..StickyCounts::default()
                },
                peers: vec![PeerStatus {
                    name: "10.0.0.1:80".into(),
                    sid: Some("s\\1".into()),
                    state: PeerState::Drain,
                    rise: 2,
                    fall: 0,
                    active: 1,
                    requests: 9,
                    sticky: StickyCounts {
                        new: 0,
                        hit: 8,
                        expired: 1,
                        unknown: 0,
                        fallback: 0,
                    },
                }],
            }],
        };
        let l = "upstream=\"a\\\"b\",peer=\"10.0.0.1:80\"";
        let expected = format!(
            "# HELP sticky_proxy_peer_info Peer identity: its sticky server id (empty without session_sticky) and check type.\n\
# TYPE sticky_proxy_peer_info gauge\n\
sticky_proxy_peer_info{{{l},sid=\"s\\\\1\",check=\"tcp\"}} 1\n\
# HELP sticky_proxy_peer_state 1 for the state the peer is in (up, down, drain), 0 for the others.\n\
# TYPE sticky_proxy_peer_state gauge\n\
sticky_proxy_peer_state{{{l},state=\"up\"}} 0\n\
sticky_proxy_peer_state{{{l},state=\"down\"}} 0\n\
sticky_proxy_peer_state{{{l},state=\"drain\"}} 1\n\
# HELP sticky_proxy_peer_check_rise Consecutive successful active health checks.\n\
# TYPE sticky_proxy_peer_check_rise gauge\n\
sticky_proxy_peer_check_rise{{{l}}} 2\n\
# HELP sticky_proxy_peer_check_fall Consecutive failed active health checks.\n\
# TYPE sticky_proxy_peer_check_fall gauge\n\
sticky_proxy_peer_check_fall{{{l}}} 0\n\
# HELP sticky_proxy_peer_active Requests in flight to the peer.\n\
# TYPE sticky_proxy_peer_active gauge\n\
sticky_proxy_peer_active{{{l}}} 1\n\
# HELP sticky_proxy_peer_requests_total Requests sent to the peer, retries included.\n\
# TYPE sticky_proxy_peer_requests_total counter\n\
sticky_proxy_peer_requests_total{{{l}}} 9\n\
# HELP sticky_proxy_upstream_sticky_total Requests by sticky outcome, per upstream (kept when peers come and go: sum it across instances).\n\
# TYPE sticky_proxy_upstream_sticky_total counter\n\
sticky_proxy_upstream_sticky_total{{upstream=\"a\\\"b\",outcome=\"new\"}} 0\n\
sticky_proxy_upstream_sticky_total{{upstream=\"a\\\"b\",outcome=\"hit\"}} 12\n\
sticky_proxy_upstream_sticky_total{{upstream=\"a\\\"b\",outcome=\"expired\"}} 0\n\
sticky_proxy_upstream_sticky_total{{upstream=\"a\\\"b\",outcome=\"unknown\"}} 0\n\
sticky_proxy_upstream_sticky_total{{upstream=\"a\\\"b\",outcome=\"fallback\"}} 3\n\
# HELP sticky_proxy_peer_sticky_total Requests served by the peer, by sticky outcome.\n\
# TYPE sticky_proxy_peer_sticky_total counter\n\
sticky_proxy_peer_sticky_total{{{l},outcome=\"new\"}} 0\n\
sticky_proxy_peer_sticky_total{{{l},outcome=\"hit\"}} 8\n\
sticky_proxy_peer_sticky_total{{{l},outcome=\"expired\"}} 1\n\
sticky_proxy_peer_sticky_total{{{l},outcome=\"unknown\"}} 0\n\
sticky_proxy_peer_sticky_total{{{l},outcome=\"fallback\"}} 0\n"
        );
        assert_eq!(prometheus(&one), expected);
        // Families stay grouped with several peers: each HELP line appears once.
        let many = prometheus(&snapshot());
        assert_eq!(many.matches("# HELP sticky_proxy_peer_active ").count(), 1);
        assert_eq!(many.matches("sticky_proxy_peer_active{").count(), 3);
    }

    #[test]
    fn format_comes_from_the_query_or_the_directive() {
        use StatusFormat::*;
        let cases: &[(Option<&str>, StatusFormat, StatusFormat)] = &[
            (None, Html, Html),
            (None, Csv, Csv),
            (Some("format=json"), Html, Json),
            (Some("a=1&format=prometheus&format=csv"), Html, Prometheus),
            (Some("format=xml"), Csv, Csv),
            (Some("xformat=json"), Html, Html),
            (Some(""), Json, Json),
        ];
        for (query, default, want) in cases {
            assert_eq!(format_from_query(*query, *default), *want, "{query:?}");
        }
        assert_eq!(content_type(Json), "application/json");
        assert_eq!(render(&StatusSnapshot::default(), Csv), "");
    }

    #[test]
    fn down_wins_over_drain() {
        let cases = [
            (false, false, PeerState::Up),
            (true, false, PeerState::Down),
            (false, true, PeerState::Drain),
            (true, true, PeerState::Down),
        ];
        for (down, drain, want) in cases {
            assert_eq!(PeerState::of(down, drain), want);
        }
    }
}

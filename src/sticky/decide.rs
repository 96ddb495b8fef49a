//! Choosing the peer (spec section 5): from the configuration, the decoded
//! sticky cookie, peer health and the engine's round-robin chooser to a
//! [`Decision`] (pinned / new / fallback / refuse) and the [`Outcome`] label
//! logged as `$sticky_status`.
//!
//! The balancer is not owned here: the engine passes `choose(exclude)`, which runs
//! its smooth weighted round robin (honouring weight, down, backup, max_fails) and
//! skips `exclude`; and `is_up(idx)`, its health view of one peer.

use super::cookie::StickyCookie;
use super::sid::SidIndex;
use super::StickyConf;

/// Which peer serves the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A valid cookie names this peer and it is up.
    Pinned(usize),
    /// No (valid) cookie: round robin chose this peer; the response pins it.
    New(usize),
    /// The pinned peer is unknown, down or unreachable and `fallback=on`: round
    /// robin chose this peer; the response re-pins the client to it.
    Fallback(usize),
    /// Respond `502 Bad Gateway`: `fallback=off` and the pinned peer is unusable,
    /// or no peer at all is available.
    Refuse,
}

impl Decision {
    /// The peer to send the request to (`None` for [`Decision::Refuse`]).
    pub fn peer(self) -> Option<usize> {
        match self {
            Decision::Pinned(i) | Decision::New(i) | Decision::Fallback(i) => Some(i),
            Decision::Refuse => None,
        }
    }
}

/// The sticky outcome of a request, for logs (`$sticky_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No cookie, or an invalid one that was not merely expired.
    New,
    /// The cookie pinned an up peer.
    Hit,
    /// The cookie was idle- or life-expired.
    Expired,
    /// The cookie was valid but its sid matches no peer.
    Unknown,
    /// The pinned peer was down or unreachable.
    Fallback,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Hit => "hit",
            Outcome::Expired => "expired",
            Outcome::Unknown => "unknown",
            Outcome::Fallback => "fallback",
        }
    }
}

/// The full result of [`decide`]: what to do, what to log, and the FIRSTSEEN the
/// response cookie must carry (the cookie's own on a hit, `now` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub decision: Decision,
    pub outcome: Outcome,
    pub firstseen: i64,
}

impl Choice {
    /// True when the response must (re-)pin the client: a new session or a
    /// fallback. A hit only refreshes (insert mode with timestamps).
    pub fn pins(&self) -> bool {
        matches!(self.decision, Decision::New(_) | Decision::Fallback(_))
    }
}

fn choose_new(
    outcome: Outcome,
    now: i64,
    choose: impl FnOnce(Option<usize>) -> Option<usize>,
) -> Choice {
    Choice {
        decision: choose(None).map_or(Decision::Refuse, Decision::New),
        outcome,
        firstseen: now,
    }
}

fn fall_back(
    conf: &StickyConf,
    outcome: Outcome,
    exclude: Option<usize>,
    now: i64,
    choose: impl FnOnce(Option<usize>) -> Option<usize>,
) -> Choice {
    let decision = if conf.fallback {
        choose(exclude).map_or(Decision::Refuse, Decision::Fallback)
    } else {
        Decision::Refuse
    };
    Choice {
        decision,
        outcome,
        firstseen: now,
    }
}

/// Decide which peer serves a request.
///
/// - absent / invalid cookie: `choose(None)` -> [`Decision::New`] (outcome `new`,
///   or `expired` for idle/life expiry);
/// - valid, sid of an up peer: [`Decision::Pinned`] (outcome `hit`), FIRSTSEEN
///   kept from the cookie (or `now` if it carries none);
/// - valid, sid unknown (outcome `unknown`) or peer down (outcome `fallback`):
///   `fallback=on` -> `choose(exclude)` -> [`Decision::Fallback`]; `fallback=off`
///   -> [`Decision::Refuse`].
///
/// When the chooser returns `None` (nothing available) the decision is
/// [`Decision::Refuse`].
pub fn decide<U, C>(
    conf: &StickyConf,
    cookie: &StickyCookie<'_>,
    index: &SidIndex,
    now: i64,
    is_up: U,
    choose: C,
) -> Choice
where
    U: Fn(usize) -> bool,
    C: FnOnce(Option<usize>) -> Option<usize>,
{
    match *cookie {
        StickyCookie::Absent => choose_new(Outcome::New, now, choose),
        StickyCookie::Invalid(why) => {
            let outcome = if why.is_expired() {
                Outcome::Expired
            } else {
                Outcome::New
            };
            choose_new(outcome, now, choose)
        }
        StickyCookie::Valid { sid, firstseen } => match index.lookup(sid) {
            None => fall_back(conf, Outcome::Unknown, None, now, choose),
            Some(idx) if is_up(idx) => Choice {
                decision: Decision::Pinned(idx),
                outcome: Outcome::Hit,
                firstseen: firstseen.unwrap_or(now),
            },
            Some(idx) => fall_back(conf, Outcome::Fallback, Some(idx), now, choose),
        },
    }
}

/// The connection to `failed` (the peer of `prev`) failed. A pinned request falls
/// back (`fallback=on`, re-pin, outcome `fallback`) or is refused (`fallback=off`);
/// a new or fallback request simply tries another peer, keeping its outcome.
/// `choose(Some(failed))` must skip the failed peer (and any the engine already
/// tried); `None` from it means [`Decision::Refuse`].
pub fn after_connect_failure<C>(
    conf: &StickyConf,
    prev: &Choice,
    failed: usize,
    now: i64,
    choose: C,
) -> Choice
where
    C: FnOnce(Option<usize>) -> Option<usize>,
{
    match prev.decision {
        Decision::Pinned(_) => fall_back(conf, Outcome::Fallback, Some(failed), now, choose),
        Decision::New(_) => Choice {
            decision: choose(Some(failed)).map_or(Decision::Refuse, Decision::New),
            ..*prev
        },
        Decision::Fallback(_) => Choice {
            decision: choose(Some(failed)).map_or(Decision::Refuse, Decision::Fallback),
            ..*prev
        },
        Decision::Refuse => *prev,
    }
}

//! Choosing the peer (spec section 5): from the configuration, the decoded
//! sticky cookie, peer health and the engine's round-robin chooser to a
//! [`Decision`] (pinned / new / fallback / refuse) and the [`Outcome`] label
//! logged as `$sticky_status`.
//!
//! The balancer is not owned here: the engine passes `choose(exclude)`, which runs
//! its smooth weighted round robin (honouring weight, down, backup, max_fails) and
//! skips `exclude`; and `is_up(idx)`, its health view of one peer.

use super::cookie::{Invalid, StickyCookie};
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
    /// Ours, `sign=on`: the cookie's MAC failed; a new session started.
    Forged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Hit => "hit",
            Outcome::Expired => "expired",
            Outcome::Unknown => "unknown",
            Outcome::Fallback => "fallback",
            Outcome::Forged => "forged",
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
    /// Ours: the cookie routed by a key other than the first (an old sid
    /// under `hash=hmac`, or an old signature): the response sets it again
    /// under the first key even on a hit.
    pub renew: bool,
    /// Ours, learn mode: which `learn=` cookie (index) the request carried.
    pub learned: Option<u8>,
}

impl Choice {
    /// True when the response must (re-)pin the client: a new session or a
    /// fallback, or a hit by an old key. A hit otherwise only refreshes
    /// (insert mode with timestamps).
    pub fn pins(&self) -> bool {
        matches!(self.decision, Decision::New(_) | Decision::Fallback(_)) || self.renew
    }

    /// A choice with no key renewal and no learned cookie.
    pub fn new(decision: Decision, outcome: Outcome, firstseen: i64) -> Choice {
        Choice {
            decision,
            outcome,
            firstseen,
            renew: false,
            learned: None,
        }
    }
}

fn choose_new(
    outcome: Outcome,
    now: i64,
    choose: impl FnOnce(Option<usize>) -> Option<usize>,
) -> Choice {
    Choice::new(
        choose(None).map_or(Decision::Refuse, Decision::New),
        outcome,
        now,
    )
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
    Choice::new(decision, outcome, now)
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
    decide_with(conf, cookie, |sid| index.find(sid), now, is_up, choose)
}

/// [`decide`] with the sid -> peer lookup given (`lookup` must answer what
/// `SidIndex::lookup` answers, with `true` for a peer found by an alias,
/// `SidIndex::lookup_alias`; the request path passes the peer it already
/// found while decoding).
pub(crate) fn decide_with<L, U, C>(
    conf: &StickyConf,
    cookie: &StickyCookie<'_>,
    lookup: L,
    now: i64,
    is_up: U,
    choose: C,
) -> Choice
where
    L: FnOnce(&str) -> Option<(usize, bool)>,
    U: Fn(usize) -> bool,
    C: FnOnce(Option<usize>) -> Option<usize>,
{
    match *cookie {
        StickyCookie::Absent => choose_new(Outcome::New, now, choose),
        StickyCookie::Invalid(why) => {
            let outcome = match why {
                Invalid::Forged => Outcome::Forged,
                _ if why.is_expired() => Outcome::Expired,
                _ => Outcome::New,
            };
            choose_new(outcome, now, choose)
        }
        StickyCookie::Valid {
            sid,
            firstseen,
            renew,
        } => match lookup(sid) {
            None => fall_back(conf, Outcome::Unknown, None, now, choose),
            Some((idx, alias)) if is_up(idx) => Choice {
                renew: renew || alias,
                ..Choice::new(
                    Decision::Pinned(idx),
                    Outcome::Hit,
                    firstseen.unwrap_or(now),
                )
            },
            Some((idx, _)) => fall_back(conf, Outcome::Fallback, Some(idx), now, choose),
        },
    }
}

/// The try at `failed` (the peer of `prev`) failed, whatever the reason: the
/// connection (error, timeout), a bad response head, or a status
/// `proxy_next_upstream` lists. The one re-decision after a failure: a pinned
/// request falls back (`fallback=on`, re-pin, outcome `fallback`) or is
/// refused (`fallback=off`); a new or fallback request simply tries another
/// peer, keeping its outcome.
/// `choose(Some(failed))` must skip the failed peer (and any the engine already
/// tried); `None` from it means [`Decision::Refuse`].
pub fn after_failure<C>(
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_571_297_169;

    /// Peers 0, 1, 2 with sids s0, s1, s2; peer 2 is down.
    fn index() -> SidIndex {
        SidIndex::new(["s0", "s1", "s2"])
    }

    fn up(i: usize) -> bool {
        i != 2
    }

    /// Round robin stand-in: the first of 0, 1 that is not excluded.
    fn rr(exclude: Option<usize>) -> Option<usize> {
        [0usize, 1].into_iter().find(|i| Some(*i) != exclude)
    }

    fn conf(fallback: bool) -> StickyConf {
        StickyConf {
            fallback,
            ..StickyConf::default()
        }
    }

    fn choice(decision: Decision, outcome: Outcome, firstseen: i64) -> Choice {
        Choice::new(decision, outcome, firstseen)
    }

    #[test]
    fn decision_table() {
        let valid = |sid: &'static str, firstseen| StickyCookie::Valid {
            sid,
            firstseen,
            renew: false,
        };
        let cases: Vec<(&str, bool, StickyCookie<'static>, Choice)> = vec![
            (
                "no_cookie_starts_new_session",
                true,
                StickyCookie::Absent,
                choice(Decision::New(0), Outcome::New, NOW),
            ),
            (
                "malformed_cookie_starts_new_session",
                true,
                StickyCookie::Invalid(Invalid::Malformed),
                choice(Decision::New(0), Outcome::New, NOW),
            ),
            (
                "empty_sid_with_fallback_off_is_new_session",
                false,
                StickyCookie::Invalid(Invalid::EmptySid),
                choice(Decision::New(0), Outcome::New, NOW),
            ),
            (
                "future_cookie_starts_new_session",
                false,
                StickyCookie::Invalid(Invalid::FromFuture),
                choice(Decision::New(0), Outcome::New, NOW),
            ),
            (
                "expired_idle_cookie_starts_new_session",
                true,
                StickyCookie::Invalid(Invalid::IdleExpired),
                choice(Decision::New(0), Outcome::Expired, NOW),
            ),
            (
                "expired_life_cookie_starts_new_session",
                false,
                StickyCookie::Invalid(Invalid::LifeExpired),
                choice(Decision::New(0), Outcome::Expired, NOW),
            ),
            (
                "valid_cookie_pins_up_peer_and_keeps_firstseen",
                true,
                valid("s1", Some(NOW - 100)),
                choice(Decision::Pinned(1), Outcome::Hit, NOW - 100),
            ),
            (
                "valid_cookie_without_timestamps_pins",
                false,
                valid("s1", None),
                choice(Decision::Pinned(1), Outcome::Hit, NOW),
            ),
            (
                "unknown_sid_falls_back_and_repins",
                true,
                valid("zz", Some(NOW - 5)),
                choice(Decision::Fallback(0), Outcome::Unknown, NOW),
            ),
            (
                "unknown_sid_without_fallback_is_refused",
                false,
                valid("zz", None),
                choice(Decision::Refuse, Outcome::Unknown, NOW),
            ),
            (
                "down_peer_falls_back_with_new_firstseen",
                true,
                valid("s2", Some(NOW - 5)),
                choice(Decision::Fallback(0), Outcome::Fallback, NOW),
            ),
            (
                "down_peer_without_fallback_is_refused",
                false,
                valid("s2", None),
                choice(Decision::Refuse, Outcome::Fallback, NOW),
            ),
        ];
        for (name, fallback, cookie, want) in cases {
            let got = decide(&conf(fallback), &cookie, &index(), NOW, up, rr);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn fallback_excludes_the_pinned_peer() {
        let cookie = StickyCookie::Valid {
            sid: "s0",
            firstseen: None,
            renew: false,
        };
        let got = decide(&conf(true), &cookie, &index(), NOW, |i| i == 1, rr);
        assert_eq!(got.decision, Decision::Fallback(1));
        assert_eq!(got.outcome, Outcome::Fallback);
    }

    #[test]
    fn no_available_peer_is_refused() {
        let none = |_: Option<usize>| None;
        let absent = decide(&conf(true), &StickyCookie::Absent, &index(), NOW, up, none);
        assert_eq!(absent.decision, Decision::Refuse);
        let unknown = StickyCookie::Valid {
            sid: "zz",
            firstseen: None,
            renew: false,
        };
        let got = decide(&conf(true), &unknown, &index(), NOW, up, none);
        assert_eq!(got.decision, Decision::Refuse);
    }

    #[test]
    fn connect_failure_table() {
        let cases: Vec<(&str, bool, Choice, Choice)> = vec![
            (
                "pinned_falls_back_and_repins",
                true,
                choice(Decision::Pinned(0), Outcome::Hit, NOW - 50),
                choice(Decision::Fallback(1), Outcome::Fallback, NOW),
            ),
            (
                "pinned_without_fallback_is_refused",
                false,
                choice(Decision::Pinned(0), Outcome::Hit, NOW - 50),
                choice(Decision::Refuse, Outcome::Fallback, NOW),
            ),
            (
                "new_session_tries_next_peer",
                false,
                choice(Decision::New(0), Outcome::New, NOW),
                choice(Decision::New(1), Outcome::New, NOW),
            ),
            (
                "fallback_tries_next_peer",
                true,
                choice(Decision::Fallback(0), Outcome::Unknown, NOW),
                choice(Decision::Fallback(1), Outcome::Unknown, NOW),
            ),
            (
                "refused_stays_refused",
                true,
                choice(Decision::Refuse, Outcome::New, NOW),
                choice(Decision::Refuse, Outcome::New, NOW),
            ),
        ];
        for (name, fallback, prev, want) in cases {
            let got = after_failure(&conf(fallback), &prev, 0, NOW, rr);
            assert_eq!(got, want, "{name}");
        }
        let exhausted = after_failure(
            &conf(true),
            &choice(Decision::New(0), Outcome::New, NOW),
            0,
            NOW,
            |_| None,
        );
        assert_eq!(exhausted.decision, Decision::Refuse);
    }

    #[test]
    fn outcome_labels_and_helpers() {
        let labels = [
            (Outcome::New, "new"),
            (Outcome::Hit, "hit"),
            (Outcome::Expired, "expired"),
            (Outcome::Unknown, "unknown"),
            (Outcome::Fallback, "fallback"),
            (Outcome::Forged, "forged"),
        ];
        for (o, s) in labels {
            assert_eq!(o.as_str(), s);
        }
        assert_eq!(Decision::Pinned(3).peer(), Some(3));
        assert_eq!(Decision::Refuse.peer(), None);
        assert!(choice(Decision::New(0), Outcome::New, NOW).pins());
        assert!(choice(Decision::Fallback(0), Outcome::New, NOW).pins());
        assert!(!choice(Decision::Pinned(0), Outcome::Hit, NOW).pins());
    }
}

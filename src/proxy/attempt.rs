//! The failover of one request, as a pure state machine: which peer to try,
//! whether a failure or a status is retried on another (`proxy_next_upstream`,
//! its `_tries` and `_timeout` budgets, idempotency), what passive health
//! notes for the peer just tried, and the sticky choice after a failure
//! (one re-decision for every reason: [`decide::after_failure`]).
//!
//! The handler drives it: [`Failover::start`] gives the first step, and each
//! try's outcome goes to [`Failover::on`], which says what passive health
//! notes and what comes next. No I/O and no clock: `now` is an argument and
//! peers are chosen by the caller's `choose`.

use std::time::Instant;

use http::Method;

use crate::config::NextUpstream;
use crate::proxy::errors::ProxyError;
use crate::sticky::{decide, Choice, Decision, StickyConf};
use crate::upstream::balance::Tried;

/// Why a try at one peer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connect refused/reset, or the backend broke the connection: 502.
    Error,
    /// `proxy_connect_timeout` or `proxy_read_timeout`: 504.
    Timeout,
    /// The backend's response head was malformed or too big: 502, retried
    /// with `proxy_next_upstream invalid_header`.
    InvalidHeader,
    /// The client's chunked body passed `client_max_body_size`: 413.
    BodyTooLarge,
    /// The client stopped sending its body (`client_body_timeout`) or broke the
    /// connection: 408 as nginx (the client is gone anyway).
    ClientBody,
    /// The client's chunked body was malformed: 400, as nginx.
    InvalidClientBody,
    /// The client closed its connection while the backend was awaited: 499
    /// in the log, as nginx (the backend connection is dropped).
    ClientAbort,
}

impl Failure {
    /// The error the client gets when this failure ends the request.
    pub fn error(self) -> ProxyError {
        match self {
            Failure::Error | Failure::InvalidHeader => ProxyError::BadGateway,
            Failure::Timeout => ProxyError::GatewayTimeout,
            Failure::BodyTooLarge => ProxyError::PayloadTooLarge,
            Failure::ClientBody => ProxyError::RequestTimeout,
            Failure::InvalidClientBody => ProxyError::BadRequest,
            Failure::ClientAbort => ProxyError::ClientClosedRequest,
        }
    }

    /// Whether `proxy_next_upstream` lists this kind of failure.
    fn listed(self, next: &NextUpstream) -> bool {
        match self {
            Failure::Error => next.error,
            Failure::InvalidHeader => next.invalid_header,
            Failure::Timeout => next.timeout,
            Failure::BodyTooLarge
            | Failure::ClientBody
            | Failure::InvalidClientBody
            | Failure::ClientAbort => false,
        }
    }

    /// Whether it counts against the peer (`max_fails`), as nginx: error,
    /// timeout and invalid_header always do, whatever `proxy_next_upstream`
    /// says.
    fn counts_against_peer(self) -> bool {
        matches!(
            self,
            Failure::Error | Failure::Timeout | Failure::InvalidHeader
        )
    }
}

/// True for methods nginx treats as idempotent (retried after being sent).
pub fn idempotent(method: &Method) -> bool {
    !matches!(*method, Method::POST | Method::PATCH) && method.as_str() != "LOCK"
}

/// How one try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The peer answered with this status.
    Answered(u16),
    /// The try failed; `unsent`: nothing of the request was written (it can
    /// go out again as it is).
    Failed { failure: Failure, unsent: bool },
}

/// What passive health notes for the peer just tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Succeeded,
    Failed,
    /// Neither (a failure of the client's, not the peer's).
    Unchanged,
}

/// What the handler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Try this peer.
    Try(usize),
    /// Pass the answer just received on to the client.
    Deliver,
    /// Answer with the error of this failure.
    Refuse(Failure),
}

/// What the failover of one request is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// `proxy_next_upstream_tries` (0: unlimited).
    pub tries: u32,
    /// When `proxy_next_upstream_timeout` runs out.
    pub deadline: Option<Instant>,
    /// The request may be written again after it was sent: it has no body,
    /// and it is idempotent or `non_idempotent` is listed.
    pub may_resend: bool,
}

/// The failover state of one request.
#[derive(Debug)]
pub struct Failover<'c> {
    next: &'c NextUpstream,
    sticky: Option<&'c StickyConf>,
    budget: Budget,
    /// Whether the request may go to another peer after it was sent (never
    /// away from a pinned peer with `fallback=off`).
    resend_elsewhere: bool,
    tried: Tried,
    choice: Option<Choice>,
    peer: Option<usize>,
    /// Nothing of the request has been written yet.
    fresh: bool,
    last_failure: Failure,
    now_unix: i64,
}

impl<'c> Failover<'c> {
    /// The failover of a request whose first peer is `peer` (the sticky
    /// `choice`'s, or the balancer's); `now_unix` stamps a new pin.
    pub fn new(
        next: &'c NextUpstream,
        sticky: Option<&'c StickyConf>,
        budget: Budget,
        choice: Option<Choice>,
        peer: Option<usize>,
        now_unix: i64,
    ) -> Failover<'c> {
        let pinned_no_fallback = sticky.is_some_and(|s| !s.fallback)
            && matches!(choice.map(|c| c.decision), Some(Decision::Pinned(_)));
        Failover {
            next,
            sticky,
            budget,
            resend_elsewhere: budget.may_resend && !pinned_no_fallback,
            tried: Tried::new(),
            choice,
            peer,
            fresh: true,
            last_failure: Failure::Error,
            now_unix,
        }
    }

    /// The sticky choice as it stands (it changes when a failure moves the
    /// request to another peer).
    pub fn choice(&self) -> Option<&Choice> {
        self.choice.as_ref()
    }

    /// The first step.
    pub fn start(&mut self) -> Step {
        self.advance()
    }

    /// The try at the current peer ended with `event` at `now`. `choose(exclude,
    /// tried)` picks another peer (the balancer, skipping `exclude` and the
    /// peers tried). Returns what passive health notes for the peer just tried
    /// and the next step.
    pub fn on(
        &mut self,
        event: Event,
        now: Instant,
        choose: impl FnOnce(Option<usize>, &Tried) -> Option<usize>,
    ) -> (Health, Step) {
        let Some(p) = self.peer else {
            return (Health::Unchanged, Step::Refuse(self.last_failure));
        };
        match event {
            Event::Answered(status) => {
                if !self.next.statuses.contains(&status) {
                    return (Health::Succeeded, Step::Deliver);
                }
                // A listed status: another peer if the budget allows one and
                // there is one; else this answer goes to the client.
                if self.resend_elsewhere && self.within_budget(now) {
                    let (choice, peer) = self.redecide(p, choose);
                    if peer.is_some() {
                        self.choice = choice;
                        self.peer = peer;
                        self.fresh = false;
                        return (Health::Failed, self.advance());
                    }
                }
                (Health::Failed, Step::Deliver)
            }
            Event::Failed { failure, unsent } => {
                self.last_failure = failure;
                self.fresh = unsent;
                let health = if failure.counts_against_peer() {
                    Health::Failed
                } else {
                    Health::Unchanged
                };
                let retry = failure.listed(self.next)
                    && (unsent || self.resend_elsewhere)
                    && self.within_budget(now);
                if !retry {
                    return (health, Step::Refuse(failure));
                }
                let (choice, peer) = self.redecide(p, choose);
                self.choice = choice;
                self.peer = peer;
                (health, self.advance())
            }
        }
    }

    /// The next try, if the request can still go to `self.peer`.
    fn advance(&mut self) -> Step {
        let Some(p) = self.peer else {
            return Step::Refuse(self.last_failure);
        };
        self.tried.insert(p);
        if !self.fresh && !self.budget.may_resend {
            return Step::Refuse(self.last_failure);
        }
        Step::Try(p)
    }

    fn within_budget(&self, now: Instant) -> bool {
        let tries = match self.budget.tries {
            0 => usize::MAX,
            n => n as usize,
        };
        self.tried.len() < tries && self.budget.deadline.is_none_or(|d| now < d)
    }

    /// The choice and peer after `failed` failed (or answered a listed
    /// status): the one sticky re-decision, or the balancer's next peer.
    fn redecide(
        &self,
        failed: usize,
        choose: impl FnOnce(Option<usize>, &Tried) -> Option<usize>,
    ) -> (Option<Choice>, Option<usize>) {
        let tried = &self.tried;
        match (self.sticky, self.choice) {
            (Some(conf), Some(c)) => {
                let c =
                    decide::after_failure(conf, &c, failed, self.now_unix, |ex| choose(ex, tried));
                (Some(c), c.decision.peer())
            }
            (_, choice) => (choice, choose(Some(failed), tried)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sticky::Outcome;
    use std::time::Duration;

    const NOW: i64 = 1_700_000_000;

    fn sticky(fallback: bool) -> StickyConf {
        StickyConf {
            fallback,
            ..StickyConf::default()
        }
    }

    /// Round robin stand-in over peers 0..3: the first not excluded nor tried.
    fn rr(exclude: Option<usize>, tried: &Tried) -> Option<usize> {
        (0..3).find(|&i| Some(i) != exclude && !tried.contains(i))
    }

    fn next(spec: &str) -> NextUpstream {
        let mut n = NextUpstream {
            error: false,
            timeout: false,
            invalid_header: false,
            statuses: Vec::new(),
            non_idempotent: false,
        };
        for word in spec.split_whitespace() {
            match word {
                "off" => {}
                "error" => n.error = true,
                "timeout" => n.timeout = true,
                "invalid_header" => n.invalid_header = true,
                "non_idempotent" => n.non_idempotent = true,
                status => n
                    .statuses
                    .push(status.trim_start_matches("http_").parse().unwrap()),
            }
        }
        n
    }

    fn budget(may_resend: bool) -> Budget {
        Budget {
            tries: 0,
            deadline: None,
            may_resend,
        }
    }

    fn choice(decision: Decision, outcome: Outcome) -> Choice {
        Choice {
            renew: false,
            learned: None,
            decision,
            outcome,
            firstseen: NOW - 100,
        }
    }

    /// Runs a request whose tries end with `events` in turn; returns the peers
    /// tried, each health verdict, the final step and the final choice.
    fn run(
        next: &NextUpstream,
        conf: Option<&StickyConf>,
        budget: Budget,
        start: Option<Choice>,
        events: &[Event],
    ) -> (Vec<usize>, Vec<Health>, Step, Option<Choice>) {
        let first = start.map_or(Some(0), |c| c.decision.peer());
        let mut f = Failover::new(next, conf, budget, start, first, NOW);
        let mut step = f.start();
        let (mut peers, mut verdicts) = (Vec::new(), Vec::new());
        let now = Instant::now();
        for event in events {
            let Step::Try(p) = step else { break };
            peers.push(p);
            let (health, s) = f.on(*event, now, rr);
            verdicts.push(health);
            step = s;
        }
        (peers, verdicts, step, f.choice().copied())
    }

    const ERR: Event = Event::Failed {
        failure: Failure::Error,
        unsent: true,
    };
    const ERR_SENT: Event = Event::Failed {
        failure: Failure::Error,
        unsent: false,
    };
    const TIMEOUT: Event = Event::Failed {
        failure: Failure::Timeout,
        unsent: false,
    };
    const BAD_HEAD: Event = Event::Failed {
        failure: Failure::InvalidHeader,
        unsent: false,
    };
    const TOO_LARGE: Event = Event::Failed {
        failure: Failure::BodyTooLarge,
        unsent: false,
    };

    #[test]
    fn every_condition_crossed_with_sticky_and_fallback() {
        use Health::{Failed as F, Succeeded as S, Unchanged as U};
        let pinned = choice(Decision::Pinned(0), Outcome::Hit);
        let new = choice(Decision::New(0), Outcome::New);
        let on = sticky(true);
        let off = sticky(false);
        // (proxy_next_upstream, sticky conf, first choice, may resend, events,
        //  peers tried, verdicts, final step, final outcome)
        type Case<'a> = (
            &'a str,
            Option<&'a StickyConf>,
            Option<Choice>,
            bool,
            &'a [Event],
            &'a [usize],
            &'a [Health],
            Step,
            Option<Outcome>,
        );
        let a200 = Event::Answered(200);
        let a503 = Event::Answered(503);
        let a500 = Event::Answered(500);
        let cases: &[Case<'_>] = &[
            // No sticky: each condition, listed or not.
            (
                "error timeout",
                None,
                None,
                true,
                &[a200],
                &[0],
                &[S],
                Step::Deliver,
                None,
            ),
            (
                "error",
                None,
                None,
                true,
                &[ERR, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                None,
            ),
            (
                "off",
                None,
                None,
                true,
                &[ERR],
                &[0],
                &[F],
                Step::Refuse(Failure::Error),
                None,
            ),
            (
                "timeout",
                None,
                None,
                true,
                &[TIMEOUT, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                None,
            ),
            (
                "error",
                None,
                None,
                true,
                &[TIMEOUT],
                &[0],
                &[F],
                Step::Refuse(Failure::Timeout),
                None,
            ),
            (
                "invalid_header",
                None,
                None,
                true,
                &[BAD_HEAD, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                None,
            ),
            (
                "error",
                None,
                None,
                true,
                &[BAD_HEAD],
                &[0],
                &[F],
                Step::Refuse(Failure::InvalidHeader),
                None,
            ),
            (
                "http_503",
                None,
                None,
                true,
                &[a503, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                None,
            ),
            (
                "http_503",
                None,
                None,
                true,
                &[a500],
                &[0],
                &[S],
                Step::Deliver,
                None,
            ),
            (
                "http_500 http_503",
                None,
                None,
                true,
                &[a500, a503, a503],
                &[0, 1, 2],
                &[F, F, F],
                Step::Deliver,
                None,
            ),
            (
                "error",
                None,
                None,
                true,
                &[ERR, ERR, ERR],
                &[0, 1, 2],
                &[F, F, F],
                Step::Refuse(Failure::Error),
                None,
            ),
            // The client's failures are never retried nor charged to the peer.
            (
                "error timeout",
                None,
                None,
                true,
                &[TOO_LARGE],
                &[0],
                &[U],
                Step::Refuse(Failure::BodyTooLarge),
                None,
            ),
            // A sent request that cannot be resent (a body, or POST without
            // non_idempotent) is not retried; an unsent one is.
            (
                "error",
                None,
                None,
                false,
                &[ERR_SENT],
                &[0],
                &[F],
                Step::Refuse(Failure::Error),
                None,
            ),
            (
                "error",
                None,
                None,
                false,
                &[ERR, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                None,
            ),
            (
                "http_503",
                None,
                None,
                false,
                &[a503],
                &[0],
                &[F],
                Step::Deliver,
                None,
            ),
            // Sticky, a new session: moves on, stays a new session.
            (
                "error",
                Some(&on),
                Some(new),
                true,
                &[ERR, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::New),
            ),
            (
                "http_503",
                Some(&on),
                Some(new),
                true,
                &[a503, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::New),
            ),
            (
                "error",
                Some(&off),
                Some(new),
                true,
                &[ERR, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::New),
            ),
            (
                "http_503",
                Some(&off),
                Some(new),
                true,
                &[a503, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::New),
            ),
            // Sticky, pinned, fallback on: moves on as a fallback, whatever
            // the reason (issue 13: a 503 retry was logged as a hit).
            (
                "error",
                Some(&on),
                Some(pinned),
                true,
                &[ERR, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::Fallback),
            ),
            (
                "timeout",
                Some(&on),
                Some(pinned),
                true,
                &[TIMEOUT, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::Fallback),
            ),
            (
                "invalid_header",
                Some(&on),
                Some(pinned),
                true,
                &[BAD_HEAD, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::Fallback),
            ),
            (
                "http_503",
                Some(&on),
                Some(pinned),
                true,
                &[a503, a200],
                &[0, 1],
                &[F, S],
                Step::Deliver,
                Some(Outcome::Fallback),
            ),
            (
                "off",
                Some(&on),
                Some(pinned),
                true,
                &[ERR],
                &[0],
                &[F],
                Step::Refuse(Failure::Error),
                Some(Outcome::Hit),
            ),
            (
                "http_500",
                Some(&on),
                Some(pinned),
                true,
                &[a503],
                &[0],
                &[S],
                Step::Deliver,
                Some(Outcome::Hit),
            ),
            // Sticky, pinned, fallback off: never away from the pinned peer.
            (
                "error",
                Some(&off),
                Some(pinned),
                true,
                &[ERR],
                &[0],
                &[F],
                Step::Refuse(Failure::Error),
                Some(Outcome::Fallback),
            ),
            (
                "timeout",
                Some(&off),
                Some(pinned),
                true,
                &[TIMEOUT],
                &[0],
                &[F],
                Step::Refuse(Failure::Timeout),
                Some(Outcome::Hit),
            ),
            (
                "http_503",
                Some(&off),
                Some(pinned),
                true,
                &[a503],
                &[0],
                &[F],
                Step::Deliver,
                Some(Outcome::Hit),
            ),
        ];
        for (i, (spec, conf, start, resend, events, peers, verdicts, last, outcome)) in
            cases.iter().enumerate()
        {
            let n = next(spec);
            let (got_peers, got_verdicts, got_last, got_choice) =
                run(&n, *conf, budget(*resend), *start, events);
            assert_eq!(got_peers, *peers, "case {i}: {spec} peers");
            assert_eq!(got_verdicts, *verdicts, "case {i}: {spec} health");
            assert_eq!(got_last, *last, "case {i}: {spec} step");
            assert_eq!(
                got_choice.map(|c| c.outcome),
                *outcome,
                "case {i}: {spec} outcome"
            );
        }
    }

    #[test]
    fn a_fallback_after_a_status_pins_the_new_peer_with_a_fresh_firstseen() {
        let n = next("http_503");
        let conf = sticky(true);
        let start = choice(Decision::Pinned(0), Outcome::Hit);
        let (peers, _, step, c) = run(
            &n,
            Some(&conf),
            budget(true),
            Some(start),
            &[Event::Answered(503), Event::Answered(200)],
        );
        assert_eq!((peers, step), (vec![0, 1], Step::Deliver));
        let c = c.unwrap();
        assert_eq!(c.decision, Decision::Fallback(1));
        assert_eq!(c.firstseen, NOW);
        assert!(c.pins());
    }

    #[test]
    fn no_other_peer_delivers_the_listed_status_and_keeps_the_choice() {
        let n = next("http_503");
        let conf = sticky(true);
        let start = choice(Decision::Pinned(0), Outcome::Hit);
        let mut f = Failover::new(&n, Some(&conf), budget(true), Some(start), Some(0), NOW);
        assert_eq!(f.start(), Step::Try(0));
        let (health, step) = f.on(Event::Answered(503), Instant::now(), |_, _| None);
        assert_eq!((health, step), (Health::Failed, Step::Deliver));
        assert_eq!(f.choice(), Some(&start));
    }

    #[test]
    fn tries_and_time_budgets_end_the_failover() {
        let n = next("error http_503");
        let two = Budget {
            tries: 2,
            ..budget(true)
        };
        let (peers, _, step, _) = run(&n, None, two, None, &[ERR, ERR, ERR]);
        assert_eq!((peers, step), (vec![0, 1], Step::Refuse(Failure::Error)));
        let (peers, _, step, _) = run(
            &n,
            None,
            two,
            None,
            &[Event::Answered(503), Event::Answered(503)],
        );
        assert_eq!((peers, step), (vec![0, 1], Step::Deliver));
        let past = Budget {
            deadline: Instant::now().checked_sub(Duration::from_secs(1)),
            ..budget(true)
        };
        let (peers, _, step, _) = run(&n, None, past, None, &[ERR]);
        assert_eq!((peers, step), (vec![0], Step::Refuse(Failure::Error)));
    }

    #[test]
    fn no_first_peer_is_refused_as_an_error() {
        let n = next("error");
        let mut f = Failover::new(&n, None, budget(true), None, None, NOW);
        assert_eq!(f.start(), Step::Refuse(Failure::Error));
    }

    #[test]
    fn failures_map_to_nginx_statuses_and_next_upstream_flags() {
        let n = next("error");
        let cases = [
            (Failure::Error, 502, true),
            (Failure::InvalidHeader, 502, false),
            (Failure::Timeout, 504, false),
            (Failure::BodyTooLarge, 413, false),
            (Failure::ClientBody, 408, false),
            (Failure::InvalidClientBody, 400, false),
            (Failure::ClientAbort, 499, false),
        ];
        for (failure, status, listed) in cases {
            assert_eq!(failure.error().status().as_u16(), status);
            assert_eq!(failure.listed(&n), listed);
        }
    }

    #[test]
    fn only_post_patch_and_lock_are_non_idempotent() {
        let cases = [
            ("GET", true),
            ("HEAD", true),
            ("PUT", true),
            ("DELETE", true),
            ("OPTIONS", true),
            ("POST", false),
            ("PATCH", false),
            ("LOCK", false),
        ];
        for (method, want) in cases {
            assert_eq!(idempotent(&method.parse().unwrap()), want, "{method}");
        }
    }
}

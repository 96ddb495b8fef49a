//! The health state of one checked peer, pure: [`CheckState`] is Tengine's
//! rise/fall state machine (with `default_down`), moved on by one check
//! result at a time ([`CheckState::record`], the time passed in) and telling
//! the [`Transition`] it made; [`first_due`] and [`next_due`] say when a peer
//! is checked (first checks of an upstream spread over one interval in
//! [`SLOTS`] time slots, then one `interval` apart). No I/O, no clock.

use std::time::{Duration, Instant};

/// A change of a peer's checked state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    WentUp,
    WentDown,
}

/// The active-check state of one peer: up or down, and Tengine's counters of
/// consecutive successes (`rise`) and failures (`fall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckState {
    up: bool,
    rise: u32,
    fall: u32,
    /// When the state last changed (`None`: never, it is the initial state).
    since: Option<Instant>,
}

impl CheckState {
    /// The state before any check: down with `default_down`, else up.
    pub fn new(default_down: bool) -> CheckState {
        CheckState {
            up: !default_down,
            rise: 0,
            fall: 0,
            since: None,
        }
    }

    /// The state as last published (`up`, and the rise and fall counters): a
    /// restarted checker (a reload, a DNS change) goes on from there. For a peer
    /// never checked that is [`CheckState::new`].
    pub fn resume(up: bool, rise: u32, fall: u32) -> CheckState {
        CheckState {
            up,
            rise,
            fall,
            since: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// (consecutive successes, consecutive failures).
    pub fn counters(&self) -> (u32, u32) {
        (self.rise, self.fall)
    }

    /// When the state last changed.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Records one check result at `now`: `rise` consecutive successes bring a
    /// down peer up, `fall` consecutive failures take an up peer down. A success
    /// clears the failure count and a failure the success count.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32, now: Instant) -> Transition {
        if ok {
            self.rise = self.rise.saturating_add(1);
            self.fall = 0;
            if !self.up && self.rise >= rise.max(1) {
                self.up = true;
                self.since = Some(now);
                return Transition::WentUp;
            }
        } else {
            self.fall = self.fall.saturating_add(1);
            self.rise = 0;
            if self.up && self.fall >= fall.max(1) {
                self.up = false;
                self.since = Some(now);
                return Transition::WentDown;
            }
        }
        Transition::Unchanged
    }
}

/// Checks of one upstream are grouped into at most this many time slots per
/// interval: spread enough that a large upstream is not checked in one burst,
/// grouped enough that one timer wake-up serves many peers.
pub const SLOTS: usize = 20;

/// When peer `index` of `count` checks first: peers are dealt round-robin into
/// [`SLOTS`] slots spread evenly over the first interval (with fewer peers than
/// slots, one slot each).
pub fn first_due(start: Instant, interval: Duration, index: usize, count: usize) -> Instant {
    let slots = count.clamp(1, SLOTS) as u128;
    let slot = index as u128 % slots;
    let offset_ns = interval.as_nanos().saturating_mul(slot) / slots;
    start + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX))
}

/// When the check after one that was due at `due` and finished at `now` is
/// due: one `interval` after `due`, or at once (`now`) if that has passed.
pub fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    (due + interval).max(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (result, expected up after it, expected counters, expected transition)
    type Step = (bool, bool, (u32, u32), Transition);

    fn run(default_down: bool, rise: u32, fall: u32, steps: &[Step]) {
        let t0 = Instant::now();
        let mut s = CheckState::new(default_down);
        assert_eq!(s.is_up(), !default_down);
        for (k, (ok, up, counters, transition)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_secs(k as u64);
            let got = s.record(*ok, rise, fall, now);
            assert_eq!(
                (got, s.is_up(), s.counters()),
                (*transition, *up, *counters),
                "step {k} of {steps:?}"
            );
            if got != Transition::Unchanged {
                assert_eq!(s.since(), Some(now));
            }
        }
    }

    #[test]
    fn rise_and_fall_state_machine() {
        use Transition::*;
        let cases: &[(bool, u32, u32, &[Step])] = &[
            // default_down: down until `rise` consecutive successes.
            (
                true,
                2,
                5,
                &[
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                    (true, true, (3, 0), Unchanged),
                ],
            ),
            // A failure in between restarts the rise count.
            (
                true,
                2,
                5,
                &[
                    (true, false, (1, 0), Unchanged),
                    (false, false, (0, 1), Unchanged),
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                ],
            ),
            // Up peer: `fall` consecutive failures take it down, once.
            (
                false,
                2,
                3,
                &[
                    (false, true, (0, 1), Unchanged),
                    (false, true, (0, 2), Unchanged),
                    (false, false, (0, 3), WentDown),
                    (false, false, (0, 4), Unchanged),
                    (true, false, (1, 0), Unchanged),
                    (true, true, (2, 0), WentUp),
                ],
            ),
            // A success in between restarts the fall count.
            (
                false,
                1,
                2,
                &[
                    (false, true, (0, 1), Unchanged),
                    (true, true, (1, 0), Unchanged),
                    (false, true, (0, 1), Unchanged),
                    (false, false, (0, 2), WentDown),
                ],
            ),
            // rise=1 fall=1: every result decides.
            (
                true,
                1,
                1,
                &[
                    (true, true, (1, 0), WentUp),
                    (false, false, (0, 1), WentDown),
                    (true, true, (1, 0), WentUp),
                ],
            ),
        ];
        for (default_down, rise, fall, steps) in cases {
            run(*default_down, *rise, *fall, steps);
        }
    }

    #[test]
    fn first_checks_are_spread_over_one_interval_in_slots() {
        let t0 = Instant::now();
        let i = Duration::from_millis(1000);
        let cases = [
            (0, 4, 0),
            (1, 4, 250),
            (3, 4, 750),
            (0, 1, 0),
            (0, 0, 0),
            // 1,000 peers share 20 slots 50 ms apart.
            (0, 1000, 0),
            (1, 1000, 50),
            (19, 1000, 950),
            (20, 1000, 0),
            (41, 1000, 50),
        ];
        for (index, count, ms) in cases {
            assert_eq!(
                first_due(t0, i, index, count),
                t0 + Duration::from_millis(ms),
                "{index}/{count}"
            );
        }
    }

    #[test]
    fn next_checks_are_one_interval_after_the_last_was_due_or_at_once() {
        let t0 = Instant::now();
        let i = Duration::from_millis(100);
        let ms = Duration::from_millis;
        // (finished after due, next due after the last was due)
        for (finished, next) in [(0, 100), (30, 100), (100, 100), (250, 250)] {
            assert_eq!(
                next_due(t0, i, t0 + ms(finished)),
                t0 + ms(next),
                "{finished}"
            );
        }
    }
}

//! nginx's `limit_req` leaky bucket, exactly and purely: time is an argument
//! (milliseconds on a monotonic clock), a request weighs 1000, the rate is
//! requests per second times 1000, `burst` and `delay` are in the same units.
//!
//! [`Bucket::lookup`] is `ngx_http_limit_req_lookup` for one key: the excess
//! drains by `rate * ms / 1000` since the last accounted request, a new
//! request adds 1000, and an excess above `burst` is refused. A key's first
//! request finds no bucket and leaves a new, empty one (the caller's
//! business, whether the limit accounts at once or after). Only the last
//! limit of a location accounts at once; the earlier ones are accounted after
//! every limit passed ([`Bucket::account`], `ngx_http_limit_req_account`), and
//! the largest resulting delay applies ([`delay_ms`]).

/// The state of one key: what nginx keeps in its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Excess in 1/1000 requests.
    pub excess: u64,
    /// When the last accounted request came (ms).
    pub last: u64,
}

/// The answer for one request and one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Accepted; the excess it leaves (what the delay is computed from).
    Pass { excess: u64 },
    /// Over `burst`: refused, with the excess it would have made.
    Busy { excess: u64 },
}

/// Elapsed ms as nginx clamps it (a clock that went back counts as 0).
fn elapsed(now: u64, last: u64) -> u64 {
    now.saturating_sub(last)
}

impl Bucket {
    /// A key seen for the first time: its first request is always accepted.
    pub fn new(now: u64) -> Bucket {
        Bucket {
            excess: 0,
            last: now,
        }
    }

    /// The excess a request at `now` would leave.
    fn excess_at(&self, rate: u64, now: u64) -> u64 {
        let ms = elapsed(now, self.last);
        let drained = rate.saturating_mul(ms) / 1000;
        (self.excess + 1000).saturating_sub(drained)
    }

    /// Checks a request at `now`; when `account` is true and it passes, the
    /// bucket takes it (nginx accounts the last limit of a location at once).
    pub fn lookup(&mut self, rate: u64, burst: u64, now: u64, account: bool) -> Lookup {
        let excess = self.excess_at(rate, now);
        if excess > burst {
            return Lookup::Busy { excess };
        }
        if account {
            self.take(excess, now);
        }
        Lookup::Pass { excess }
    }

    /// Accounts a request that passed every limit (the limits before the last).
    pub fn account(&mut self, rate: u64, now: u64) -> u64 {
        let excess = self.excess_at(rate, now);
        self.take(excess, now);
        excess
    }

    fn take(&mut self, excess: u64, now: u64) {
        self.excess = excess;
        if now > self.last {
            self.last = now;
        }
    }

    /// True when the bucket has drained at `now` and holds nothing worth
    /// keeping (nginx expires such nodes after 60 s).
    pub fn drained(&self, rate: u64, now: u64) -> bool {
        let ms = elapsed(now, self.last);
        ms > 60_000 || rate.saturating_mul(ms) / 1000 >= self.excess
    }
}

/// The delay (ms) of a request that left `excess` under a limit with `delay`
/// free excess (`u64::MAX` = `nodelay`) at `rate`.
pub fn delay_ms(excess: u64, delay: u64, rate: u64) -> u64 {
    if excess <= delay || rate == 0 {
        return 0;
    }
    (excess - delay).saturating_mul(1000) / rate
}

/// `rate=Nr/s` or `rate=Nr/m` in nginx's units (requests per second * 1000).
pub fn parse_rate(text: &str) -> Option<u64> {
    let (n, scale) = if let Some(n) = text.strip_suffix("r/s") {
        (n, 1)
    } else {
        (text.strip_suffix("r/m")?, 60)
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    let rate = n.checked_mul(1000)? / scale;
    (rate > 0).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds requests at the given ms times to one key, returning for each
    /// `p` (passed, no delay), `d<ms>` (passed with a delay) or `x` (refused).
    fn run(rate: u64, burst: u64, delay: u64, times: &[u64]) -> Vec<String> {
        let mut bucket: Option<Bucket> = None;
        times
            .iter()
            .map(|&t| {
                let (verdict, excess) = match bucket.as_mut() {
                    None => {
                        bucket = Some(Bucket::new(t));
                        (true, 0)
                    }
                    Some(b) => match b.lookup(rate, burst * 1000, t, true) {
                        Lookup::Pass { excess } => (true, excess),
                        Lookup::Busy { .. } => (false, 0),
                    },
                };
                match (verdict, delay_ms(excess, delay, rate)) {
                    (false, _) => "x".to_string(),
                    (true, 0) => "p".to_string(),
                    (true, d) => format!("d{d}"),
                }
            })
            .collect()
    }

    /// (rate r/s * 1000, burst, delay, request times ms, verdicts)
    type Case = (u64, u64, u64, &'static [u64], &'static [&'static str]);

    #[test]
    fn leaky_bucket_matches_nginx_arithmetic() {
        let nodelay = u64::MAX;
        let cases: &[Case] = &[
            // 1r/s, no burst: one per second.
            (
                1000,
                0,
                0,
                &[0, 10, 999, 1000, 1500, 2000],
                &["p", "x", "x", "p", "x", "p"],
            ),
            // 10r/s: 100 ms apart is fine, 99 ms is not.
            (10_000, 0, 0, &[0, 100, 199, 200], &["p", "p", "x", "p"]),
            // burst=2 without nodelay: queued with 1 s then 2 s of delay.
            (1000, 2, 0, &[0, 0, 0, 0], &["p", "d1000", "d2000", "x"]),
            // burst=2 nodelay: served at once, the fourth refused.
            (1000, 2, nodelay, &[0, 0, 0, 0], &["p", "p", "p", "x"]),
            // delay=1 (1000 units): the first excess request free, then delayed.
            (
                1000,
                3,
                1000,
                &[0, 0, 0, 0, 0],
                &["p", "p", "d1000", "d2000", "x"],
            ),
            // The bucket drains: after 1500 ms at 1r/s, 1.5 requests left it,
            // so one more fits (excess 1500), the next (2500) does not.
            (
                1000,
                2,
                nodelay,
                &[0, 0, 0, 1500, 1500, 1500],
                &["p", "p", "p", "p", "x", "x"],
            ),
            (
                1000,
                2,
                nodelay,
                &[0, 0, 0, 2000, 2000, 2000],
                &["p", "p", "p", "p", "p", "x"],
            ),
            // 30r/m = 500 units: one every 2 s.
            (500, 0, 0, &[0, 1999, 2000], &["p", "x", "p"]),
        ];
        for (rate, burst, delay, times, want) in cases {
            assert_eq!(
                run(*rate, *burst, *delay, times),
                *want,
                "rate {rate} burst {burst} delay {delay} {times:?}"
            );
        }
    }

    #[test]
    fn refused_requests_do_not_fill_the_bucket_and_clocks_going_back_count_zero() {
        let mut b = Bucket::new(1000);
        assert_eq!(b.lookup(1000, 0, 1000, true), Lookup::Busy { excess: 1000 });
        assert_eq!(b, Bucket::new(1000));
        assert_eq!(
            b.lookup(1000, 1000, 500, true),
            Lookup::Pass { excess: 1000 }
        );
        assert_eq!(b.last, 1000, "an earlier clock reading does not move last");
        assert!(!b.drained(1000, 1500));
        assert!(b.drained(1000, 2000));
    }

    #[test]
    fn an_earlier_limit_is_accounted_after_the_last_passed() {
        let mut b = Bucket::new(0);
        assert_eq!(
            b.lookup(1000, 5000, 0, false),
            Lookup::Pass { excess: 1000 }
        );
        assert_eq!(b.excess, 0, "not yet accounted");
        assert_eq!(b.account(1000, 0), 1000);
        assert_eq!(b.excess, 1000);
    }

    #[test]
    fn rates() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1r/s", Some(1000)),
            ("10r/s", Some(10_000)),
            ("30r/m", Some(500)),
            ("1r/m", Some(16)),
            ("0r/s", None),
            ("r/s", None),
            ("5r/h", None),
            ("5", None),
            ("-1r/s", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rate(text), *want, "{text}");
        }
    }
}

//! `allow` / `deny` and `satisfy`: the access phase's decision, pure.
//!
//! Rules are read in order and the first that matches the client decides
//! (nginx's `ngx_http_access_module`); when none matches the client passes.
//! `satisfy all` (default): every check must pass, and the first to fail
//! answers (the address rules are checked before `auth_basic`, as nginx runs
//! them). `satisfy any`: one passing check is enough; when all fail, a 401
//! from `auth_basic` wins over a 403 from the address rules (nginx keeps an
//! "unauthorized" access code).

use std::net::IpAddr;

use crate::access::conf::{Rule, Target};

/// The result of one access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The check has nothing to say (no rule matched, no auth configured).
    Declined,
    Allowed,
    /// 403.
    Forbidden,
    /// 401.
    Unauthorized,
}

/// The verdict of `allow`/`deny` for a TCP client at `ip`.
pub fn address_check(rules: &[Rule], ip: IpAddr) -> Check {
    let hit = rules.iter().find(|r| match &r.target {
        Target::All => true,
        Target::Block(c) => c.contains(ip),
        Target::Unix => false,
    });
    match hit {
        None => Check::Declined,
        Some(r) if r.allow => Check::Allowed,
        Some(_) => Check::Forbidden,
    }
}

/// Combines the address and auth checks: `None` lets the request through,
/// else the status that refuses it.
pub fn satisfy(any: bool, checks: &[Check]) -> Option<u16> {
    let code = |c: &Check| match c {
        Check::Forbidden => Some(403),
        Check::Unauthorized => Some(401),
        Check::Declined | Check::Allowed => None,
    };
    if !any {
        return checks.iter().find_map(code);
    }
    if checks.contains(&Check::Allowed) {
        return None;
    }
    let mut refused = None;
    for c in checks {
        match code(c) {
            Some(401) => return Some(401),
            Some(s) => refused = refused.or(Some(s)),
            None => {}
        }
    }
    refused
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access::cidr;

    fn rules(spec: &[(&str, &str)]) -> Vec<Rule> {
        spec.iter()
            .map(|(verb, what)| Rule {
                allow: *verb == "allow",
                target: match *what {
                    "all" => Target::All,
                    "unix:" => Target::Unix,
                    block => Target::Block(cidr::parse(block).unwrap().0),
                },
            })
            .collect()
    }

    #[test]
    fn first_matching_rule_decides() {
        let list = rules(&[
            ("deny", "192.168.1.1"),
            ("allow", "192.168.1.0/24"),
            ("allow", "10.1.1.0/16"),
            ("allow", "2001:0db8::/32"),
            ("deny", "unix:"),
            ("deny", "all"),
        ]);
        let cases: &[(&str, Check)] = &[
            ("192.168.1.1", Check::Forbidden),
            ("192.168.1.2", Check::Allowed),
            ("10.1.200.3", Check::Allowed),
            ("10.2.0.1", Check::Forbidden),
            ("2001:db8::1", Check::Allowed),
            ("::ffff:192.168.1.9", Check::Allowed),
            ("::1", Check::Forbidden),
        ];
        for (ip, want) in cases {
            assert_eq!(address_check(&list, ip.parse().unwrap()), *want, "{ip}");
        }
        let open = rules(&[("deny", "10.0.0.0/8")]);
        assert_eq!(
            address_check(&open, "11.0.0.1".parse().unwrap()),
            Check::Declined
        );
        assert_eq!(
            address_check(&[], "11.0.0.1".parse().unwrap()),
            Check::Declined
        );
    }

    #[test]
    fn satisfy_all_and_any() {
        use Check::*;
        // (any, [address, auth], verdict)
        let cases: &[(bool, [Check; 2], Option<u16>)] = &[
            (false, [Declined, Declined], None),
            (false, [Allowed, Allowed], None),
            (false, [Forbidden, Unauthorized], Some(403)),
            (false, [Allowed, Unauthorized], Some(401)),
            (false, [Declined, Unauthorized], Some(401)),
            (true, [Forbidden, Allowed], None),
            (true, [Allowed, Unauthorized], None),
            (true, [Forbidden, Unauthorized], Some(401)),
            (true, [Forbidden, Declined], Some(403)),
            (true, [Declined, Declined], None),
        ];
        for (any, checks, want) in cases {
            assert_eq!(satisfy(*any, checks), *want, "{any} {checks:?}");
        }
    }
}

//! Addresses and CIDR blocks as nginx's `ngx_ptocidr` reads them: `10.0.0.1`,
//! `10.0.0.0/8`, `2001:db8::/32`, `::1`. Host bits set below the prefix are
//! cleared (nginx warns "low address bits of ... are meaningless"). An
//! IPv4-mapped IPv6 client (`::ffff:10.0.0.1`) matches the IPv4 blocks, as in
//! nginx's access and realip modules.

use std::net::IpAddr;

/// One address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, host bits cleared.
    addr: IpAddr,
    prefix: u8,
}

/// A parsed block, and whether host bits had to be cleared (a warning).
pub fn parse(text: &str) -> Option<(Cidr, bool)> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, bits)) => {
            if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
                return None;
            }
            (ip, Some(bits.parse::<u8>().ok()?))
        }
        None => (text, None),
    };
    let addr: IpAddr = ip.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return None;
    }
    let masked = mask(addr, prefix);
    Some((
        Cidr {
            addr: masked,
            prefix,
        },
        masked != addr,
    ))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; any other address as is.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// The prefix length (32 or 128 for one address).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` (IPv4-mapped IPv6 counts as IPv4) is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_and_match_like_nginx() {
        // (block, low bits warned, client, matches)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("10.0.0.0/8", false, "10.200.1.1", true),
            ("10.0.0.0/8", false, "11.0.0.1", false),
            ("10.1.2.3/8", true, "10.9.9.9", true),
            ("192.168.1.5", false, "192.168.1.5", true),
            ("192.168.1.5", false, "192.168.1.6", false),
            ("0.0.0.0/0", false, "203.0.113.9", true),
            ("0.0.0.0/0", false, "::1", false),
            ("10.0.0.0/8", false, "::ffff:10.0.0.7", true),
            ("2001:db8::/32", false, "2001:db8:1::5", true),
            ("2001:db8::/32", false, "2001:db9::5", false),
            ("::1", false, "::1", true),
            ("::/0", false, "127.0.0.1", false),
            ("fe80::1/64", true, "fe80::abcd", true),
        ];
        for (block, warned, client, want) in cases {
            let (c, w) = parse(block).unwrap();
            assert_eq!(w, *warned, "{block}");
            assert_eq!(
                c.contains(client.parse().unwrap()),
                *want,
                "{block} {client}"
            );
        }
    }

    #[test]
    fn bad_blocks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "x",
            "1.2.3.4/-1",
            "1.2.3.4/0008",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert_eq!(parse("10.1.2.3/8").unwrap().0.to_string(), "10.0.0.0/8");
    }
}

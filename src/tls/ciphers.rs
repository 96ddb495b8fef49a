//! OpenSSL cipher strings (`ssl_ciphers`, `proxy_ssl_ciphers`) mapped onto the
//! cipher suites rustls implements, and the OpenSSL name of a suite
//! (`$ssl_cipher`). Pure: no I/O.
//!
//! As in nginx with OpenSSL, the string chooses among the TLS 1.2 suites only:
//! TLS 1.3 suites are always on. The syntax is OpenSSL's: entries separated by
//! `:` (or `,` or spaces), each an exact cipher name, an alias (`HIGH`,
//! `ECDHE`, `AESGCM`, ...) or aliases joined by `+` (all must match), with the
//! prefixes `!` (removed for good), `-` (removed), `+` (moved to the end), and
//! `@STRENGTH`. An entry that names only suites rustls lacks (`AES128-SHA`,
//! `DHE-RSA-...`) is reported so the caller can warn; a string that leaves no
//! TLS 1.2 suite is an error.

use rustls::crypto::aws_lc_rs::{cipher_suite as cs, ALL_CIPHER_SUITES};
use rustls::{CipherSuite, SupportedCipherSuite};

/// One TLS 1.2 suite rustls implements: its OpenSSL name, the OpenSSL aliases
/// it belongs to, and its key strength in bits (`@STRENGTH`).
struct Suite {
    suite: SupportedCipherSuite,
    name: &'static str,
    tags: &'static [&'static str],
    bits: u32,
}

const COMMON: &[&str] = &[
    "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "AEAD",
];

fn tls12_suites() -> [Suite; 6] {
    [
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            name: "ECDHE-ECDSA-AES256-GCM-SHA384",
            tags: &["aECDSA", "ECDSA", "AESGCM", "AES", "AES256", "SHA384"],
            bits: 256,
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            name: "ECDHE-ECDSA-AES128-GCM-SHA256",
            tags: &["aECDSA", "ECDSA", "AESGCM", "AES", "AES128", "SHA256"],
            bits: 128,
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            name: "ECDHE-ECDSA-CHACHA20-POLY1305",
            tags: &["aECDSA", "ECDSA", "CHACHA20", "SHA256"],
            bits: 256,
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            name: "ECDHE-RSA-AES256-GCM-SHA384",
            tags: &["aRSA", "RSA", "AESGCM", "AES", "AES256", "SHA384"],
            bits: 256,
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            name: "ECDHE-RSA-AES128-GCM-SHA256",
            tags: &["aRSA", "RSA", "AESGCM", "AES", "AES128", "SHA256"],
            bits: 128,
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            name: "ECDHE-RSA-CHACHA20-POLY1305",
            tags: &["aRSA", "RSA", "CHACHA20", "SHA256"],
            bits: 256,
        },
    ]
}

/// The OpenSSL name of `suite` (what nginx's `$ssl_cipher` shows).
pub fn openssl_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        other => tls12_suites()
            .into_iter()
            .find(|s| s.suite.suite() == other)
            .map_or("", |s| s.name),
    }
}

/// The suites a cipher string selects, in preference order: the TLS 1.2 ones
/// it names, then every TLS 1.3 suite. `unmatched` gets each positive entry
/// that selected nothing rustls implements (the caller warns).
pub fn select(
    spec: &str,
    unmatched: &mut Vec<String>,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let table = tls12_suites();
    let mut chosen: Vec<usize> = Vec::new();
    let mut killed: Vec<usize> = Vec::new();
    for entry in spec.split([':', ',', ' ', ';']).filter(|e| !e.is_empty()) {
        if entry == "@STRENGTH" {
            chosen.sort_by_key(|&i| std::cmp::Reverse(table.get(i).map_or(0, |s| s.bits)));
            continue;
        }
        if entry.starts_with('@') {
            // @SECLEVEL=n: an OpenSSL policy knob with no rustls counterpart.
            continue;
        }
        let (op, body) = match entry.as_bytes().first() {
            Some(b'!') => ('!', entry.get(1..).unwrap_or_default()),
            Some(b'-') => ('-', entry.get(1..).unwrap_or_default()),
            Some(b'+') => ('+', entry.get(1..).unwrap_or_default()),
            _ => (' ', entry),
        };
        let matched: Vec<usize> = (0..table.len())
            .filter(|&i| table.get(i).is_some_and(|s| matches(s, body)))
            .collect();
        match op {
            '!' => {
                chosen.retain(|i| !matched.contains(i));
                killed.extend(&matched);
            }
            '-' => chosen.retain(|i| !matched.contains(i)),
            '+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| matched.contains(i));
                chosen = kept.into_iter().chain(moved).collect();
            }
            _ => {
                if matched.is_empty() && !is_tls13_name(body) {
                    unmatched.push(body.to_string());
                }
                for i in matched {
                    if !chosen.contains(&i) && !killed.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "SSL_CTX_set_cipher_list(\"{spec}\") failed (no TLS 1.2 cipher suite that rustls implements matches)"
        ));
    }
    let tls13 = ALL_CIPHER_SUITES
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied();
    Ok(tls13
        .chain(
            chosen
                .into_iter()
                .filter_map(|i| table.get(i).map(|s| s.suite)),
        )
        .collect())
}

/// Whether `suite` is selected by `body` (`A+B`: every part matches).
fn matches(suite: &Suite, body: &str) -> bool {
    !body.is_empty()
        && body
            .split('+')
            .all(|part| part == suite.name || COMMON.contains(&part) || suite.tags.contains(&part))
}

fn is_tls13_name(name: &str) -> bool {
    matches!(
        name,
        "TLS_AES_256_GCM_SHA384" | "TLS_AES_128_GCM_SHA256" | "TLS_CHACHA20_POLY1305_SHA256"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(spec: &str) -> (Vec<&'static str>, Vec<String>) {
        let mut unmatched = Vec::new();
        let got = select(spec, &mut unmatched).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let names = got
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .map(|s| openssl_name(s.suite()))
            .collect();
        (names, unmatched)
    }

    #[test]
    fn nginx_default_keeps_every_rustls_suite() {
        let (got, unmatched) = names("HIGH:!aNULL:!MD5");
        assert_eq!(got.len(), 6);
        assert!(unmatched.is_empty());
    }

    #[test]
    fn cipher_strings_select_in_order() {
        let cases: &[(&str, &[&str])] = &[
            (
                "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
                &[
                    "ECDHE-RSA-AES128-GCM-SHA256",
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                ],
            ),
            (
                "EECDH+AESGCM:!AES256",
                &[
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "ECDHE-RSA-AES128-GCM-SHA256",
                ],
            ),
            (
                "aRSA+CHACHA20:ECDHE-RSA-AES256-GCM-SHA384",
                &["ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-GCM-SHA384"],
            ),
            (
                "ECDHE+AES128:ECDHE+CHACHA20:+aRSA",
                &[
                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "ECDHE-ECDSA-CHACHA20-POLY1305",
                    "ECDHE-RSA-AES128-GCM-SHA256",
                    "ECDHE-RSA-CHACHA20-POLY1305",
                ],
            ),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:-ALL:ECDHE-RSA-AES256-GCM-SHA384",
                &["ECDHE-RSA-AES256-GCM-SHA384"],
            ),
            (
                "!CHACHA20:CHACHA20:aRSA+AES128",
                &["ECDHE-RSA-AES128-GCM-SHA256"],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(names(spec).0, *want, "{spec}");
        }
    }

    #[test]
    fn entries_rustls_lacks_are_reported_and_an_empty_result_is_an_error() {
        let (got, unmatched) = names("AES128-SHA:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256");
        assert_eq!(got, ["ECDHE-RSA-AES128-GCM-SHA256"]);
        assert_eq!(unmatched, ["AES128-SHA", "DHE-RSA-AES256-GCM-SHA384"]);
        let mut unmatched = Vec::new();
        let e = select("AES128-SHA:RC4", &mut unmatched).expect_err("nothing left");
        assert!(
            e.contains("SSL_CTX_set_cipher_list(\"AES128-SHA:RC4\") failed"),
            "{e}"
        );
        assert!(select("HIGH:!ALL", &mut unmatched).is_err());
    }

    #[test]
    fn every_tls13_suite_stays_and_names_are_openssl_s() {
        let mut unmatched = Vec::new();
        let got = select("ECDHE-RSA-AES128-GCM-SHA256", &mut unmatched).expect("ok");
        let all: Vec<&str> = got.iter().map(|s| openssl_name(s.suite())).collect();
        assert_eq!(
            all,
            [
                "TLS_AES_256_GCM_SHA384",
                "TLS_AES_128_GCM_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
    }
}

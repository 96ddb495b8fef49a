//! nginx's `ignore_invalid_headers` and `underscores_in_headers`: which of a
//! client's request header lines are kept, dropped, or make the request bad.
//! Pure: decisions over bytes, used by [`crate::http1::request`].
//!
//! nginx (checked against 1.22) takes a header name of letters, digits and
//! `-` as valid, `_` too with `underscores_in_headers on`. With
//! `ignore_invalid_headers on` (the default) a line whose name has any other
//! printable byte (`.`, `+`, `@`, `/`, a byte from 0x80, ...) is dropped and
//! logged at `info`; with it `off` the line is passed on. Either way a name
//! with a space, a tab, a control byte or DEL, an empty name, or a line
//! starting with white space makes the request a 400.
//!
//! The parser reads names with `httparse`, which takes RFC 9110 tokens
//! (letters, digits and ``!#$%&'*+-.^_`|~``) and refuses a line with any other
//! byte in its name. So the common case costs one table look-up per name byte
//! ([`HeaderNames::keeps`]); only a head `httparse` refuses for a name is
//! parsed again, from a copy whose names have those bytes masked
//! ([`mask_names`]).

/// The two settings, of the listen address's default server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderNames {
    /// `ignore_invalid_headers`, default on.
    pub ignore_invalid: bool,
    /// `underscores_in_headers`, default off.
    pub underscores: bool,
}

impl HeaderNames {
    /// nginx's defaults: invalid lines dropped, `_` invalid.
    pub const NGINX: HeaderNames = HeaderNames {
        ignore_invalid: true,
        underscores: false,
    };

    /// Whether a line named `name` (an RFC 9110 token, as `httparse` gives
    /// it) is passed on. Always true with `ignore_invalid_headers off`.
    #[inline]
    pub fn keeps(self, name: &[u8]) -> bool {
        if !self.ignore_invalid {
            return true;
        }
        let allowed = if self.underscores {
            VALID | UNDERSCORE
        } else {
            VALID
        };
        name.iter()
            .all(|&b| CLASS.get(usize::from(b)).is_some_and(|c| c & allowed != 0))
    }
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames::NGINX
    }
}

/// A letter, a digit or `-`.
const VALID: u8 = 1;
/// `_`.
const UNDERSCORE: u8 = 2;
/// One of RFC 9110's other token bytes: ``!#$%&'*+.^`|~``.
const TOKEN: u8 = 4;

/// The class of each byte in a header name.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || c == b'-' {
            VALID
        } else if c == b'_' {
            UNDERSCORE
        } else if matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'.'
                | b'^'
                | b'`'
                | b'|'
                | b'~'
        ) {
            TOKEN
        } else {
            0
        };
        b += 1;
    }
    t
};

/// A copy of the request head at the start of `buf` in which every byte of a
/// header name that is printable but not an RFC 9110 token (`@`, `/`, a byte
/// from 0x80, ...) is replaced by `.`: `httparse` then reads those lines, and
/// [`HeaderNames::keeps`] drops them (`.` is never valid). Names with white
/// space or control bytes are left as they are, for the parser to refuse.
/// Only the head is scanned (up to its blank line); the rest is copied.
pub fn mask_names(buf: &[u8]) -> Vec<u8> {
    let mut out = buf.to_vec();
    // Blank lines before the request line, then the request line.
    let skip = out
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(out.len());
    let mut at = match out.iter().skip(skip).position(|&b| b == b'\n') {
        Some(i) => skip + i + 1,
        None => return out,
    };
    while let Some(rest) = out.get_mut(at..) {
        let line_len = rest.iter().position(|&b| b == b'\n');
        let line = match line_len {
            Some(n) => rest.get_mut(..n).unwrap_or_default(),
            None => rest,
        };
        if line.is_empty() || line == b"\r" {
            break;
        }
        let name_len = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        for b in line.iter_mut().take(name_len) {
            if *b > b' ' && *b != 0x7f && CLASS.get(usize::from(*b)) == Some(&0) {
                *b = b'.';
            }
        }
        match line_len {
            Some(n) => at += n + 1,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNDERSCORES_ON: HeaderNames = HeaderNames {
        ignore_invalid: true,
        underscores: true,
    };
    const IGNORE_OFF: HeaderNames = HeaderNames {
        ignore_invalid: false,
        underscores: false,
    };

    #[test]
    fn token_names_kept_as_nginx_keeps_them() {
        // (name, default, underscores_in_headers on, ignore_invalid_headers off):
        // what nginx 1.22 passed to its backend.
        let cases: &[(&[u8], bool, bool, bool)] = &[
            (b"X-Foo", true, true, true),
            (b"x-foo-9", true, true, true),
            (b"X_Foo", false, true, true),
            (b"_Foo", false, true, true),
            (b"X.Foo", false, false, true),
            (b".Foo", false, false, true),
            (b"X+Foo", false, false, true),
            (b"X~Foo", false, false, true),
            (b"X!Foo", false, false, true),
            (b"X*Foo", false, false, true),
            (b"X'Foo", false, false, true),
            (b"X#Foo", false, false, true),
            (b"X|Foo", false, false, true),
        ];
        for &(name, default, underscores, off) in cases {
            let n = String::from_utf8_lossy(name);
            assert_eq!(HeaderNames::NGINX.keeps(name), default, "{n} default");
            assert_eq!(
                UNDERSCORES_ON.keeps(name),
                underscores,
                "{n} underscores on"
            );
            assert_eq!(IGNORE_OFF.keeps(name), off, "{n} ignore off");
        }
    }

    #[test]
    fn names_are_masked_only_where_printable_and_not_a_token() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"GET /@x HTTP/1.1\r\nHost: a\r\nX@Foo: v@1\r\n\r\nA@B: body",
                b"GET /@x HTTP/1.1\r\nHost: a\r\nX.Foo: v@1\r\n\r\nA@B: body",
            ),
            (
                b"\r\nGET / HTTP/1.1\r\nX\xc3\xa9/(: 1\r\nX Y@: 2\r\nX\x01@: 3\r\n",
                b"\r\nGET / HTTP/1.1\r\nX....: 1\r\nX Y.: 2\r\nX\x01.: 3\r\n",
            ),
            // A line still arriving: its name so far.
            (b"GET / HTTP/1.1\r\nA@B", b"GET / HTTP/1.1\r\nA.B"),
            (b"GET / HTTP/1.1", b"GET / HTTP/1.1"),
            (b": v\r\nX_.+~: w\r\n", b": v\r\nX_.+~: w\r\n"),
        ];
        for &(input, want) in cases {
            assert_eq!(
                mask_names(input).escape_ascii().to_string(),
                want.escape_ascii().to_string()
            );
        }
    }
}

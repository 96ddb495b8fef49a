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
//! parsed again, skipping lines, and each skipped line is then classified
//! ([`skipped_line`]).

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

/// What a line `httparse` skipped (while told to skip invalid lines) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// A name with a byte nginx takes as invalid but printable: the line is
    /// dropped (`ignore_invalid_headers on`).
    Dropped,
    /// The request is bad (400): a name with white space or a control byte,
    /// an empty name, no colon, or a line skipped for its value.
    Bad,
}

/// Classifies `line` (without its CR LF), which `httparse` skipped.
pub fn skipped_line(line: &[u8]) -> Skipped {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Skipped::Bad;
    };
    let name = line.get(..colon).unwrap_or_default();
    if name.is_empty() || name.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Skipped::Bad;
    }
    let token = name.iter().all(|&b| {
        CLASS
            .get(usize::from(b))
            .is_some_and(|&c| c & (VALID | UNDERSCORE | TOKEN) != 0)
    });
    if token {
        // Its name was fine for `httparse`: the value was not.
        Skipped::Bad
    } else {
        Skipped::Dropped
    }
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
    fn skipped_lines_are_dropped_or_bad_as_nginx_answers() {
        let cases: &[(&[u8], Skipped)] = &[
            (b"X@Foo: v1", Skipped::Dropped),
            (b"X(Foo: v1", Skipped::Dropped),
            (b"X/Foo: v1", Skipped::Dropped),
            (b"X[Foo: v1", Skipped::Dropped),
            (b"X{Foo: v1", Skipped::Dropped),
            (b"X\"Foo: v1", Skipped::Dropped),
            (b"X=Foo: v1", Skipped::Dropped),
            (b"X;Foo: v1", Skipped::Dropped),
            (b"X?Foo: v1", Skipped::Dropped),
            (b"X\\Foo: v1", Skipped::Dropped),
            (b"X,Foo: v1", Skipped::Dropped),
            (b"X\xc3\xa9Foo: v1", Skipped::Dropped),
            (b"X@Foo:v1", Skipped::Dropped),
            (b"X Foo: v1", Skipped::Bad),
            (b"X-Foo : v1", Skipped::Bad),
            (b"X\tFoo: v1", Skipped::Bad),
            (b"X\x01Foo: v1", Skipped::Bad),
            (b"X\x7fFoo: v1", Skipped::Bad),
            (b": v1", Skipped::Bad),
            (b" X-Foo: v1", Skipped::Bad),
            // A token name: skipped for its value.
            (b"X-Foo: a\x01b", Skipped::Bad),
            // No colon (nginx passes it with an empty value: ours is a 400).
            (b"Foo", Skipped::Bad),
        ];
        for &(line, want) in cases {
            assert_eq!(skipped_line(line), want, "{}", line.escape_ascii());
        }
    }
}

//! Cookie attributes beyond Tengine's (ours, issue 19): `HttpOnly`, `Secure`
//! (always, or only when the request arrived over TLS), `SameSite` and
//! `Partitioned`. Insert mode writes them after Tengine's attributes; rewrite
//! and prefix modes add to the backend's cookie only those it did not set
//! itself (the backend's own are kept, never duplicated).
//!
//! Whether the request arrived over TLS is a plain `bool` argument: the proxy
//! reads it from one place (`ConnState::is_tls`).

/// `secure` / `secure=auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Secure {
    #[default]
    Off,
    /// `secure`: always.
    On,
    /// `secure=auto`: only on responses to requests that arrived over TLS.
    Auto,
}

/// `samesite=strict|lax|none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    fn attribute(self) -> &'static [u8] {
        match self {
            SameSite::Strict => b"; SameSite=Strict",
            SameSite::Lax => b"; SameSite=Lax",
            SameSite::None => b"; SameSite=None",
        }
    }
}

/// The configured extra attributes of the sticky cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attrs {
    pub httponly: bool,
    pub secure: Secure,
    pub samesite: Option<SameSite>,
    pub partitioned: bool,
}

/// Which attributes to write; see [`Attrs::wanted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Wanted {
    httponly: bool,
    secure: bool,
    samesite: Option<SameSite>,
    partitioned: bool,
}

impl Attrs {
    /// True when no extra attribute is configured (Tengine's cookie).
    pub fn is_empty(&self) -> bool {
        *self == Attrs::default()
    }

    /// Whether the cookie carries `Secure` on a response to a request that
    /// arrived over TLS (`tls`) or not: `secure`, `secure=auto` over TLS, and
    /// always with `samesite=none` or `partitioned`, which browsers refuse
    /// without it.
    pub fn secure(&self, tls: bool) -> bool {
        let asked = match self.secure {
            Secure::Off => false,
            Secure::On => true,
            Secure::Auto => tls,
        };
        asked || self.samesite == Some(SameSite::None) || self.partitioned
    }

    fn wanted(&self, tls: bool) -> Wanted {
        Wanted {
            httponly: self.httponly,
            secure: self.secure(tls),
            samesite: self.samesite,
            partitioned: self.partitioned,
        }
    }

    /// Appends `; HttpOnly; Secure; SameSite=X; Partitioned` (those that apply,
    /// in that order) to an inserted cookie.
    pub fn write(&self, tls: bool, out: &mut Vec<u8>) {
        self.wanted(tls).write(out);
    }

    /// The number of bytes [`Attrs::write`] appends.
    pub fn len(&self, tls: bool) -> usize {
        let w = self.wanted(tls);
        usize::from(w.httponly) * "; HttpOnly".len()
            + usize::from(w.secure) * "; Secure".len()
            + w.samesite.map_or(0, |s| s.attribute().len())
            + usize::from(w.partitioned) * "; Partitioned".len()
    }

    /// Rewrite/prefix: what to append to the backend's `Set-Cookie` value
    /// `set_cookie` so that it carries the configured attributes, leaving out
    /// every one the backend set itself (its own `SameSite` wins over ours).
    /// Empty when nothing is missing or the value does not parse as a cookie.
    pub fn missing_from(&self, set_cookie: &[u8], tls: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        // Attribute names are ASCII: bytes that are not UTF-8 (obs-text in a
        // value) cannot hide one, so they are read as replacement characters.
        let text = String::from_utf8_lossy(set_cookie);
        let Ok(parsed) = ::cookie::Cookie::parse(text.as_ref()) else {
            return out;
        };
        let mut w = self.wanted(tls);
        w.httponly &= parsed.http_only() != Some(true);
        w.secure &= parsed.secure() != Some(true);
        if parsed.same_site().is_some() {
            w.samesite = None;
        }
        w.partitioned &= parsed.partitioned() != Some(true);
        w.write(&mut out);
        out
    }
}

impl Wanted {
    fn write(&self, out: &mut Vec<u8>) {
        if self.httponly {
            out.extend_from_slice(b"; HttpOnly");
        }
        if self.secure {
            out.extend_from_slice(b"; Secure");
        }
        if let Some(s) = self.samesite {
            out.extend_from_slice(s.attribute());
        }
        if self.partitioned {
            out.extend_from_slice(b"; Partitioned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(httponly: bool, secure: Secure, samesite: Option<SameSite>, part: bool) -> Attrs {
        Attrs {
            httponly,
            secure,
            samesite,
            partitioned: part,
        }
    }

    #[test]
    fn attribute_combinations() {
        use SameSite as S;
        use Secure::*;
        // (attrs, over TLS, what is appended)
        let cases: Vec<(Attrs, bool, &str)> = vec![
            (Attrs::default(), true, ""),
            (attrs(true, Off, None, false), false, "; HttpOnly"),
            (attrs(false, On, None, false), false, "; Secure"),
            (attrs(false, Auto, None, false), false, ""),
            (attrs(false, Auto, None, false), true, "; Secure"),
            (
                attrs(false, Off, Some(S::Lax), false),
                false,
                "; SameSite=Lax",
            ),
            (
                attrs(false, Off, Some(S::Strict), false),
                true,
                "; SameSite=Strict",
            ),
            (
                attrs(false, Off, Some(S::None), false),
                false,
                "; Secure; SameSite=None",
            ),
            (
                attrs(false, Auto, Some(S::None), false),
                false,
                "; Secure; SameSite=None",
            ),
            (
                attrs(false, Off, None, true),
                false,
                "; Secure; Partitioned",
            ),
            (
                attrs(true, On, Some(S::Lax), true),
                false,
                "; HttpOnly; Secure; SameSite=Lax; Partitioned",
            ),
        ];
        for (a, tls, want) in cases {
            let mut out = Vec::new();
            a.write(tls, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want, "{a:?} tls={tls}");
            assert_eq!(a.len(tls), want.len());
        }
    }

    #[test]
    fn missing_from_keeps_the_backends_own_attributes() {
        use SameSite as S;
        use Secure::*;
        let all = attrs(true, On, Some(S::Lax), true);
        let cases: Vec<(Attrs, &str, &str)> = vec![
            (
                all,
                "J=1; Path=/",
                "; HttpOnly; Secure; SameSite=Lax; Partitioned",
            ),
            (all, "J=1; httponly; SECURE", "; SameSite=Lax; Partitioned"),
            (
                all,
                "J=1; SameSite=Strict; Partitioned; Secure; HttpOnly",
                "",
            ),
            (
                attrs(false, Off, Some(S::None), false),
                "J=1; SameSite=Strict",
                "; Secure",
            ),
            (attrs(true, Off, None, false), "J=1; HttpOnly", ""),
            (Attrs::default(), "J=1", ""),
            (all, "not a cookie", ""),
            (all, "\u{ff}", ""),
        ];
        for (a, backend, want) in cases {
            let got = a.missing_from(backend.as_bytes(), false);
            assert_eq!(String::from_utf8_lossy(&got), want, "{a:?} {backend}");
        }
        // Found by the set_cookie fuzz target: a value with obs-text (not
        // UTF-8) still gets the attributes it lacks.
        let cases: [(&[u8], &str); 2] = [
            (
                b"route=\xfe\t\t",
                "; HttpOnly; Secure; SameSite=Lax; Partitioned",
            ),
            (
                b"route=\xfe; HttpOnly; Secure",
                "; SameSite=Lax; Partitioned",
            ),
        ];
        for (backend, want) in cases {
            let got = all.missing_from(backend, false);
            assert_eq!(String::from_utf8_lossy(&got), want, "{backend:?}");
        }
    }
}

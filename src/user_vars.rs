//! The per-request store of what the rewrite module changes: the variables a
//! configuration defines (`set`, named regex groups), the captures of the last
//! regex that matched (`$1`..`$9`), and the URI after a rewrite or an internal
//! redirect. A request gets one only when a `rewrite`/`set`/`if` runs or it is
//! redirected; [`crate::vars`] reads it through `RequestVars::user`. It also
//! keeps an intercepted backend response's lines for the location an
//! `error_page` leads to.

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct UserVars {
    /// The URI now (decoded path, arguments), when it is no longer the
    /// request's own.
    pub uri: Option<(Vec<u8>, Option<String>)>,
    values: Vec<Option<Vec<u8>>>,
    /// The text the last successful regex ran on, and its groups' spans.
    subject: String,
    captures: Vec<Option<(usize, usize)>>,
    /// The header lines of a backend response `proxy_intercept_errors` turned
    /// into an `error_page` redirect: `$upstream_http_*` where it leads, as
    /// nginx keeps the upstream's lines until the next `proxy_pass`.
    pub upstream_headers: Option<http::HeaderMap>,
}

impl UserVars {
    /// The value of user variable `index`, `None` when never set.
    pub fn get(&self, index: u16) -> Option<&[u8]> {
        self.values
            .get(usize::from(index))
            .and_then(|v| v.as_deref())
    }

    /// Sets user variable `index`.
    pub fn set(&mut self, index: u16, value: Vec<u8>) {
        let i = usize::from(index);
        if self.values.len() <= i {
            self.values.resize(i + 1, None);
        }
        if let Some(slot) = self.values.get_mut(i) {
            *slot = Some(value);
        }
    }

    /// Capture `n` of the last match (`$0` is the whole match); empty when the
    /// group did not take part or there is no such group.
    pub fn capture(&self, n: u8) -> &[u8] {
        match self.captures.get(usize::from(n)).copied().flatten() {
            Some((start, end)) => self.subject.as_bytes().get(start..end).unwrap_or_default(),
            None => &[],
        }
    }

    /// Records a successful match of `caps` on `subject` and sets the user
    /// variables of its named groups (`named`: group index, variable index).
    pub fn matched(&mut self, subject: &str, caps: &regex::Captures<'_>, named: &[(usize, u16)]) {
        self.subject.clear();
        self.subject.push_str(subject);
        self.captures.clear();
        self.captures
            .extend(caps.iter().map(|m| m.map(|m| (m.start(), m.end()))));
        for &(group, var) in named {
            let value = caps.get(group).map_or(&[][..], |m| m.as_str().as_bytes());
            self.set(var, value.to_vec());
        }
    }

    /// The arguments now, when the URI was changed.
    pub fn args(&self) -> Option<&str> {
        self.uri.as_ref().map(|(_, a)| a.as_deref().unwrap_or(""))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_named_groups() {
        let re = regex::Regex::new("^/(?<id>[0-9]+)/(x)?(.*)$").unwrap();
        let mut v = UserVars::default();
        let subject = "/42/rest";
        let caps = re.captures(subject).unwrap();
        v.matched(subject, &caps, &[(1, 3)]);
        assert_eq!(v.capture(0), b"/42/rest");
        assert_eq!(v.capture(1), b"42");
        assert_eq!(v.capture(2), b"");
        assert_eq!(v.capture(3), b"rest");
        assert_eq!(v.capture(9), b"");
        assert_eq!(v.get(3), Some(&b"42"[..]));
        assert_eq!(v.get(0), None);
        v.set(0, b"a".to_vec());
        assert_eq!(v.get(0), Some(&b"a"[..]));
    }
}

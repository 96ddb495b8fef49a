//! Learn mode (ours, issue 19): Cloud Foundry gorouter's `JSESSIONID` ->
//! `__VCAP_ID__`, generalised to `learn=NAME[,NAME]`.
//!
//! - Request: our cookie routes only when the request also carries one of the
//!   learned cookies ([`in_request`]); otherwise it is a new session.
//! - Response: our cookie is inserted only when the backend sets one of the
//!   learned cookies ([`in_response`]), with that cookie's `Max-Age`/`Expires`,
//!   `Path`, `Domain`, `Secure`, `SameSite` and `Partitioned` mirrored onto
//!   ours; when the backend expires its cookie, ours is expired in the same
//!   response ([`value`]). A re-pinned client (fallback) gets ours as in
//!   insert mode, as gorouter does when the instance it named is gone.
//!
//! The backend's `Set-Cookie` is parsed with the `cookie` crate.

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use super::attrs::{Attrs, SameSite, Secure};
use super::cookie::find_in_value;
use super::set_cookie::{value_range, write_pair};
use super::StickyConf;
use crate::numfmt::Decimal;

/// The index (in `learn=`) of the first learned cookie the request carries.
pub fn in_request(conf: &StickyConf, headers: &HeaderMap) -> Option<u8> {
    let i = conf.learn.iter().position(|name| {
        headers
            .get_all(COOKIE)
            .iter()
            .any(|v| find_in_value(v.as_bytes(), name).is_some())
    })?;
    u8::try_from(i).ok()
}

/// What the backend's learned cookie says about ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    /// Index of the cookie's name in `learn=`.
    pub index: u8,
    /// The backend deleted its cookie (`Max-Age` <= 0 or a past `Expires`).
    pub expired: bool,
    pub max_age: Option<i64>,
    /// `Expires` as Unix seconds.
    pub expires: Option<i64>,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub samesite: Option<SameSite>,
    pub partitioned: bool,
}

/// The first `Set-Cookie` of the response that sets a learned cookie, read at
/// `now`; `None` when there is none (or it does not parse).
pub fn in_response(conf: &StickyConf, headers: &HeaderMap, now: i64) -> Option<Learned> {
    let (index, v) = headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let i = conf
            .learn
            .iter()
            .position(|name| value_range(v.as_bytes(), name).is_some())?;
        Some((u8::try_from(i).ok()?, v))
    })?;
    let parsed = ::cookie::Cookie::parse(std::str::from_utf8(v.as_bytes()).ok()?).ok()?;
    let max_age = parsed.max_age().map(|d| d.whole_seconds());
    let expires = parsed.expires_datetime().map(|t| t.unix_timestamp());
    let expired =
        max_age.is_some_and(|m| m <= 0) || (max_age.is_none() && expires.is_some_and(|e| e <= now));
    Some(Learned {
        index,
        expired,
        max_age,
        expires,
        path: parsed.path().map(str::to_string),
        domain: parsed.domain().map(str::to_string),
        secure: parsed.secure() == Some(true),
        samesite: parsed.same_site().map(|s| match s {
            ::cookie::SameSite::Strict => SameSite::Strict,
            ::cookie::SameSite::Lax => SameSite::Lax,
            ::cookie::SameSite::None => SameSite::None,
        }),
        partitioned: parsed.partitioned() == Some(true),
    })
}

/// Our `Set-Cookie` for peer `sid` mirroring `learned`:
/// `NAME=VALUE[; Domain=D]; Path=P[; Max-Age=N][; Expires=DATE]` then the
/// flag attributes, each the backend's where it set one, else ours. An
/// expired learned cookie gives `NAME=; ...; Max-Age=0; Expires=(1970)`.
pub fn value(
    conf: &StickyConf,
    learned: &Learned,
    sid: &str,
    now: i64,
    firstseen: i64,
    tls: bool,
) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(128);
    if learned.expired {
        out.extend_from_slice(conf.cookie.as_bytes());
        out.push(b'=');
    } else {
        let stamps = conf
            .timestamps()
            .then(|| (Decimal::new(now), Decimal::new(firstseen)));
        write_pair(conf, sid, stamps.as_ref(), &mut out)?;
    }
    if let Some(domain) = learned.domain.as_deref().or(conf.domain.as_deref()) {
        out.extend_from_slice(b"; Domain=");
        out.extend_from_slice(domain.as_bytes());
    }
    out.extend_from_slice(b"; Path=");
    out.extend_from_slice(learned.path.as_deref().unwrap_or(&conf.path).as_bytes());
    let (max_age, expires) = if learned.expired {
        (Some(0), Some(0))
    } else if learned.max_age.is_some() || learned.expires.is_some() {
        (learned.max_age, learned.expires)
    } else {
        (conf.maxage, conf.maxage.map(|m| now.saturating_add(m)))
    };
    if let Some(m) = max_age {
        out.extend_from_slice(b"; Max-Age=");
        out.extend_from_slice(Decimal::new(m).as_bytes());
    }
    if let Some(e) = expires {
        out.extend_from_slice(b"; Expires=");
        out.extend_from_slice(crate::timefmt::http_date_unix(e).as_bytes());
    }
    let attrs = Attrs {
        httponly: conf.attrs.httponly,
        secure: if learned.secure {
            Secure::On
        } else {
            conf.attrs.secure
        },
        samesite: learned.samesite.or(conf.attrs.samesite),
        partitioned: learned.partitioned || conf.attrs.partitioned,
    };
    attrs.write(tls, &mut out);
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_571_297_169;

    fn conf() -> StickyConf {
        StickyConf {
            cookie: "__VCAP_ID__".into(),
            learn: vec!["JSESSIONID".into(), "SESSION".into()],
            ..StickyConf::default()
        }
    }

    fn headers(name: http::header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn request_routes_only_with_a_learned_cookie() {
        let c = conf();
        let cases: Vec<(Vec<&str>, Option<u8>)> = vec![
            (vec![], None),
            (vec!["__VCAP_ID__=app-1"], None),
            (vec!["__VCAP_ID__=app-1; JSESSIONID=abc"], Some(0)),
            (vec!["SESSION=x", "__VCAP_ID__=app-1"], Some(1)),
            (vec!["XJSESSIONID=abc; __VCAP_ID__=app-1"], None),
            (vec!["SESSION=1; JSESSIONID=2"], Some(0)),
        ];
        for (cookies, want) in cases {
            assert_eq!(
                in_request(&c, &headers(COOKIE, &cookies)),
                want,
                "{cookies:?}"
            );
        }
    }

    #[test]
    fn expiry_and_attributes_are_mirrored() {
        let c = conf();
        let sid = "app-1";
        // (backend Set-Cookies, our Set-Cookie or None)
        let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
            (vec!["other=1"], None),
            (vec![], None),
            (
                vec!["JSESSIONID=abc"],
                Some("__VCAP_ID__=app-1; Path=/"),
            ),
            (
                vec!["a=1", "JSESSIONID=abc; Path=/shop; Domain=example.com; Max-Age=600; Secure; SameSite=None; Partitioned; HttpOnly"],
                Some("__VCAP_ID__=app-1; Domain=example.com; Path=/shop; Max-Age=600; Secure; SameSite=None; Partitioned"),
            ),
            (
                vec!["SESSION=x; Expires=Wed, 21 Oct 2026 07:28:00 GMT"],
                Some("__VCAP_ID__=app-1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
            ),
            (
                vec!["JSESSIONID=; Max-Age=0; Path=/x"],
                Some("__VCAP_ID__=; Path=/x; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ),
            (
                vec!["JSESSIONID=gone; Expires=Thu, 01 Jan 1970 00:00:01 GMT"],
                Some("__VCAP_ID__=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ),
            (
                vec!["JSESSIONID=abc; Max-Age=-1"],
                Some("__VCAP_ID__=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ),
        ];
        for (backend, want) in cases {
            let h = headers(SET_COOKIE, &backend);
            let got =
                in_response(&c, &h, NOW).map(|l| value(&c, &l, sid, NOW, NOW, false).unwrap());
            assert_eq!(
                got.as_ref().map(|v| v.to_str().unwrap()),
                want,
                "{backend:?}"
            );
        }
    }

    #[test]
    fn our_attributes_apply_where_the_backend_set_none() {
        let c = StickyConf {
            attrs: Attrs {
                httponly: true,
                secure: Secure::Auto,
                samesite: Some(SameSite::Lax),
                partitioned: false,
            },
            maxage: Some(60),
            ..conf()
        };
        let h = headers(SET_COOKIE, &["JSESSIONID=abc; SameSite=Strict"]);
        let l = in_response(&c, &h, NOW).unwrap();
        assert_eq!(l.index, 0);
        let got = value(&c, &l, "s", NOW, NOW, true).unwrap();
        assert_eq!(
            got.to_str().unwrap(),
            "__VCAP_ID__=s; Path=/; Max-Age=60; Expires=Thu, 17 Oct 2019 07:27:09 GMT; HttpOnly; Secure; SameSite=Strict"
        );
    }
}

//! What of the client's request goes to the backend: `proxy_method`,
//! `proxy_pass_request_headers`, `proxy_pass_request_body`, `proxy_set_body`.
//! [`RequestShape`] is the typed setting of a location; [`Shaped`] its values
//! for one request (templates evaluated while the request is planned).

use bytes::Bytes;
use http::Method;

use crate::config::Template;

/// The settings of one location (nginx's defaults: the client's method,
/// headers and body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestShape {
    /// `proxy_method METHOD` (variables allowed).
    pub method: Option<Template>,
    /// `proxy_pass_request_headers`, default on.
    pub pass_headers: bool,
    /// `proxy_pass_request_body`, default on.
    pub pass_body: bool,
    /// `proxy_set_body VALUE` (variables allowed): the body sent instead.
    pub set_body: Option<Template>,
}

impl Default for RequestShape {
    fn default() -> Self {
        RequestShape {
            method: None,
            pass_headers: true,
            pass_body: true,
            set_body: None,
        }
    }
}

impl RequestShape {
    /// True when the location changes nothing (the common case: no work).
    pub fn is_default(&self) -> bool {
        *self == RequestShape::default()
    }

    /// The values for one request; `eval` evaluates a template.
    pub fn evaluate(&self, eval: impl Fn(&Template) -> Vec<u8>) -> Shaped {
        Shaped {
            method: self
                .method
                .as_ref()
                .and_then(|t| Method::from_bytes(&eval(t)).ok()),
            pass_headers: self.pass_headers,
            body: match &self.set_body {
                Some(t) => BodySource::Fixed(Bytes::from(eval(t))),
                None if !self.pass_body => BodySource::None,
                None => BodySource::Client,
            },
        }
    }
}

/// Where the body sent to the backend comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    Client,
    /// `proxy_pass_request_body off`: no body.
    None,
    /// `proxy_set_body`.
    Fixed(Bytes),
}

/// A location's [`RequestShape`] for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped {
    /// The method sent instead of the client's (an invalid value: the
    /// client's).
    pub method: Option<Method>,
    pub pass_headers: bool,
    pub body: BodySource,
}

impl Default for Shaped {
    fn default() -> Self {
        Shaped {
            method: None,
            pass_headers: true,
            body: BodySource::Client,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::template;

    #[test]
    fn values_per_request() {
        let t = |s: &str| Some(template::parse(s).unwrap());
        let eval = |t: &Template| t.source.replace("$arg_x", "POST").into_bytes();
        assert_eq!(RequestShape::default().evaluate(eval), Shaped::default());
        assert!(RequestShape::default().is_default());
        let shape = RequestShape {
            method: t("$arg_x"),
            pass_headers: false,
            pass_body: false,
            set_body: None,
        };
        let s = shape.evaluate(eval);
        assert_eq!(s.method, Some(Method::POST));
        assert_eq!(s.body, BodySource::None);
        assert!(!s.pass_headers);
        let body = RequestShape {
            method: t("BAD METHOD"),
            set_body: t("a=$arg_x"),
            ..RequestShape::default()
        };
        let s = body.evaluate(eval);
        assert_eq!(s.method, None, "an invalid method keeps the client's");
        assert_eq!(s.body, BodySource::Fixed(Bytes::from_static(b"a=POST")));
    }
}

//! Proxy-made responses: the one error -> status mapping, nginx-like HTML pages,
//! the `Server` header, and `return CODE [TEXT]` / redirects.
//!
//! [`ProxyError::status`] is the only place an error becomes a status code.
//! [`MadeResponse::status_page`] renders the small HTML body nginx sends (with our name, and the
//! version only when `server_tokens on`). [`return_response`] turns an evaluated
//! `return` into status, optional `Location` and body, making relative redirect
//! targets absolute as nginx's `absolute_redirect on` does.

use bytes::Bytes;
use http::header::HeaderValue;
use http::StatusCode;

pub use crate::http1::status::reason;

/// The product name shown in `Server` and error pages.
pub const PRODUCT: &str = "sticky-proxy";

/// `Server: sticky-proxy/VERSION` (`server_tokens on`) or `Server: sticky-proxy`.
pub fn server_header(server_tokens: bool) -> HeaderValue {
    if server_tokens {
        HeaderValue::from_static(concat!("sticky-proxy/", env!("CARGO_PKG_VERSION")))
    } else {
        HeaderValue::from_static(PRODUCT)
    }
}

/// Everything the proxy itself can fail a request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// Malformed request, invalid Host, bad path.
    BadRequest,
    /// No location (or nothing to do there).
    NotFound,
    /// Method the location cannot serve.
    MethodNotAllowed,
    /// `client_header_timeout` / `client_body_timeout` expired.
    RequestTimeout,
    /// Body over `client_max_body_size`.
    PayloadTooLarge,
    /// Request line over `large_client_header_buffers`.
    UriTooLong,
    /// A header (or all of them) over `large_client_header_buffers`.
    HeaderTooLarge,
    /// A bug or an impossible state.
    Internal,
    /// Transfer coding or method the proxy does not implement.
    NotImplemented,
    /// The backend could not be reached or answered garbage; also sticky
    /// `fallback=off` with the pinned peer down.
    BadGateway,
    /// The backend timed out.
    GatewayTimeout,
    /// HTTP version other than 1.x.
    VersionNotSupported,
    /// Plain HTTP on a TLS listener (nginx's 497; 400 with its own page).
    PlainHttpToHttps,
    /// The client certificate did not verify (nginx's 495; 400).
    SslCertificateError,
    /// `ssl_verify_client on` without a client certificate (nginx's 496; 400).
    NoSslCertificate,
    /// The client closed the connection before the response (nginx's 499,
    /// seen only in logs).
    ClientClosedRequest,
}

impl ProxyError {
    /// The status code of the error: the one mapping.
    pub fn status(self) -> StatusCode {
        match self {
            ProxyError::BadRequest
            | ProxyError::PlainHttpToHttps
            | ProxyError::SslCertificateError
            | ProxyError::NoSslCertificate => StatusCode::BAD_REQUEST,
            ProxyError::NotFound => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ProxyError::ClientClosedRequest => CLIENT_CLOSED_REQUEST,
        }
    }

    /// The line nginx adds to the page of its 4xx codes that are sent as 400.
    fn detail(self) -> Option<&'static str> {
        match self {
            ProxyError::PlainHttpToHttps => Some("The plain HTTP request was sent to HTTPS port"),
            ProxyError::SslCertificateError => Some("The SSL certificate error"),
            ProxyError::NoSslCertificate => Some("No required SSL certificate was sent"),
            _ => None,
        }
    }

    /// True when nginx closes the client connection after this error (the request
    /// stream can no longer be trusted).
    pub fn closes_connection(self) -> bool {
        closes_connection(self.status())
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status();
        write!(f, "{} {}", status.as_u16(), reason(status))
    }
}

impl std::error::Error for ProxyError {}

impl From<crate::http1::request::RequestError> for ProxyError {
    fn from(e: crate::http1::request::RequestError) -> ProxyError {
        use crate::http1::request::RequestError;
        match e {
            RequestError::BadRequest => ProxyError::BadRequest,
            RequestError::UriTooLong => ProxyError::UriTooLong,
            RequestError::HeaderTooLarge => ProxyError::HeaderTooLarge,
            RequestError::NotImplemented => ProxyError::NotImplemented,
            RequestError::MethodNotAllowed => ProxyError::MethodNotAllowed,
            RequestError::VersionNotSupported => ProxyError::VersionNotSupported,
            RequestError::PlainHttpToHttps => ProxyError::PlainHttpToHttps,
            RequestError::SslCertificateError => ProxyError::SslCertificateError,
            RequestError::NoSslCertificate => ProxyError::NoSslCertificate,
        }
    }
}

impl From<crate::proxy::route::RouteError> for ProxyError {
    fn from(e: crate::proxy::route::RouteError) -> ProxyError {
        match e {
            crate::proxy::route::RouteError::InvalidHost => ProxyError::BadRequest,
            crate::proxy::route::RouteError::NoListener => ProxyError::Internal,
        }
    }
}

impl From<crate::proxy::uri::UriError> for ProxyError {
    fn from(_: crate::proxy::uri::UriError) -> ProxyError {
        ProxyError::BadRequest
    }
}

/// nginx's 499: the client closed the connection before the response.
pub const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// nginx disables keep-alive after these statuses (400, 408, 413, 414, 431, 499,
/// 500, 501).
pub fn closes_connection(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        400 | 408 | 413 | 414 | 431 | 499 | 500 | 501 | 505
    )
}

/// True when nginx has a special page for `status` (3xx redirects, 4xx, 5xx).
/// The codes nginx 1.22 has a page for (`ngx_http_error_pages`; its 494-497
/// go out as 400 with a line of detail, see [`page`]); any other
/// goes out with an empty body (`return 418;`: `Content-Length: 0`).
fn has_page(status: u16) -> bool {
    matches!(
        status,
        301..=303 | 307 | 308 | 400..=406 | 408..=416 | 421 | 429 | 500..=505 | 507
    )
}

/// The HTML body nginx sends for a status (`<html>... <center>sticky-proxy</center>
/// ...`), or an empty body for statuses without a page (2xx, 304, 418);
/// `detail`: nginx's extra line for its codes sent as 400 (`<center>The
/// plain HTTP request was sent to HTTPS port</center>`).
fn page(status: StatusCode, detail: Option<&str>, server_tokens: bool) -> Bytes {
    let code = status.as_u16();
    if !has_page(code) {
        return Bytes::new();
    }
    // nginx's pages for 302 and 401 word them differently from its status
    // lines (`302 Moved Temporarily`, `401 Unauthorized`).
    let wording = match code {
        302 => "Found",
        401 => "Authorization Required",
        _ => reason(status),
    };
    let heading = format!("{code} {wording}");
    let (title, extra) = match detail {
        Some(detail) => (
            format!("{code} {detail}"),
            format!("<center>{detail}</center>\r\n"),
        ),
        None => (heading.clone(), String::new()),
    };
    let name = if server_tokens {
        concat!("sticky-proxy/", env!("CARGO_PKG_VERSION"))
    } else {
        PRODUCT
    };
    Bytes::from(format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
         <center><h1>{heading}</h1></center>\r\n{extra}<hr><center>{name}</center>\r\n\
         </body>\r\n</html>\r\n"
    ))
}

/// `Content-Type` of the status pages.
pub const HTML: HeaderValue = HeaderValue::from_static("text/html");

/// A response the proxy makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeResponse {
    pub status: StatusCode,
    /// `Location` for redirects.
    pub location: Option<HeaderValue>,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl MadeResponse {
    /// The page for an error.
    pub fn error(error: ProxyError, server_tokens: bool) -> MadeResponse {
        MadeResponse::paged(error.status(), error.detail(), server_tokens)
    }

    /// nginx's page for `status`, `text/html`; a code nginx has no page for
    /// goes out empty and without a `Content-Type`, as nginx's.
    pub fn status_page(status: StatusCode, server_tokens: bool) -> MadeResponse {
        MadeResponse::paged(status, None, server_tokens)
    }

    fn paged(status: StatusCode, detail: Option<&str>, server_tokens: bool) -> MadeResponse {
        let body = page(status, detail, server_tokens);
        MadeResponse {
            status,
            location: None,
            content_type: (!body.is_empty()).then_some(HTML),
            body,
        }
    }
}

/// Where a relative redirect points: the request's scheme, host and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectBase<'a> {
    /// `http`.
    pub scheme: &'a str,
    /// The normalized Host of the request, else the server's name, else the local
    /// IP (nginx's order with `server_name_in_redirect off`).
    pub host: &'a str,
    /// The local (listen) port; omitted from the URL when it is the scheme's
    /// default, or `None` (`port_in_redirect off`).
    pub port: Option<u16>,
    /// `absolute_redirect`: off, a path stays a path.
    pub absolute: bool,
}

/// True for the statuses whose `return` text is a `Location` URL.
pub fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

/// Builds the response for `return CODE [TEXT]` with `text` already evaluated.
///
/// - 301/302/303/307/308: `text` is the `Location` (a relative one made absolute
///   with `base`), the body is the status page.
/// - other codes with text: the text is the body, untyped here: the caller
///   types it as nginx does (`$uri`'s extension, else `default_type`).
/// - without text: under 400 an empty body; 400 and above the status page.
///
/// Returns `None` when `code` is not a valid status or the URL holds bytes a header
/// cannot carry.
pub fn return_response(
    code: u16,
    text: Option<&[u8]>,
    base: &RedirectBase<'_>,
    server_tokens: bool,
) -> Option<MadeResponse> {
    let status = StatusCode::from_u16(code).ok()?;
    if is_redirect(code) {
        let location = match text {
            Some(url) => Some(HeaderValue::from_bytes(&absolute_location(url, base)).ok()?),
            None => None,
        };
        return Some(MadeResponse {
            location,
            ..MadeResponse::status_page(status, server_tokens)
        });
    }
    Some(match text {
        // Typed by the caller, as nginx types it (`$uri`'s extension,
        // else `default_type`).
        Some(text) => MadeResponse {
            status,
            location: None,
            content_type: None,
            body: Bytes::copy_from_slice(text),
        },
        None if code >= 400 => MadeResponse::status_page(status, server_tokens),
        None => MadeResponse {
            status,
            location: None,
            content_type: None,
            body: Bytes::new(),
        },
    })
}

/// nginx's `absolute_redirect`: a `Location` starting with `/` becomes
/// `scheme://host[:port]/...` (port omitted when it is 80 for http / 443 for https);
/// anything else is kept as written.
pub fn absolute_location(url: &[u8], base: &RedirectBase<'_>) -> Vec<u8> {
    if !base.absolute || url.first() != Some(&b'/') {
        return url.to_vec();
    }
    let default_port = match base.scheme {
        "https" => 443,
        _ => 80,
    };
    let mut out = Vec::with_capacity(url.len() + base.host.len() + 16);
    out.extend_from_slice(base.scheme.as_bytes());
    out.extend_from_slice(b"://");
    out.extend_from_slice(base.host.as_bytes());
    if let Some(port) = base.port.filter(|&p| p != default_port) {
        out.push(b':');
        out.extend_from_slice(port.to_string().as_bytes());
    }
    out.extend_from_slice(url);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_one_status() {
        let cases = [
            (ProxyError::BadRequest, 400, true),
            (ProxyError::NotFound, 404, false),
            (ProxyError::MethodNotAllowed, 405, false),
            (ProxyError::RequestTimeout, 408, true),
            (ProxyError::PayloadTooLarge, 413, true),
            (ProxyError::UriTooLong, 414, true),
            (ProxyError::HeaderTooLarge, 431, true),
            (ProxyError::Internal, 500, true),
            (ProxyError::NotImplemented, 501, true),
            (ProxyError::BadGateway, 502, false),
            (ProxyError::GatewayTimeout, 504, false),
            (ProxyError::VersionNotSupported, 505, true),
            (ProxyError::ClientClosedRequest, 499, true),
            (ProxyError::PlainHttpToHttps, 400, true),
            (ProxyError::SslCertificateError, 400, true),
            (ProxyError::NoSslCertificate, 400, true),
        ];
        for (error, code, closes) in cases {
            assert_eq!(error.status().as_u16(), code, "{error:?}");
            assert_eq!(error.closes_connection(), closes, "{error:?}");
        }
        assert_eq!(
            ProxyError::PayloadTooLarge.to_string(),
            "413 Request Entity Too Large"
        );
        use crate::proxy::{route::RouteError, uri::UriError};
        assert_eq!(
            ProxyError::from(RouteError::InvalidHost),
            ProxyError::BadRequest
        );
        assert_eq!(
            ProxyError::from(RouteError::NoListener),
            ProxyError::Internal
        );
        use crate::http1::request::RequestError;
        let refusals = [
            (RequestError::BadRequest, 400),
            (RequestError::UriTooLong, 414),
            (RequestError::HeaderTooLarge, 431),
            (RequestError::NotImplemented, 501),
            (RequestError::MethodNotAllowed, 405),
            (RequestError::VersionNotSupported, 505),
            (RequestError::PlainHttpToHttps, 400),
            (RequestError::SslCertificateError, 400),
            (RequestError::NoSslCertificate, 400),
        ];
        for (e, code) in refusals {
            assert_eq!(ProxyError::from(e).status().as_u16(), code, "{e:?}");
        }
        for e in [
            UriError::NotAbsolute,
            UriError::BadEscape,
            UriError::Nul,
            UriError::AboveRoot,
        ] {
            assert_eq!(ProxyError::from(e), ProxyError::BadRequest, "{e}");
        }
    }

    #[test]
    fn error_pages_look_like_nginx() {
        let bad_gateway = page(StatusCode::BAD_GATEWAY, None, false);
        assert_eq!(
            bad_gateway,
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>sticky-proxy</center>\r\n\
             </body>\r\n</html>\r\n"
        );
        let with_version = page(StatusCode::NOT_FOUND, None, true);
        let text = std::str::from_utf8(&with_version).unwrap();
        assert!(text.contains("<title>404 Not Found</title>"));
        assert!(text.contains(concat!(
            "<center>sticky-proxy/",
            env!("CARGO_PKG_VERSION"),
            "</center>"
        )));
        assert!(page(StatusCode::OK, None, true).is_empty());
        assert!(page(StatusCode::NOT_MODIFIED, None, true).is_empty());
        // nginx's page for 302 says `Found` (its status line `Moved
        // Temporarily`); a code it has no page for is sent empty, untyped.
        let found = MadeResponse::status_page(StatusCode::FOUND, false);
        assert!(std::str::from_utf8(&found.body).is_ok_and(|t| t.contains("<h1>302 Found</h1>")));
        assert_eq!(found.content_type, Some(HTML));
        for code in [407, 417, 418, 422, 506, 599] {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            let none = MadeResponse::status_page(status, false);
            assert_eq!((none.body.len(), none.content_type), (0, None), "{code}");
        }
        let plain = MadeResponse::error(ProxyError::PlainHttpToHttps, false);
        assert_eq!(
            plain.body,
            "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n\
             <center><h1>400 Bad Request</h1></center>\r\n\
             <center>The plain HTTP request was sent to HTTPS port</center>\r\n\
             <hr><center>sticky-proxy</center>\r\n</body>\r\n</html>\r\n"
        );
        assert_eq!(
            server_header(true).to_str().unwrap(),
            concat!("sticky-proxy/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(server_header(false), "sticky-proxy");
        let made = MadeResponse::error(ProxyError::GatewayTimeout, false);
        assert_eq!(made.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(made.content_type, Some(HTML));
        assert!(std::str::from_utf8(&made.body)
            .unwrap()
            .contains("<h1>504 Gateway Time-out</h1>"));
    }

    #[test]
    fn return_directive_responses_table() {
        let base = RedirectBase {
            scheme: "http",
            host: "example.com",
            port: Some(8080),
            absolute: true,
        };
        // (code, text, status, location, content type, body starts with)
        type Case = (
            u16,
            Option<&'static str>,
            u16,
            Option<&'static str>,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            (200, Some("Hello, world"), 200, None, None, "Hello, world"),
            (
                503,
                Some("Service unavailable"),
                503,
                None,
                None,
                "Service unavailable",
            ),
            (204, None, 204, None, None, ""),
            (200, None, 200, None, None, ""),
            (
                403,
                None,
                403,
                None,
                Some("text/html"),
                "<html>\r\n<head><title>403 Forbidden",
            ),
            (
                301,
                Some("/new"),
                301,
                Some("http://example.com:8080/new"),
                Some("text/html"),
                "<html>\r\n<head><title>301 Moved Permanently",
            ),
            (
                302,
                Some("https://other.test/x"),
                302,
                Some("https://other.test/x"),
                Some("text/html"),
                "<html>\r\n<head><title>302 Found",
            ),
            (
                307,
                Some("rel/path"),
                307,
                Some("rel/path"),
                Some("text/html"),
                "<html>\r\n<head><title>307 Temporary Redirect",
            ),
            (
                308,
                None,
                308,
                None,
                Some("text/html"),
                "<html>\r\n<head><title>308 Permanent Redirect",
            ),
        ];
        for &(code, text, status, location, ctype, body) in cases {
            let made = return_response(code, text.map(str::as_bytes), &base, false).unwrap();
            assert_eq!(made.status.as_u16(), status, "{code}");
            assert_eq!(
                made.location.as_ref().map(|v| v.to_str().unwrap()),
                location,
                "{code}"
            );
            assert_eq!(
                made.content_type.as_ref().map(|v| v.to_str().unwrap()),
                ctype,
                "{code}"
            );
            assert!(
                made.body.starts_with(body.as_bytes()),
                "{code}: {:?}",
                made.body
            );
        }
        // Invalid code or a URL with CR/LF: no response.
        assert!(return_response(1000, None, &base, false).is_none());
        assert!(return_response(302, Some(b"/a\r\nSet-Cookie: x=1"), &base, false).is_none());
    }

    #[test]
    fn relative_redirects_become_absolute_table() {
        let cases = [
            ("http", "example.com", 80, "/a", "http://example.com/a"),
            (
                "http",
                "example.com",
                8080,
                "/a?b",
                "http://example.com:8080/a?b",
            ),
            ("https", "example.com", 443, "/", "https://example.com/"),
            ("https", "example.com", 80, "/", "https://example.com:80/"),
            ("http", "[::1]", 8080, "/x", "http://[::1]:8080/x"),
            (
                "http",
                "example.com",
                80,
                "http://x.test/",
                "http://x.test/",
            ),
        ];
        for (scheme, host, port, url, want) in cases {
            let base = RedirectBase {
                scheme,
                host,
                port: Some(port),
                absolute: true,
            };
            assert_eq!(
                absolute_location(url.as_bytes(), &base),
                want.as_bytes(),
                "{url}"
            );
        }
        // port_in_redirect off; absolute_redirect off.
        let mut base = RedirectBase {
            scheme: "http",
            host: "example.com",
            port: None,
            absolute: true,
        };
        assert_eq!(absolute_location(b"/a", &base), b"http://example.com/a");
        base.absolute = false;
        assert_eq!(absolute_location(b"/a", &base), b"/a");
        assert_eq!(absolute_location(b"http://x/", &base), b"http://x/");
    }
}

//! Status lines: the reason phrase nginx prints for each status.

use http::StatusCode;

/// The reason phrase nginx 1.22 prints for a status of its own
/// (`ngx_http_status_lines`), `""` for the codes it has none for: nginx then
/// writes the code and a space (`HTTP/1.1 418 `). Its wording differs from
/// the standard one in places (`302 Moved Temporarily`, `405 Not Allowed`).
/// A backend's status line is passed on as it came, not through this table.
pub fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// The text after the version in a backend's response head as received
/// (`200 Fine` of `HTTP/1.1 200 Fine\r\n`, `503` of `HTTP/1.1 503\r\n`),
/// when its code is `status`: nginx's `status_line`, which it passes on
/// verbatim as long as the status stays the backend's.
pub fn received_status_text(head: &[u8], status: StatusCode) -> Option<&[u8]> {
    // A parsed head: its first line ends with `\n`, `\r` before it if any.
    let line = head.get(..memchr::memchr(b'\n', head)?)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = line.strip_prefix(b"HTTP/1.")?.get(2..)?;
    let code = status.as_str().as_bytes();
    let rest = text.strip_prefix(code)?;
    (rest.is_empty() || rest.first() == Some(&b' ')).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_nginx_s_own_table() {
        // Asked of nginx 1.22.1 with `return CODE "x";` for every code from
        // 100 to 599: these are all the codes it names; any other gets an
        // empty phrase.
        let cases = [
            (200, "OK"),
            (206, "Partial Content"),
            (301, "Moved Permanently"),
            (302, "Moved Temporarily"),
            (405, "Not Allowed"),
            (408, "Request Time-out"),
            (413, "Request Entity Too Large"),
            (414, "Request-URI Too Large"),
            (416, "Requested Range Not Satisfiable"),
            (421, "Misdirected Request"),
            (502, "Bad Gateway"),
            (503, "Service Temporarily Unavailable"),
            (504, "Gateway Time-out"),
            (507, "Insufficient Storage"),
            (100, ""),
            (203, ""),
            (207, ""),
            (300, ""),
            (305, ""),
            (417, ""),
            (418, ""),
            (422, ""),
            (506, ""),
            (508, ""),
            (599, ""),
        ];
        for (code, want) in cases {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            assert_eq!(reason(status), want, "{code}");
        }
    }

    #[test]
    fn a_backend_s_status_text_is_taken_when_its_code_is_the_status() {
        // (head received, status sent, the text passed on)
        type Case = (&'static [u8], StatusCode, Option<&'static [u8]>);
        let ok = StatusCode::OK;
        let cases: [Case; 10] = [
            (b"HTTP/1.1 200 Fine\r\nA: b\r\n\r\n", ok, Some(b"200 Fine")),
            (b"HTTP/1.0 200 OK\r\n\r\n", ok, Some(b"200 OK")),
            (b"HTTP/1.1 200\r\n\r\n", ok, Some(b"200")),
            (b"HTTP/1.1 200 \r\n\r\n", ok, Some(b"200 ")),
            (
                b"HTTP/1.1 200 Two words here\n\n",
                ok,
                Some(b"200 Two words here"),
            ),
            // The status is no longer the backend's (a 304, a 206, an
            // `error_page` code): nginx's own line.
            (b"HTTP/1.1 200 Fine\r\n\r\n", StatusCode::NOT_MODIFIED, None),
            (b"HTTP/1.1 2000 Fine\r\n\r\n", ok, None),
            (b"HTTP/1.1 200", ok, None),
            (b"", ok, None),
            (b"HTTP/2 200 Fine\r\n\r\n", ok, None),
        ];
        for (head, status, want) in cases {
            assert_eq!(
                received_status_text(head, status),
                want,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}

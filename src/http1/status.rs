//! Status lines: the reason phrase nginx prints for each status.

use http::StatusCode;

/// The reason phrase nginx prints for a status (nginx's own wording where it
/// differs from the standard one), `""` when unknown.
pub fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        405 => "Not Allowed",
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_nginx_wording_then_the_standard_one() {
        let cases = [
            (200, "OK"),
            (301, "Moved Permanently"),
            (405, "Not Allowed"),
            (408, "Request Time-out"),
            (413, "Request Entity Too Large"),
            (414, "Request-URI Too Large"),
            (502, "Bad Gateway"),
            (503, "Service Temporarily Unavailable"),
            (504, "Gateway Time-out"),
            (599, ""),
        ];
        for (code, want) in cases {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            assert_eq!(reason(status), want, "{code}");
        }
    }
}

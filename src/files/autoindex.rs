//! `autoindex on`: a directory listing as nginx's autoindex module writes
//! it, in HTML (`autoindex_exact_size`, `autoindex_localtime`) or JSON
//! (`autoindex_format json`). Directories first, then files, each group by
//! name; names starting with `.` are left out, as nginx does. The listing
//! is made in memory (its size grows with the directory, not the request).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::config::files::{AutoindexFormat, FilesConf};
use crate::config::Escape as LogEscape;
use crate::files::serve::{FileRequest, Outcome, Reply};
use crate::proxy::uri::Escape;

/// One entry of a listing.
struct Entry {
    name: String,
    dir: bool,
    size: u64,
    mtime: SystemTime,
}

/// The listing of `dir` (the directory of `uri`).
pub fn listing(conf: &FilesConf, req: &FileRequest<'_>, uri: &[u8], dir: &Path) -> Outcome {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("opendir() \"{}\" failed ({e})", dir.display());
            return Outcome::Status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let mut entries: Vec<Entry> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if name.starts_with('.') {
                return None;
            }
            // Followed, as nginx's stat(): a link to a directory lists as one.
            let meta = std::fs::metadata(e.path()).ok()?;
            Some(Entry {
                name,
                dir: meta.is_dir(),
                size: meta.len(),
                mtime: meta.modified().unwrap_or(UNIX_EPOCH),
            })
        })
        .collect();
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    let (body, content_type) = match conf.autoindex_format {
        AutoindexFormat::Html => (html(conf, uri, &entries), "text/html"),
        AutoindexFormat::Json => (json(&entries), "application/json"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::SERVER, req.server.clone());
    let ct = match &conf.charset {
        Some(cs) if content_type == "text/html" => format!("{content_type}; charset={cs}"),
        _ => content_type.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&ct) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let len = body.len() as u64;
    let head = req.method == Method::HEAD;
    Outcome::Reply(Reply {
        status: StatusCode::OK,
        headers,
        body: None,
        declared: head.then_some(len),
        text: (!head).then(|| Bytes::from(body)),
    })
}

/// `04-Dec-2026 13:05` (nginx's autoindex date), in UTC.
fn date(t: SystemTime) -> String {
    let c = crate::timefmt::civil(t);
    format!(
        "{:02}-{}-{} {:02}:{:02}",
        c.day,
        c.month_name(),
        c.year,
        c.hour,
        c.minute
    )
}

/// A size as nginx writes it with `autoindex_exact_size off`, 7 wide:
/// bytes up to 9999, then `K`, `M`, `G` rounded to the nearest (half up),
/// as nginx's autoindex module (checked against nginx 1.22).
fn human(size: u64) -> String {
    const K: u64 = 1024;
    const M: u64 = K * K;
    const G: u64 = M * K;
    let round = |unit: u64| size / unit + u64::from(size % unit >= unit / 2);
    match size {
        s if s >= G => format!("{:>6}G", round(G)),
        s if s >= M => format!("{:>6}M", round(M)),
        s if s > 9999 => format!("{:>6}K", round(K)),
        s => format!("{s:>7}"),
    }
}

fn html(conf: &FilesConf, uri: &[u8], entries: &[Entry]) -> String {
    let mut title = String::new();
    crate::upstream::status::html_escape(&String::from_utf8_lossy(uri), &mut title);
    let mut out = format!(
        "<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n<h1>Index of {title}</h1><hr><pre><a href=\"../\">../</a>\r\n"
    );
    for e in entries {
        let mut href = String::new();
        // Escaped as a URI component, as nginx: no byte of a name can end
        // the attribute or add markup.
        crate::proxy::uri::escape_into(e.name.as_bytes(), Escape::UriComponent, &mut href);
        let mut shown_name = e.name.clone();
        if e.dir {
            href.push('/');
            shown_name.push('/');
        }
        // nginx cuts names longer than 50 characters to 47 and `..>`.
        let chars = shown_name.chars().count();
        let (cut, pad) = if chars > 50 {
            let mut s: String = shown_name.chars().take(47).collect();
            s.push_str("..>");
            (s, 1)
        } else {
            (shown_name, 51 - chars)
        };
        let mut shown = String::new();
        crate::upstream::status::html_escape(&cut, &mut shown);
        // The size column: 19 wide exact, 7 wide in nginx's short form.
        let size = match (e.dir, conf.autoindex_exact_size) {
            (true, true) => format!("{:>19}", "-"),
            (true, false) => format!("{:>7}", "-"),
            (false, true) => format!("{:>19}", e.size),
            (false, false) => human(e.size),
        };
        let _ = write!(
            out,
            "<a href=\"{href}\">{shown}</a>{:pad$}{} {size}\r\n",
            "",
            date(e.mtime),
        );
    }
    out.push_str("</pre><hr></body>\r\n</html>\r\n");
    out
}

fn json(entries: &[Entry]) -> String {
    let mut out = String::from("[\n");
    for (i, e) in entries.iter().enumerate() {
        let mut name = Vec::new();
        crate::vars::escape_log(e.name.as_bytes(), LogEscape::Json, &mut name);
        let stamp = crate::timefmt::http_date(e.mtime);
        let _ = write!(
            out,
            "{{ \"name\":\"{}\", \"type\":\"{}\", \"mtime\":\"{}\"",
            String::from_utf8_lossy(&name),
            if e.dir { "directory" } else { "file" },
            stamp.as_str()
        );
        if !e.dir {
            let _ = write!(out, ", \"size\":{}", e.size);
        }
        out.push_str(if i + 1 == entries.len() {
            " }\n"
        } else {
            " },\n"
        });
    }
    out.push(']');
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates_as_nginx_writes_them() {
        // nginx 1.22's listing of files of these sizes.
        let cases = [
            (0, "      0"),
            (7, "      7"),
            (1023, "   1023"),
            (1500, "   1500"),
            (9999, "   9999"),
            (10000, "    10K"),
            (10752, "    11K"),
            (10753, "    11K"),
            (1048575, "  1024K"),
            (1048576, "     1M"),
            (1572863, "     1M"),
            (1572864, "     2M"),
            (2000000, "     2M"),
            (3 << 30, "     3G"),
        ];
        for (n, want) in cases {
            assert_eq!(human(n), want, "{n}");
        }
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(date(t), "14-Nov-2023 22:13");
    }

    #[test]
    fn listings_put_directories_first_and_escape_names() {
        let t = UNIX_EPOCH;
        let entries = [
            Entry {
                name: "sub".into(),
                dir: true,
                size: 4096,
                mtime: t,
            },
            Entry {
                name: "a b<.txt".into(),
                dir: false,
                size: 5,
                mtime: t,
            },
        ];
        let conf_json = json(&entries);
        assert_eq!(
            conf_json,
            "[\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Thu, 01 Jan 1970 00:00:00 GMT\" },\n{ \"name\":\"a b<.txt\", \"type\":\"file\", \"mtime\":\"Thu, 01 Jan 1970 00:00:00 GMT\", \"size\":5 }\n]\n"
        );
    }
}

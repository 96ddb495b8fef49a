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
use crate::config::Escape;
use crate::files::serve::{FileRequest, Outcome, Reply};

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

/// A size as nginx writes it without `autoindex_exact_size`: `999`, `12K`,
/// `3M`, `2G` (rounded up as nginx).
fn human(size: u64) -> String {
    const K: u64 = 1024;
    match size {
        s if s < K => s.to_string(),
        s if s < K * K => format!("{}K", s.div_ceil(K)),
        s if s < K * K * K => format!("{}M", s.div_ceil(K * K)),
        s => format!("{}G", s.div_ceil(K * K * K)),
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
        crate::proxy::uri::escape_into(e.name.as_bytes(), true, &mut href);
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
        let size = if e.dir {
            "-".to_string()
        } else if conf.autoindex_exact_size {
            e.size.to_string()
        } else {
            human(e.size)
        };
        let _ = write!(
            out,
            "<a href=\"{href}\">{shown}</a>{:pad$}{} {:>19}\r\n",
            "",
            date(e.mtime),
            size
        );
    }
    out.push_str("</pre><hr></body>\r\n</html>\r\n");
    out
}

fn json(entries: &[Entry]) -> String {
    let mut out = String::from("[\n");
    for (i, e) in entries.iter().enumerate() {
        let mut name = Vec::new();
        crate::vars::escape_log(e.name.as_bytes(), Escape::Json, &mut name);
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
        let cases = [
            (0, "0"),
            (1023, "1023"),
            (1024, "1K"),
            (1025, "2K"),
            (5 << 20, "5M"),
            (3 << 30, "3G"),
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

//! The typed settings of response compression (`gzip*`, and ngx_brotli's
//! `brotli*`), resolved for one location. Built by
//! `config::build::compress`; read by `crate::compress`.

/// `gzip_proxied` flags, as nginx's bitmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proxied {
    pub off: bool,
    pub expired: bool,
    pub no_cache: bool,
    pub no_store: bool,
    pub private: bool,
    pub no_last_modified: bool,
    pub no_etag: bool,
    pub auth: bool,
    pub any: bool,
}

/// `gzip_static` / `brotli_static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticMode {
    Off,
    /// Serve `FILE.gz` when the client accepts the encoding.
    On,
    /// Serve `FILE.gz` whatever the client accepts.
    Always,
}

/// A list of MIME types (`gzip_types`, `brotli_types`): `*` is any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Types {
    pub any: bool,
    pub list: Vec<String>,
}

impl Types {
    /// Whether the `Content-Type` value `ct` (parameters ignored) is listed.
    pub fn matches(&self, ct: &[u8]) -> bool {
        if self.any {
            return true;
        }
        let ty = ct.split(|&b| b == b';').next().unwrap_or_default();
        let ty = ty.trim_ascii();
        self.list
            .iter()
            .any(|t| t.as_bytes().eq_ignore_ascii_case(ty))
    }
}

/// Compression settings of one location.
#[derive(Debug, Clone)]
pub struct CompressConf {
    pub gzip: bool,
    /// Always holds `text/html` (nginx).
    pub gzip_types: Types,
    /// Default 20.
    pub gzip_min_length: u64,
    /// 1..=9, default 1.
    pub gzip_comp_level: u32,
    pub gzip_vary: bool,
    /// Default `off`.
    pub gzip_proxied: Proxied,
    /// `gzip_disable`: User-Agent regexes (`msie6` is nginx's special name).
    pub gzip_disable: Vec<regex::Regex>,
    pub gzip_disable_msie6: bool,
    /// `gzip_http_version 1.0|1.1`, default 1.1.
    pub gzip_http_version: http::Version,
    pub gzip_static: StaticMode,
    pub brotli: bool,
    pub brotli_types: Types,
    /// 0..=11, default 6 (ngx_brotli).
    pub brotli_comp_level: u32,
    /// Default 20 (ngx_brotli).
    pub brotli_min_length: u64,
    pub brotli_static: StaticMode,
}

impl Default for CompressConf {
    fn default() -> Self {
        let html = Types {
            any: false,
            list: vec!["text/html".to_string()],
        };
        CompressConf {
            gzip: false,
            gzip_types: html.clone(),
            gzip_min_length: 20,
            gzip_comp_level: 1,
            gzip_vary: false,
            gzip_proxied: Proxied {
                off: true,
                ..Proxied::default()
            },
            gzip_disable: Vec::new(),
            gzip_disable_msie6: false,
            gzip_http_version: http::Version::HTTP_11,
            gzip_static: StaticMode::Off,
            brotli: false,
            brotli_types: html,
            brotli_comp_level: 6,
            brotli_min_length: 20,
            brotli_static: StaticMode::Off,
        }
    }
}

impl CompressConf {
    /// Whether any response of the location may be compressed.
    pub fn enabled(&self) -> bool {
        self.gzip || self.brotli
    }
}

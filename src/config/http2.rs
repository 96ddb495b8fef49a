//! The HTTP/2 settings of a server (`http2`, `http2_*`), with nginx's
//! defaults. Connection-level: the listen address's default server's apply
//! to each of its connections.

/// `http2` and the `http2_*` limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Conf {
    /// `http2 on|off` (nginx 1.25.1+; default off).
    pub enabled: bool,
    /// `http2_max_concurrent_streams` (default 128).
    pub max_concurrent_streams: u32,
    /// `http2_body_preread_size` (default 64k): each stream's initial
    /// receive window.
    pub body_preread_size: u32,
    /// `http2_recv_buffer_size` (http level only; default 256k): the
    /// connection's receive window.
    pub recv_buffer_size: u32,
    /// `http2_chunk_size` (default 8k): the largest DATA frame of a
    /// response body.
    pub chunk_size: u32,
}

impl Default for Http2Conf {
    fn default() -> Http2Conf {
        Http2Conf {
            enabled: false,
            max_concurrent_streams: 128,
            body_preread_size: 64 * 1024,
            recv_buffer_size: 256 * 1024,
            chunk_size: 8 * 1024,
        }
    }
}
